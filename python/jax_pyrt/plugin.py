"""The `jax_plugins` entry point: JAX calls `initialize()` while discovering backends."""

import os
import warnings

from . import __version__, library_path, settings

PLATFORM = "pyrt"
SUPPORTED_JAXLIB = "0.10.2"  # PJRT C API 0.112, which the C++ layer reports exactly
# Below CPU (0): installing pyrt never changes a user's default backend; opt in with
# JAX_PLATFORMS=pyrt, jax.devices("pyrt") or jax.default_device.
PRIORITY = -100


def client_options():
    """PJRT_Client_Create options, from the environment."""
    count = os.environ.get("PYRT_DEVICE_COUNT", "1")
    if not count.isdigit() or not 1 <= int(count) <= 1024:
        raise ValueError(f"PYRT_DEVICE_COUNT must be an integer in [1, 1024], got {count!r}")
    return {
        "device_count": int(count),
        "synchronous": settings.flag("PYRT_SYNC"),
        "platform_version": f"pyrt {__version__} (Python {'.'.join(map(str, __import__('sys').version_info[:3]))})",
    }


def initialize():
    """Registers pyrt with JAX, or warns and does nothing if pyrt cannot run here, so that a
    broken pyrt never breaks jax.devices() for the CPU backend."""
    try:
        import jaxlib
        from jax._src import xla_bridge
    except ImportError as e:
        warnings.warn(f"pyrt: JAX is not importable ({e}); pyrt is not registered")
        return
    if jaxlib.__version__ != SUPPORTED_JAXLIB:
        warnings.warn(f"pyrt {__version__} supports jaxlib {SUPPORTED_JAXLIB} only (PJRT C API "
                      f"0.112), found {jaxlib.__version__}; pyrt is not registered. Install "
                      f"jax=={SUPPORTED_JAXLIB} jaxlib=={SUPPORTED_JAXLIB}.")
        return
    path = library_path()
    if path is None:
        where = os.environ.get("PYRT_LIBRARY_PATH") or "next to the jax_pyrt package"
        warnings.warn(f"pyrt: libpjrt_pyrt.so was not found ({where}); reinstall with "
                      "`pip install .`. pyrt is not registered.")
        return
    try:
        options = client_options()
    except ValueError as e:
        warnings.warn(f"pyrt: {e}; pyrt is not registered")
        return
    xla_bridge.register_plugin(PLATFORM, priority=PRIORITY, library_path=path, options=options)
    from . import jax_integration

    jax_integration.install(PLATFORM)
