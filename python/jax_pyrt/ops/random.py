"""Random numbers (spec: rng, rng_bit_generator)."""

from . import op  # noqa: F401
