"""Every JAX-side piece pyrt installs, one module per concern; see docs/jax-integration.md.

JAX keeps several behaviours keyed by platform name (lowering rules that exist only for cpu/gpu,
the platforms allowed to donate buffers or use the compilation cache, ...). A new platform
trips over each of them; each module here fixes one, and says why, in `install()`. They run from
`jax_pyrt.plugin.initialize()` right after the plugin is registered (register_lowering needs
the platform to be known). Checked against jax 0.10.2.
"""

import warnings

from . import callbacks, compilation_cache, dlpack, donation, linalg

MODULES = (callbacks, compilation_cache, dlpack, donation, linalg)


def install(platform):
    """Installs every workaround for `platform`; a failing one warns and leaves the rest."""
    for module in MODULES:
        try:
            module.install(platform)
        except Exception as e:  # never break jax import for CPU users
            warnings.warn(f"pyrt: could not install {module.__name__}: {type(e).__name__}: {e}")
