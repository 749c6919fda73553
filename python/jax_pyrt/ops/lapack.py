"""LAPACK-backed custom-call targets (QR, eigh, SVD, ...) that pyrt's own lowering rules emit
(see jax_integration/linalg.py)."""

from . import op  # noqa: F401
