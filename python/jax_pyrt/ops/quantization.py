"""Quantization (spec: uniform_quantize, uniform_dequantize)."""

from . import op  # noqa: F401
