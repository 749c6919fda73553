"""The persistent compilation cache and executable serialization on pyrt."""


def install(platform):
    """Nothing yet."""
