"""Linear algebra (spec: dot_general, dot)."""

import numpy as np
from jaxlib.mlir.dialects import stablehlo

from .. import dtypes
from . import op


def _compute_dtype(lhs_dtype, rhs_dtype, out_dtype, k):
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


def matmul_kernel(lhs_batch, lhs_contract, rhs_batch, rhs_contract, lhs_type, rhs_type, out_type):
    """out = dot_general(lhs, rhs) as one batched np.matmul over (batch, free, contracting)."""
    lhs_free = [d for d in range(lhs_type.rank) if d not in lhs_batch and d not in lhs_contract]
    rhs_free = [d for d in range(rhs_type.rank) if d not in rhs_batch and d not in rhs_contract]
    lhs_perm = list(lhs_batch) + lhs_free + list(lhs_contract)
    rhs_perm = list(rhs_batch) + list(rhs_contract) + rhs_free
    size = lambda t, dims: int(np.prod([t.shape[d] for d in dims], dtype=np.int64))
    b, m, k = size(lhs_type, lhs_batch), size(lhs_type, lhs_free), size(lhs_type, lhs_contract)
    n = size(rhs_type, rhs_free)
    lhs_shape, rhs_shape = (b, m, k), (b, k, n)
    out_dtype = out_type.dtype
    compute = _compute_dtype(lhs_type.dtype, rhs_type.dtype, out_dtype, k)
    integral = dtypes.is_integer(out_dtype) and compute.kind == "f"
    to_bool = dtypes.is_bool(out_dtype)
    out_shape = out_type.shape
    lhs_identity = lhs_perm == list(range(lhs_type.rank))
    rhs_identity = rhs_perm == list(range(rhs_type.rank))

    def kernel(lhs, rhs):
        if not lhs_identity:
            lhs = lhs.transpose(lhs_perm)
        if not rhs_identity:
            rhs = rhs.transpose(rhs_perm)
        lhs = lhs.reshape(lhs_shape).astype(compute, copy=False)
        rhs = rhs.reshape(rhs_shape).astype(compute, copy=False)
        out = np.matmul(lhs, rhs)
        if to_bool:
            out = out != 0
        elif integral:
            out = out.astype(np.int64)  # exact; the cast below wraps like integer accumulation
        return out.reshape(out_shape).astype(out_dtype, copy=False)

    return kernel


@op("stablehlo.dot_general")
def dot_general(op_):
    """Spec: dot_general. One batched np.matmul over (batch, free, contracting) layouts; narrow
    floats accumulate in float32 and round once; integers wrap (small ones go through exact
    floating-point BLAS); bool is or-of-and; preferred element types are honoured."""
    dims = stablehlo.DotDimensionNumbers(op_.attr("dot_dimension_numbers"))
    lhs, rhs = op_.operand_types
    return matmul_kernel(dims.lhs_batching_dimensions, dims.lhs_contracting_dimensions,
                         dims.rhs_batching_dimensions, dims.rhs_contracting_dimensions,
                         lhs, rhs, op_.result)


@op("stablehlo.dot")
def dot(op_):
    """Spec: dot (deprecated form): vector/matrix products contracting lhs's last dimension."""
    lhs, rhs = op_.operand_types
    return matmul_kernel((), (lhs.rank - 1,), (), (0,), lhs, rhs, op_.result)
