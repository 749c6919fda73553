"""Linear algebra primitives whose JAX lowerings exist only for named platforms (eigh, svd, ...)."""


def install(platform):
    """Nothing yet."""
