"""Which JAX backends exist in this process."""


def have_backend(name):
    """Whether JAX has a backend `name` (e.g. no "cpu" under JAX_PLATFORMS=pyrt)."""
    from jax._src import xla_bridge as xb

    try:
        xb.get_backend(name)
        return True
    except RuntimeError:
        return False
