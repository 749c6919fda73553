"""Sorting (spec: sort).

Strategies, chosen at compile time by reading the comparator region:

* Fast path: comparators that order by keys. The comparator is read symbolically and accepted
  when it is a lexicographic chain `lt(k0) or (eq(k0) and (lt(k1) or ...))` whose keys `k` are
  operands (or the real / imaginary part of a complex operand), optionally canonicalised the way
  JAX does it for floats (-0.0 -> 0.0, NaN -> +NaN) and compared LT or GT (descending) with the
  operand type's order (SIGNED/UNSIGNED, FLOAT, TOTALORDER). That covers everything JAX emits:
  jnp.sort/argsort/lexsort, lax.sort with any num_keys, and top_k's `GT TOTALORDER` comparator.
  Every key becomes an unsigned integer array ordered as the comparator orders it (floats by
  their bit pattern, as XLA's TOTALORDER; canonicalised floats with all NaNs and both zeros
  equal), inverted for descending keys. The keys and the position are packed into one uint64
  when they fit (NumPy's SIMD sort of distinct integers is a stable sort of the keys, and much
  faster than a stable argsort), else np.lexsort / stable np.argsort; the permutation is then
  applied to every operand (an iota along the sort dimension is the permutation itself).
  A single-operand sort on its own key skips the permutation: ints sort as is, floats sort in
  NumPy (NaN last) with the equal-comparing zeros and NaNs put back in their input order.
  When every use of the results slices the first k positions along the sort dimension (top_k's
  decomposition), only those k are found (np.partition threshold, ties by position) and sorted;
  the other positions of the results are left unset, as nothing reads them.
* General path (any comparator): a bottom-up merge sort, vectorised across the whole array. For
  each pass every element finds its place in the merged run by a binary search in the partner
  run, all elements at once, calling the comparator on whole arrays (log2(run) calls per pass,
  n log^2 n comparisons in all). Left-run elements go before equal right-run elements, so the
  sort is stable whatever `is_stable` says (the spec allows that). The comparator runs through
  windows.vectorised_region (elementwise ops only).
"""

import numpy as np
from jaxlib.mlir import ir

from .. import attributes, dtypes
from ..attributes import dense_elements, enum_name
from .base import TERMINATORS, op
from .custom_call import target
from .reduction import iota_dimension

_UINT = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
         8: np.dtype(np.uint64)}
_SINT = {1: np.dtype(np.int8), 2: np.dtype(np.int16), 4: np.dtype(np.int32),
         8: np.dtype(np.int64)}
# Float types keyed by their bit pattern (IEEE layouts with a sign bit and inf = all-ones exponent).
_BIT_FLOATS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64),
               dtypes.DTYPE_BY_MLIR["bf16"]}
_NUMPY_FLOATS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}


# --------------------------------------------------------------------------------------------
# Reading the comparator

def _element_dtype(mlir_type):
    return dtypes.DTYPE_BY_MLIR.get(str(mlir_type.element_type))


def _default_compare_type(dt):
    if dt is None:
        return None
    if dtypes.is_float(dt) or dtypes.is_complex(dt):
        return "FLOAT"
    return "UNSIGNED" if dtypes.is_unsigned(dt) or dtypes.is_bool(dt) else "SIGNED"


def expressions(region):
    """The values a region returns as expression trees over its arguments, or None.

    Nodes are tuples: ("arg", i), ("const", dtype, bytes), ("compare", direction, type, a, b),
    ("select", c, a, b), ("and"|"or", a, b), ("real"|"imag", a); any other op gives a unique
    ("opaque", id) node. Ops between 0-d values of one type that change nothing (convert to the
    same type, broadcast_in_dim / reshape of a scalar) are looked through.
    """
    block = region.blocks[0]
    nodes = {arg: ("arg", i) for i, arg in enumerate(block.arguments)}

    def node_of(value):
        if value not in nodes:  # defined outside the region: constants are often hoisted
            owner = value.owner
            operation = getattr(owner, "operation", owner)
            nodes[value] = (_constant_node(operation, value)
                            if getattr(operation, "name", None) == "stablehlo.constant"
                            else ("opaque", len(nodes)))
        return nodes[value]

    for operation in block.operations:
        operation = operation.operation
        name = operation.name
        if name in TERMINATORS:
            return [node_of(v) for v in operation.operands]
        if len(operation.results) != 1:
            return None
        result = operation.results[0]
        args = [node_of(v) for v in operation.operands]
        node = ("opaque", len(nodes))
        if name == "stablehlo.constant":
            node = _constant_node(operation, result)
        elif name == "stablehlo.compare":
            attrs = operation.attributes
            dt = _element_dtype(operation.operands[0].type)
            ctype = (enum_name(attrs["compare_type"]) if "compare_type" in attrs
                     else _default_compare_type(dt))
            node = ("compare", enum_name(attrs["comparison_direction"]), ctype, *args)
        elif name == "stablehlo.select":
            node = ("select", *args)
        elif name in ("stablehlo.and", "stablehlo.or"):
            node = (name.split(".")[1], *args)
        elif name in ("stablehlo.real", "stablehlo.imag"):
            node = (name.split(".")[1], *args)
        elif name in ("stablehlo.convert", "stablehlo.broadcast_in_dim", "stablehlo.reshape") \
                and len(args) == 1 and operation.operands[0].type == result.type:
            node = args[0]
        nodes[result] = node
    return None


def _constant_node(operation, result):
    dt = _element_dtype(result.type)
    if dt is None or list(result.type.shape):
        return ("opaque", id(result))
    try:
        value = dense_elements(operation.attributes["value"], dt, ())
    except Exception:  # noqa: BLE001 - an unreadable constant is just opaque
        return ("opaque", id(result))
    return ("const", dt, np.asarray(value, dt).tobytes())


def _const_value(node):
    if node[0] != "const":
        return None
    return np.frombuffer(node[2], node[1])[0]


def _uncanonical(node):
    """x if `node` is JAX's float canonicalisation of x (select(x != x, +NaN, select(x == 0,
    0, x))), else None."""
    if node[0] != "select" or node[1][0] != "compare":
        return None
    _, cond, nan, rest = node
    _, direction, ctype, a, b = cond
    if direction != "NE" or ctype != "FLOAT" or a != b:
        return None
    x = a
    nan_value = _const_value(nan)
    if nan_value is None or not np.isnan(np.float64(nan_value)) or np.signbit(nan_value):
        return None
    if rest[0] != "select" or rest[1][0] != "compare":
        return None
    _, cond, zero, other = rest
    _, direction, ctype, a, b = cond
    if direction != "EQ" or ctype != "FLOAT" or other != x:
        return None
    if a == x:
        const = b
    elif b == x:
        const = a
    else:
        return None
    for c in (const, zero):
        v = _const_value(c)
        if v is None or np.float64(v) != 0:
            return None
    return x


def _key_of(node):
    """(argument index, part, canonical) of a key expression, else None."""
    canonical = False
    inner = _uncanonical(node)
    if inner is not None:
        canonical, node = True, inner
    part = None
    if node[0] in ("real", "imag"):
        part, node = node[0], node[1]
    if node[0] != "arg":
        return None
    return node[1], part, canonical


def _pair(a, b):
    """((operand, part, canonical), lhs_first) if a and b are the same key of the two sides."""
    ka, kb = _key_of(a), _key_of(b)
    if ka is None or kb is None:
        return None
    (ia, pa, ca), (ib, pb, cb) = ka, kb
    if ia // 2 != ib // 2 or ia % 2 == ib % 2 or pa != pb or ca != cb:
        return None
    return (ia // 2, pa, ca), ia % 2 == 0


def _strict(node):
    """(key, compare type, descending) of `compare LT|GT` between the two sides of a key."""
    if node[0] != "compare" or node[1] not in ("LT", "GT"):
        return None
    pair = _pair(node[3], node[4])
    if pair is None:
        return None
    key, lhs_first = pair
    return key, node[2], (node[1] == "GT") == lhs_first


def _equal_key(node):
    if node[0] != "compare" or node[1] != "EQ":
        return None
    pair = _pair(node[3], node[4])
    return None if pair is None else (pair[0], node[2])


def _chain(node):
    """[(key, compare type, descending), ...] of a lexicographic comparator, else None."""
    strict = _strict(node)
    if strict is not None:
        return [strict]
    if node[0] != "or":
        return None
    for first, second in ((node[1], node[2]), (node[2], node[1])):
        strict = _strict(first)
        if strict is None or second[0] != "and":
            continue
        for eq, rest in ((second[1], second[2]), (second[2], second[1])):
            equal = _equal_key(eq)
            if equal is None or equal[0] != strict[0]:
                continue
            # A FLOAT equality of floats is false for NaNs, which breaks the chain.
            if equal[1] == "FLOAT" and strict[1] != "FLOAT":
                continue
            tail = _chain(rest)
            if tail is not None:
                return [strict] + tail
    return None


def comparator_keys(region, operand_dtypes):
    """The sort keys of a comparator: [(operand, part, kind, descending)] with kind one of
    "signed", "unsigned", "total", "canonical", or None if the comparator is not recognised."""
    returned = expressions(region)
    if not returned or len(returned) != 1:
        return None
    chain = _chain(returned[0])
    if chain is None:
        return None
    keys = []
    for (operand, part, canonical), ctype, descending in chain:
        dt = operand_dtypes[operand]
        if part is not None:
            if not dtypes.is_complex(dt):
                return None
            dt = np.dtype(np.float64 if dt == np.complex128 else np.float32)
        if dtypes.is_float(dt):
            if dt not in _BIT_FLOATS:
                return None
            if ctype == "TOTALORDER":
                kind = "canonical" if canonical else "total"
            elif ctype == "FLOAT":
                kind = "canonical"  # the same order wherever FLOAT is a strict weak order
            else:
                return None
        elif dtypes.is_bool(dt) or dtypes.is_integer(dt):
            if canonical or ctype not in ("SIGNED", "UNSIGNED"):
                return None
            kind = "unsigned" if dtypes.is_bool(dt) else ctype.lower()
        else:
            return None
        keys.append((operand, part, kind, descending))
    return keys


# --------------------------------------------------------------------------------------------
# Keys: unsigned integers in the comparator's order

def _key_bits(dt, part):
    if part is not None:
        return 64 if dt == np.complex128 else 32
    if dtypes.is_bool(dt):
        return 8
    if dtypes.is_integer(dt) and dt.kind not in "iu":
        return 8
    return dt.itemsize * 8


def _key_function(dt, part, kind, descending):
    """x -> an unsigned integer array ordered as the key (ties exactly where the key ties)."""
    if part is not None:
        dt = np.dtype(np.float64 if dt == np.complex128 else np.float32)
    narrow_int = dtypes.is_integer(dt) and dt.kind not in "iu"
    width = 1 if (narrow_int or dtypes.is_bool(dt)) else dt.itemsize
    u = _UINT[width]
    sign = u.type(1 << (width * 8 - 1))
    ones = u.type((1 << (width * 8)) - 1)
    if dtypes.is_float(dt):
        signed = _SINT[width]
        shift = signed.type(width * 8 - 1)
        abs_mask = u.type((1 << (width * 8 - 1)) - 1)
        inf_bits = {2: 0x7C00 if dt == np.float16 else 0x7F80, 4: 0x7F800000,
                    8: 0x7FF0000000000000}[width]
        inf_bits = u.type(inf_bits)

    def key(x):
        if part == "real":
            x = np.real(x)
        elif part == "imag":
            x = np.imag(x)
        if dtypes.is_bool(dt):
            k = x.view(u)
        elif narrow_int:
            k = x.astype(np.uint8 if dtypes.is_unsigned(dt) else np.int8).view(u)
            if kind == "signed":
                k = k ^ sign
        elif dtypes.is_integer(dt):
            k = x.view(u)
            if kind == "signed":
                k = k ^ sign
        else:
            bits = x.view(u)
            # Negative: flip every bit; positive: flip the sign bit.
            k = bits ^ ((bits.view(signed) >> shift).view(u) | sign)
            if kind == "canonical":
                magnitude = bits & abs_mask
                k = np.where(magnitude > inf_bits, ones, np.where(magnitude == 0, sign, k))
        if descending:
            k = ~k
        return k

    return key


def _invert_total_key(key, dt):
    """The floats whose "total" keys (ascending) are `key`."""
    u = key.dtype
    width = u.itemsize
    sign = u.type(1 << (width * 8 - 1))
    positive = (key & sign) != 0
    return np.where(positive, key ^ sign, ~key).view(dt)


# --------------------------------------------------------------------------------------------
# Kernels

def _single_kernel(dt, kind, descending, dim):
    """A sort of one operand by its own value: no permutation needed."""
    if (kind == "signed" and dt.kind == "i") or (kind == "unsigned" and dt.kind in "ub"):
        def kernel(regions, x):
            r = np.sort(np.moveaxis(x, dim, -1), axis=-1)
            if descending:
                r = r[..., ::-1]
            return (np.moveaxis(r, -1, dim),)
        return kernel
    if kind == "total":
        key = _key_function(dt, None, kind, False)

        def kernel(regions, x):
            k = np.sort(key(np.moveaxis(x, dim, -1)), axis=-1)
            if descending:
                k = k[..., ::-1]
            return (np.moveaxis(_invert_total_key(k, dt), -1, dim),)
        return kernel
    if kind == "canonical" and dt in _NUMPY_FLOATS and not descending:
        def kernel(regions, x):
            xm = np.moveaxis(x, dim, -1)
            r = np.sort(xm, axis=-1)  # NaNs last; zeros and NaNs compare equal to their kind
            # Equal keys keep their input order: put the zeros and the NaNs back as they came
            # (each row's zeros and NaNs form one run, in row-major order on both sides).
            zero = xm == 0
            if zero.any():
                r[r == 0] = xm[zero]
            nan = np.isnan(xm)
            if nan.any():
                r[np.isnan(r)] = xm[nan]
            return (np.moveaxis(r, -1, dim),)
        return kernel
    return None


def _leading_use(operation, dim):
    """k if every use of every result of `operation` is a stablehlo.slice taking only the first
    k (or fewer) elements along `dim` (top_k's decomposition), else None."""
    from ..attributes import i64_array
    k = 0
    for result in operation.results:
        for use in result.uses:
            user = use.owner
            user = getattr(user, "operation", user)
            if user.name != "stablehlo.slice":
                return None
            starts = i64_array(user.attributes["start_indices"])
            limits = i64_array(user.attributes["limit_indices"])
            strides = i64_array(user.attributes["strides"]) if "strides" in user.attributes \
                else (1,) * len(starts)
            if starts[dim] != 0 or strides[dim] != 1:
                return None
            k = max(k, limits[dim])
    return k


def _key_kernel(keys, op_types, dim, iota_dims, leading=None):
    n = op_types[0].shape[dim]
    shape = op_types[0].shape
    key_fns = [_key_function(op_types[o].dtype, part, kind, desc) for o, part, kind, desc in keys]
    bits = [_key_bits(op_types[o].dtype, part) for o, part, _, _ in keys]
    index_bits = max(1, (n - 1).bit_length())
    total = sum(bits) + index_bits
    packed = total <= 64
    pack_dtype = np.dtype(np.uint32 if total <= 32 else np.uint64)
    shifts = []
    offset = index_bits
    for b in reversed(bits):
        shifts.append(offset)
        offset += b
    shifts.reverse()
    index = np.arange(n, dtype=pack_dtype)
    index_mask = pack_dtype.type((1 << index_bits) - 1)
    out_dtypes = [t.dtype for t in op_types]

    # Only the first `leading` positions are read (top_k): select them, then sort only those.
    partial = packed and leading is not None and 0 < leading < n // 2

    def leading_positions(k):
        """The positions of the first `leading` elements of each row in key order (ties in
        position order), sorted: select by a threshold, then sort only those."""
        flat = k.reshape(-1, n)
        threshold = np.partition(flat, leading - 1, axis=-1)[:, leading - 1]
        row, col = np.nonzero(flat <= threshold[:, None])  # row-major: rows are contiguous
        # Of the elements equal to the threshold keep the first ones, up to `leading` a row.
        tie = flat[row, col] == threshold[row]
        below = np.bincount(row[~tie], minlength=len(flat))
        count = np.cumsum(tie)
        before = np.concatenate([[0], count])[np.searchsorted(row, np.arange(len(flat)))]
        keep = ~tie | (count - before[row] <= (leading - below)[row])
        where = col[keep].reshape(k.shape[:-1] + (leading,))
        p = np.take_along_axis(k, where, axis=-1).astype(np.uint64) << np.uint64(index_bits)
        p |= where.astype(np.uint64)
        p.sort(axis=-1)
        return (p & np.uint64((1 << index_bits) - 1)).astype(np.intp)

    def permutation(xs):
        ks = [f(xs[o]) for f, (o, _, _, _) in zip(key_fns, keys)]
        if partial and len(ks) == 1:
            return leading_positions(ks[0])
        if packed:
            p = np.broadcast_to(index, ks[0].shape).copy() if len(ks[0].shape) > 1 \
                else index.copy()
            for k, s in zip(ks, shifts):
                p |= k.astype(pack_dtype) << pack_dtype.type(s)
            if partial:
                p = np.partition(p, leading - 1, axis=-1)[..., :leading]
            p.sort(axis=-1)
            return (p & index_mask).astype(np.intp)
        if len(ks) == 1:
            return np.argsort(ks[0], axis=-1, kind="stable")
        return np.lexsort(ks[::-1], axis=-1)

    def kernel(regions, *xs):
        xm = [np.moveaxis(x, dim, -1) for x in xs]
        perm = permutation(xm)
        results = []
        for x, t, iota in zip(xm, out_dtypes, iota_dims):
            if iota == dim:
                r = perm.astype(t)
            elif iota is not None:
                r = x[..., :perm.shape[-1]]
            else:
                r = np.take_along_axis(x, perm, axis=-1)
            if partial:  # positions after `leading` are never read
                full = np.empty(x.shape, t)
                full[..., :leading] = r
                r = full
            results.append(np.moveaxis(r, -1, dim))
        return results

    if 0 in shape:
        return lambda regions, *xs: xs
    return kernel


def _merge_kernel(compare, dim, shape):
    """Stable bottom-up merge sort with the comparator called on whole arrays."""
    n = shape[dim]
    positions = np.arange(n)

    def kernel(regions, *xs):
        xm = [np.moveaxis(x, dim, -1) for x in xs]
        batch = xm[0].shape[:-1]
        cur = [np.ascontiguousarray(x).reshape(-1, n) for x in xm]
        rows = cur[0].shape[0]
        w = 1
        while w < n:
            start = (positions // (2 * w)) * (2 * w)
            left = positions - start < w
            own = np.where(left, positions - start, positions - start - w)
            partner = np.where(left, start + w, start)
            partner_len = np.where(left, np.clip(n - start - w, 0, w), w)
            last = np.maximum(partner_len - 1, 0)
            lo = np.zeros((rows, n), np.intp)
            hi = np.broadcast_to(partner_len, (rows, n)).copy()
            for _ in range(int(w).bit_length()):
                mid = (lo + hi) >> 1
                at = np.minimum(partner + np.minimum(mid, last), n - 1)
                args = []
                for c in cur:
                    other = np.take_along_axis(c, at, axis=1)
                    args += [np.where(left, other, c), np.where(left, c, other)]
                less = np.broadcast_to(np.asarray(compare(*args)[0], bool), (rows, n))
                # left element a: count partners b < a; right element b: count partners a <= b.
                after = less == left
                active = lo < hi
                lo = np.where(active & after, mid + 1, lo)
                hi = np.where(active & ~after, mid, hi)
            target = start + own + lo
            new = []
            for c in cur:
                out = np.empty_like(c)
                np.put_along_axis(out, target, c, axis=1)
                new.append(out)
            cur = new
            w *= 2
        return [np.moveaxis(c.reshape(batch + (n,)), -1, dim) for c in cur]

    if n <= 1 or 0 in shape:
        return lambda regions, *xs: xs
    return kernel


@op("stablehlo.sort", cost="data")
def sort(op_):
    """Spec: sort. Any number of operands, any dimension, any comparator; stable whatever
    `is_stable` says. Comparators that order by keys (lexicographic chains of LT/GT on operands
    or their real/imag parts, optionally with JAX's float canonicalisation; all of jnp.sort,
    argsort, lexsort, lax.sort(num_keys=k), top_k) sort integer keys in NumPy: floats by bit
    pattern as TOTALORDER (-NaN < -inf < ... < -0.0 < +0.0 < ... < +NaN), canonicalised or FLOAT
    keys with all NaNs last and both zeros equal, in input order. All dtypes, f8 keys
    excepted (those and any other comparator run a vectorised merge sort calling the comparator
    on whole arrays)."""
    from .windows import vectorised_region
    op_types = op_.operand_types
    rank = op_types[0].rank
    dim = op_.int("dimension", -1)
    if dim < 0:
        dim += rank
    shape = op_types[0].shape
    n = shape[dim]
    if n <= 1 or 0 in shape:
        return lambda regions, *xs: xs
    keys = comparator_keys(op_.regions[0], [t.dtype for t in op_types])
    if keys is not None:
        if len(op_types) == 1 and len(keys) == 1 and keys[0][1] is None:
            kernel = _single_kernel(op_types[0].dtype, keys[0][2], keys[0][3], dim)
            if kernel is not None:
                return kernel
        iota_dims = [iota_dimension(v) if dtypes.is_integer(t.dtype) else None
                     for v, t in zip(op_.operation.operands, op_types)]
        return _key_kernel(keys, op_types, dim, iota_dims, _leading_use(op_.operation, dim))
    return _merge_kernel(vectorised_region(op_, 0, "comparator"), dim, shape)


@target("ApproxTopK")
def approx_top_k(op_):
    """jax.lax.approx_max_k / approx_min_k, as JAX emits them on every platform but TPU
    (`is_fallback`): the exact top k, cut to the result size along reduction_dim, in float
    total order as XLA:CPU computes the fallback (max-k: +NaN first, +0 before -0; min-k the
    reverse), ties in input order. (XLA:CPU's min-k orders ties, and NaNs among numbers,
    however its unstable sort leaves them.)"""
    config = op_.attr("mhlo.backend_config")
    settings = {} if config is None else {
        a.name: attributes.python_value(a.attr) for a in ir.DictAttr(config)}
    comparator = str(op_.attr("called_computations"))
    largest = "_gt_" in comparator
    dt = op_.operand_types[0].dtype
    if (not settings.get("is_fallback") or ("_gt_" not in comparator and "_lt_" not in comparator)
            or not dtypes.is_float(dt) or dt.itemsize < 2):
        raise op_.unsupported(f"ApproxTopK on {dt} with backend_config {settings} and "
                              f"comparator {comparator} (pyrt runs JAX's fallback form, f16 "
                              f"and wider)")
    dim = settings["reduction_dim"]
    size = op_.result_types[0].shape[dim]
    key = _key_function(dt, None, "total", largest)

    def kernel(operand, iota, init_value, init_index):
        x = np.asarray(operand)
        order = np.argsort(key(x), axis=dim, kind="stable")
        order = np.take(order, np.arange(size), axis=dim)
        return (np.take_along_axis(x, order, axis=dim),
                np.take_along_axis(np.asarray(iota), order, axis=dim))

    return kernel
