"""pyrt: a PJRT plugin for JAX whose runtime is Python and NumPy.

After `pip install jax-pyrt`, JAX discovers the plugin (entry point `jax_plugins: pyrt`) and
`jax.devices("pyrt")` lists pyrt devices; `JAX_PLATFORMS=pyrt` makes pyrt the default backend.
"""

__version__ = "0.1.0"

import importlib.resources
import os

LIBRARY_NAME = "libpjrt_pyrt.so"


def library_path():
    """Path of the PJRT plugin library (PYRT_LIBRARY_PATH overrides), or None if not built."""
    override = os.environ.get("PYRT_LIBRARY_PATH")
    if override:
        return override if os.path.isfile(override) else None
    candidates = [importlib.resources.files(__name__) / LIBRARY_NAME]
    candidates += [os.path.join(p, LIBRARY_NAME) for p in __path__]
    for candidate in candidates:
        if os.path.isfile(str(candidate)):
            return str(candidate)
    return None


def memory_stats(device):
    """Per-device allocation counters: bytes_in_use, peak_bytes_in_use, live_arrays, num_allocs."""
    stats = dict(device.memory_stats())
    stats["live_arrays"] = stats.pop("pool_bytes", 0)  # see Device_MemoryStats in device_api.cc
    return stats


# Debugging and extending (docs/debugging.md, docs/extending.md); imported on first use, so that
# loading the plugin stays cheap.
_PUBLIC = {"op_profile": "tracing", "check_nans": "tracing", "explain": "explaining",
           "register_custom_call": "ops.custom_call"}


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'jax_pyrt' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
