"""Dynamic-shape ops (spec: dynamic_broadcast_in_dim, dynamic_reshape, dynamic_iota, dynamic_pad,
real_dynamic_slice, get_dimension_size, set_dimension_size).

pyrt runs programs with static shapes only: a result type with a dynamic dimension (`?`, bounded
or not) is a compile-time UnsupportedError (raised by types.to_type, naming the op and line).
With a static result type, these ops are their static counterparts plus a check that the shape
operands agree with the static result shape: at compile time when the shape operands are
constants (an InvalidProgramError otherwise), else at run time (an ExecutionError naming the op,
the user's line and the mismatch).
"""

import numpy as np

from .. import attributes
from ..errors import ExecutionError, InvalidProgramError
from . import shape
from .base import Constant, op


def constant_operand(op_, index):
    """The value of operand `index` as a NumPy array if a stablehlo.constant defines it (so it is
    known at compile time), else None."""
    value = op_.operation.operands[index]
    owner = value.owner
    operation = getattr(owner, "operation", owner)
    if getattr(operation, "name", None) != "stablehlo.constant":
        return None
    t = op_.operand_types[index]
    return attributes.dense_elements(operation.attributes["value"], t.dtype, t.shape)


def _where(op_):
    return f" at {op_.location}" if op_.location else ""


def _type(t):
    return str(t.mlir) if t.mlir is not None else repr(t)


def _ints(values):
    return tuple(int(v) for v in np.asarray(values).reshape(-1))


def _shape_check(op_, index, expected, what):
    """A run-time check `check(value)` that operand `index` (a 1-D shape) equals `expected`, or
    None if the operand is a constant (then checked now)."""
    expected = tuple(expected)

    def message(got):
        return (f"{what} is {list(got)}, but the result type {_type(op_.result)} has static shape "
                f"{list(expected)}; pyrt does not support dynamic shapes")

    const = constant_operand(op_, index)
    if const is not None:
        if _ints(const) != expected:
            raise InvalidProgramError(f"pyrt: invalid program: {op_.name}{_where(op_)}: "
                                      f"{message(_ints(const))}")
        return None

    def check(value):
        got = _ints(value)
        if got != expected:
            raise ExecutionError(f"pyrt: {op_.name}{_where(op_)}: {message(got)}")

    return check


@op("stablehlo.dynamic_broadcast_in_dim")
def dynamic_broadcast_in_dim(op_):
    """Spec: dynamic_broadcast_in_dim. Static result types only: output_dimensions must equal the
    result shape (checked); then as broadcast_in_dim (a read-only view). The
    known_(non)expanding_dimensions hints are not needed."""
    inner = shape.broadcast_in_dim(op_)
    check = _shape_check(op_, 1, op_.result.shape, "output_dimensions")
    if check is None:
        return lambda x, dims: inner(x)

    def kernel(x, dims):
        check(dims)
        return inner(x)

    return kernel


@op("stablehlo.dynamic_reshape")
def dynamic_reshape(op_):
    """Spec: dynamic_reshape. Static result types only: output_shape must equal the result shape
    (checked); then as reshape."""
    out_shape = op_.result.shape
    check = _shape_check(op_, 1, out_shape, "output_shape")
    if check is None:
        return lambda x, s: np.reshape(x, out_shape)

    def kernel(x, s):
        check(s)
        return np.reshape(x, out_shape)

    return kernel


@op("stablehlo.dynamic_iota")
def dynamic_iota(op_):
    """Spec: dynamic_iota. Static result types only: output_shape must equal the result shape
    (checked); the values are computed once at compile time."""
    value = shape.iota(op_).value
    value.setflags(write=False)
    check = _shape_check(op_, 0, op_.result.shape, "output_shape")
    if check is None:
        return Constant(value)

    def kernel(s):
        check(s)
        return value

    return kernel


def _pad_plan(operand_shape, low, high, interior, out_shape):
    """(message, plan) for pad: message is None if the paddings fit the static result shape,
    plan as shape.pad_plan returns it."""
    if any(i < 0 for i in interior):
        return f"interior_padding {list(interior)} is negative", None
    implied = tuple(lo + hi + n + max(n - 1, 0) * i
                    for n, lo, hi, i in zip(operand_shape, low, high, interior))
    if any(d < 0 for d in implied):
        return (f"edge_padding_low {list(low)} and edge_padding_high {list(high)} give the "
                f"negative shape {list(implied)}"), None
    if implied != tuple(out_shape):
        return (f"edge_padding_low {list(low)}, edge_padding_high {list(high)} and "
                f"interior_padding {list(interior)} give shape {list(implied)}, but the result "
                f"type has static shape {list(out_shape)}; pyrt does not support dynamic "
                f"shapes"), None
    return None, shape.pad_plan(operand_shape, low, interior, out_shape)


@op("stablehlo.dynamic_pad")
def dynamic_pad(op_):
    """Spec: dynamic_pad. Static result types only: the padding operands must give the result
    shape (checked; interior padding must be >= 0); then as pad (negative edge padding crops)."""
    out = op_.result
    operand_shape = op_.operand_types[0].shape
    consts = [constant_operand(op_, i) for i in (2, 3, 4)]
    if all(c is not None for c in consts):
        message, plan = _pad_plan(operand_shape, *map(_ints, consts), out.shape)
        if message is not None:
            raise InvalidProgramError(f"pyrt: invalid program: {op_.name}{_where(op_)}: {message}")
        return lambda x, value, low, high, interior: shape.apply_pad(x, value, plan, out)

    def kernel(x, value, low, high, interior):
        message, plan = _pad_plan(operand_shape, _ints(low), _ints(high), _ints(interior),
                                  out.shape)
        if message is not None:
            raise ExecutionError(f"pyrt: {op_.name}{_where(op_)}: {message}")
        return shape.apply_pad(x, value, plan, out)

    return kernel


def _slice_plan(operand_shape, starts, limits, strides, out_shape):
    """(message, index) for real_dynamic_slice."""
    for d, (n, s, l, st) in enumerate(zip(operand_shape, starts, limits, strides)):
        if st <= 0:
            return f"strides {list(strides)} must be positive", None
        if not 0 <= s <= l <= n:
            return (f"start_indices {list(starts)} and limit_indices {list(limits)} must satisfy "
                    f"0 <= start <= limit <= {list(operand_shape)} (dimension {d})"), None
    implied = tuple(-(-(l - s) // st) for s, l, st in zip(starts, limits, strides))
    if implied != tuple(out_shape):
        return (f"start_indices {list(starts)}, limit_indices {list(limits)} and strides "
                f"{list(strides)} give shape {list(implied)}, but the result type has static "
                f"shape {list(out_shape)}; pyrt does not support dynamic shapes"), None
    return None, tuple(slice(s, l, st) for s, l, st in zip(starts, limits, strides))


@op("stablehlo.real_dynamic_slice")
def real_dynamic_slice(op_):
    """Spec: real_dynamic_slice. Static result types only: start/limit/strides are read at run
    time (bound at compile time when constant) and must give the result shape and lie in
    bounds (no clamping, unlike dynamic_slice; checked); a strided view (no copy)."""
    out_shape = op_.result.shape
    operand_shape = op_.operand_types[0].shape
    consts = [constant_operand(op_, i) for i in (1, 2, 3)]
    if all(c is not None for c in consts):
        message, index = _slice_plan(operand_shape, *map(_ints, consts), out_shape)
        if message is not None:
            raise InvalidProgramError(f"pyrt: invalid program: {op_.name}{_where(op_)}: {message}")
        return lambda x, starts, limits, strides: x[index]

    def kernel(x, starts, limits, strides):
        message, index = _slice_plan(operand_shape, _ints(starts), _ints(limits),
                                     _ints(strides), out_shape)
        if message is not None:
            raise ExecutionError(f"pyrt: {op_.name}{_where(op_)}: {message}")
        return x[index]

    return kernel


@op("stablehlo.get_dimension_size", cost="data")
def get_dimension_size(op_):
    """Spec: get_dimension_size. The static size of the dimension (i32), a compile-time
    constant."""
    size = op_.operand_types[0].shape[op_.int("dimension")]
    value = np.array(size, dtype=op_.result.dtype)
    value.setflags(write=False)
    return Constant(value)


@op("stablehlo.set_dimension_size")
def set_dimension_size(op_):
    """XLA: set_dimension_size (not in the spec). Static result types only: the size must equal
    the static size of the dimension (checked), and the op is the identity. Bounded dynamic
    result types (`tensor<?xf32, #stablehlo.bounds<4>>`) are not supported."""
    dim = op_.int("dimension")
    operand, out = op_.operand_types[0], op_.result
    if operand.shape != out.shape:
        raise op_.unsupported(f"result type {_type(out)} for operand type {_type(operand)}")
    expected = operand.shape[dim]

    def message(got):
        return (f"size {got} differs from the static size {expected} of dimension {dim} of "
                f"{_type(out)}; pyrt does not support dynamic shapes")

    const = constant_operand(op_, 1)
    if const is not None:
        got = int(np.asarray(const).reshape(-1)[0])
        if got != expected:
            raise InvalidProgramError(f"pyrt: invalid program: {op_.name}{_where(op_)}: "
                                      f"{message(got)}")
        return lambda x, size: x

    def kernel(x, size):
        got = int(size)
        if got != expected:
            raise ExecutionError(f"pyrt: {op_.name}{_where(op_)}: {message(got)}")
        return x

    return kernel
