"""Buffer donation (jax.jit(..., donate_argnums=...)) on pyrt."""


def install(platform):
    """Nothing yet."""
