"""Host callbacks (jax.debug.print, jax.debug.callback, jax.pure_callback, io_callback) on pyrt."""


def install(platform):
    """Nothing yet."""
