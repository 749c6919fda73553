"""Constants and shape ops (spec: constant, iota, broadcast_in_dim, reshape, transpose, ...)."""

import numpy as np

from .base import Constant, op


@op("stablehlo.constant", cost="data")
def constant(op_):
    """Spec: constant. Read once at compile time; bound into the program, no call at run time.

    dtypes: all element types."""
    t = op_.result
    value = op_.dense("value", t.dtype, t.shape)
    value.setflags(write=False)
    return Constant(value)


@op("stablehlo.iota", cost="data")
def iota(op_):
    """Spec: iota. Computed once at compile time.

    dtypes: integers, floats, complex."""
    t = op_.result
    dim = op_.int("iota_dimension")
    shape = [1] * t.rank
    shape[dim] = t.shape[dim]
    value = np.broadcast_to(np.arange(t.shape[dim]).astype(t.dtype).reshape(shape), t.shape)
    return Constant(np.ascontiguousarray(value))


def _identity(x):
    """A shape op that changes nothing (same type in and out) passes its operand through; region
    bodies run on whole arrays then keep working (see windows.vectorised_region)."""
    return x


@op("stablehlo.broadcast_in_dim", cost="data")
def broadcast_in_dim(op_):
    """Spec: broadcast_in_dim. A read-only broadcast view (no copy).

    dtypes: all element types."""
    out = op_.result
    dims = op_.ints("broadcast_dimensions")
    operand = op_.operand_types[0]
    # Operand axis i lands on result axis dims[i]; reorder so the axes are increasing first.
    order = sorted(range(len(dims)), key=lambda i: dims[i])
    shape = [1] * out.rank
    for i in order:
        shape[dims[i]] = operand.shape[i]
    needs_transpose = order != list(range(len(dims)))
    if operand.shape == out.shape and not needs_transpose:
        return _identity

    def kernel(x):
        if needs_transpose:
            x = np.transpose(x, order)
        return np.broadcast_to(np.reshape(x, shape), out.shape)

    return kernel


@op("stablehlo.reshape", cost="data")
def reshape(op_):
    """Spec: reshape (row-major).

    dtypes: all element types."""
    shape = op_.result.shape
    if op_.operand_types[0].shape == shape:
        return _identity
    return lambda x: np.reshape(x, shape)


@op("stablehlo.transpose", cost="data")
def transpose(op_):
    """Spec: transpose. A view; copies happen only where a kernel needs contiguity.

    dtypes: all element types."""
    perm = op_.ints("permutation")
    if list(perm) == sorted(perm):
        return _identity
    return lambda x: np.transpose(x, perm)


@op("stablehlo.slice", cost="data")
def slice_(op_):
    """Spec: slice. A strided view (no copy).

    dtypes: all element types."""
    index = tuple(slice(s, l, st) for s, l, st in
                  zip(op_.ints("start_indices"), op_.ints("limit_indices"), op_.ints("strides")))
    return lambda x: x[index]


def _clamped_starts(operand_shape, sizes):
    """kernel helper: start indices (scalar arrays) clamped into [0, dim - size], per the spec."""
    highs = [d - s for d, s in zip(operand_shape, sizes)]

    def starts(indices):
        return [min(max(int(i), 0), h) for i, h in zip(indices, highs)]

    return starts


@op("stablehlo.dynamic_slice", cost="data")
def dynamic_slice(op_):
    """Spec: dynamic_slice. Start indices are clamped so the slice fits; a view (no copy).

    dtypes: all element types (integer start indices)."""
    sizes = op_.ints("slice_sizes")
    starts = _clamped_starts(op_.operand_types[0].shape, sizes)

    def kernel(x, *indices):
        return x[tuple(slice(s, s + n) for s, n in zip(starts(indices), sizes))]

    return kernel


@op("stablehlo.dynamic_update_slice", cost="data")
def dynamic_update_slice(op_):
    """Spec: dynamic_update_slice. Start indices are clamped so the update fits; writes into a new
    copy of the operand, never into the operand itself.

    dtypes: all element types (integer start indices)."""
    sizes = op_.operand_types[1].shape
    starts = _clamped_starts(op_.operand_types[0].shape, sizes)
    dtype = op_.result.dtype

    def kernel(x, update, *indices):
        out = np.array(x, dtype=dtype, copy=True)
        out[tuple(slice(s, s + n) for s, n in zip(starts(indices), sizes))] = update
        return out

    return kernel


@op("stablehlo.concatenate", cost="data")
def concatenate(op_):
    """Spec: concatenate.

    dtypes: all element types."""
    dim = op_.int("dimension")
    dtype = op_.result.dtype
    return lambda *xs: np.concatenate(xs, axis=dim, dtype=dtype)


@op("stablehlo.pad", cost="data")
def pad(op_):
    """Spec: pad. Negative low/high padding crops; interior padding spreads the operand out. The
    result is filled with the padding value and the kept operand elements are written in with
    one strided assignment.

    dtypes: all element types."""
    out = op_.result
    low = op_.ints("edge_padding_low")  # high padding follows from the result shape
    plan = pad_plan(op_.operand_types[0].shape, low, op_.ints("interior_padding"), out.shape)
    return lambda x, value: apply_pad(x, value, plan, out)


def pad_plan(operand_shape, low, interior, out_shape):
    """(src, dst, empty, plain) for padding into `out_shape`: operand slices `src` land on result
    slices `dst`; `empty` if no operand element is kept, `plain` if all of it is."""
    src, dst = [], []
    for n, size, lo, step in zip(operand_shape, out_shape, low, (i + 1 for i in interior)):
        # Operand element i lands at lo + i*step; keep those inside [0, size).
        first = max(0, (-lo + step - 1) // step)
        last = min(n - 1, (size - 1 - lo) // step) if size > 0 else -1
        if first > last:
            return (), (), True, False
        src.append(slice(first, last + 1))
        dst.append(slice(lo + first * step, lo + last * step + 1, step))
    plain = all(s == slice(0, n) for s, n in zip(src, operand_shape))
    return tuple(src), tuple(dst), False, plain


def apply_pad(x, value, plan, out):
    """The padded result of type `out`, filled with `value`, per a pad_plan."""
    src, dst, empty, plain = plan
    result = np.full(out.shape, value, dtype=out.dtype)
    if not empty:
        result[dst] = x if plain else x[src]
    return result


@op("stablehlo.reverse", cost="data")
def reverse(op_):
    """Spec: reverse. A view (no copy).

    dtypes: all element types."""
    dims = op_.ints("dimensions")
    return lambda x: np.flip(x, axis=dims) if dims else x


@op("stablehlo.tuple", cost="data")
def tuple_(op_):
    """Spec: tuple. A Python tuple of the operands.

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    return lambda *xs: xs


@op("stablehlo.get_tuple_element", cost="data")
def get_tuple_element(op_):
    """Spec: get_tuple_element.

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    index = op_.int("index")
    return lambda t: t[index]
