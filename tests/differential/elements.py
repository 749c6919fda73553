"""Element types and test values: every StableHLO element type pyrt knows, grouped as the spec
groups them, and deterministic input arrays that mix edge values (NaN, +-inf, -0.0, subnormals,
INT_MIN/INT_MAX, 0, rounding ties, ...) with random ones."""

import ml_dtypes
import numpy as np

from jax_pyrt import dtypes

BOOL = ("i1",)
SINT = ("i8", "i16", "i32", "i64")
UINT = ("ui8", "ui16", "ui32", "ui64")
FLOAT = ("f16", "bf16", "f32", "f64")
COMPLEX = ("complex<f32>", "complex<f64>")
# Sub-byte integers and 8/4-bit floats (ml_dtypes): in the full sweep; the sample takes a few.
SINT_NARROW = ("i2", "i4")
UINT_NARROW = ("ui2", "ui4")
FLOAT_NARROW = ("f8E5M2", "f8E4M3FN", "f8E4M3B11FNUZ", "f8E5M2FNUZ", "f8E4M3FNUZ", "f8E4M3",
                "f8E3M4", "f8E8M0FNU", "f4E2M1FN")

INT = SINT + UINT
INTS = SINT + UINT + SINT_NARROW + UINT_NARROW
FLOATS = FLOAT + FLOAT_NARROW
SIGNED = SINT + SINT_NARROW
UNSIGNED = UINT + UINT_NARROW
NUMERIC = INTS + FLOATS + COMPLEX
ALL = BOOL + NUMERIC
NARROW = SINT_NARROW + UINT_NARROW + FLOAT_NARROW

# Element types whose reference-interpreter results the MLIR Python bindings cannot hand to
# NumPy: the interpreter's copy of the module turns them into one of these first, exactly:
# floats by bitcast_convert to the unsigned integer of their width (f4 then widened to ui8),
# sub-byte integers by convert. (Not convert to f32: the interpreter maps the NaN of f8E8M0FNU
# to inf.)
EXPORT_AS = {**{t: ("bits", "ui8") for t in FLOAT_NARROW if t != "f4E2M1FN"},
             "bf16": ("bits", "ui16"), "f4E2M1FN": ("bits", "ui4", "ui8"),
             "i2": ("convert", "i8"), "i4": ("convert", "i8"), "ui2": ("convert", "ui8"),
             "ui4": ("convert", "ui8")}


def dtype(t):
    return dtypes.DTYPE_BY_MLIR[t]


def is_float(t):
    return t in FLOATS


def is_complex(t):
    return t in COMPLEX


def is_int(t):
    return t in INTS


def is_unsigned(t):
    return t in UNSIGNED


def part_type(t):
    """complex<f32> -> f32."""
    return t[len("complex<"):-1] if is_complex(t) else t


def bits(t):
    if t == "i1":
        return 1
    if t in INTS:
        return ml_dtypes.iinfo(dtype(t)).bits
    if t in FLOATS:
        return ml_dtypes.finfo(dtype(t)).bits
    return dtype(t).itemsize * 8


def int_range(t):
    info = ml_dtypes.iinfo(dtype(t))
    return int(info.min), int(info.max)


def tensor(shape, t):
    return f"tensor<{''.join(f'{d}x' for d in shape)}{t}>"


# --------------------------------------------------------------------------------------------
# Values

def float_edges(t):
    """Edge values of a float type (as that type), duplicates dropped."""
    dt = dtype(t)
    fi = ml_dtypes.finfo(dt)
    raw = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, -1.5, 2.5,
           -2.5, 3.0, 0.1, -7.25, np.pi, float(fi.max), -float(fi.max), float(fi.tiny),
           -float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal),
           float(fi.tiny) - float(fi.smallest_subnormal), 1.0 + float(fi.eps), 100.0, -1e4]
    with np.errstate(all="ignore"):
        values = np.array(raw, np.float64).astype(dt)
    return _unique_bits(values)


def int_edges(t):
    lo, hi = int_range(t)
    raw = [lo, hi, 0, 1, -1, 2, -2, lo + 1, hi - 1, 3, 7, -7, 100, -100, 12345, hi // 2]
    return np.array(sorted({v for v in raw if lo <= v <= hi}, key=raw.index), dtype(t))


def edges(t):
    """Edge values of element type `t`, as a 1-D array of that type."""
    if t == "i1":
        return np.array([False, True])
    if t in INTS:
        return int_edges(t)
    if t in FLOATS:
        return float_edges(t)
    part = part_type(t)
    e = float_edges(part)
    picks = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (0.5, -2.5)]
    extra = [x for x in e]
    re = np.array([p[0] for p in picks] + extra + extra[::-1], dtype(part))
    im = np.array([p[1] for p in picks] + extra[3:] + extra[:3] + extra, dtype(part))
    z = np.empty(len(re), dtype(t))
    z.real, z.imag = re, im
    return z


def _unique_bits(values):
    seen, keep = set(), []
    raw = values.view(f"u{values.dtype.itemsize}")
    for i, b in enumerate(raw):
        if int(b) not in seen:
            seen.add(int(b))
            keep.append(i)
    return values[keep]


def random_values(t, n, rng, kind="mixed"):
    """n random values of type `t`. kind: "mixed" (small numbers, wide magnitudes and, for
    floats, random bit patterns), "small" (small integers, as floats too: sums and products stay
    exact) or "unit" (floats in [-1, 1])."""
    dt = dtype(t)
    if t == "i1":
        return rng.integers(0, 2, n).astype(bool)
    if t in INTS:
        lo, hi = int_range(t)
        if kind == "small":
            return rng.integers(max(lo, -4), min(hi, 4) + 1, n).astype(dt)
        small = rng.integers(max(lo, -10), min(hi, 10) + 1, n)
        wide = rng.integers(lo, hi, n, endpoint=True, dtype=np.int64 if lo < 0 else np.uint64)
        return np.where(rng.random(n) < 0.5, small, wide).astype(dt)
    if t in COMPLEX:
        part = part_type(t)
        z = np.empty(n, dt)
        z.real, z.imag = random_values(part, n, rng, kind), random_values(part, n, rng, kind)
        return z
    with np.errstate(all="ignore"):
        if kind == "small":
            return rng.integers(-3, 4, n).astype(np.float64).astype(dt)
        if kind == "unit":
            return rng.uniform(-1, 1, n).astype(dt)
        fi = ml_dtypes.finfo(dt)
        choice = rng.random(n)
        halves = rng.integers(-16, 17, n) / 2.0
        wide = rng.standard_normal(n) * 10.0 ** rng.uniform(-4, 4, n)
        wide = np.clip(wide, -float(fi.max), float(fi.max))
        values = np.where(choice < 0.3, halves, wide).astype(dt)
        nbits = bits(t)
        if nbits >= 8:
            pattern = rng.integers(0, 1 << min(nbits, 63), n, dtype=np.uint64)
            if nbits == 64:
                pattern |= rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
            pattern = pattern.astype(f"u{dt.itemsize}").view(dt)
            values = np.where(choice > 0.85, pattern, values)
        elif nbits == 4:  # f4: every code
            values = rng.integers(0, 16, n).astype(np.uint8).view(dt)
        return values


def fill(t, shape, rng, kind="mixed", edge=True):
    """An array of `shape`: edge values first (in random order), then random values."""
    n = int(np.prod(shape, dtype=np.int64))
    values = random_values(t, n, rng, kind)
    if edge and n:
        e = edges(t)
        if kind == "small" and t in FLOATS + COMPLEX:
            e = e[~_finite_large(e)]
        e = e[rng.permutation(len(e))][:max(1, (2 * n) // 3)]
        values[:len(e)] = e
        values = values[rng.permutation(n)]
    return values.reshape(shape)


def _finite_large(e):
    """Finite values too large (or not integral) for exact sums of "small" values."""
    with np.errstate(all="ignore"):
        w = e.astype(np.complex128) if np.iscomplexobj(e) else e.astype(np.float64)
        parts = [w.real, w.imag] if np.iscomplexobj(w) else [w]
        bad = np.zeros(len(e), bool)
        for p in parts:
            bad |= np.isfinite(p) & ((np.abs(p) > 4) | (p != np.round(p)))
        return bad


def pairs(t, rng, limit=28):
    """Two arrays holding every (edge, edge) pair, plus random values: for binary ops."""
    e = edges(t)
    if len(e) > limit:
        e = e[np.sort(rng.permutation(len(e))[:limit])]
    a, b = np.meshgrid(e, e, indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    r = random_values(t, 64, rng), random_values(t, 64, rng)
    return np.concatenate([a, r[0]]), np.concatenate([b, r[1]])
