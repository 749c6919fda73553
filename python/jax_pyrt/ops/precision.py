"""The dtypes kernels compute in, so that one final cast gives XLA:CPU's result: one home for
the rules elementwise ops, matmuls / convolutions and reductions share."""

import numpy as np

from .. import dtypes

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def is_narrow_int(dt):
    """int4, uint4, int2, uint2 (ml_dtypes)."""
    return dtypes.is_integer(dt) and dt.kind not in "iu"


def is_narrow_float(dt):
    """bf16, f8*, f4, f6: ml_dtypes floats, computed in float32. (Not `kind == "V"`: NumPy
    reports float8_e5m2 as kind "f".)"""
    return dtypes.is_float(dt) and dt not in (F16, F32, F64)


def elementwise_dtype(dt, exact=True):
    """The dtype NumPy computes an op on `dt` in. `exact`: the op is exactly rounded (+ - * /
    sqrt, rounding, min/max, comparisons), so float16's own loops (float32 inside, one rounding)
    are right; transcendental functions on float16 go through float32 explicitly."""
    if is_narrow_float(dt):
        return F32
    if dt == F16 and not exact:
        return F32
    if is_narrow_int(dt):
        return np.dtype(np.uint8) if dtypes.is_unsigned(dt) else np.dtype(np.int8)
    return dt


def matmul_dtype(lhs_dtype, rhs_dtype, out_dtype, k):
    """The dtype np.matmul runs in, chosen so that one final cast gives XLA's result.

    Narrow floats go through float32 (BLAS) and round once. Bool and small integers go through
    BLAS in floating point when every partial sum is exactly representable there (the final cast
    to the integer type then wraps exactly like integer accumulation would); other integers use
    NumPy's integer matmul, which wraps."""
    if dtypes.is_float(out_dtype) and out_dtype.itemsize < 4:
        return np.dtype(np.float32)
    if dtypes.is_bool(out_dtype) or dtypes.is_integer(out_dtype):
        bits = _magnitude_bits(lhs_dtype) + _magnitude_bits(rhs_dtype) + max(k, 1).bit_length()
        if bits <= 24:
            return np.dtype(np.float32)
        if bits <= 53:
            return np.dtype(np.float64)
        return np.dtype(np.int64) if dtypes.is_bool(out_dtype) or out_dtype.kind not in "iu" else out_dtype
    return out_dtype


def _magnitude_bits(dtype):
    """Bits needed for the largest magnitude of an integer or bool dtype (large for others)."""
    if dtypes.is_bool(dtype):
        return 1
    if dtypes.is_integer(dtype):
        return 8 * dtype.itemsize if dtype.kind in "iu" else 4
    return 64


def accumulator_dtype(dtype):
    """Where a fast reduction accumulates: narrow floats in float32 (rounded once at the end),
    the ml_dtypes sub-byte ints in int64 (wrapped back by the final cast)."""
    if dtypes.is_float(dtype) and dtype.itemsize < 4:
        return np.dtype(np.float32)
    if dtypes.is_integer(dtype) and dtype.kind not in "iu":
        return np.dtype(np.int64)
    return dtype
