"""Constants and shape ops (spec: constant, iota, broadcast_in_dim, reshape, transpose, ...)."""

import numpy as np

from . import Constant, op


@op("stablehlo.constant")
def constant(op_):
    """Spec: constant. Read once at compile time; bound into the program, no call at run time."""
    t = op_.result
    value = op_.dense("value", t.dtype, t.shape)
    value.setflags(write=False)
    return Constant(value)


@op("stablehlo.iota")
def iota(op_):
    """Spec: iota. Computed once at compile time."""
    t = op_.result
    dim = op_.int("iota_dimension")
    shape = [1] * t.rank
    shape[dim] = t.shape[dim]
    value = np.broadcast_to(np.arange(t.shape[dim]).astype(t.dtype).reshape(shape), t.shape)
    return Constant(np.ascontiguousarray(value))


@op("stablehlo.broadcast_in_dim")
def broadcast_in_dim(op_):
    """Spec: broadcast_in_dim. A read-only broadcast view (no copy)."""
    out = op_.result
    dims = op_.ints("broadcast_dimensions")
    operand = op_.operand_types[0]
    # Operand axis i lands on result axis dims[i]; reorder so the axes are increasing first.
    order = sorted(range(len(dims)), key=lambda i: dims[i])
    shape = [1] * out.rank
    for i in order:
        shape[dims[i]] = operand.shape[i]
    needs_transpose = order != list(range(len(dims)))

    def kernel(x):
        if needs_transpose:
            x = np.transpose(x, order)
        return np.broadcast_to(np.reshape(x, shape), out.shape)

    return kernel


@op("stablehlo.reshape")
def reshape(op_):
    """Spec: reshape (row-major)."""
    shape = op_.result.shape
    return lambda x: np.reshape(x, shape)


@op("stablehlo.transpose")
def transpose(op_):
    """Spec: transpose. A view; copies happen only where a kernel needs contiguity."""
    perm = op_.ints("permutation")
    return lambda x: np.transpose(x, perm)
