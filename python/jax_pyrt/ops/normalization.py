"""Batch normalization (spec: batch_norm_training, batch_norm_inference, batch_norm_grad)."""

from . import op  # noqa: F401
