"""Convolution (spec: convolution, dynamic_conv)."""

from . import op  # noqa: F401
