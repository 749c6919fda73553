"""Elementwise ops against the CPU oracle: every op over many dtypes and edge values (NaN, +-inf,
-0.0, INT_MIN, INT_MAX, 0), with 0-d, zero-size and non-contiguous operands.

Each test builds one program holding several ops (XLA compile time dominates the run time); on
a mismatch `check_ops` re-checks the ops one by one to name the culprit. Ops JAX never emits for
some types (integer power, TOTALORDER compare, i1 add, logistic, ...) are written through `raw`,
a test-only primitive whose lowering is the StableHLO op itself; the CPU backend still computes
the oracle result.

XLA:CPU runs with denormals flushed to zero (FTZ/DAZ) for f32, f64 and bf16 (computed in f32);
pyrt keeps IEEE denormals. Edge values of those types hold no denormals, and the results of ops
that can underflow into denormals are flushed inside the program (on both backends).
"""

import types
import warnings

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax
from jax._src import core
from jax.extend.core import Primitive
from jax.interpreters import mlir
from jaxlib.mlir.dialects import stablehlo as hlo

from conftest import tensor_type
from jax_pyrt import dtypes, fusion, ops
from jax_pyrt.types import TensorType

BOOL = np.dtype(np.bool_)
SIGNED = [np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64)]
UNSIGNED = [np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64)]
INTS = SIGNED + UNSIGNED
NARROW_INTS = [np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)]
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [F16, BF16, F32, F64]
F8 = [np.dtype(ml_dtypes.float8_e4m3fn), np.dtype(ml_dtypes.float8_e5m2)]
C64, C128 = np.dtype(np.complex64), np.dtype(np.complex128)
COMPLEX = [C64, C128]
FLUSHED = {F32, F64, BF16}
OTHER_FLOATS = [np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz, ml_dtypes.float8_e4m3b11fnuz,
    ml_dtypes.float8_e4m3, ml_dtypes.float8_e3m4, ml_dtypes.float8_e8m0fnu,
    ml_dtypes.float4_e2m1fn)]
ids = lambda dt: np.dtype(dt).name


# ---------------------------------------------------------------------------------------------
# helpers

def raw(name, build, out_dtype=None):
    """A jax-callable emitting `build(*operands)` (one StableHLO op), shaped like operand 0."""
    prim = Primitive(f"pyrt_test_{name}")
    prim.def_abstract_eval(lambda *avals: core.ShapedArray(
        avals[0].shape, avals[0].dtype if out_dtype is None else out_dtype))
    mlir.register_lowering(prim, lambda ctx, *args: [build(*args)])
    return prim.bind


def raw_compare(direction, compare_type):
    return raw(f"compare_{direction}_{compare_type}",
               lambda x, y: hlo.compare(x, y, hlo.ComparisonDirectionAttr.get(direction),
                                        compare_type=hlo.ComparisonTypeAttr.get(compare_type)),
               out_dtype=np.bool_)


_select_prim = Primitive("pyrt_test_select_scalar_pred")
_select_prim.def_abstract_eval(lambda p, x, y: core.ShapedArray(x.shape, x.dtype))
mlir.register_lowering(_select_prim, lambda ctx, p, x, y: [hlo.select(p, x, y)])


def select_scalar_pred(p, x, y):
    """stablehlo.select with a 0-d predicate and array operands (JAX broadcasts it first)."""
    return _select_prim.bind(p, x, y)


def emitted(fn, *args):
    return jax.jit(fn).lower(*args).as_text()


def assert_emits(fn, args, *names):
    text = emitted(fn, *args)
    for name in names:
        assert f"stablehlo.{name} " in text or f"stablehlo.{name}(" in text, \
            f"expected stablehlo.{name} in\n{text}"


def dtypes_is_int(dt):
    return dt.kind in "iu" or dt in NARROW_INTS


def ints(values, dt):
    """Python ints -> an array of integer dtype `dt` (uint64 values beyond int64 included)."""
    wide = np.uint64 if ml_dtypes.iinfo(dt).min == 0 else np.int64
    return np.array([int(v) for v in values], wide).astype(dt)


def edge_values(dt):
    """Interesting values of a dtype, as a 1-D array."""
    dt = np.dtype(dt)
    if dt == BOOL:
        return np.array([False, True, True, False, True])
    if dt.kind in "iu" or dt in NARROW_INTS:
        info = ml_dtypes.iinfo(dt)
        vals = [0, 1, -1, 2, -2, 3, 5, -7, 7, 8, 31, 100, info.min, info.max, info.min + 1,
                info.max - 1, info.max // 2, info.min // 2]
        return ints(sorted({v for v in vals if info.min <= v <= info.max}), dt)
    if dt.kind == "c":
        parts = [0.0, -0.0, 1.0, -1.5, 2.5, 0.3]
        return np.array([complex(a, b) for a in parts for b in parts[:4]], dt)
    info = ml_dtypes.finfo(dt)
    vals = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.7, -3.7, 0.3, 7.0, 100.0,
            float(info.max), -float(info.max), float(info.tiny), -float(info.tiny),
            np.inf, -np.inf, np.nan]
    if dt not in FLUSHED:
        vals.append(float(info.smallest_subnormal))
    with np.errstate(all="ignore"):
        return np.array(vals, np.float64).astype(dt)


def outer(a, b):
    """All pairs (a[i], b[j]) as two flat arrays."""
    return np.repeat(a, len(b)), np.tile(b, len(a))


def ftz(x):
    """XLA:CPU's denormal flushing, applied in the program to f32/f64/bf16 results."""
    dt = np.dtype(x.dtype)
    if dt not in FLUSHED:
        return x
    # 2 * tiny: a printed constant of tiny itself can parse to a denormal, which pyrt's compile
    # thread (FTZ set by XLA's thread pool) flushes to 0
    return jnp.where(lax.abs(x) < dt.type(2 * ml_dtypes.finfo(dt).tiny), x * dt.type(0), x)


EXACT = dict(rtol=0, atol=0)  # floats bit for bit, up to NaN payloads and the sign of zero
TOL = {F16: 2e-3, BF16: 1.6e-2, F32: 2e-6, F64: 1e-13, C64: 2e-6, C128: 1e-13, F8[0]: 0.26,
       F8[1]: 0.26}


def tol(dt, scale=1.0):
    t = TOL.get(np.dtype(dt), 0) * scale
    return dict(rtol=t, atol=t)


ALL_LAYOUTS = ("full", "T", "0d", "empty")
# Every layout for a few representative dtypes; the others run the plain 2-D operands only.
LAYOUT_DTYPES = {np.dtype(np.int8), np.dtype(np.uint32), np.dtype(ml_dtypes.int4), BF16, F32,
                 C64}


def variants_for(dt):
    return ALL_LAYOUTS if np.dtype(dt) in LAYOUT_DTYPES else ("full",)


def layouts(fn, arrays, variants=ALL_LAYOUTS):
    """(multi, args): `multi(*args)` calls `fn(variant, *operands)` on 2-D operands ("full"), on
    their transposes ("T", strided views in pyrt), on 0-d operands ("0d") and on zero-size
    operands ("empty")."""
    k = len(arrays)
    mid = len(arrays[0]) // 2
    inputs = {"full": [np.stack([a, a[::-1]]) for a in arrays],
              "0d": [np.asarray(a[mid]) for a in arrays],
              "empty": [np.zeros((0, 3), a.dtype) for a in arrays]}
    kinds = [v for v in ("full", "0d", "empty")
             if v in variants or (v == "full" and "T" in variants)]

    def multi(*args):
        groups = {kind: args[i * k:(i + 1) * k] for i, kind in enumerate(kinds)}
        out = {}
        for v in variants:
            xs = [x.T for x in groups["full"]] if v == "T" else groups[v]
            out[v] = fn(v, *xs)
        return out

    return multi, [x for kind in kinds for x in inputs[kind]]


def check_ops(check, fns, *arrays, flush=(), variants=ALL_LAYOUTS, layout_ops=None,
              emits=True, **kw):
    """Checks every op of `fns` ({"op" or "op/variant": jax function}) on `arrays` in one program,
    in each layout of `variants` (the layouts other than "full" only for the ops in
    `layout_ops`, default all); results of the ops in `flush` get XLA:CPU's denormal flushing.
    With `emits`, asserts that each stablehlo op named by a key is in the lowered program."""
    def program(names):
        def apply(variant, *xs):
            out = {}
            for name in names:
                if variant != "full" and layout_ops is not None and name not in layout_ops:
                    continue
                r = fns[name](*xs)
                out[name] = jax.tree_util.tree_map(ftz, r) if name in flush else r
            return out
        return layouts(apply, arrays, variants)

    multi, args = program(list(fns))
    if emits:  # (on the plain operands only: lowering every layout again costs time)
        assert_emits(lambda *xs: [fns[name](*xs) for name in fns], arrays,
                     *{name.split("/")[0] for name in fns})
    try:
        return check(multi, *args, **kw)
    except AssertionError:
        if len(fns) == 1:
            raise
    for name in fns:  # name the failing op
        single, args = program([name])
        try:
            check(single, *args, **kw)
        except AssertionError as e:
            raise AssertionError(f"stablehlo.{name} on {[a.dtype for a in arrays]}: {e}") from None
    raise AssertionError("the ops pass one by one but not together")


def float_bits(x):
    """The bit pattern of a float result (NaNs mapped to 0), to compare signed zeros exactly."""
    dt = np.dtype(x.dtype)
    if dt == np.dtype(ml_dtypes.float4_e2m1fn):  # no 4-bit bitcasts in JAX; f32 holds it exactly
        return float_bits(lax.convert_element_type(x, F32))
    u = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[dt.itemsize]
    return jnp.where(x != x, u(0), lax.bitcast_convert_type(x, u))


def as_bits(x):
    """Float results as their bit patterns (bitcasts move bits, NaN payloads included)."""
    dt = np.dtype(x.dtype)
    if dt.kind in "iub" or dtypes.is_integer(dt):
        return x
    if dt == np.dtype(ml_dtypes.float4_e2m1fn):  # 4 bits: as its integer code
        return lax.bitcast_convert_type(x, ml_dtypes.uint4)
    return lax.bitcast_convert_type(x, {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32,
                                        8: jnp.uint64}[dt.itemsize])


def run_on(platform, fn, *args):
    device = jax.devices(platform)[0]
    return np.asarray(jax.jit(fn)(*[jax.device_put(a, device) for a in args]))


# ---------------------------------------------------------------------------------------------
# binary arithmetic

DIRECTIONS = ["EQ", "NE", "LT", "LE", "GT", "GE"]
LAX_COMPARE = dict(zip(DIRECTIONS, [lax.eq, lax.ne, lax.lt, lax.le, lax.gt, lax.ge]))
ARITH = {"add": lax.add, "subtract": lax.sub, "multiply": lax.mul, "divide": lax.div,
         "remainder": lax.rem, "maximum": lax.max, "minimum": lax.min}


BINARY_INTS = [t for t in INTS if t.itemsize != 2]  # 16-bit: shifts, unary, division edges


@pytest.mark.parametrize("dt", BINARY_INTS + NARROW_INTS + FLOATS + F8 + COMPLEX, ids=ids)
def test_binary_ops(check, dt):
    """Every pair of edge values. Exactly rounded ops are bit-exact (narrow floats: float32,
    then one rounding); integers wrap; x / 0, INT_MIN / -1, x % 0 as XLA; max/min propagate
    NaN; compare FLOAT is IEEE (NaN unordered, NE true), SIGNED/UNSIGNED by type, complex
    EQ/NE; bitwise ops on integers."""
    v = edge_values(dt)
    a, b = outer(v, v)
    fns = dict(ARITH)
    if dt.kind == "c":
        for name in ("remainder", "maximum", "minimum"):
            del fns[name]
    # all six comparison directions on the representative dtypes, four elsewhere
    directions = (["EQ", "NE"] if dt.kind == "c" else
                  DIRECTIONS if dt in LAYOUT_DTYPES else ["EQ", "NE", "LT", "GE"])
    fns["compare"] = lambda x, y: tuple(LAX_COMPARE[d](x, y) for d in directions)
    if dtypes_is_int(dt):
        fns["power"] = raw("ipow", hlo.power)  # JAX has no integer pow op
        fns.update({"and": lax.bitwise_and, "or": lax.bitwise_or, "xor": lax.bitwise_xor,
                    "not": lambda x, y: lax.bitwise_not(x)})
    check_ops(check, fns, a, b, flush=("multiply", "divide"), variants=variants_for(dt),
              layout_ops=("add", "divide", "remainder", "maximum", "compare", "power", "not"),
              **(tol(dt, 4) if dt.kind == "c" else EXACT))


def test_integer_division_edges(check):
    """Truncation toward zero, x / 0, INT_MIN / -1 and x % 0 for every signed and unsigned width."""
    for dt in INTS:
        info = np.iinfo(dt)
        if dt.kind == "i":
            x = [7, -7, 7, -7, 0, 5, info.max, info.min, info.min, info.min, info.min + 1]
            y = [2, 2, -2, -2, 0, 0, 0, 0, -1, 1, -1]
        else:
            x, y = [7, 0, 5, info.max, 1, info.max], [2, 0, 0, 0, 1, 2]
        check(lambda p, q: (lax.div(p, q), lax.rem(p, q)), ints(x, dt), ints(y, dt))


def test_integer_power_edges(check):
    """As XLA:CPU: negative exponents give 1 for base 1, +-1 for base -1, else 0; the exponent
    counts mod 64; an unsigned exponent with its top bit set counts as negative."""
    ipow = raw("ipow", hlo.power)
    for dt in (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint8)):
        info = np.iinfo(dt)
        b = [3, 3, 3, 3, 5, 7, 2, 1, info.max, 0, 2, 3]
        e = [63, 64, 65, 100, 127, info.max, 64, info.max, 100, 0, 7, 0]
        if dt.kind == "i":
            b += [-3, -1, -1, 1, 2, 0, -2]
            e += [101, -1, -2, info.min, -1, -1, -3]
        else:
            b += [7, info.max, info.max, 1]
            e += [200, 200, 201, 255]
        check(ipow, ints(b, dt), ints(e, dt))


@pytest.mark.parametrize("dt", FLOATS + F8 + COMPLEX, ids=ids)
def test_power_atan2(check, dt):
    """Float power and atan2 within a few ulp, specials (0**0, inf, NaN, negative bases) exact;
    complex power with XLA's polar formula; complex atan2 by the spec's formula."""
    v = edge_values(dt)
    a, b = outer(v, v)
    if dt.kind == "c":
        fns = {"power": lax.pow, "atan2": raw("catan2", hlo.atan2)}
        # away from complex atan2's branch cut (real part +-pi), where rounding picks the side
        with np.errstate(all="ignore"):
            q = (b + 1j * a) / np.sqrt(a.astype(C128) ** 2 + b.astype(C128) ** 2)
        keep = np.abs(np.abs(np.angle(q)) - np.pi) > 1e-2
        a, b = a[keep], b[keep]
    else:
        fns = {"power": lax.pow, "atan2": lax.atan2}
    check_ops(check, fns, a, b, flush=("power", "atan2"), **tol(dt, 1e3 if dt.kind == "c" else 4))


def test_bool_ops(check):
    """i1: add is or, multiply is and, max is or, min is and; and/or/xor/not are logical."""
    a, b = outer(np.array([False, True]), np.array([False, True]))
    fns = {name: raw(f"bool_{name}", build) for name, build in
           [("add", hlo.add), ("multiply", hlo.multiply), ("maximum", hlo.maximum),
            ("minimum", hlo.minimum)]}
    fns.update({"and": lax.bitwise_and, "or": lax.bitwise_or, "xor": lax.bitwise_xor,
                "not": lambda x, y: lax.bitwise_not(x),
                "compare": lambda x, y: tuple(LAX_COMPARE[d](x, y) for d in DIRECTIONS),
                "select": lambda x, y: lax.select(x, y, x),
                "clamp": lambda x, y: lax.clamp(x, y, np.bool_(True))})
    check_ops(check, fns, a, b)


# ---------------------------------------------------------------------------------------------
# shifts, popcnt, clz

@pytest.mark.parametrize("dt", INTS + NARROW_INTS, ids=ids)
def test_shifts(check, dt):
    """Amounts >= the bit width or negative give 0 (or the sign fill); arithmetic shifts of
    unsigned and logical shifts of signed values work on the bit pattern."""
    v = edge_values(dt)
    info = ml_dtypes.iinfo(dt)
    n = info.bits
    amounts = [0, 1, 2, n - 1, n, n + 1, 2 * n, -1, -n, info.max, info.min]
    s = ints([x for x in amounts if info.min <= x <= info.max], dt)
    a, b = outer(v, s)
    check_ops(check, {"shift_left": lax.shift_left,
                      "shift_right_arithmetic": lax.shift_right_arithmetic,
                      "shift_right_logical": lax.shift_right_logical}, a, b,
              variants=variants_for(dt))


def test_int4_popcnt_clz(check):
    """int4: clz against the CPU; popcnt against the CPU's popcnt of the same bits as uint4
    (XLA:CPU counts the sign-extended 8-bit pattern of a negative int4, not the spec's 4 bits)."""
    v = np.arange(-8, 8).astype(ml_dtypes.int4)
    check(lax.clz, v)
    check(lax.population_count, v[8:])  # non-negative: the CPU agrees
    expected = run_on("cpu", lax.population_count, v.view(ml_dtypes.uint4))
    actual = run_on("pyrt", lax.population_count, v)
    assert actual.dtype == v.dtype
    np.testing.assert_array_equal(actual.astype(np.int8), expected.astype(np.int8))


# ---------------------------------------------------------------------------------------------
# unary ops

EXACT_UNARY = {"negate": lax.neg, "abs": lax.abs, "sign": lax.sign, "floor": lax.floor,
               "ceil": lax.ceil, "sqrt": lax.sqrt, "is_finite": lax.is_finite,
               "round_nearest_afz": lambda x: lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO),
               "round_nearest_even": lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)}


@pytest.mark.parametrize("dt", FLOATS + F8, ids=ids)
def test_exact_float_unary(check, dt):
    """Bit-exact unary float ops, with rounding ties and values next to them."""
    extra = [0.49999997, -0.49999997, 0.5000001, -1.5, 3.5, -4.5, 1e6 + 0.5, 2.0 ** 23 + 1,
             -(2.0 ** 23) - 1, 2.0 ** 52 + 1]
    with np.errstate(all="ignore"):
        v = np.concatenate([edge_values(dt), np.array(extra).astype(dt)])
    check_ops(check, EXACT_UNARY, v, variants=variants_for(dt),
              layout_ops=("sign", "round_nearest_afz", "is_finite"), **EXACT)


@pytest.mark.parametrize("dt", INTS + NARROW_INTS, ids=ids)
def test_integer_unary(check, dt):
    """negate wraps (INT_MIN, unsigned); abs(INT_MIN) = INT_MIN; sign is -1/0/1; popcnt and
    count_leading_zeros on every bit length."""
    n = ml_dtypes.iinfo(dt).bits
    v = ints([int(x) for x in edge_values(dt)] + [1 << k for k in range(n - 1)]
             + [(1 << k) - 1 for k in range(1, n)], dt)
    fns = {"negate": lax.neg, "count_leading_zeros": lax.clz}
    if ml_dtypes.iinfo(dt).min < 0:  # abs and sign take signless (signed) integers only
        fns.update({"sign": lax.sign, "abs": raw("iabs", hlo.abs)})
    if dt != np.dtype(ml_dtypes.int4):  # see test_int4_popcnt_clz
        fns["popcnt"] = lax.population_count
    check_ops(check, fns, v, variants=variants_for(dt),
              layout_ops=("count_leading_zeros", "popcnt", "abs"))


def test_signed_zeros_and_nan_bits(check):
    """-0.0 vs +0.0 bit for bit: maximum/minimum (-0.0 < +0.0), sign, clamp, rounding, negate."""
    for dt in FLOATS:
        v = np.array([-0.0, 0.0, -0.3, 0.3, -1.0, 1.0, np.nan], np.float64).astype(dt)
        a, b = outer(v, v)

        def f(x, y):
            outs = [lax.max(x, y), lax.min(x, y), lax.sign(x), lax.neg(x), lax.abs(x),
                    lax.clamp(dt.type(0.0), x, dt.type(1.0)), lax.clamp(dt.type(-0.0), x, y),
                    lax.round(x, lax.RoundingMethod.AWAY_FROM_ZERO),
                    lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), lax.floor(x), lax.ceil(x),
                    lax.max(x, dt.type(0.0)), lax.max(dt.type(0.0), x), x * y, x + y, x - y]
            return tuple(float_bits(o) for o in outs)

        check(f, a, b)


TRANSCENDENTAL = {"exponential": lax.exp, "exponential_minus_one": lax.expm1, "log": lax.log,
                  "log_plus_one": lax.log1p, "logistic": raw("logistic", hlo.logistic),
                  "sine": lax.sin, "cosine": lax.cos, "tan": lax.tan, "tanh": lax.tanh,
                  "rsqrt": lax.rsqrt, "cbrt": lax.cbrt}


@pytest.mark.parametrize("dt", FLOATS + F8, ids=ids)
def test_transcendental(check, dt):
    """Within a few ulp of XLA:CPU's approximations; narrow floats computed in float32; specials
    (+-inf, NaN, +-0, log of negatives, exp overflow) exactly; no NumPy warnings."""
    v = [0.0, -0.0, 0.1, -0.1, 0.5, -0.5, 1.0, -1.0, 1.5, -2.0, 3.0, -3.0, 1e-3, -1e-3, 7.5,
         -7.5, 20.0, -20.0, 1e-6, -0.999, 80.0, -80.0, 700.0, -700.0, 1e4, -1e4, np.inf,
         -np.inf, np.nan]
    with np.errstate(all="ignore"):
        v = np.array(v).astype(dt)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid warnings from the runtime
        check_ops(check, TRANSCENDENTAL, v, variants=variants_for(dt),
                  layout_ops=("exponential", "logistic", "tanh"), **tol(dt, 4))


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_unary(check, dt):
    """Complex transcendental functions (JAX expands exp, log, sqrt, sin, cos, log1p into real
    ops before pyrt sees them; tan, tanh, rsqrt, expm1, logistic stay complex)."""
    v = np.array([complex(a, b) for a in (0.3, -0.7, 1.5, -2.0, 1e-7)
                  for b in (0.0, 0.4, -1.3, 2.2, 1e-7)], dt)
    fns = {name: TRANSCENDENTAL[name] for name in
           ("exponential", "exponential_minus_one", "log", "log_plus_one", "sine", "cosine",
            "tan", "tanh", "rsqrt", "logistic")}
    fns.update({"sqrt": lax.sqrt, "abs": lax.abs, "sign": lax.sign, "negate": lax.neg,
                "real": lax.real, "imag": lax.imag})
    check_ops(check, fns, v, variants=("full", "T", "0d", "empty") if dt == C64 else ("full",),
              **tol(dt, 8))


@pytest.mark.parametrize("dt", [F32, F64], ids=ids)
def test_complex_construct(check, dt):
    v = edge_values(dt)
    a, b = outer(v, v)
    check_ops(check, {"complex": lax.complex, "real": lambda x, y: lax.real(lax.complex(x, y)),
                      "imag": lambda x, y: lax.imag(lax.complex(x, y))}, a, b, **EXACT)


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_special_values(check, dt):
    """x / 0, infinite and NaN parts: XLA:CPU's corner cases for divide and power."""
    parts = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan]
    v = np.array([complex(p, q) for p in parts for q in parts], dt)
    a, b = outer(v, v)
    f = lambda x, y: (x + y, x - y, x * y, lax.div(x, y), lax.pow(x, y))
    check(f, a, b, **tol(dt, 8))


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_transcendental_special_values(check, check_mlir, dt):
    """Infinite and NaN parts as XLA:CPU gives them (its complex exp follows StableHLO's
    complex-math expansion, sin/cos the textbook formulas, tan/tanh NaN + NaN i on an infinite
    axis), not as C's cexp, csin, ctan: the ops themselves, and jnp.cosh / sinh / tan / tanh /
    expm1, which reach pyrt as composites of them (JAX's lax_test FunctionAccuracyTest).
    Real and imaginary parts are compared apart (a NaN in either makes the whole value "NaN"
    for assert_allclose)."""
    parts = [0.0, -0.0, 1.5, -2.5, 100.0, np.inf, -np.inf, np.nan]
    z = np.array([complex(p, q) for p in parts for q in parts], dt)
    element = tensor_type(z.shape, dt)
    part = tensor_type(z.shape, np.float32 if dt == C64 else np.float64)
    for name in ("exponential", "exponential_minus_one", "sine", "cosine", "tan", "tanh"):
        check_mlir(f"""
            func.func @main(%z: {element}) -> ({part}, {part}) {{
              %0 = stablehlo.{name} %z : {element}
              %re = stablehlo.real %0 : ({element}) -> {part}
              %im = stablehlo.imag %0 : ({element}) -> {part}
              return %re, %im : {part}, {part}
            }}""", z, **tol(dt, 8))
    parts_of = lambda f: lambda v: (jnp.real(f(v)), jnp.imag(f(v)))  # noqa: E731
    for f in (jnp.cosh, jnp.sinh, jnp.tan, jnp.tanh, jnp.expm1):
        check(parts_of(f), z, **tol(dt, 8))


# ---------------------------------------------------------------------------------------------
# compare, select, clamp

TOTAL_ORDER_TYPES = FLOATS + F8 + OTHER_FLOATS


@pytest.mark.parametrize("dt", TOTAL_ORDER_TYPES, ids=ids)
def test_compare_total_order(check, dt):
    """TOTALORDER: -NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN, NaN == NaN by bit
    pattern (payloads too). 8-bit types: all bit patterns; the fnuz types' NaN sorts first."""
    if dt.itemsize == 1:
        v = np.arange(16 if dt == np.dtype(ml_dtypes.float4_e2m1fn) else 256,
                      dtype=np.uint8).view(dt)
    else:
        u = np.dtype(f"u{dt.itemsize}")
        nbits = 8 * dt.itemsize
        payload_nans = np.array([2 ** nbits - 1, 2 ** (nbits - 1) - 1, 2 ** nbits - 2],
                                np.uint64).astype(u).view(dt)
        with np.errstate(all="ignore"):
            neg_nan = np.array([-np.nan], np.float64).astype(dt)
        v = np.concatenate([edge_values(dt), neg_nan, payload_nans])
    a, b = outer(v, v)
    directions = DIRECTIONS if dt == F32 else ["EQ", "LT", "GE"]
    fns = {f"compare/{d}": raw_compare(d, "TOTALORDER") for d in directions}
    assert "TOTALORDER" in emitted(fns["compare/LT"], a, b)
    check_ops(check, fns, a, b, variants=("full",) if dt.itemsize == 1 else variants_for(dt))


@pytest.mark.parametrize("dt", [BOOL, np.dtype(np.int32), np.dtype(np.uint8), F16, BF16, F64,
                                F8[1], C128, np.dtype(ml_dtypes.uint4)], ids=ids)
def test_select(check, dt):
    """Same-shape predicate (all layouts) and a 0-d predicate with array operands."""
    v = edge_values(dt)
    pred = np.arange(len(v)) % 3 == 0
    check_ops(check, {"select": lax.select}, pred, v, v[::-1].copy(), variants=variants_for(dt))
    # a scalar predicate picks a whole operand
    f = lambda p, q, x, y: (select_scalar_pred(p, x, y), select_scalar_pred(q, x, y))
    args = (np.asarray(True), np.asarray(False), v, v[::-1].copy())
    assert_emits(f, args, "select")
    check(f, *args)


@pytest.mark.parametrize("dt", [np.dtype(t) for t in (np.int8, np.int32, np.uint16, np.uint64)]
                         + NARROW_INTS + FLOATS + F8, ids=ids)
def test_clamp(check, dt):
    """Scalar and array bounds (NaN bounds and min > max included)."""
    v = edge_values(dt)
    lo, hi = (dt.type(-1.5), dt.type(2.5)) if dt in FLOATS + F8 else (v[1], v[-2])
    a, b = outer(v, v)
    check_ops(check, {"clamp/scalar": lambda l, x, h: lax.clamp(lo, x, hi),
                      "clamp/array": lax.clamp}, a, b, b[::-1].copy(), variants=variants_for(dt),
              **EXACT)


# ---------------------------------------------------------------------------------------------
# convert, bitcast_convert, reduce_precision

CONVERT_TYPES = [BOOL] + INTS + NARROW_INTS + FLOATS + F8 + COMPLEX


def convert_sources(dt):
    vals = edge_values(dt)
    if dt in FLOATS + F8:
        extra = [127.5, 128.0, 255.9, 256.0, -128.9, -129.0, 32767.5, 65535.9, 2.0 ** 31,
                 -(2.0 ** 31) - 1000, 2.0 ** 32, 2.0 ** 63, -(2.0 ** 63), 2.0 ** 64, 1e20, -1e20,
                 7.9, -8.9, 15.5, 1 + 2.0 ** -8 + 2.0 ** -30, 1 + 2.0 ** -11 + 2.0 ** -40,
                 65519.0, 65520.0, 448.0, 464.0, 1e-9, 2.0 ** 24 + 1]
        with np.errstate(all="ignore"):
            return np.concatenate([vals, np.array(extra).astype(dt)])
    if dt.kind == "c":
        return np.concatenate([vals, np.array([3.7 - 2j, -1e10 + 1j, np.nan + 1j, 1j], dt)])
    if dt == BOOL:
        return vals
    info = ml_dtypes.iinfo(dt)
    extra = [2 ** 24 + 1, 2 ** 53 + 1, 2 ** 31 - 1, 2 ** 62 + 2 ** 30 + 1, 65519, 65520, 300,
             -300, 2049]
    return ints([int(x) for x in vals] + [x for x in extra if info.min <= x <= info.max], dt)


@pytest.mark.filterwarnings("ignore:Casting complex values")
@pytest.mark.parametrize("src", [t for t in CONVERT_TYPES if t not in (np.dtype(np.int16),
                                                                       np.dtype(np.uint16))],
                         ids=ids)
def test_convert(check, src):
    """src -> every type: float -> int truncates, saturates and maps NaN to 0; int -> int wraps;
    -> bool is x != 0; bool -> 0/1; complex -> real part; narrow floats round once."""
    x = convert_sources(src)
    targets = [t for t in CONVERT_TYPES if t != src and not (src.kind == "c" and t in NARROW_INTS)]
    f = lambda v: tuple(lax.convert_element_type(v, t) for t in targets)
    assert emitted(f, x).count("stablehlo.convert") >= len(targets) - 1
    check(f, x, **EXACT)


def test_convert_bool_bytes_to_8_bit_ints(check):
    """A bool array viewing raw bytes (not 0/1; JAX's testViewScalar makes them) converts to an
    8-bit integer byte for byte, as on XLA:CPU (wider types see 0/1)."""
    raw = np.array([0, 1, 96, 255, 2], np.uint8).view(np.bool_)
    check(lambda v: (v.view(np.int8), lax.convert_element_type(v, np.uint8),
                     lax.convert_element_type(v, np.int32)), raw)


@pytest.mark.filterwarnings("ignore:Casting complex values")
@pytest.mark.parametrize("src,dst", [(F32, np.int32), (F64, np.uint8), (BF16, np.int8),
                                     (np.int64, F16), (C64, F32), (np.uint8, BF16)], ids=ids)
def test_convert_layouts(check, src, dst):
    check_ops(check, {"convert": lambda v: lax.convert_element_type(v, dst)},
              convert_sources(np.dtype(src)), **EXACT)


BITCAST_PAIRS = [(np.float32, np.int32), (np.float32, np.uint32), (np.int64, np.float64),
                 (np.uint16, np.float16), (ml_dtypes.bfloat16, np.int16),
                 (np.int8, ml_dtypes.float8_e4m3fn), (np.uint8, np.int8),
                 (ml_dtypes.int4, ml_dtypes.uint4), (np.float32, np.int8), (np.float32, np.uint16),
                 (np.float64, np.int32), (np.float64, np.uint8), (np.int64, ml_dtypes.bfloat16),
                 (np.uint32, np.float16), (np.float16, ml_dtypes.float8_e5m2),
                 # sub-byte types pack least significant first (JAX's testBitcastConvertType)
                 (np.uint8, ml_dtypes.int4), (ml_dtypes.uint4, np.int8),
                 (np.int16, ml_dtypes.uint4), (ml_dtypes.int4, np.float32),
                 (np.uint16, ml_dtypes.uint2), (ml_dtypes.int2, np.uint8),
                 (np.float32, ml_dtypes.float4_e2m1fn), (ml_dtypes.float4_e2m1fn, np.uint16)]


def bit_width(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "V" or dtype in NARROW_INTS:
        info = ml_dtypes.iinfo(dtype) if dtypes.is_integer(dtype) else ml_dtypes.finfo(dtype)
        return info.bits
    return dtype.itemsize * 8


@pytest.mark.parametrize("src,dst", BITCAST_PAIRS, ids=ids)
def test_bitcast_convert(check, src, dst):
    """Same width and width-changing forms (f32[n] -> i8[n,4] and back), compared as bits."""
    src, dst = np.dtype(src), np.dtype(dst)
    rng = np.random.RandomState(0)
    if bit_width(src) < 8:  # every code of the narrow type
        codes = rng.randint(0, 2 ** bit_width(src), size=48).astype(np.uint8)
        x = codes.view(src)
    else:
        x = rng.randint(0, 256, size=48 * max(src.itemsize, dst.itemsize)).astype(np.uint8)
        x = x.view(src)
    ratio = bit_width(src) / bit_width(dst)
    if ratio < 1:  # narrow -> wide: the operand's minor dimension folds into one element
        x = x.reshape(-1, int(1 / ratio))
    f = lambda v: as_bits(lax.bitcast_convert_type(v, dst))
    g = lambda v: as_bits(lax.bitcast_convert_type(lax.bitcast_convert_type(v, dst), src))
    assert_emits(f, (x,), "bitcast_convert")
    check(lambda v: (f(v), g(v)), x)
    if ratio >= 1:  # non-contiguous, zero-size and 0-d operands
        check(lambda v, e, s: (f(v.T), f(e), f(s)), np.stack([x[:6], x[6:12]]),
              np.zeros((0, 3), src), np.asarray(x[3]))
    else:
        check(lambda v: f(jnp.transpose(v.reshape(2, -1, v.shape[-1]), (1, 0, 2))), x[:8])


REDUCE_FORMATS = [(5, 10), (5, 3), (4, 10), (5, 0), (2, 1), (8, 7), (8, 23), (3, 2), (11, 52),
                  (6, 5), (1, 0)]


@pytest.mark.parametrize("dt", FLOATS + F8 + [np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e4m3, ml_dtypes.float8_e8m0fnu,
    ml_dtypes.float4_e2m1fn)], ids=ids)
def test_reduce_precision(check, dt):
    """XLA's algorithm bit for bit (NaNs kept, denormals flushed when the exponent shrinks); all
    bit patterns of 4-, 8- and 16-bit types, random ones of f32/f64."""
    nbits = ml_dtypes.finfo(dt).bits
    u = np.dtype(f"u{dt.itemsize}")
    if nbits <= 16:
        x = np.arange(2 ** nbits, dtype=np.uint64).astype(u).view(dt)
    else:
        rng = np.random.RandomState(1)
        x = rng.randint(0, 2 ** 63, size=3000, dtype=np.int64).astype(np.uint64)
        x = np.concatenate([x, x | np.uint64(1 << 63)]).astype(u).view(dt)
        x = np.concatenate([x, edge_values(dt)])

    formats = REDUCE_FORMATS if dt.itemsize > 1 else REDUCE_FORMATS[:4] + REDUCE_FORMATS[-4:]

    def f(v):  # (NaN payloads left out: XLA:CPU canonicalizes some when it converts types)
        return tuple(float_bits(lax.reduce_precision(v, e, m)) for e, m in formats)

    assert "stablehlo.reduce_precision" in emitted(f, x)
    check(f, x)
    check(lambda v, s: (lax.reduce_precision(v.T, 5, 2), lax.reduce_precision(s, 3, 1)),
          x[:16].reshape(4, 4), np.asarray(x[7]), **EXACT)


# ---------------------------------------------------------------------------------------------
# narrow ints and floats

def test_narrow_int_wraparound(check):
    """int4/uint4/int2/uint2, every pair: + - * and negate wrap; division, shifts, clz."""
    for dt in NARROW_INTS + [np.dtype(ml_dtypes.int2), np.dtype(ml_dtypes.uint2)]:
        info = ml_dtypes.iinfo(dt)
        v = np.arange(info.min, info.max + 1).astype(dt)
        a, b = outer(v, v)
        check(lambda x, y: (x + y, x - y, x * y, -x, lax.div(x, y), lax.rem(x, y),
                            lax.shift_left(x, y), lax.shift_right_logical(x, y), lax.clz(x),
                            lax.convert_element_type(x, np.float32)), a, b)
    v = np.arange(-2, 2).astype(ml_dtypes.int2)
    check(lax.population_count, v)  # all four patterns (XLA:CPU is right on int2)


@pytest.mark.parametrize("dt", OTHER_FLOATS, ids=ids)
def test_other_narrow_floats(check, dt):
    """The remaining f8 and f4 types: arithmetic in float32, one rounding; conversions."""
    count = 16 if dt.itemsize * 8 > ml_dtypes.finfo(dt).bits else 256
    v = np.arange(count, dtype=np.uint8).view(dt)
    if dt == np.dtype(ml_dtypes.float8_e8m0fnu):  # no products in f32's denormal range (FTZ)
        v = v[67:]
    a, b = outer(v, v[::7])
    f32 = np.linspace(-3, 3, 61).astype(np.float32)
    check(lambda x, y, z: (x + y, x * y, lax.max(x, y), x < y, lax.convert_element_type(x, F32),
                           lax.convert_element_type(z, dt)), a, b, f32, **EXACT)


def test_narrow_float_rounds_once(check):
    """bf16/f16/f8 results are float32 results rounded once (exact for + - * / sqrt)."""
    rng = np.random.RandomState(3)
    for dt in [F16, BF16] + F8:
        a = rng.randn(300).astype(np.float32).astype(dt)
        b = rng.randn(300).astype(np.float32).astype(dt)
        check(lambda x, y: (x + y, x - y, x * y, x / y, lax.sqrt(lax.abs(x))), a, b, **EXACT)


# ---------------------------------------------------------------------------------------------
# structure: every op has a handler; the fast path returns bare ufuncs

ELEMENTWISE = """abs add and atan2 cbrt ceil clamp compare complex convert bitcast_convert cosine
count_leading_zeros divide exponential exponential_minus_one floor imag is_finite log
log_plus_one logistic maximum minimum multiply negate not or popcnt power real reduce_precision
remainder round_nearest_afz round_nearest_even rsqrt select shift_left shift_right_arithmetic
shift_right_logical sign sine sqrt subtract tan tanh xor""".split()


def test_every_elementwise_op_is_registered():
    for name in ELEMENTWISE:
        handler = ops.lookup(f"stablehlo.{name}")
        assert handler is not None, name
        assert handler.__doc__.startswith(f"Spec: {name}."), name


def _fake_op(result_dtype, operand_dtypes, operand_shape=(4,)):
    t = lambda dt, shape=(4,): TensorType(shape, dt)
    return types.SimpleNamespace(
        result=t(result_dtype), result_types=[t(result_dtype)], name="fake", location="",
        operand_types=[t(operand_dtypes[0], operand_shape)] + [t(d) for d in operand_dtypes[1:]],
        has=lambda n: False, attr=lambda n, d=None: d, enum=lambda n, d=None: d)


@pytest.mark.parametrize("name,ufunc,dt", [
    ("add", np.add, np.float32), ("add", np.add, np.int64), ("subtract", np.subtract, np.float64),
    ("multiply", np.multiply, np.int32), ("divide", np.divide, np.float32),
    ("sine", np.sin, np.float32), ("exponential", np.exp, np.float64),
    ("tanh", np.tanh, np.float32),
    ("maximum", np.maximum, np.int32), ("negate", np.negative, np.float32),
    ("shift_left", np.left_shift, np.int32), ("shift_right_arithmetic", np.right_shift, np.int64),
    ("shift_right_logical", np.right_shift, np.uint32), ("and", np.bitwise_and, np.uint8),
    ("not", np.invert, np.bool_), ("floor", np.floor, np.float32), ("sqrt", np.sqrt, np.float16),
    ("add", np.add, np.float16), ("remainder", np.fmod, np.float32), ("log", np.log, np.float32),
    ("round_nearest_even", np.rint, np.float64), ("is_finite", np.isfinite, np.float32),
    ("select", np.where, np.float32)], ids=str)
def test_fast_path_is_the_bare_ufunc(name, ufunc, dt):
    dt = np.dtype(dt)
    operands = [BOOL, dt, dt] if name == "select" else [dt, dt]
    result = BOOL if name == "is_finite" else dt
    kernel = ops.lookup(f"stablehlo.{name}")(_fake_op(result, operands))
    assert kernel is ufunc


@pytest.mark.parametrize("dt", [BOOL, np.dtype(np.int8), F16, BF16, F32, F64, C64, C128],
                         ids=ids)
def test_large_select_keeps_the_picked_bits(check, monkeypatch, dt):
    """Large selects pick bits through a mask (from 4K elements) and run in fused groups (here
    from 64K): NaN payloads and signed zeros come through as XLA:CPU passes them."""
    monkeypatch.setattr(fusion, "FUSE_ELEMENTS", 1 << 16)
    rng = np.random.default_rng(0)
    v = edge_values(dt)
    if dtypes.is_float(dt) and dt != BF16:  # XLA:CPU's bf16 select canonicalizes NaNs
        u = np.dtype(f"u{dt.itemsize}")
        sign = np.array(1 << (8 * dt.itemsize - 1), u)
        nans = (sign - 1) ^ np.arange(3, dtype=u)  # NaNs with payloads, of both signs
        v = np.concatenate([v, nans.view(dt), (nans | sign).view(dt)])
    bits = (lambda x: x) if dt.kind in "bc" else (
        lambda x: lax.bitcast_convert_type(x, np.dtype(f"u{dt.itemsize}")))
    for n in (5000, 1 << 17):
        pred = rng.random(n) < 0.5
        a, b = np.resize(v, n), np.resize(v[::-1], n)
        check(lambda p, x, y: bits(lax.select(p, x, y)), pred, a, b, exact=True)
        if dt.kind != "b":  # in a fused group, beside a negate (a sign flip)
            check(lambda p, x, y: bits(lax.select(p, -x, y)), pred, a, b, exact=True)
    # A broadcast predicate (a causal mask's pattern) and a broadcast operand.
    row = lambda p: lax.broadcast_in_dim(p[:128], (64, 128), (1,))
    check(lambda p, x, y: bits(lax.select(row(p), x[:8192].reshape(64, 128), row(y))),
          pred, a, b, exact=True)


def test_select_with_scalar_predicate_returns_an_operand():
    kernel = ops.lookup("stablehlo.select")(_fake_op(F32, [BOOL, F32, F32], operand_shape=()))
    x, y = np.ones(4, np.float32), np.zeros(4, np.float32)
    assert kernel(np.bool_(True), x, y) is x and kernel(np.bool_(False), x, y) is y


# ---------------------------------------------------------------------------------------------
# complex corner cases (found by tests/differential)

def complex_parts(z):
    """A complex result as exact pieces: each part's bits (signed zeros included) and NaN mask."""
    re, im = lax.real(z), lax.imag(z)
    return float_bits(re), jnp.isnan(re), float_bits(im), jnp.isnan(im)


def on(platform, fn, *args):
    device = jax.devices(platform)[0]
    out = jax.jit(fn)(*[jax.device_put(a, device) for a in args])
    return jax.tree_util.tree_map(np.asarray, out)


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_max_min_with_nan_parts(dt):
    """Complex maximum/minimum compare (real, imag) lexicographically with IEEE comparisons:
    `a if a > b else b` (`a if a < b else b`), so a NaN part never propagates by itself (the
    result is b whenever a compared part is NaN) and -0.0 == +0.0 (b again). This is the
    reference interpreter's rule; the oracle is XLA:CPU running JAX's compare/select lowering
    of lax.max/lax.min (XLA:CPU's own complex maximum op compares the real parts only)."""
    parts = [0.0, -0.0, 1.0, 2.0, np.nan, np.inf, -np.inf]
    v = np.array([complex(a, b) for a in parts for b in parts], dt)
    a, b = outer(v, v)
    cmax, cmin = raw("cmax", hlo.maximum), raw("cmin", hlo.minimum)
    assert_emits(lambda x, y: (cmax(x, y), cmin(x, y)), (a, b), "maximum", "minimum")
    for x, y in ((a, b), (a[7], b[7]), (a.reshape(49, 49).T, b.reshape(49, 49).T)):
        actual = on("pyrt", lambda p, q: (complex_parts(cmax(p, q)), complex_parts(cmin(p, q))),
                    x, y)
        expected = on("cpu", lambda p, q: (complex_parts(lax.max(p, q)),
                                           complex_parts(lax.min(p, q))), x, y)
        jax.tree_util.tree_map(np.testing.assert_array_equal, actual, expected)


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_sign_rsqrt_logistic_at_infinity(check, dt):
    """sign of an infinite (or NaN) z is NaN, as XLA's re / |z|, im / |z| (not NumPy's finite
    unit value), and 0 where |z| overflows; rsqrt of a value with an infinite part is 0 (NumPy's
    complex reciprocal gives NaN); logistic with a large negative real part is 0 (XLA:CPU's
    complex division of 1 by the infinite 1 + exp(-z))."""
    inf, nan = np.inf, np.nan
    big, huge = (-1e4, 1.7e308) if dt == C128 else (-200.0, 3.4e38)
    special = [complex(inf, 1), complex(-inf, 2), complex(1, inf), complex(3, -inf),
               complex(nan, 1), complex(1, nan), complex(nan, inf), complex(inf, inf),
               complex(-inf, -inf), complex(-inf, nan), complex(huge, huge)]
    ordinary = [complex(2, 3), complex(-0.5, 0.25), complex(0, 0), complex(-2, -7.25)]
    large_negative = [complex(big, 1), complex(big, -3), complex(-huge, 0.5), complex(big, 0)]
    z = np.array(special + ordinary, dt)
    w = np.array(large_negative + ordinary, dt)
    parts = lambda r: (lax.real(r), lax.imag(r))
    logistic = raw("clogistic", hlo.logistic)
    f = lambda z, w: (parts(jnp.sign(z)), parts(lax.rsqrt(z)), parts(logistic(w)))
    assert_emits(f, (z, w), "sign", "rsqrt", "logistic")
    check(f, z, w, **tol(dt, 4))
    check(f, z[::-2], w[::-2], **tol(dt, 4))  # non-contiguous
    check(f, z[0], w[0], **tol(dt, 4))  # 0-d


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_constants_keep_nan_inf_and_signed_zero_parts(check, dt):
    """Complex constants are built part by part: re + 1j * im would turn an infinite imaginary
    part into NaN + inf j, a NaN one into NaN + NaN j, and lose -0.0 real parts."""
    inf, nan = np.inf, np.nan
    c = np.array([complex(1, nan), complex(nan, 1), complex(inf, 1), complex(1, inf),
                  complex(-0.0, inf), complex(-0.0, -0.0), complex(-inf, -inf),
                  complex(nan, nan), complex(-0.0, 0.0), complex(2.5, -inf)], dt)
    splat = np.full((3,), complex(-0.0, nan), dt)
    zero = np.full(c.shape, complex(-0.0, -0.0), dt)  # -0.0 + v == v for every v
    f = lambda x: (complex_parts(x + c), complex_parts(x[:3] + splat))
    assert "stablehlo.constant dense<" in emitted(f, zero)
    check(f, zero, exact=True)


def test_convert_complex_to_bool_reads_the_real_part(check_mlir):
    """complex -> i1 ignores the imaginary part, as the spec says for complex-to-any-other-type
    conversions (and XLA:CPU, the interpreter and JAX's own lowering do): 0 + 1j -> false."""
    text = """
    func.func @main(%a: tensor<8xcomplex<f32>>, %b: tensor<complex<f64>>)
        -> (tensor<8xi1>, tensor<i1>) {
      %0 = stablehlo.convert %a : (tensor<8xcomplex<f32>>) -> tensor<8xi1>
      %1 = stablehlo.convert %b : (tensor<complex<f64>>) -> tensor<i1>
      return %0, %1 : tensor<8xi1>, tensor<i1>
    }"""
    a = np.array([0j, 1j, -0.0 - 1j, 1 + 0j, complex(np.nan, 0), complex(0, np.nan),
                  complex(-np.inf, 0), complex(1e-30, 1)], np.complex64)
    out = check_mlir(text, a, np.array(complex(0, 3), np.complex128))
    assert out[0].tolist() == [False, False, False, True, True, False, True, True]


def _pyrt_executable_run(text, *args):
    """Runs a StableHLO module on pyrt's executor directly (no PJRT, so none of the rewrites
    jaxlib applies before handing a program to a plugin)."""
    from jax_pyrt import dtypes as pyrt_dtypes
    from jax_pyrt.executable import Executable
    from jaxlib.mlir._mlir_libs import _stablehlo
    exe = Executable(_stablehlo.serialize_portable_artifact_str(
        text, _stablehlo.get_current_version()), b"")
    outs = exe.run([np.ascontiguousarray(x).reshape(-1).view(np.uint8) for x in args])
    return [np.frombuffer(np.asarray(o).tobytes(), pyrt_dtypes.DTYPE_BY_PJRT_TYPE[code])
            .reshape(shape) for o, (code, shape) in zip(outs, exe.output_specs)]


@pytest.mark.parametrize("dt", COMPLEX, ids=ids)
def test_complex_log_plus_one_range(dt):
    """Complex log_plus_one stays finite near the top of the range (no overflow of x^2 + y^2)
    and near z = -1 (no cancellation of 2x + x^2 + y^2 to -1), and accurate near 0. JAX
    programs never reach it (jaxlib expands complex log_plus_one for plugins, also in
    compile_and_load), so pyrt's executor runs the module directly; the oracle is XLA:CPU."""
    from conftest import tensor_type, run_mlir
    part = "f64" if dt == C128 else "f32"
    top = 1e308 if dt == C128 else 3e38
    z = np.array([complex(top, top), complex(-top, 0.5), complex(0.1, top), 1e30j, -1 + 1e-5j,
                  -1 + 1e-3j, -1.001 + 1e-4j, -0.999 + 0j, -1.5 + 0j, 1e-3 + 1e-3j,
                  0.5 + 0.5j, -0.3 + 0.9j, 2 - 7j, complex(np.inf, 1), complex(1, np.nan),
                  -1e-3 - 2e-3j], dt)
    n = len(z)
    text = f"""
    func.func @main(%z: tensor<{n}xcomplex<{part}>>) -> tensor<{n}xcomplex<{part}>> {{
      %0 = stablehlo.log_plus_one %z : tensor<{n}xcomplex<{part}>>
      return %0 : tensor<{n}xcomplex<{part}>>
    }}"""
    (actual,) = _pyrt_executable_run(text, z)
    (expected,) = run_mlir(jax.devices("cpu")[0], text, z)
    assert np.isfinite(actual[:13]).all()
    t = tol(dt, 4)["rtol"]
    for get in (np.real, np.imag):
        np.testing.assert_allclose(get(actual), get(expected), rtol=t, atol=t, equal_nan=True)
