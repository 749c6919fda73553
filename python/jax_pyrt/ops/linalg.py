"""Linear algebra (spec: dot_general, dot)."""

import numpy as np
from jaxlib.mlir.dialects import stablehlo

from .. import dtypes
from . import op


def _compute_dtype(dtype):
    """The dtype NumPy multiplies in: narrow floats go through float32 (BLAS), then round once."""
    if dtypes.is_float(dtype) and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


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
    compute = _compute_dtype(out_dtype)
    if dtypes.is_bool(out_dtype):
        compute = np.dtype(np.int64)
    out_shape = out_type.shape
    lhs_identity = lhs_perm == sorted(lhs_perm)
    rhs_identity = rhs_perm == sorted(rhs_perm)

    def kernel(lhs, rhs):
        if not lhs_identity:
            lhs = lhs.transpose(lhs_perm)
        if not rhs_identity:
            rhs = rhs.transpose(rhs_perm)
        lhs = lhs.reshape(lhs_shape).astype(compute, copy=False)
        rhs = rhs.reshape(rhs_shape).astype(compute, copy=False)
        out = np.matmul(lhs, rhs)
        if dtypes.is_bool(out_dtype):
            out = out != 0
        return out.reshape(out_shape).astype(out_dtype, copy=False)

    return kernel


@op("stablehlo.dot_general")
def dot_general(op_):
    """Spec: dot_general. Batched np.matmul; narrow floats accumulate in float32."""
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
