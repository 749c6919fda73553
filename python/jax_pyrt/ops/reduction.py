"""Reductions (spec: reduce).

Strategies, chosen at compile time by looking at the reducer body:

* Fast path: a body that is one commutative op of its two arguments (add, multiply, maximum,
  minimum, and, or, xor) becomes `ufunc.reduce` over all reduced axes at once, then one more
  application of the ufunc folds in the init value.
* argmax/argmin: JAX's two-operand comparator over one axis, with an iota along that axis as the
  indices, becomes np.argmax/np.argmin (first extreme element, first NaN wins); the body then
  folds in the init values.
* General path (any body, any number of operands, e.g. other multi-operand comparators): the
  reduced axes are moved to the end and flattened, and the body, called on whole arrays, combines
  neighbouring elements of that axis (even with odd positions) until one element is left (a
  pairwise tree: log2(n) body calls, n body evaluations in all, left operands always covering
  earlier elements); finally the init values are combined in as left operands.
* Reducing over no dimensions returns the operands unchanged, as XLA does (the spec lets the
  init value appear any number of times).
"""

import numpy as np
from jaxlib.mlir import ir

from .. import dtypes
from ..attributes import enum_name
from ..threads import by_rows
from .base import TERMINATORS, op
from .precision import accumulator_dtype

# body op -> (ufunc for numbers, ufunc for bool)
FAST_BODIES = {
    "stablehlo.add": (np.add, np.logical_or),
    "stablehlo.multiply": (np.multiply, np.logical_and),
    "stablehlo.maximum": (np.maximum, np.logical_or),
    "stablehlo.minimum": (np.minimum, np.logical_and),
    "stablehlo.and": (np.bitwise_and, np.logical_and),
    "stablehlo.or": (np.bitwise_or, np.logical_or),
    "stablehlo.xor": (np.bitwise_xor, np.logical_xor),
}


def simple_body(region):
    """The op name if `region` is `return op(arg0, arg1)` (either argument order), else None."""
    block = region.blocks[0]
    operations = [o.operation for o in block.operations]
    args = list(block.arguments)
    if len(operations) != 2 or len(args) != 2:
        return None
    body, ret = operations
    if ret.name not in TERMINATORS or len(ret.operands) != 1 or len(body.results) != 1:
        return None
    if ret.operands[0] != body.results[0] or body.name not in FAST_BODIES:
        return None
    operands = list(body.operands)
    if len(operands) != 2:
        return None
    if not ((operands[0] == args[0] and operands[1] == args[1])
            or (operands[0] == args[1] and operands[1] == args[0])):
        return None
    return body.name


# JAX's argmax/argmin comparator, op by op: (name, comparison direction, operands), where operands
# name block arguments (a0 = lhs value, a1 = lhs index, a2 = rhs value, a3 = rhs index) or
# earlier results (r0, r1, ...). "D" is GT for argmax and LT for argmin.
_ARG_REDUCE_BODY = (
    ("stablehlo.compare", "D", ("a0", "a2")),
    ("stablehlo.compare", "NE", ("a0", "a0")),
    ("stablehlo.or", None, ("r0", "r1")),
    ("stablehlo.compare", "EQ", ("a0", "a2")),
    ("stablehlo.compare", "LT", ("a1", "a3")),
    ("stablehlo.and", None, ("r3", "r4")),
    ("stablehlo.or", None, ("r2", "r5")),
    ("stablehlo.select", None, ("r2", "a0", "a2")),
    ("stablehlo.select", None, ("r6", "a1", "a3")),
    ("return", None, ("r7", "r8")),
)


def _signature(region):
    """A body as a tuple of (op name, comparison direction, operand names), as _ARG_REDUCE_BODY."""
    block = region.blocks[0]
    names = {}
    for i, arg in enumerate(block.arguments):
        names[arg] = f"a{i}"
    signature = []
    for i, operation in enumerate(block.operations):
        operation = operation.operation
        operands = []
        for v in operation.operands:
            if v not in names:
                return None  # a value from outside the body
            operands.append(names[v])
        if operation.name in TERMINATORS:
            signature.append(("return", None, tuple(operands)))
            break
        if len(operation.results) != 1:
            return None
        names[operation.results[0]] = f"r{i}"
        direction = None
        if operation.name == "stablehlo.compare":
            direction = enum_name(operation.attributes["comparison_direction"])
        signature.append((operation.name, direction, tuple(operands)))
    return tuple(signature)


def arg_reduce_body(region):
    """"max" or "min" if `region` is JAX's argmax or argmin comparator, else None."""
    signature = _signature(region)
    if signature is None or len(signature) != len(_ARG_REDUCE_BODY):
        return None
    kind = {"GT": "max", "LT": "min"}.get(signature[0][1])
    template = tuple((n, signature[0][1] if d == "D" else d, o) for n, d, o in _ARG_REDUCE_BODY)
    return kind if signature == template else None


def iota_dimension(value):
    """The iota_dimension if `value` is the result of a stablehlo.iota, else None."""
    owner = value.owner
    operation = getattr(owner, "operation", owner)
    if getattr(operation, "name", None) != "stablehlo.iota":
        return None
    return ir.IntegerAttr(operation.attributes["iota_dimension"]).value


def _arg_kernel(kind, dim, out_types):
    """argmax/argmin over one axis whose indices are an iota along it: np.argmax/argmin give the
    first extreme element (the first NaN if there is one), as the comparator does; the init
    values are then combined in by the body itself."""
    find = np.argmax if kind == "max" else np.argmin
    value_dtype, index_dtype = (t.dtype for t in out_types)
    out_shape = out_types[0].shape
    widen = dtypes.is_float(value_dtype) and value_dtype.itemsize < 4

    def kernel(regions, x, indices, init_value, init_index):
        search = x.astype(np.float32) if widen else x
        position = np.expand_dims(find(search, axis=dim), dim)
        value = np.take_along_axis(x, position, dim).reshape(out_shape)
        index = position.reshape(out_shape).astype(index_dtype)
        result = regions[0](np.broadcast_to(init_value, out_shape),
                            np.broadcast_to(init_index, out_shape), value, index)
        return tuple(np.broadcast_to(np.asarray(r, dtype=t), out_shape)
                     for r, t in zip(result, (value_dtype, index_dtype)))

    return kernel


def signed_zero_fix(name, dtype):
    """For float max/min reductions: a function fix(result, x, init, dims) correcting the zeros
    of `result` (the ufunc reduction of x over dims, init folded in), or None for other bodies
    and types. np.maximum/np.minimum return either zero when they compare equal, while
    stablehlo.maximum orders -0.0 < +0.0: a max is +0.0 if any reduced zero (or init) is, a min
    -0.0 if any is. Only a -0.0 max (+0.0 min) can be wrong, and only those results cost extra
    passes over x."""
    if name not in ("stablehlo.maximum", "stablehlo.minimum") or not dtypes.is_float(dtype):
        return None
    is_max = name == "stablehlo.maximum"
    right_zero = np.array(0.0 if is_max else -0.0, dtype)
    # The winning zero's bit pattern: one integer comparison pass finds it (any strides).
    bits = np.dtype(f"i{dtype.itemsize}")
    winner_bits = right_zero.view(bits)[()]

    def fix(result, x, init, dims):
        zero = result == 0
        if not zero.any():  # the common case: one pass over the (small) result
            return result
        # The zero the result may wrongly hold (-0.0 for max) and the one that wins.
        suspect = zero & (np.signbit(result) if is_max else ~np.signbit(result))
        if not suspect.any():
            return result
        present = np.any(x.view(bits) == winner_bits, axis=dims)
        init_wins = bool(init == 0) and bool(np.signbit(init)) != is_max
        if init_wins:
            present = np.ones_like(present)
        return np.where(suspect & present, right_zero, result)

    return fix


def _fast_kernel(name, dims, out):
    dtype = out.dtype
    ufunc = FAST_BODIES[name][1 if dtypes.is_bool(dtype) else 0]
    compute = accumulator_dtype(dtype)
    fix = signed_zero_fix(name, compute)

    if fix is None:
        def kernel(regions, x, init):
            if x.dtype != compute:
                x = x.astype(compute)
            result = ufunc(ufunc.reduce(x, axis=dims, dtype=compute),
                           init.astype(compute, copy=False))
            return (result.astype(dtype, copy=False),)
    else:
        def kernel(regions, x, init):
            if x.dtype != compute:
                x = x.astype(compute)
            init = init.astype(compute, copy=False)
            result = fix(ufunc(ufunc.reduce(x, axis=dims, dtype=compute), init), x, init, dims)
            return (np.asarray(result).astype(dtype, copy=False),)

    return kernel


def _complex_max_min_kernel(name, dims, operand_shape, out):
    """Complex max/min reductions as the reference interpreter's schedule: acc = init, then
    acc = body(acc, x) over the reduced elements in row-major order. The body `a if a > b else b`
    (elementwise.complex_max; min alike) is not associative once NaN parts appear, so the fold is
    emulated exactly, vectorised over the outputs: after the last element with a NaN real part
    the fold restarts from the next element; among the rest, the elements with the largest real
    part (the top tier) win; within the tier the same restart rule applies to NaN imaginary
    parts, and the last element holding the largest imaginary part wins (ties, e.g. -0.0 and
    +0.0, go to the later element). Without NaN parts this is the lexicographic max."""
    out_shape = tuple(out.shape)
    dtype = out.dtype
    is_max = name == "stablehlo.maximum"
    kept = [d for d in range(len(operand_shape)) if d not in dims]
    perm = kept + list(dims)
    length = int(np.prod([operand_shape[d] for d in dims], dtype=np.int64)) + 1  # + init

    def last_true(mask, positions):
        """Per row: the last position where mask holds (-1 if none)."""
        return np.max(np.where(mask, positions, -1), axis=-1, keepdims=True)

    def kernel(regions, x, init):
        x = np.reshape(np.transpose(x, perm), out_shape + (length - 1,))
        s = np.concatenate([np.broadcast_to(np.asarray(init, dtype), out_shape + (1,)), x],
                           axis=-1)
        re, im = s.real, s.imag
        if not is_max:  # min is max of the negated parts (exact; NaN stays NaN)
            re, im = -re, -im
        positions = np.arange(length)
        # Restart after the last NaN real part (or end on it).
        k = last_true(np.isnan(re), positions)
        live = positions > k
        live_re = np.where(live, re, -np.inf)
        top = live & (live_re == np.max(live_re, axis=-1, keepdims=True))
        # Within the top tier: restart after the last NaN imaginary part.
        q = last_true(top & np.isnan(im), positions)
        tier = top & (positions > q)
        tier_im = np.where(tier, im, -np.inf)
        best = tier & (tier_im == np.max(tier_im, axis=-1, keepdims=True))
        pick = last_true(best, positions)
        # No candidate left: the element that ended the fold (a NaN real part last, or a NaN
        # imaginary part last in the tier) is the result.
        pick = np.where(pick >= 0, pick, np.where(k == length - 1, k, q))
        return (np.take_along_axis(s, pick, axis=-1).reshape(out_shape),)

    return kernel


def _tree_kernel(n, dims, operand_shape, out_types):
    out_shape = out_types[0].shape
    out_dtypes = [t.dtype for t in out_types]
    kept = [d for d in range(len(operand_shape)) if d not in dims]
    perm = kept + sorted(dims)
    needs_transpose = perm != list(range(len(operand_shape)))
    length = int(np.prod([operand_shape[d] for d in dims], dtype=np.int64))
    flat_shape = tuple(out_shape) + (length,)

    def coerce(values, shape):
        return [np.broadcast_to(np.asarray(v, dtype=t), shape) for v, t in zip(values, out_dtypes)]

    def kernel(regions, *args):
        body = regions[0]
        xs, inits = args[:n], args[n:]
        inits = coerce(inits, out_shape)
        if length == 0 or 0 in out_shape:
            return inits
        if needs_transpose:
            xs = [np.transpose(x, perm) for x in xs]
        xs = [np.reshape(x, flat_shape) for x in xs]
        size = length
        while size > 1:
            half, odd = size // 2, size % 2
            # Neighbours combine, so every element always stands for a contiguous run of the
            # input and the left operand for the earlier run (argmax's tie-break relies on it).
            lhs = [x[..., 0:2 * half:2] for x in xs]
            rhs = [x[..., 1:2 * half:2] for x in xs]
            combined = coerce(body(*lhs, *rhs), out_shape + (half,))
            if odd:
                combined = [np.concatenate([c, x[..., 2 * half:]], axis=-1)
                            for c, x in zip(combined, xs)]
            xs, size = combined, half + odd
        return tuple(coerce(body(*inits, *[x[..., 0] for x in xs]), out_shape))

    return kernel


def reduction_flops(operation, operands, results):
    """One flop per reduced input element (reduce, reduce_window, select_and_scatter)."""
    return sum(t.size for t in operands[: len(operands) // 2] if t is not None)


@op("stablehlo.reduce", cost=reduction_flops)
def reduce(op_):
    """Spec: reduce. Any number of operands and any body. Bodies that are one add, multiply,
    maximum, minimum, and, or or xor become a NumPy ufunc reduction (max/min propagate NaN and
    order -0.0 < +0.0, fixed up only where a result is a zero; narrow floats accumulate in
    float32 and round once; integers wrap); complex max/min (not NaN-propagating, not
    associative with NaN parts) follow the interpreter's schedule exactly: init, then the
    reduced elements in row-major order; JAX's argmax/argmin comparator over an iota becomes
    np.argmax/np.argmin; other bodies run vectorised as a pairwise tree over the reduced axes.
    Empty reduced dimensions give the init value; no reduced dimensions give the operands
    unchanged (as XLA does).

    dtypes: all element types, any body (fast paths: add, multiply, maximum, minimum on every
    type, and, or, xor on integers and i1; argmax/argmin on any value type with integer
    indices)."""
    n = len(op_.result_types)
    dims = tuple(sorted(op_.ints("dimensions")))
    operand_shape = op_.operand_types[0].shape
    if not dims:
        out_dtypes = [t.dtype for t in op_.result_types]
        return lambda regions, *args: tuple(
            x.astype(t, copy=False) for x, t in zip(args[:n], out_dtypes))
    empty = any(operand_shape[d] == 0 for d in dims) or 0 in op_.result.shape
    if empty or 0 in dims:  # the rows of a split must be rows of the result too
        return _reduce_kernel(op_, n, dims, operand_shape, op_.result_types)

    def make(rows):  # the kernel for `rows` rows of the operands (threads.by_rows)
        return _reduce_kernel(op_, n, dims, (rows,) + operand_shape[1:],
                              [t.with_rows(rows) for t in op_.result_types])

    return by_rows(make, operand_shape[0], n, op_.operand_types[0].size)


def _reduce_kernel(op_, n, dims, operand_shape, result_types):
    empty = any(operand_shape[d] == 0 for d in dims) or 0 in result_types[0].shape
    if n == 1 and not empty:
        name = simple_body(op_.regions[0])
        if name in ("stablehlo.maximum", "stablehlo.minimum") \
                and dtypes.is_complex(result_types[0].dtype):
            return _complex_max_min_kernel(name, dims, operand_shape, result_types[0])
        if name is not None:
            return _fast_kernel(name, dims, result_types[0])
    if n == 2 and not empty and len(dims) == 1:
        kind = arg_reduce_body(op_.regions[0])
        if kind and iota_dimension(op_.operation.operands[1]) == dims[0] \
                and dtypes.is_integer(result_types[1].dtype):
            return _arg_kernel(kind, dims[0], result_types)
    return _tree_kernel(n, dims, operand_shape, result_types)
