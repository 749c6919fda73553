"""Fourier transforms (spec: fft)."""

from . import op  # noqa: F401
