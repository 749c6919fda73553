"""Gather and scatter (spec: gather, scatter, dynamic_gather).

Both ops become a few NumPy indexing operations over whole arrays, with everything static
(iotas, strides, result layout) prepared at compile time; no Python loop runs per element.

* gather: every operand dimension that no start index or batching dimension addresses is read
  with a basic slice `0:slice_size`. The others get an integer index array over the result's
  batch dimensions (and over their own offset dimension): start index, clamped into
  `[0, dim - slice_size]` as the spec says, + batching iota + offset iota. One
  `operand[index_tuple]` (np.take when one dimension is indexed) yields the result up to a
  static reshape/transpose.
* scatter: the flat (C-order) target of every update element is computed with broadcasting;
  updates are visited scatter-index-major, the order XLA:CPU applies them in, and a window whose
  start index puts any part of it out of bounds is dropped entirely (XLA:CPU; the spec leaves
  out-of-bounds updates implementation-defined). The body is recognised at compile time:
  add/multiply/min/max/and/or/xor become `ufunc.at` (sequential in update order, so duplicates
  accumulate with XLA:CPU's rounding, narrow floats included), `return update` becomes a fancy
  assignment (the last duplicate wins, as on XLA:CPU). Other bodies (any number of inputs) run
  in rounds: round r applies every target's r-th update, calling the body once on whole arrays,
  so there are as many rounds as the most updates any element receives. Windows whose trailing
  dimensions are whole operand rows of 32+ elements are scattered as rows (row assignment, or
  rounds of row operations: NumPy has no fast ufunc.at / reduceat over rows).
"""

import numpy as np
from jaxlib.mlir.dialects import stablehlo

from .. import dtypes
from ..errors import ExecutionError
from .base import TERMINATORS, op
from .reduction import FAST_BODIES, simple_body

_INTP = np.dtype(np.intp)


# --------------------------------------------------------------------------------------------
# helpers (compile time unless noted)

def _index_vectors(indices_rank, index_vector_dim):
    """A run-time function giving the start indices with the index vector as the last axis."""
    if index_vector_dim == indices_rank:
        return lambda s: s[..., None]
    if index_vector_dim == indices_rank - 1:
        return lambda s: s
    return lambda s: np.moveaxis(s, index_vector_dim, -1)


def _clamper(dtype, hi, clip=True):
    """A run-time function giving an index array of `dtype` as a fresh intp array clamped into
    [0, hi] (gather's start indices); with clip=False the caller clamps (np.take mode="clip")."""
    if dtype == np.uint64:  # values past the int64 range would wrap negative
        return lambda s: np.minimum(s, hi).astype(_INTP)
    if not clip:
        return lambda s: s.astype(_INTP)

    def clamp(s):
        s = s.astype(_INTP)
        return np.clip(s, 0, hi, out=s)

    return clamp


def _in_bounds(dtype, hi):
    """A run-time function: which start indices of integer `dtype` lie in [0, hi] (a bool array,
    or None when all of them must), in one pass without converting them."""
    if hi < 0:
        return lambda s: np.zeros(s.shape, bool)
    info = np.iinfo(dtype)
    if dtype.kind == "u":
        return (lambda s: s <= hi) if hi < info.max else (lambda s: None)
    if hi >= info.max:
        return lambda s: s >= 0
    unsigned = np.dtype(f"u{dtype.itemsize}")
    return lambda s: s.view(unsigned) <= hi  # negative values become huge


def _compress(mask, *arrays):
    """Run time: the rows of each array where `mask` holds. (np.flatnonzero + take: several
    times faster than boolean indexing when the mask is irregular.)"""
    where = np.flatnonzero(mask)
    return [a.take(where, axis=0) for a in arrays]


def _iota(size, axis, rank):
    """np.arange(size) along `axis` of a rank-`rank` array of ones."""
    shape = [1] * rank
    shape[axis] = size
    return np.arange(size, dtype=_INTP).reshape(shape)


# --------------------------------------------------------------------------------------------
# gather

def _gather_kernel(op_, operand_type, indices_type, result_type, offset_dims, collapsed,
                   operand_batching, indices_batching, start_index_map, index_vector_dim,
                   slice_sizes):
    operand_shape, result_shape = operand_type.shape, result_type.shape
    rank, result_rank = len(operand_shape), len(result_shape)
    dtype = result_type.dtype
    if len(slice_sizes) != rank:
        raise op_.unsupported(f"slice_sizes {slice_sizes} for an operand of rank {rank}")
    if 0 in result_shape:
        empty = np.zeros(result_shape, dtype)
        return lambda operand, indices, *rest: empty

    batch_result = [d for d in range(result_rank) if d not in offset_dims]
    indices_batch = [d for d in range(indices_type.rank) if d != index_vector_dim]
    if len(batch_result) != len(indices_batch):
        raise op_.unsupported("result batch dimensions that do not match the start indices")
    result_of_indices_dim = dict(zip(indices_batch, batch_result))
    offset_operand = [d for d in range(rank)
                      if d not in collapsed and d not in operand_batching]
    result_of_offset = dict(zip(offset_operand, offset_dims))  # operand dim -> result dim

    indexed = sorted(set(start_index_map) | set(operand_batching))
    adv = sorted(set(batch_result) | {result_of_offset[d] for d in indexed
                                      if d in result_of_offset})
    position = {r: j for j, r in enumerate(adv)}
    n_adv = len(adv)
    start_shape = tuple(result_shape[r] if r in batch_result else 1 for r in adv)

    # Static parts of each indexed dimension's index: batching iota + offset iota.
    static = {}
    for d in indexed:
        s = None
        if d in operand_batching:
            r = result_of_indices_dim[indices_batching[operand_batching.index(d)]]
            s = _iota(result_shape[r], position[r], n_adv)
        if d in result_of_offset:
            r = result_of_offset[d]
            t = _iota(slice_sizes[d], position[r], n_adv)
            s = t if s is None else s + t
        if s is not None and s.size == 1 and not s.any() and d not in operand_batching:
            s = None  # a size-1 offset: adds nothing
        static[d] = s
    take_axis = indexed[0] if len(indexed) == 1 else None
    # np.take(mode="clip") clamps into [0, dim - 1]: the spec's clamp for a slice of size 1.
    take_clips = take_axis is not None and slice_sizes[take_axis] == 1
    components = [(k, d, _clamper(indices_type.dtype, operand_shape[d] - slice_sizes[d],
                                  clip=not take_clips))
                  for k, d in enumerate(start_index_map)]
    take_mode = "clip" if take_clips else "raise"
    only_batching = tuple(operand_batching)  # indexed by their iota alone

    # Shapes of every index array, hence of NumPy's result, are static.
    index_shapes = [start_shape] * len(components) + [static[d].shape for d in indexed
                                                      if static[d] is not None]
    adv_shape = tuple(np.broadcast_shapes(*index_shapes)) if indexed else ()
    basic = [slice(0, slice_sizes[d]) for d in range(rank)]
    # NumPy puts the broadcast index dimensions where the arrays are when they are adjacent,
    # else first. Label every dimension of NumPy's result with its result dim (None: drop).
    plain = [d for d in range(rank) if d not in indexed]
    labels_of = {d: result_of_offset.get(d) for d in plain}
    sizes_of = {d: slice_sizes[d] for d in plain}
    if not indexed:
        labels = [labels_of[d] for d in plain]
        shape = [sizes_of[d] for d in plain]
    elif indexed == list(range(indexed[0], indexed[-1] + 1)):
        before = [d for d in plain if d < indexed[0]]
        after = [d for d in plain if d > indexed[-1]]
        labels = [labels_of[d] for d in before] + adv + [labels_of[d] for d in after]
        shape = [sizes_of[d] for d in before] + list(adv_shape) + [sizes_of[d] for d in after]
    else:
        labels = adv + [labels_of[d] for d in plain]
        shape = list(adv_shape) + [sizes_of[d] for d in plain]
    numpy_rank = len(labels)
    kept = [j for j, label in enumerate(labels) if label is not None]
    labels = [labels[j] for j in kept]
    shape = [shape[j] for j in kept]
    for r in range(result_rank):  # result dims nothing indexes (batch dims of an empty index)
        if r not in labels:
            labels.append(r)
            shape.append(1)
    reshape = tuple(shape)
    perm = tuple(labels.index(r) for r in range(result_rank))
    transposed = tuple(reshape[p] for p in perm)
    needs_reshape = len(reshape) != numpy_rank or len(kept) != numpy_rank
    needs_transpose = perm != tuple(range(result_rank))
    needs_broadcast = transposed != tuple(result_shape)
    move = _index_vectors(indices_type.rank, index_vector_dim)
    prefix = tuple(basic[:take_axis]) if take_axis is not None else None
    whole = all(slice_sizes[d] == operand_shape[d] for d in plain)

    # Every dimension indexed by a start index with a 1-element slice (x[i, j]): one C pass of
    # np.ravel_multi_index (mode="clip" is the spec's clamp then) and one np.take on the
    # flattened operand beat NumPy's multi-array fancy indexing.
    flat_take = (rank > 1 and not operand_batching and sorted(start_index_map) == list(range(rank))
                 and all(size == 1 for size in slice_sizes) and indices_type.dtype != np.uint64
                 and indices_type.dtype.kind in "iu")
    ravel_order = [start_index_map.index(d) for d in range(rank)] if flat_take else None

    def kernel(operand, indices):
        s_all = move(indices)
        if flat_take and operand.flags.c_contiguous:
            flat = np.ravel_multi_index(tuple(s_all[..., k] for k in ravel_order), operand_shape,
                                        mode="clip")
            return np.take(operand.reshape(-1), flat).reshape(result_shape)
        index = list(basic)
        for k, d, clamp in components:
            s = clamp(s_all[..., k]).reshape(start_shape)
            if static[d] is not None:
                s = s + static[d]
            index[d] = s
        for d in only_batching:
            index[d] = static[d]
        if take_axis is not None:
            source = operand if whole else operand[prefix + (slice(None),) + tuple(
                basic[take_axis + 1:])]
            out = np.take(source, index[take_axis], axis=take_axis, mode=take_mode)
        else:
            out = operand[tuple(index)]
        if needs_reshape:
            out = out.reshape(reshape)
        if needs_transpose:
            out = out.transpose(perm)
        if needs_broadcast:
            out = np.broadcast_to(out, result_shape)
        return out

    return kernel


def _gather_dims(op_):
    dn = stablehlo.GatherDimensionNumbers(op_.attr("dimension_numbers"))
    return dict(offset_dims=tuple(dn.offset_dims), collapsed=tuple(dn.collapsed_slice_dims),
                operand_batching=tuple(dn.operand_batching_dims),
                indices_batching=tuple(dn.start_indices_batching_dims),
                start_index_map=tuple(dn.start_index_map),
                index_vector_dim=int(dn.index_vector_dim))


@op("stablehlo.gather", cost="data")
def gather(op_):
    """Spec: gather. All dimension numbers (offset, collapsed, operand/start-indices batching,
    start_index_map, index_vector_dim); start indices are clamped so the slice stays in bounds;
    any element type, any integer index type. One vectorised NumPy indexing operation."""
    return _gather_kernel(op_, op_.operand_types[0], op_.operand_types[1], op_.result,
                          slice_sizes=op_.ints("slice_sizes"), **_gather_dims(op_))


@op("stablehlo.dynamic_gather")
def dynamic_gather(op_):
    """Spec: dynamic_gather. As gather; the slice_sizes operand must match the static result
    shape (it is derived from it at compile time and checked at run time)."""
    dims = _gather_dims(op_)
    operand_type, result_type = op_.operand_types[0], op_.result
    offset_operand = [d for d in range(operand_type.rank)
                      if d not in dims["collapsed"] and d not in dims["operand_batching"]]
    if len(offset_operand) != len(dims["offset_dims"]):
        raise op_.unsupported("offset_dims that do not match the operand")
    sizes = [1] * operand_type.rank
    for d, r in zip(offset_operand, dims["offset_dims"]):
        sizes[d] = result_type.shape[r]
    expected = np.array(sizes, np.int64)
    inner = _gather_kernel(op_, operand_type, op_.operand_types[1], result_type,
                           slice_sizes=tuple(sizes), **dims)

    def kernel(operand, indices, slice_sizes):
        if not np.array_equal(np.asarray(slice_sizes).astype(np.int64), expected):
            raise ExecutionError(f"pyrt: stablehlo.dynamic_gather slice_sizes {slice_sizes} do "
                                 f"not match the result shape (expected {sizes})")
        return inner(operand, indices)

    return kernel


# --------------------------------------------------------------------------------------------
# scatter

def _body_kind(region, n):
    """How a scatter body combines (current, update): 'replace', 'keep', an op name from
    reduction.FAST_BODIES (for one input), or None for the general path."""
    block = region.blocks[0]
    args = list(block.arguments)
    operations = [o.operation for o in block.operations]
    if len(operations) == 1 and operations[0].name in TERMINATORS:
        returned = list(operations[0].operands)
        if returned == args[n:]:
            return "replace"
        if returned == args[:n]:
            return "keep"
        return None
    if n == 1:
        return simple_body(region)
    return None


def _max_min_zeros(kind, out, flat, upd, original):
    """Run time: fixes the sign of zero results of maximum.at/minimum.at, where NumPy returns
    either zero and XLA orders -0.0 < +0.0: a max is +0.0 when any zero it saw was, a min -0.0."""
    wide = np.float32 if out.dtype.itemsize < 4 else out.dtype
    o = out.astype(wide)
    zero = o == 0
    if not zero.any():
        return
    negative = kind == "stablehlo.minimum"  # the zero that wins
    x, u = original.astype(wide, copy=False), upd.astype(wide, copy=False)
    hit = (x == 0) & (np.signbit(x) == negative)
    hit[flat[(u == 0) & (np.signbit(u) == negative)]] = True
    result_negative = hit if negative else ~hit
    o[zero] = np.where(result_negative[zero], np.array(-0.0, wide), np.array(0.0, wide))
    out[...] = o.astype(out.dtype)


def _fast_apply(kind, dtype):
    """A run-time function applying one fast body in place: apply(out, flat, updates)."""
    if kind == "replace":
        def apply(out, flat, upd):
            out[flat] = upd
        return apply
    if kind == "keep":
        return lambda out, flat, upd: None
    ufunc = FAST_BODIES[kind][1 if dtypes.is_bool(dtype) else 0]
    if kind in ("stablehlo.maximum", "stablehlo.minimum") and dtypes.is_float(dtype):
        wide = np.float32 if dtype.itemsize < 4 else dtype

        def apply(out, flat, upd):
            u, x = upd.astype(wide, copy=False), out.astype(wide, copy=False)
            if not (np.signbit(u[u == 0]).any() or np.signbit(x[x == 0]).any()):
                ufunc.at(out, flat, upd)  # no -0.0 anywhere: NumPy's zeros are right
                return
            original = out.copy()
            ufunc.at(out, flat, upd)
            _max_min_zeros(kind, out, flat, upd, original)
        return apply

    def apply(out, flat, upd):
        ufunc.at(out, flat, upd)
    return apply


# Windows whose trailing contiguous run (full trailing operand dimensions) has at least this many
# elements are scattered as whole rows: fancy assignment of rows, or rounds calling the body.
BLOCK_ELEMENTS = 32


def _rounds(flat, size):
    """Run time: index arrays into `flat` (targets < size), one per round, round r holding each
    target's r-th update: targets are unique within a round and every target sees its updates
    in order. Updates are grouped by sorting (target, position) keys packed in one int64, which
    NumPy's SIMD sort handles far faster than a stable argsort; round r then takes element r of
    every group longer than r (work proportional to the updates, plus one step per round)."""
    count = flat.size
    flat = flat.astype(_INTP, copy=False)
    if size * count < 1 << 62:
        key = flat * count + np.arange(count, dtype=_INTP)
        key.sort()
        targets = key // count
        by_target = key - targets * count
    else:
        by_target = np.argsort(flat, kind="stable")
        targets = flat[by_target]
    starts = np.empty(count, bool)
    starts[0] = True
    np.not_equal(targets[1:], targets[:-1], out=starts[1:])
    live = np.flatnonzero(starts)  # first update of every group, in sorted order
    sizes = np.diff(live, append=count)
    r = 0
    while live.size:
        yield by_target[live + r]
        r += 1
        longer = sizes > r
        if not longer.all():
            live, sizes = _compress(longer, live, sizes)


def _apply_body(body, outs, flat, upds, out_dtypes, unique, size):
    """Run time: applies a scatter body in rounds of unique targets, calling it on whole arrays."""
    if unique:
        rounds = [(flat, upds)]
    else:
        rounds = ((flat[c], [u[c] for u in upds]) for c in _rounds(flat, size))
    for targets, values in rounds:
        current = [o[targets] for o in outs]
        results = body(*current, *values)
        for o, r, dt in zip(outs, results, out_dtypes):
            o[targets] = np.asarray(r, dtype=dt)


@op("stablehlo.scatter", cost="data")
def scatter(op_):
    """Spec: scatter. Any number of inputs, any element types, any integer index type, all
    dimension numbers (update window, inserted, input/indices batching,
    scatter_dims_to_operand_dims, index_vector_dim). A window with any
    index out of bounds is skipped entirely, and updates apply in order (as XLA:CPU). Bodies
    add/multiply/max/min/and/or/xor run as `ufunc.at` (duplicates accumulate in update order,
    narrow floats round per update; max/min: NaN propagates, -0.0 < +0.0), `return update` as
    assignment (last duplicate wins); other bodies, and windows of 32+ contiguous elements, run
    vectorised in rounds of unique targets (the hint unique_indices=true makes it one round),
    calling the body on whole arrays. indices_are_sorted is ignored."""
    n = (len(op_.operand_types) - 1) // 2
    input_types = op_.operand_types[:n]
    indices_type = op_.operand_types[n]
    update_types = op_.operand_types[n + 1:]
    input_shape = input_types[0].shape
    update_shape = update_types[0].shape
    out_dtypes = [t.dtype for t in op_.result_types]
    dn = stablehlo.ScatterDimensionNumbers(op_.attr("scatter_dimension_numbers"))
    update_window_dims = tuple(dn.update_window_dims)
    inserted = tuple(dn.inserted_window_dims)
    input_batching = tuple(dn.input_batching_dims)
    indices_batching = tuple(dn.scatter_indices_batching_dims)
    to_operand = tuple(dn.scattered_dims_to_operand_dims)
    index_vector_dim = int(dn.index_vector_dim)
    unique = bool(op_.value("unique_indices", False))
    rank, update_rank = len(input_shape), len(update_shape)

    if 0 in input_shape or 0 in update_shape:
        return lambda regions, *args: tuple(
            np.asarray(x).astype(dt, copy=False) for x, dt in zip(args[:n], out_dtypes))

    scatter_update_dims = [d for d in range(update_rank) if d not in update_window_dims]
    indices_batch = [d for d in range(indices_type.rank) if d != index_vector_dim]
    if len(scatter_update_dims) != len(indices_batch):
        raise op_.unsupported("update scatter dimensions that do not match the indices")
    update_of_indices_dim = dict(zip(indices_batch, scatter_update_dims))
    window_operand = [d for d in range(rank) if d not in inserted and d not in input_batching]
    update_of_window = dict(zip(window_operand, update_window_dims))  # input dim -> update dim

    # Updates apply scatter-index-major (XLA:CPU's order): work in the update space permuted
    # scatter dims first.
    order = tuple(scatter_update_dims) + update_window_dims
    needs_transpose = order != tuple(range(update_rank))
    where = {u: j for j, u in enumerate(order)}
    # Trailing operand dims that every window covers whole form contiguous rows of `width`
    # elements; wide rows are scattered as units.
    suffix = 0
    while suffix < rank:
        d = rank - 1 - suffix
        if (d in update_of_window and d not in to_operand
                and update_shape[update_of_window[d]] == input_shape[d]):
            suffix += 1
        else:
            break
    width = int(np.prod(input_shape[rank - suffix:], dtype=np.int64))
    rows = suffix > 0 and width >= BLOCK_ELEMENTS
    if not rows:
        suffix, width = 0, 1
    space = order[:update_rank - suffix]  # update dims the flat (unit) index varies over
    space_rank = len(space)
    flat_shape = tuple(update_shape[u] for u in space)
    start_shape = tuple(update_shape[u] if u in scatter_update_dims else 1 for u in space)
    strides = [int(np.prod(input_shape[d + 1:], dtype=np.int64)) // width for d in range(rank)]
    units = int(np.prod(input_shape, dtype=np.int64)) // width

    static = None
    for d in range(rank - suffix):
        terms = []
        if d in input_batching:
            u = update_of_indices_dim[indices_batching[input_batching.index(d)]]
            terms.append(_iota(update_shape[u], where[u], space_rank))
        if d in update_of_window:
            u = update_of_window[d]
            terms.append(_iota(update_shape[u], where[u], space_rank))
        for t in terms:
            t = t * strides[d]
            static = t if static is None else static + t
    if static is not None and not static.any():
        static = None
    components = []
    for k, d in enumerate(to_operand):
        window = update_shape[update_of_window[d]] if d in update_of_window else 1
        components.append((k, strides[d], input_shape[d] - window))
    move = _index_vectors(indices_type.rank, index_vector_dim)
    unit_shape = (-1, width) if rows else (-1,)

    kind = _body_kind(op_.regions[0], n)
    if kind is not None and n > 1 and kind not in ("replace", "keep"):
        kind = None
    if kind in ("stablehlo.maximum", "stablehlo.minimum") and dtypes.is_complex(out_dtypes[0]):
        kind = None  # complex max/min: lexicographic, via the body
    if rows and kind not in ("replace", "keep"):
        # Rows: rounds of whole-row operations beat ufunc.at over every element (and NumPy's
        # reduceat along axis 0 is slow).
        kind = None
    fast = _fast_apply(kind, out_dtypes[0]) if kind is not None else None

    # One start index used as is (x.at[i] on a 1-D array, or on rows): index with the indices'
    # own integer type, saving a conversion pass.
    native = None
    index_dtype = indices_type.dtype
    if (len(components) == 1 and components[0][1] == 1 and static is None
            and index_dtype.kind in "iu"):
        native = _in_bounds(index_dtype, components[0][2])

    def kernel(regions, *args):
        inputs, indices, updates = args[:n], args[n], args[n + 1:]
        s_all = move(indices)
        flat, valid = static, None
        if native is not None:
            flat = s_all[..., 0].reshape(start_shape)
            valid = native(flat)
        for k, stride, hi in components if native is None else ():
            s = s_all[..., k].astype(_INTP).reshape(start_shape)
            ok = s.view(np.uintp) <= hi if hi >= 0 else np.zeros(s.shape, bool)
            valid = ok if valid is None else valid & ok
            term = s * stride if stride != 1 else s
            flat = term if flat is None else flat + term
        if flat is None:
            flat = np.zeros(start_shape, _INTP)
        flat = np.broadcast_to(flat, flat_shape).reshape(-1)
        upds = [np.transpose(u, order) if needs_transpose else u for u in updates]
        upds = [np.asarray(u).reshape(unit_shape) for u in upds]
        if valid is not None and not valid.all():
            flat, *upds = _compress(np.broadcast_to(valid, flat_shape).reshape(-1), flat, *upds)
        results = [np.array(x, dtype=dt, order="C", copy=True) for x, dt in zip(inputs, out_dtypes)]
        outs = [r.reshape(unit_shape) for r in results]
        if flat.size:
            if fast is None:
                _apply_body(regions[0], outs, flat, upds, out_dtypes, unique, units)
            elif kind == "replace":
                for o, u in zip(outs, upds):
                    fast(o, flat, u)
            else:
                fast(outs[0], flat, upds[0])
        return tuple(results)

    return kernel
