"""Windowed reductions (spec: reduce_window, select_and_scatter) and map.

reduce_window: the operands are padded (and base-dilated) with the init values, then reduced one
window dimension at a time, innermost first (windows are products of ranges, so a window's
reduction is the reduction of its rows; going innermost first keeps the elements in row-major
window order, so only associativity is assumed, as the spec allows). Along one axis:

* small windows: one vectorised combine per window offset, over the whole output;
* large windows (e.g. the O(n^2) windows JAX emits for cumsum): doubling, where level j holds
  the reduction of 2**j consecutive window elements at every position and a window is the
  combination of the levels of its size's binary digits (log2(w) combines over the axis);
* prefix windows of add/multiply/max/min bodies (cumsum, cumprod, cummax, cummin: window n,
  padding n-1 on one side) are one `ufunc.accumulate`.

Bodies that are one add, multiply, maximum, minimum, and, or or xor (reduction.simple_body)
combine with the NumPy ufunc, in place, skipping the padding when the init value is the body's
identity (narrow floats in float32, rounded once, except bf16/f8 sums and products of small
windows, which follow XLA:CPU's per-step rounding; max/min keep XLA's -0.0 < +0.0 and propagate
NaN); any other body, with any number of operands, is called on whole arrays, small windows
element by element in row-major order from the init value (XLA:CPU's order).

select_and_scatter: the selection walks the window offsets in row-major order, keeping for every
window the first element the select body does not replace (one select call per offset, on all
windows at once); padding is never selected. The scatter body then folds the source values into
the init-filled result in window order: np.add.at for add bodies, else rounds in which every
target position receives at most one value.

map: the body, which may only contain elementwise ops, runs once on the whole operands (it is not
a window op; it lives here because the elementwise module belongs to another family).

Region bodies are never run by the compiled region functions: `vectorised_region` evaluates the
body's elementwise kernels on whole arrays, binding constants (also ones hoisted out of the
region) and looking through same-type 0-d broadcasts/reshapes/converts, whose own kernels would
reshape to 0-d.
"""

import numpy as np
from jaxlib.mlir import ir

from .. import dtypes
from ..threads import by_rows
from .base import TERMINATORS, Op, lookup, op
from .elementwise import float_max, float_min
from .precision import accumulator_dtype
from .reduction import FAST_BODIES, reduction_flops, simple_body

# --------------------------------------------------------------------------------------------
# Region bodies run on whole arrays


# Ops that change nothing between 0-d values of one type: looked through when a body runs on
# whole arrays (their own kernels would reshape to the static 0-d shape).
_IDENTITY_OPS = frozenset({"stablehlo.broadcast_in_dim", "stablehlo.reshape", "stablehlo.convert",
                           "stablehlo.transpose", "stablehlo.optimization_barrier"})


def vectorised_region(op_, index, what):
    """A function running `op_.regions[index]` on whole arrays: the body's elementwise kernels
    called in order, constants bound (also those hoisted out of the region), same-type 0-d
    broadcasts/reshapes/converts looked through, func.calls of such bodies (JAX outlines a
    Python reducer called from several places) run the same way. Raises UnsupportedError (at
    compile time) for bodies that cannot run elementwise: other ops, nested regions, captured
    non-constants."""

    def refuse(name):
        return op_.unsupported(
            f"a {what} region using {name} (pyrt runs region bodies on whole arrays, so they may "
            f"only hold elementwise ops on scalars)")

    return _vectorised_block(op_, op_.regions[index].blocks[0], refuse, depth=0)


def _vectorised_block(op_, block, refuse, depth):
    slots = {arg: i for i, arg in enumerate(block.arguments)}
    constants = {}
    steps = []  # (kernel, operand slots, result slots)
    returned = None

    def slot(value):
        if value in slots:
            return slots[value]
        owner = value.owner
        operation = getattr(owner, "operation", owner)
        if getattr(operation, "name", None) != "stablehlo.constant":
            raise refuse("a value from outside the region")
        return bind_constant(value, operation)

    def bind_constant(value, operation):
        result = lookup("stablehlo.constant")(Op(operation, op_.context))
        slots[value] = len(slots)
        constants[slots[value]] = result.value
        return slots[value]

    def new_slots(results):
        for r in results:
            slots[r] = len(slots)
        return [slots[r] for r in results]

    for operation in block.operations:
        operation = operation.operation
        name = operation.name
        if name in TERMINATORS:
            returned = [slot(v) for v in operation.operands]
            break
        values = list(operation.operands) + list(operation.results)
        if len(operation.regions) or not all(_is_scalar(v.type) for v in values):
            raise refuse(name)
        if name == "func.call" and depth < 16:
            callee = ir.FlatSymbolRefAttr(operation.attributes["callee"]).value
            if callee not in op_.context.functions:
                raise refuse(f"func.call of @{callee}, which the program does not define")
            body = op_.context.functions[callee].regions[0].blocks[0]
            run = _vectorised_block(op_, body, refuse, depth + 1)
            steps.append((run, [slot(v) for v in operation.operands],
                          new_slots(operation.results)))
            continue
        if len(operation.results) != 1:
            raise refuse(name)
        result = operation.results[0]
        if name == "stablehlo.constant":
            bind_constant(result, operation)
            continue
        if name in _IDENTITY_OPS and len(operation.operands) == 1 \
                and operation.operands[0].type == result.type:
            slots[result] = slot(operation.operands[0])
            continue
        handler = lookup(name)
        if handler is None or not handler.__module__.endswith(".elementwise"):
            raise refuse(name)
        kernel = handler(Op(operation, op_.context))
        single = lambda *xs, kernel=kernel: (kernel(*xs),)
        steps.append((single, [slot(v) for v in operation.operands], new_slots([result])))
    if returned is None:
        raise refuse("no terminator")
    count = len(slots)
    n_args = len(block.arguments)
    constant_items = list(constants.items())

    def run(*args):
        env = [None] * count
        env[:n_args] = args
        for i, value in constant_items:
            env[i] = value
        for kernel, operands, outs in steps:
            for i, value in zip(outs, kernel(*[env[i] for i in operands])):
                env[i] = value
        return tuple(env[i] for i in returned)

    return run


def _is_scalar(mlir_type):
    return hasattr(mlir_type, "shape") and len(mlir_type.shape) == 0


def _coerce(values, out_dtypes, shape):
    return [np.broadcast_to(np.asarray(v, dtype=t), shape) for v, t in zip(values, out_dtypes)]


# --------------------------------------------------------------------------------------------
# reduce_window


def _window_attributes(op_, rank):
    def ints(name, default):
        value = op_.ints(name)
        if value is None:
            return default
        if len(value) == 1 and len(default) != 1:
            return tuple(value) * len(default)
        return tuple(value)

    ones = (1,) * rank
    window = ints("window_dimensions", ones)
    strides = ints("window_strides", ones)
    base = ints("base_dilations", ones)
    dilation = ints("window_dilations", ones)
    padding = ints("padding", (0,) * (2 * rank))
    return window, strides, base, dilation, tuple(zip(padding[0::2], padding[1::2]))


class _Padder:
    """Pads and base-dilates an array with a fill value (negative padding crops)."""

    def __init__(self, shape, padding, base):
        self.trivial = all(lo == 0 and hi == 0 for lo, hi in padding) and all(b == 1 for b in base)
        full, inner, crop = [], [], []
        for n, (lo, hi), b in zip(shape, padding, base):
            dilated = (n - 1) * b + 1 if n else 0
            size = max(lo, 0) + dilated + max(hi, 0)
            full.append(size)
            inner.append(slice(max(lo, 0), max(lo, 0) + dilated, b))
            crop.append(slice(max(-lo, 0), size - max(-hi, 0)))
        self.full, self.inner, self.crop = tuple(full), tuple(inner), tuple(crop)
        self.shape = tuple(c.stop - c.start for c in crop)

    def __call__(self, x, fill, dtype):
        if self.trivial:
            return np.asarray(x, dtype)
        padded = np.full(self.full, fill, dtype)
        padded[self.inner] = x
        return padded[self.crop]


def _axis_slice(x, axis, start, step, count):
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, start + (count - 1) * step + 1, step)
    return x[tuple(index)]


def _reduce_axis(values, axis, w, wd, s, out_len, combine, inplace=None):
    """Windows of `w` elements `wd` apart, every `s` positions, along `axis` of each array in
    `values` (all of one shape), reduced with `combine(lhs_list, rhs_list) -> list`. `inplace`,
    if given, is a ufunc that may write into its first operand (fast bodies)."""
    if w == 1:
        return [_axis_slice(v, axis, 0, s, out_len) for v in values]
    length = values[0].shape[axis]
    span = (out_len - 1) * s + 1
    levels = w.bit_length() - 1
    direct_cost = (w - 1) * out_len
    doubling_cost = levels * length + (bin(w).count("1") - 1) * span + out_len
    if direct_cost <= doubling_cost:
        if inplace is not None:
            acc = inplace(_axis_slice(values[0], axis, 0, s, out_len),
                          _axis_slice(values[0], axis, wd, s, out_len))
            for k in range(2, w):
                inplace(acc, _axis_slice(values[0], axis, k * wd, s, out_len), out=acc)
            return [acc]
        acc = [_axis_slice(v, axis, 0, s, out_len) for v in values]
        for k in range(1, w):
            acc = combine(acc, [_axis_slice(v, axis, k * wd, s, out_len) for v in values])
        return acc
    # Doubling: level j reduces 2**j elements (wd apart) starting at each position.
    tables = {0: values}
    current = values
    for j in range(1, levels + 1):
        step = (1 << (j - 1)) * wd
        length -= step
        current = combine([_axis_slice(c, axis, 0, 1, length) for c in current],
                          [_axis_slice(c, axis, step, 1, length) for c in current])
        tables[j] = current
    acc, offset = None, 0
    for j in range(levels, -1, -1):
        if not (w >> j) & 1:
            continue
        part = [_axis_slice(t, axis, offset, 1, span) for t in tables[j]]
        acc = part if acc is None else combine(acc, part)
        offset += (1 << j) * wd
    return [_axis_slice(a, axis, 0, s, out_len) for a in acc]


def _clipped_axis(x, axis, w, wd, s, out_len, lo, ufunc, init):
    """As _reduce_axis (direct form) on the unpadded array: each window offset combines only the
    outputs whose element at that offset is not padding. Right when padding elements change
    nothing (the init value is the body's identity, or the body is idempotent)."""
    n = x.shape[axis]
    parts = []
    for k in range(w):
        offset = k * wd - lo  # input index of output 0's element at offset k
        first = max(0, -(offset // s)) if offset < 0 else 0
        end = min(out_len, (n - 1 - offset) // s + 1)
        if end > first:
            parts.append((first, end, _axis_slice(x, axis, first * s + offset, s, end - first)))
    full = [p for f, e, p in parts if f == 0 and e == out_len]
    rest = [(f, e, p) for f, e, p in parts if not (f == 0 and e == out_len)]
    if len(full) >= 2:
        acc = ufunc(full[0], full[1])
        full = full[2:]
    elif full and rest:
        # Combine the full part with the widest partial one into a fresh array, copying the
        # full part's other outputs: one pass instead of a copy and a pass.
        f, e, p = max(rest, key=lambda r: r[1] - r[0])
        rest.remove((f, e, p))
        acc = np.empty(full[0].shape, full[0].dtype)
        ufunc(_axis_slice(full[0], axis, f, 1, e - f), p, out=_axis_slice(acc, axis, f, 1, e - f))
        if f:
            _axis_slice(acc, axis, 0, 1, f)[...] = _axis_slice(full[0], axis, 0, 1, f)
        if e < out_len:
            _axis_slice(acc, axis, e, 1, out_len - e)[...] = \
                _axis_slice(full[0], axis, e, 1, out_len - e)
        full = []
    elif full:
        acc = np.array(full[0])
        full = []
    else:
        shape = list(x.shape)
        shape[axis] = out_len
        acc = np.full(shape, init, x.dtype)
    for p in full:
        ufunc(acc, p, out=acc)
    for f, e, p in rest:
        view = _axis_slice(acc, axis, f, 1, e - f)
        ufunc(view, p, out=view)
    return acc


def _window_plan(shape, out_shape, window, strides, dilation, padded_shape):
    """(axis, w, wd, s, out_len) for the axes that need work, innermost first (a size-1 window
    on a padded axis too: _clipped_axis works on the unpadded operand)."""
    plan = []
    for axis in reversed(range(len(shape))):
        w, s, wd, n_out = window[axis], strides[axis], dilation[axis], out_shape[axis]
        if w == 1 and s == 1 and n_out == padded_shape[axis] == shape[axis]:
            continue
        plan.append((axis, w, wd, s, n_out))
    return plan


def _prefix_axis(shape, window, strides, base, dilation, padding, out_shape):
    """(axis, reverse) if the windows are cumulative along one axis (every window holds all
    elements up to / from its position: JAX's cumsum & co.) and trivial elsewhere, else None."""
    found = None
    for axis, n in enumerate(shape):
        w, s, b, wd = window[axis], strides[axis], base[axis], dilation[axis]
        lo, hi = padding[axis]
        if w == 1 and s == 1 and b == 1 and lo == 0 and hi == 0:
            continue
        if found is not None or s != 1 or b != 1 or wd != 1 or w < n or out_shape[axis] != n:
            return None
        if (lo, hi) == (w - 1, 0):
            found = (axis, False)
        elif (lo, hi) == (0, w - 1):
            found = (axis, True)
        else:
            return None
    return found


def _float_tie(name, dt):
    """For float max/min: (bits of the zero NumPy may wrongly return, indicator of the zero to
    put instead, that zero). XLA orders -0.0 < +0.0; NumPy may return either zero on a tie."""
    u = np.dtype(f"u{dt.itemsize}")
    negative_zero = u.type(1 << (dt.itemsize * 8 - 1))
    if name == "stablehlo.maximum":
        # A -0.0 maximum is right only if no +0.0 was in the window.
        return u, negative_zero, (lambda x: (x == 0) & ~np.signbit(x)), dt.type(0.0)
    return u, u.type(0), (lambda x: (x == 0) & np.signbit(x)), dt.type(-0.0)


def _fast_window_kernel(name, out, shape, window, strides, base, dilation, padding):
    dtype = out.dtype
    out_shape = out.shape
    ufunc = FAST_BODIES[name][1 if dtypes.is_bool(dtype) else 0]
    compute = accumulator_dtype(dtype)
    padder = _Padder(shape, padding, base)
    plan = _window_plan(shape, out_shape, window, strides, dilation, padder.shape)
    prefix = None
    if name not in ("stablehlo.xor",):  # accumulate + folding the init value needs idempotence
        prefix = _prefix_axis(shape, window, strides, base, dilation, padding, out_shape)
    # bf16/f8 sums and products: XLA:CPU rounds after every step, in row-major window order;
    # follow it when affordable (wider floats accumulate separably, rounding differs by ulps).
    volume = int(np.prod(window, dtype=np.int64))
    ordered = (prefix is None and name in ("stablehlo.add", "stablehlo.multiply")
               and compute != dtype and dtypes.is_float(dtype) and dtype != np.float16
               and volume <= max(16, 2 * sum(window)))
    zero_fix = (name in ("stablehlo.maximum", "stablehlo.minimum") and dtypes.is_float(compute))
    # An init value that cannot change a max/min result (-inf for max, ...) is not folded in.
    neutral = None
    if name in ("stablehlo.maximum", "stablehlo.minimum") and not dtypes.is_bool(compute):
        low = name == "stablehlo.maximum"
        if dtypes.is_float(compute):
            neutral = compute.type(-np.inf if low else np.inf)
        elif compute.kind in "iu":
            info = np.iinfo(compute)
            neutral = compute.type(info.min if low else info.max)
    if zero_fix:
        fold = (float_max if name == "stablehlo.maximum" else float_min)(compute)
        bits, suspect, indicator, right_zero = _float_tie(name, compute)
    else:
        fold = ufunc
    combine = lambda a, b: [ufunc(a[0], b[0])]  # noqa: E731

    # Padding may be skipped when it changes nothing: the init value is the body's identity (or
    # the body idempotent) and there is no base dilation. Outer axes first (cheaper).
    identity = {"stablehlo.add": 0, "stablehlo.multiply": 1, "stablehlo.xor": 0}.get(name)
    clipped_plan = None
    if all(b == 1 for b in base):
        clipped_plan = []
        for axis, w, wd, s, n_out in reversed(plan):
            length = padder.shape[axis]
            if (w - 1) * n_out > (w.bit_length() - 1) * length + (bin(w).count("1") - 1) \
                    * ((n_out - 1) * s + 1) + n_out:
                clipped_plan = None  # a large window: doubling on the padded array
                break
            clipped_plan.append((axis, w, wd, s, n_out, padding[axis][0]))

    def windows(x, init, func, combine_fn):
        if clipped_plan is not None and (identity is None or init == identity):
            for axis, w, wd, s, n_out, lo in clipped_plan:
                x = _clipped_axis(x, axis, w, wd, s, n_out, lo, ufunc, init)
            return x
        padded = padder(x, init, x.dtype)
        values = [padded]
        for axis, w, wd, s, n_out in plan:
            values = _reduce_axis(values, axis, w, wd, s, n_out, combine_fn, func)
        return values[0]

    if prefix is not None:
        axis, reverse = prefix
        w = window[axis]
        n = shape[axis]
        # Window i holds the init value once plus (w - 1 - i) padding elements.
        counts = (w - np.arange(n)).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        if reverse:
            counts = np.flip(counts, axis)
        repeat = {np.add: np.multiply, np.multiply: np.power}.get(ufunc)

        def reduce(x, init):
            x = np.asarray(x).astype(compute, copy=False)
            if reverse:
                x = np.flip(x, axis)
            r = ufunc.accumulate(x, axis=axis, dtype=compute)
            if reverse:
                r = np.flip(r, axis)
            return r

        def init_fold(r, init):
            if repeat is not None:  # the init value folded in `counts` times
                c = counts if dtypes.is_integer(compute) else counts.astype(compute)
                return ufunc(r, repeat(init, c).astype(compute, copy=False))
            return fold(r, init)
    elif ordered:
        # The init value, then the window's elements in row-major order, rounding to the element
        # type after every step, as XLA:CPU.
        def reduce(x, init):
            padded = padder(x, init.astype(dtype), dtype)
            acc = np.full(out_shape, init, compute)
            for view in _window_views(padded, window, strides, dilation, out_shape):
                acc = ufunc(acc, view, dtype=compute).astype(dtype).astype(compute)
            return acc

        def init_fold(r, init):
            return r
    else:
        def reduce(x, init):
            return windows(x.astype(compute, copy=False), init, ufunc, combine)

        def init_fold(r, init):
            return fold(r, init)

    def tie_windows(x, init):
        """Where the zero in each window's result must be the other zero."""
        flag = indicator(np.asarray(x, compute))
        flag_init = bool(indicator(np.asarray(init, compute)))
        padded = padder(flag, flag_init, bool)
        values = [padded]
        bool_or = lambda a, b: [np.logical_or(a[0], b[0])]  # noqa: E731
        for axis, w, wd, s, n_out in plan:
            values = _reduce_axis(values, axis, w, wd, s, n_out, bool_or, np.logical_or)
        return values[0]

    def kernel(regions, x, init):
        init = np.asarray(init).astype(compute)
        r = reduce(x, init)
        if zero_fix:
            wrong = r.view(bits) == suspect
            if wrong.any():
                r = np.array(r)
                if prefix is None:
                    r[wrong & tie_windows(x, init)] = right_zero
                else:
                    others = indicator(np.asarray(x, compute))
                    if prefix[1]:
                        others = np.flip(np.logical_or.accumulate(np.flip(others, prefix[0]),
                                                                  axis=prefix[0]), prefix[0])
                    else:
                        others = np.logical_or.accumulate(others, axis=prefix[0])
                    r[wrong & others] = right_zero
        if neutral is None or init != neutral:
            r = init_fold(r, init)
        return (np.asarray(r).astype(dtype, copy=False).reshape(out_shape),)

    return kernel


def _general_window_kernel(body, count, out_types, shape, window, strides, base, dilation,
                           padding):
    out_shape = out_types[0].shape
    out_dtypes = [t.dtype for t in out_types]
    padder = _Padder(shape, padding, base)
    plan = _window_plan(shape, out_shape, window, strides, dilation, padder.shape)
    volume = int(np.prod(window, dtype=np.int64))
    if volume <= max(16, 2 * sum(window)) and \
            _prefix_axis(shape, window, strides, base, dilation, padding, out_shape) is None:
        return _ordered_kernel(body, count, out_dtypes, padder, window, strides, dilation,
                               out_shape)

    def kernel(regions, *args):
        xs, inits = args[:count], args[count:]

        def combine(a, b):
            result = body(*a, *b)
            return _coerce(result, out_dtypes, np.broadcast_shapes(a[0].shape, b[0].shape))

        values = [padder(x, init, t) for x, init, t in zip(xs, inits, out_dtypes)]
        for axis, w, wd, s, n_out in plan:
            values = _reduce_axis(values, axis, w, wd, s, n_out, combine)
        values = _coerce(values, out_dtypes, out_shape)
        inits = _coerce(inits, out_dtypes, out_shape)
        return tuple(_coerce(body(*inits, *values), out_dtypes, out_shape))

    return kernel


def _window_views(padded, window, strides, dilation, out_shape):
    """The strided view of `padded` for each window offset, in row-major window order."""
    for ks in np.ndindex(*window):
        yield padded[tuple(slice(k * wd, k * wd + (n - 1) * s + 1, s)
                           for k, wd, s, n in zip(ks, dilation, strides, out_shape))]


def _ordered_kernel(body, count, out_dtypes, padder, window, strides, dilation, out_shape):
    """XLA:CPU's order: the init values, then each window element in row-major order."""

    def kernel(regions, *args):
        xs, inits = args[:count], args[count:]
        acc = _coerce(inits, out_dtypes, out_shape)
        padded = [padder(x, init, t) for x, init, t in zip(xs, inits, out_dtypes)]
        views = [_window_views(p, window, strides, dilation, out_shape) for p in padded]
        for elements in zip(*views):
            acc = _coerce(body(*acc, *elements), out_dtypes, out_shape)
        return tuple(acc)

    return kernel


@op("stablehlo.reduce_window", cost=reduction_flops)
def reduce_window(op_):
    """Spec: reduce_window. Any number of operands, window dimensions, strides, base and window
    dilations, padding (negative padding crops) and any body; all dtypes. Padding holds the init
    value as the spec says (XLA:CPU instead skips padding, which differs only for init values that
    are not the body's identity, and returns 0-d operands unchanged). Add/multiply/max/min/and/
    or/xor bodies run as NumPy ufuncs, separably per axis: one in-place pass per window offset,
    padding skipped when the init value is the identity; large windows by power-of-two doubling;
    cumulative windows (cumsum/cumprod/cummax/cummin) as one ufunc.accumulate. bf16/f8 sums and
    products of small windows round after every step in row-major window order, as XLA:CPU;
    other narrow floats accumulate in float32 and round once; wider float sums may differ from
    XLA:CPU's order by ulps. max/min propagate NaN and order -0.0 < +0.0 as XLA:CPU; complex
    max/min (lexicographic, NaN parts do not propagate) run through the body like other bodies,
    so NaN parts follow the row-major order of small windows exactly (large windows combine by
    doubling: their order with NaN parts is the implementation's choice). Other
    bodies run on whole arrays (elementwise ops only): small windows fold the init value then
    each element in row-major order, as XLA:CPU; large ones by doubling (assumes associativity,
    as the spec allows)."""
    count = len(op_.result_types)
    shape = op_.operand_types[0].shape
    rank = len(shape)
    window, strides, base, dilation, padding = _window_attributes(op_, rank)
    out_types = op_.result_types
    out_shape = out_types[0].shape
    out_dtypes = [t.dtype for t in out_types]
    if 0 in out_shape:
        return lambda regions, *args: tuple(np.empty(out_shape, t) for t in out_dtypes)
    if 0 in window:
        return lambda regions, *args: tuple(_coerce(args[count:], out_dtypes, out_shape))
    name = simple_body(op_.regions[0]) if count == 1 else None
    if name in ("stablehlo.maximum", "stablehlo.minimum") and dtypes.is_complex(out_dtypes[0]):
        name = None  # complex max/min (lexicographic, not NaN-propagating): via the body
    body = None if name is not None else vectorised_region(op_, 0, "body")

    def make(rows=None):  # the kernel for `rows` rows of the operands (threads.by_rows)
        operand = shape if rows is None else (rows,) + tuple(shape[1:])
        results = out_types if rows is None else [t.with_rows(rows) for t in out_types]
        if name is not None:
            return _fast_window_kernel(name, results[0], operand, window, strides, base,
                                       dilation, padding)
        return _general_window_kernel(body, count, results, operand, window, strides, base,
                                      dilation, padding)

    if not rank or (window[0], strides[0], base[0], dilation[0],
                    tuple(padding[0])) != (1, 1, 1, 1, (0, 0)):
        return make()  # the first axis is windowed: its rows are not independent
    return by_rows(make, shape[0], count, op_.operand_types[0].size)


# --------------------------------------------------------------------------------------------
# select_and_scatter


@op("stablehlo.select_and_scatter", cost=reduction_flops)
def select_and_scatter(op_):
    """Spec: select_and_scatter. Any select and scatter bodies, window dimensions, strides and
    padding; all dtypes. Each window selects, in row-major window order, the first element the
    select body keeps against all later ones (GE: the first maximum, as XLA); padding is never
    selected, so a window of padding only scatters nothing. Source values are folded into the
    init-filled result in window order: np.add.at for add bodies (exact XLA:CPU rounding),
    other scatter bodies called on whole arrays, in rounds with one value per target. (With
    nonzero padding XLA:CPU breaks ties in other, shape-dependent orders; JAX pads explicitly.)"""
    select_body = vectorised_region(op_, 0, "select")
    operand, source = op_.operand_types[0], op_.operand_types[1]
    shape, dtype = operand.shape, operand.dtype
    src_shape = source.shape
    rank = len(shape)
    window, strides, _, _, padding = _window_attributes(op_, rank)
    size = int(np.prod(shape, dtype=np.int64))
    scatter_name = simple_body(op_.regions[1])
    # NumPy's own add has XLA's semantics for these (float16 rounds each sum, like XLA:CPU).
    add_at = scatter_name == "stablehlo.add" and (
        dtype.kind in "iuc" or dtype in (np.float16, np.float32, np.float64))
    scatter = None if add_at else vectorised_region(op_, 1, "scatter")
    overlapping = any(s < w for s, w in zip(strides, window))

    if 0 in src_shape or 0 in shape or 0 in window:
        return lambda regions, x, src, init: (np.full(shape, init, dtype),)

    # Static index arithmetic: for window o and offset k along each axis the operand position
    # is o * s + k - lo; it is padding unless 0 <= position < n.
    element_strides = [int(np.prod(shape[a + 1:], dtype=np.int64)) for a in range(rank)]
    axes = []
    for a in range(rank):
        o = np.arange(src_shape[a])
        view = [1] * rank
        view[a] = src_shape[a]
        axes.append((o * strides[a] - padding[a][0], view))
    base_index = sum((pos * element_strides[a]).reshape(view)
                     for a, (pos, view) in enumerate(axes))
    base_index = np.broadcast_to(base_index, src_shape)
    offsets = list(np.ndindex(*window))
    offset_index = np.array([sum(k * st for k, st in zip(ks, element_strides)) for ks in offsets],
                            np.int64)
    valid_masks = []
    any_padding = False
    for ks in offsets:
        mask = None
        for a, (pos, view) in enumerate(axes):
            p = pos + ks[a]
            ok = (p >= 0) & (p < shape[a])
            if not ok.all():
                any_padding = True
            m = ok.reshape(view)
            mask = m if mask is None else mask & m
        valid_masks.append(np.broadcast_to(mask, src_shape))
    # Padded operand view bounds: pad by the padding (clipped at >= 0) so every window slices.
    pad_lo = [max(lo, 0) for lo, _ in padding]
    pad_hi = [max(hi, 0) for _, hi in padding]
    crop_lo = [max(-lo, 0) for lo, _ in padding]
    need_pad = any(pad_lo) or any(pad_hi)
    k_dtype = np.int16 if len(offsets) < 2 ** 15 else np.int64

    def window_view(padded, ks):
        starts = [crop_lo[a] + ks[a] for a in range(rank)]
        index = tuple(slice(start, start + (n - 1) * s + 1, s)
                      for start, n, s in zip(starts, src_shape, strides))
        return padded[index]

    def select(select_body, x):
        padded = np.pad(x, list(zip(pad_lo, pad_hi))) if need_pad else x
        chosen = None
        which = np.zeros(src_shape, k_dtype)
        has = None
        for k, ks in enumerate(offsets):
            candidate = window_view(padded, ks)
            if chosen is None:
                chosen = candidate
                has = valid_masks[k] if any_padding else None
                continue
            keep = np.broadcast_to(np.asarray(select_body(chosen, candidate)[0], bool), src_shape)
            take = ~keep
            if any_padding:
                valid = valid_masks[k]
                take = valid & (take | ~has)
                has = has | valid
            chosen = np.where(take, candidate, chosen)
            which = np.where(take, k_dtype(k), which)
        return base_index + offset_index[which], has

    def kernel(regions, x, src, init):
        target, has = select(select_body, x)
        src = np.asarray(src)
        if has is not None:
            target, src = target[has], src[has]
        else:
            target, src = target.reshape(-1), src.reshape(-1)
        result = np.full(size, init, dtype)
        if add_at:
            if overlapping:
                np.add.at(result, target, src)  # in window order, as XLA
            else:
                result[target] = result[target] + src
            return (result.reshape(shape),)
        if not overlapping:
            result[target] = np.asarray(scatter(result[target], src)[0], dtype)
            return (result.reshape(shape),)
        order = np.argsort(target, kind="stable")
        target, src = target[order], src[order]
        first = np.ones(len(target), bool)
        first[1:] = target[1:] != target[:-1]
        starts = np.maximum.accumulate(np.where(first, np.arange(len(target)), 0))
        rank_in_group = np.arange(len(target)) - starts
        for r in range(int(rank_in_group.max(initial=-1)) + 1):
            m = rank_in_group == r
            t = target[m]
            result[t] = np.broadcast_to(np.asarray(scatter(result[t], src[m])[0], dtype), t.shape)
        return (result.reshape(shape),)

    return kernel


# --------------------------------------------------------------------------------------------
# map (not a window op: elementwise.py belongs to another family)


@op("stablehlo.map")
def map_(op_):
    """Spec: map. The body may only hold elementwise ops on scalars; it is called once on the
    whole operands (vectorised), its result broadcast to the result shape. All dtypes."""
    body = vectorised_region(op_, 0, "body")
    out = op_.result
    dims = op_.ints("dimensions", tuple(range(out.rank)))
    if tuple(dims) != tuple(range(out.rank)):
        raise op_.unsupported(f"dimensions {list(dims)} (the spec requires all of them, in order)")

    def kernel(regions, *xs):
        result = body(*xs)[0]
        return (np.broadcast_to(np.asarray(result, out.dtype), out.shape),)

    return kernel
