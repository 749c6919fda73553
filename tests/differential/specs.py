"""The op specs: for every StableHLO op, the cases (module, inputs, comparison) the differential
harness runs. Adding an op is one entry: a family helper call (`unary("sqrt", FLOATS)`) or a
small generator decorated with `@spec("stablehlo.x")` yielding `case(...)`s.

Comparison (see harness.Compare): bit-exact where the spec is exact (integers, bool, bit ops,
shape ops, data movement and the exactly rounded float ops: + - * / sqrt, rounding, compare,
convert, min/max, remainder, reduce_precision); NaN-aware ULP tolerances for transcendental
functions and complex arithmetic; relative tolerances where the evaluation order is
implementation-defined (float sums in reduce and dot_general on non-integral values).

Documented exceptions (harness.Known) mark elements whose result the spec leaves to the
implementation and where pyrt follows XLA:CPU while the interpreter does something else, or
where the interpreter is known to be wrong; each says why. TYPE_RULES add the exceptions of
element types without encodings for some results (f4E2M1FN, f8E8M0FNU) to every case using
them. Cases the interpreter cannot run say so (`interpreter=`): the harness does not start a
process just to watch it abort, and compares them with XLA:CPU instead. KNOWN_PYRT_BUGS lists
mismatches that are pyrt bugs (pyrt differs from both the interpreter and XLA:CPU).
"""

import importlib
import itertools
import re
import zlib

import numpy as np

from . import elements as el
from .harness import EXACT, Case, Known, close, ulp
from .mlir import Function, Region, enum, i64, i64_array

SPECS = {}  # op name -> function yielding Cases


def spec(*ops):
    """Registers a generator of the cases of `ops` (the first is the op under test)."""

    def register(fn):
        SPECS.setdefault(ops[0], []).append(fn)
        return fn

    return register


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def _label(shape):
    return "pairs" if shape == "pairs" else shape_name(shape)


def shape_name(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def case(op, name, function, inputs, compare=EXACT, known=(), interpreter="", dtype=""):
    name = f"{op.replace('stablehlo.', '')}/{name}"
    etypes = {a.etype for a in function.args} | {getattr(v, "etype", "") for v in function.results}
    known = tuple(known) + tuple(rule for t, rule in TYPE_RULES if t in etypes)
    bug = next((text for pattern, text in KNOWN_PYRT_BUGS if re.match(pattern, name)), "")
    return Case(op=op, name=name, function=function, inputs=list(inputs), compare=compare,
                exceptions=known, interpreter=interpreter, dtype=dtype, bug=bug)


# --------------------------------------------------------------------------------------------
# Known pyrt bugs: (regex on case names, description). Cases matching an entry that mismatch are
# reported as "known_bug" instead of failing; in the full sweep an entry none of whose cases
# mismatches any more fails the test, so that fixed bugs leave this list. Each was checked
# against XLA:CPU too (pyrt differs from both the interpreter and XLA:CPU).

KNOWN_PYRT_BUGS = []


# --------------------------------------------------------------------------------------------
# Element types with no encoding for some results: their stand-ins are implementation-defined.

def _f4_stand_ins(inputs, actual, expected):
    masks = []
    for a, e in zip(actual, expected):
        if a.dtype != el.dtype("f4E2M1FN"):
            masks.append(None)
            continue
        special = lambda x: np.isin(np.abs(x.astype(np.float32)), [0.0, 6.0])
        masks.append(special(a) & special(e))
    return masks


def _e8m0_unrepresentable(inputs, actual, expected):
    e8m0 = el.dtype("f8E8M0FNU")
    masks = []
    for a in actual:
        m = np.isnan(a.astype(np.float64)) if a.dtype == e8m0 else np.zeros(a.shape, bool)
        for x in inputs:  # NaN inputs of elementwise ops
            if x.dtype == e8m0 and x.shape == a.shape:
                m = m | np.isnan(x.astype(np.float32))
        masks.append(m)
    return masks


TYPE_RULES = [
    ("f4E2M1FN", Known(
        "f4E2M1FN has no inf or NaN: overflow, inf and NaN results become +-6 or +-0, "
        "differently in each implementation (pyrt and XLA:CPU saturate inf to 6; the "
        "interpreter maps both to 0)", _f4_stand_ins, on="results")),
    ("f8E8M0FNU", Known(
        "f8E8M0FNU has no zero, sign or inf: pyrt and XLA:CPU give NaN for such results, the "
        "interpreter (APFloat) other values; it also converts the E8M0 NaN to inf",
        _e8m0_unrepresentable, on="results")),
]


def single(op, arg_types, result_types, attrs=None, regions=None):
    """@main applying one op to its arguments; returns the Function."""
    f = Function(arg_types)
    rs = [] if regions is None else [r(f) for r in regions]
    out = f.op(op, f.args, result_types, attrs, rs)
    f.returns(*(out if isinstance(out, list) else [out]))
    return f


def body(op_names, etype, nargs=2):
    """A region factory: `return op(a0, a1)` over 0-d tensors of `etype` (reduction bodies)."""

    def make(parent):
        r = Region(parent, [((), etype)] * nargs)
        v = r.op(op_names, r.args, [((), etype)])
        return r.returns(v)

    return make


def by_type(default=EXACT, **overrides):
    """A compare chooser: overrides by element type name or category (complex, narrow)."""

    def choose(t):
        if t in overrides:
            return overrides[t]
        if el.is_complex(t) and "complex" in overrides:
            return overrides["complex"]
        if t in ("f16", "bf16") + el.FLOAT_NARROW and "narrow" in overrides:
            return overrides["narrow"]
        return default

    return choose


def approx(f32=4, f64=4, narrow=1, complex_=4):
    """ULP tolerances for transcendental functions: pyrt uses NumPy's (SIMD) libm, the
    interpreter the C++ library's; narrow floats compute in float32 and round once on both
    sides, so they may land one ulp apart."""
    return by_type(ulp(f64), f32=ulp(f32), narrow=ulp(narrow), complex=ulp(complex_))


def _compare(choice, t):
    """A per-type choice (compare, interpreter reason): a value, or a function of the type."""
    return choice(t) if callable(choice) else choice


# --------------------------------------------------------------------------------------------
# Elementwise families

UNARY_SHAPES = [(), (0,), (3, 0, 2), (2, 3, 4)]
BINARY_SHAPES = [(), (0,), (2, 3, 4)]


def _edge_vector(t, rng, extra=24):
    e = el.edges(t)
    return np.concatenate([e, el.random_values(t, extra, rng)])


def unary(op, types, compare=EXACT, result=None, known=(), interpreter=""):
    """An elementwise unary op over `types`; `result(t)` gives the result type (default t)."""

    @spec(op)
    def cases():
        for t in types:
            rt = result(t) if result else t
            for shape in UNARY_SHAPES + ["edges"]:
                name = f"{t}/{shape_name(shape) if shape != 'edges' else 'edges'}"
                rng = rng_for(op + name)
                x = _edge_vector(t, rng) if shape == "edges" else el.fill(t, shape, rng)
                f = single(op, [(x.shape, t)], [(x.shape, rt)])
                yield case(op, name, f, [x], _compare(compare, t), known,
                           _compare(interpreter, t), t)

    return cases


def binary(op, types, compare=EXACT, result=None, rhs=None, lhs=None, known=(), attrs=None,
           label="", interpreter=""):
    """An elementwise binary op: random arrays of a few shapes plus every pair of edge values.
    `lhs(t, shape, rng)` / `rhs(...)` override the generated operands."""

    @spec(op)
    def cases():
        for t in types:
            rt = result(t) if result else t
            for shape in BINARY_SHAPES + ["pairs"]:
                name = f"{t}/{shape_name(shape) if shape != 'pairs' else 'pairs'}{label}"
                rng = rng_for(op + name)
                if shape == "pairs":
                    a, b = el.pairs(t, rng)
                    shape = a.shape
                else:
                    a, b = el.fill(t, shape, rng), el.fill(t, shape, rng)
                if lhs:
                    a = lhs(t, shape, rng, a)
                if rhs:
                    b = rhs(t, shape, rng, b)
                f = single(op, [(shape, t), (shape, t)], [(shape, rt)], attrs)
                yield case(op, name, f, [a, b], _compare(compare, t), known,
                           _compare(interpreter, t), t)

    return cases


# -- unary

unary("stablehlo.abs", el.SIGNED + el.FLOATS + el.COMPLEX, by_type(complex=ulp(2)),
      result=el.part_type)
unary("stablehlo.negate", el.INTS + el.FLOATS + el.COMPLEX)
unary("stablehlo.sign", el.SIGNED + el.FLOATS + el.COMPLEX, by_type(complex=ulp(1)))
unary("stablehlo.not", el.BOOL + el.INTS)
unary("stablehlo.popcnt", el.INTS)
unary("stablehlo.count_leading_zeros", el.INTS)
def _interpreter_nan(reason):
    """Elements where the interpreter gives NaN for a non-NaN input (and pyrt does not)."""

    def mask(inputs, actual, expected):
        x = inputs[0]
        if np.iscomplexobj(x):
            return None
        x = x.astype(np.float64)
        return [np.isnan(e.astype(np.float64)) & ~np.isnan(x) for e in expected]

    return Known(reason, mask, on="results")


_E3M4_ROUNDING = _interpreter_nan(
    "the interpreter's rounding ops give NaN on f8E3M4 (for every value); pyrt matches XLA:CPU")
for _op in ("ceil", "floor", "round_nearest_even", "round_nearest_afz"):
    unary(f"stablehlo.{_op}", el.FLOATS, known=[_E3M4_ROUNDING])
unary("stablehlo.sqrt", el.FLOATS + el.COMPLEX, by_type(complex=ulp(4)))
# rsqrt: IEEE recommends correct rounding; pyrt computes 1/sqrt(x), two roundings.
unary("stablehlo.rsqrt", el.FLOATS + el.COMPLEX, by_type(ulp(1), complex=ulp(4)))
unary("stablehlo.cbrt", el.FLOATS + el.COMPLEX, approx(), known=[Known(
    "complex cbrt of large or tiny |z|: the interpreter computes exp(log(z) / 3), whose error "
    "grows with |log |z|| (60 ulp at 1e77, inf from 1e181, 0 below 1e-300); pyrt's polar form "
    "stays within an ulp of the exact root (checked with mpmath). XLA:CPU refuses complex cbrt",
    lambda z: ((np.abs(z) > 1e10) | ((np.abs(z) < 1e-10) & (z != 0))) if np.iscomplexobj(z)
    else np.zeros(z.shape, bool))])
for _op in ("exponential", "log", "sine", "cosine", "tan", "tanh"):
    unary(f"stablehlo.{_op}", el.FLOATS + el.COMPLEX, approx())
unary("stablehlo.log_plus_one", el.FLOATS + el.COMPLEX, approx(), known=[Known(
    "complex log_plus_one near 0: the interpreter's real part cancels (log|1 + z| from the "
    "rounded 1 + x loses a real part below the ulp of 1); pyrt's 0.5 log1p(2x + x**2 + y**2) "
    "keeps it, as XLA:CPU",
    lambda z: (np.abs(z) < 1e-2) if np.iscomplexobj(z) else np.zeros(z.shape, bool))])
unary("stablehlo.exponential_minus_one", el.FLOATS + el.COMPLEX, approx(), known=[Known(
    "complex exponential_minus_one near 0: the interpreter's real part cancels (exp(x) cos(y) "
    "- 1 loses the tiny real part); pyrt's expm1(x) cos(y) - 2 sin^2(y/2) keeps it",
    lambda z: (np.abs(z) < 1e-2) if np.iscomplexobj(z) else np.zeros(z.shape, bool))])
unary("stablehlo.logistic", el.FLOATS + el.COMPLEX, approx(), known=[_interpreter_nan(
    "the interpreter computes logistic as 1 / (1 + exp(-x)) in the element type: exp overflows "
    "to NaN in f8 types without inf; pyrt (as XLA:CPU) computes in float32 and rounds once")])
unary("stablehlo.is_finite", el.FLOATS, result=lambda t: "i1")
unary("stablehlo.real", el.FLOATS + el.COMPLEX, result=el.part_type)
unary("stablehlo.imag", el.FLOATS + el.COMPLEX, result=el.part_type)


@spec("stablehlo.reduce_precision")
def reduce_precision_cases():
    op = "stablehlo.reduce_precision"
    for t in el.FLOATS:
        for e, m in [(5, 10), (8, 7), (4, 3), (5, 2), (2, 1), (1, 0), (8, 23), (11, 52), (3, 5)]:
            name = f"{t}/e{e}m{m}"
            rng = rng_for(op + name)
            x = _edge_vector(t, rng, 40)
            f = single(op, [(x.shape, t)], [(x.shape, t)],
                       {"exponent_bits": f"{e} : i32", "mantissa_bits": f"{m} : i32"})
            known = [_NAN_WITHOUT_MANTISSA] if m == 0 else []
            interpreter = _NARROW_REDUCE_PRECISION if t in el.FLOAT_NARROW else ""
            yield case(op, name, f, [x], EXACT, known, interpreter, dtype=t)


_NAN_WITHOUT_MANTISSA = Known(
    "reduce_precision to 0 mantissa bits cannot represent NaN: pyrt (as XLA:CPU) keeps NaN, the "
    "interpreter gives inf", lambda x: np.isnan(x.astype(np.float64)))
_NARROW_REDUCE_PRECISION = (
    "the interpreter applies reduce_precision's bit algorithm to f8/f4 encodings as if they "
    "were IEEE types (e.g. 1.0 -> 16.0 in f8E4M3B11FNUZ with e3m5); pyrt works in float16 as "
    "XLA:CPU does")


# -- binary

binary("stablehlo.add", el.ALL, by_type(complex=EXACT))
binary("stablehlo.subtract", el.NUMERIC)
# Complex products: XLA and C++ differ in FMA use and in the inf/NaN recovery of Annex G.
binary("stablehlo.multiply", el.ALL, by_type(complex=ulp(2)))
binary("stablehlo.maximum", el.ALL)
binary("stablehlo.minimum", el.ALL)
# Complex atan2 is the spec's formula -i log((x + iy) / sqrt(x^2 + y^2)): badly conditioned,
# and every implementation (pyrt, XLA:CPU, the interpreter) evaluates it a little differently.
# Its error is absolute (log of a quotient of modulus ~1), hence the atol.
binary("stablehlo.atan2", el.FLOATS + el.COMPLEX, by_type(
    ulp(4), narrow=ulp(1), **{"complex<f32>": ulp(1 << 12, atol=1e-6),
                              "complex<f64>": ulp(1 << 12, atol=2e-15)}))
for _op in ("and", "or", "xor"):
    binary(f"stablehlo.{_op}", el.BOOL + el.INTS)


def _int_min(t):
    return el.int_range(t)[0] if t in el.SIGNED else None


def _safe_divisor(t, shape, rng, b):
    """Integer divisors without 0 (x / 0 is implementation-defined) and without -1 against
    INT_MIN (overflow): those are in the "undefined" cases."""
    if t not in el.INTS:
        return b
    b = b.copy()
    b[b == 0] = 1
    if t in el.SIGNED:
        b[b == -1] = 3
    return b


_DIV_UNDEFINED = Known(
    "integer x / 0 and INT_MIN / -1 are implementation-defined; pyrt follows XLA:CPU "
    "(x / 0 = -1 signed, all ones unsigned; INT_MIN / -1 = INT_MIN)",
    lambda x, y: (y == 0) | ((x == _min_of(x)) & (y == -1)))
_REM_UNDEFINED = Known(
    "integer x % 0 and INT_MIN % -1 are implementation-defined; pyrt follows XLA:CPU "
    "(x % 0 = x, INT_MIN % -1 = 0)",
    lambda x, y: (y == 0) | ((x == _min_of(x)) & (y == -1)))


def _min_of(x):
    import ml_dtypes
    return ml_dtypes.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.signedinteger) else -1


binary("stablehlo.divide", el.INTS + el.FLOATS + el.COMPLEX, by_type(complex=ulp(4)),
       rhs=_safe_divisor)
_SIGFPE = "integer division by zero kills the interpreter (SIGFPE)"
binary("stablehlo.divide", el.INTS, rhs=lambda t, s, rng, b: np.where(
    rng.random(b.shape) < 0.3, 0, b).astype(b.dtype), known=(_DIV_UNDEFINED,),
    label="/undefined", interpreter=_SIGFPE)
binary("stablehlo.remainder", el.INTS + el.FLOATS + el.COMPLEX, by_type(complex=ulp(4)),
       rhs=_safe_divisor, interpreter=lambda t: (
           "the interpreter does not implement complex remainder (it aborts: \"rem(complex, "
           "complex) is not implemented\")") if el.is_complex(t) else "")
binary("stablehlo.remainder", el.INTS, rhs=lambda t, s, rng, b: np.where(
    rng.random(b.shape) < 0.3, 0, b).astype(b.dtype), known=(_REM_UNDEFINED,),
    label="/undefined", interpreter=_SIGFPE)


def _small_exponents(t, shape, rng, b):
    """Integer exponents in [-3, 70] (beyond the bit width too), edge values kept."""
    if t not in el.INTS:
        return b
    lo, hi = el.int_range(t)
    e = rng.integers(max(lo, -3), min(hi, 70) + 1, b.shape).astype(b.dtype)
    return np.where(rng.random(b.shape) < 0.7, e, b)


_POW_UNDEFINED = Known(
    "integer power with a negative exponent (or one >= 64) is implementation-defined; pyrt "
    "follows XLA:CPU: 1 for base 1, +-1 for base -1, else 0, and only the low 6 bits of the "
    "exponent count (an unsigned exponent with its sign bit set counts as negative); the "
    "interpreter computes the wrapped exact power",
    lambda x, y: (y < 0) | (y >= 64) | (_high_bit(y) if y.dtype.kind == "u" else False))


def _high_bit(y):
    return (y >> np.array(y.dtype.itemsize * 8 - 1, y.dtype)) != 0
def _complex_power_open(x, y):
    if not np.iscomplexobj(x):
        return np.zeros(x.shape, bool)
    with np.errstate(all="ignore"):
        amplification = np.abs(y.astype(np.complex128) * np.log(x.astype(np.complex128)))
    return (~(np.isfinite(x) & np.isfinite(y)) | (x == 0) | ~(amplification < 16))


_POW_COMPLEX_NONFINITE = Known(
    "complex power with a zero base or an infinite or NaN part has no specified result (C99 "
    "cpow has no special cases; pyrt follows XLA:CPU: 0**0 = 1, 0**y = NaN for complex y), "
    "and where |y log x| >= 16 rounding errors are amplified beyond the ulp tolerance",
    _complex_power_open)
binary("stablehlo.power", el.INTS + el.FLOATS + el.COMPLEX,
       by_type(ulp(4), f32=ulp(4), narrow=ulp(1), complex=ulp(64), **{t: EXACT for t in el.INTS}),
       rhs=_small_exponents, known=(_POW_UNDEFINED, _POW_COMPLEX_NONFINITE))


def _shift_amounts(t, shape, rng, b):
    n = el.bits(t)
    lo, hi = el.int_range(t)
    s = rng.integers(max(lo, -2), min(hi, n + 2) + 1, b.shape).astype(b.dtype)
    return np.where(rng.random(b.shape) < 0.8, s, b)


for _op in ("shift_left", "shift_right_arithmetic", "shift_right_logical"):
    binary(f"stablehlo.{_op}", el.INTS, rhs=_shift_amounts)

binary("stablehlo.complex", ("f32", "f64"), result=lambda t: f"complex<{t}>")


@spec("stablehlo.compare")
def compare_cases():
    op = "stablehlo.compare"
    for t in el.ALL:
        if t == "i1" or t in el.INTS:
            types = [None, "UNSIGNED" if t in el.UNSIGNED or t == "i1" else "SIGNED"]
        elif t in el.FLOATS:
            types = [None, "FLOAT", "TOTALORDER"]
        else:
            types = [None, "FLOAT"]
        directions = ["EQ", "NE"] if el.is_complex(t) else ["EQ", "NE", "GE", "GT", "LE", "LT"]
        for ctype, direction in itertools.product(types, directions):
            for shape in ["pairs", (2, 3)]:
                name = f"{t}/{direction}/{ctype or 'default'}/{_label(shape)}"
                rng = rng_for(op + name)
                if shape == "pairs":
                    a, b = el.pairs(t, rng)
                else:
                    a, b = el.fill(t, shape, rng), el.fill(t, shape, rng)
                attrs = {"comparison_direction": enum("comparison_direction", direction)}
                if ctype:
                    attrs["compare_type"] = enum("comparison_type", ctype)
                f = single(op, [(a.shape, t)] * 2, [(a.shape, "i1")], attrs)
                known = [_TOTALORDER] if ctype == "TOTALORDER" else []
                yield case(op, name, f, [a, b], known=known, dtype=t)


def _nan_or_zeros(a, b):
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    return np.isnan(fa) | np.isnan(fb) | ((fa == 0) & (fb == 0))


_TOTALORDER = Known(
    "the interpreter evaluates compare_type TOTALORDER as FLOAT (IEEE); pyrt implements IEEE "
    "totalOrder (-NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN) as the spec and "
    "XLA:CPU: they differ only on NaNs and signed zeros", _nan_or_zeros)


# -- ternary

@spec("stablehlo.select")
def select_cases():
    op = "stablehlo.select"
    for t in el.ALL:
        for shape, pred_shape in [((2, 3, 4), (2, 3, 4)), ((2, 3), ()), ((), ()), ((0, 3), (0, 3)),
                                  ((4,), ())]:
            name = f"{t}/{shape_name(shape)}/pred{shape_name(pred_shape)}"
            rng = rng_for(op + name)
            p = el.random_values("i1", int(np.prod(pred_shape, dtype=int)), rng).reshape(pred_shape)
            a, b = el.fill(t, shape, rng), el.fill(t, shape, rng)
            f = single(op, [(pred_shape, "i1"), (shape, t), (shape, t)], [(shape, t)])
            yield case(op, name, f, [p, a, b], dtype=t)


@spec("stablehlo.clamp")
def clamp_cases():
    op = "stablehlo.clamp"
    for t in el.INTS + el.FLOATS + el.BOOL:
        for shape, bound_shape in [((2, 3, 4), ()), ((2, 3, 4), (2, 3, 4)), ((), ()),
                                   ("pairs", "pairs")]:
            name = f"{t}/{_label(shape)}/bounds{_label(bound_shape)}"
            rng = rng_for(op + name)
            if shape == "pairs":
                lo, hi = el.pairs(t, rng)
                x = el.fill(t, lo.shape, rng)
                shape = bound_shape = lo.shape
            else:
                lo, hi = el.fill(t, bound_shape, rng), el.fill(t, bound_shape, rng)
                x = el.fill(t, shape, rng)
            f = single(op, [(bound_shape, t), (shape, t), (bound_shape, t)], [(shape, t)])
            yield case(op, name, f, [lo, x, hi], dtype=t)


# -- conversions

def _float_to_int_undefined(src, dst):
    """Float -> integer where the truncated value does not fit (or is NaN): the spec leaves it
    open (#180); pyrt saturates and maps NaN to 0, as XLA:CPU."""
    lo, hi = el.int_range(dst)

    def mask(x):
        w = x.astype(np.float64) if not el.is_complex(src) else x.real.astype(np.float64)
        t = np.trunc(w)
        return np.isnan(w) | (t < lo) | (t > hi)

    return Known(f"{src} -> {dst} out of range or NaN is implementation-defined (#180); pyrt "
                 "saturates and maps NaN to 0 as XLA:CPU", mask)


def _int_to_int_undefined(src, dst):
    lo, hi = el.int_range(dst)

    def mask(x):
        v = x.astype(np.int64) if src != "ui64" else x.astype(np.uint64)
        if src == "ui64":
            return v > np.uint64(max(hi, 0))
        return (v < lo) | (v > hi)

    return Known(f"{src} -> {dst} overflow is implementation-defined (#180); pyrt wraps "
                 "as XLA:CPU", mask)


@spec("stablehlo.convert")
def convert_cases():
    op = "stablehlo.convert"
    for src, dst in itertools.product(el.ALL, el.ALL):
        name = f"{src}->{dst}"
        rng = rng_for(op + name)
        x = _edge_vector(src, rng, 40)
        # Values around the destination's integer range and rounding ties.
        if dst in el.INTS and src in el.FLOATS + el.COMPLEX:
            lo, hi = el.int_range(dst)
            near = np.array([lo, hi, lo - 1, hi + 1, lo + 0.5, hi - 0.5, -0.75, 0.75, 2 ** 31,
                             -2 ** 31, 2 ** 63, -2 ** 63, 2 ** 64], np.float64)
            with np.errstate(all="ignore"):
                x = np.concatenate([x, near.astype(el.dtype(src))])
        known = []
        if dst in el.INTS and (src in el.FLOATS or el.is_complex(src)):
            known.append(_float_to_int_undefined(src, dst))
        if dst in el.INTS and src in el.INTS:
            known.append(_int_to_int_undefined(src, dst))
        f = single(op, [(x.shape, src)], [(x.shape, dst)])
        yield case(op, name, f, [x], EXACT, known, dtype=src)
    for shape in [(), (0, 3), (2, 3, 4)]:
        name = f"f32->i32/{shape_name(shape)}"
        rng = rng_for(op + name)
        x = el.fill("f32", shape, rng)
        f = single(op, [(shape, "f32")], [(shape, "i32")])
        yield case(op, name, f, [x], EXACT, [_float_to_int_undefined("f32", "i32")], dtype="f32")


@spec("stablehlo.bitcast_convert")
def bitcast_convert_cases():
    op = "stablehlo.bitcast_convert"
    groups = {}
    for t in el.INTS + el.FLOATS:  # (complex <-> real bitcasts are not allowed)
        groups.setdefault(el.bits(t), []).append(t)
    for width, types in sorted(groups.items()):
        for src, dst in itertools.product(types, types):
            name = f"{src}->{dst}"
            rng = rng_for(op + name)
            x = _edge_vector(src, rng, 20)
            f = single(op, [(x.shape, src)], [(x.shape, dst)])
            yield case(op, name, f, [x], EXACT, dtype=src)
    # Width-changing forms: a minor dimension of the ratio appears or disappears.
    # i1 is one bit wide (spec): i1[..., n] <-> an n-bit type (XLA:CPU refuses these).
    for src, dst in [("f32", "i8"), ("f32", "ui16"), ("f64", "f32"), ("i64", "ui8"),
                     ("f16", "ui8"), ("i64", "i1"), ("f64", "i1"), ("f32", "i1"),
                     ("bf16", "i1"), ("ui8", "i1")]:
        ratio = el.bits(src) // el.bits(dst)
        for a, b, shape_a, shape_b in [(src, dst, (3,), (3, ratio)),
                                       (dst, src, (2, 3, ratio), (2, 3))]:
            name = f"{a}{list(shape_a)}->{b}{list(shape_b)}"
            rng = rng_for(op + name)
            x = el.fill(a, shape_a, rng)
            f = single(op, [(shape_a, a)], [(shape_b, b)])
            yield case(op, name, f, [x], EXACT, dtype=a)


# --------------------------------------------------------------------------------------------
# Shape and data-movement ops

SHAPE_TYPES = ("i1", "i8", "ui16", "i32", "ui64", "f16", "bf16", "f32", "f64", "complex<f64>",
               "i4", "f8E4M3FN")


def _shaped(op, name, arg_types, inputs, result_types, attrs=None, dtype="", compare=EXACT,
            known=(), regions=None):
    f = single(op, arg_types, result_types, attrs, regions)
    return case(op, name, f, inputs, compare, known, dtype=dtype)


@spec("stablehlo.broadcast_in_dim")
def broadcast_in_dim_cases():
    op = "stablehlo.broadcast_in_dim"
    configs = [((), (2, 3), []), ((3,), (2, 3), [1]), ((3,), (3, 2), [0]), ((2, 1), (2, 4), [0, 1]),
               ((2, 3), (3, 4, 2), [2, 0]), ((1, 3), (0, 3), [0, 1]), ((0,), (2, 0), [1]),
               ((2, 3), (2, 3), [0, 1]), ((2, 3), (3, 2), [1, 0]), ((1,), (5,), [0])]
    for t in SHAPE_TYPES:
        for src, dst, dims in configs:
            name = f"{t}/{shape_name(src)}->{shape_name(dst)}/dims{dims}"
            x = el.fill(t, src, rng_for(op + name))
            yield _shaped(op, name, [(src, t)], [x], [(dst, t)],
                          {"broadcast_dimensions": i64_array(dims)}, t)


@spec("stablehlo.reshape")
def reshape_cases():
    op = "stablehlo.reshape"
    for t in SHAPE_TYPES:
        for src, dst in [((2, 3, 4), (6, 4)), ((24,), (2, 3, 4)), ((), (1, 1)), ((1, 1), ()),
                         ((0, 3), (3, 0)), ((2, 3), (3, 2))]:
            name = f"{t}/{shape_name(src)}->{shape_name(dst)}"
            x = el.fill(t, src, rng_for(op + name))
            yield _shaped(op, name, [(src, t)], [x], [(dst, t)], dtype=t)


@spec("stablehlo.transpose")
def transpose_cases():
    op = "stablehlo.transpose"
    for t in SHAPE_TYPES:
        for shape in [(2, 3, 4), (0, 2, 3)]:
            for perm in itertools.permutations(range(3)):
                name = f"{t}/{shape_name(shape)}/perm{list(perm)}"
                x = el.fill(t, shape, rng_for(op + name))
                out = tuple(shape[p] for p in perm)
                yield _shaped(op, name, [(shape, t)], [x], [(out, t)],
                              {"permutation": i64_array(perm)}, t)
        yield _shaped(op, f"{t}/scalar", [((), t)], [el.fill(t, (), rng_for(t))], [((), t)],
                      {"permutation": i64_array([])}, t)


@spec("stablehlo.slice")
def slice_cases():
    op = "stablehlo.slice"
    configs = [([0, 0], [5, 6], [1, 1]), ([1, 2], [4, 6], [1, 1]), ([0, 1], [5, 6], [2, 3]),
               ([2, 2], [2, 5], [1, 1]), ([4, 5], [5, 6], [3, 4]), ([1, 0], [5, 6], [4, 1])]
    for t in SHAPE_TYPES:
        for start, limit, strides in configs:
            name = f"{t}/{start}:{limit}:{strides}"
            x = el.fill(t, (5, 6), rng_for(op + name))
            out = tuple(max(0, -(-(lim - s) // st)) for s, lim, st in zip(start, limit, strides))
            yield _shaped(op, name, [((5, 6), t)], [x], [(out, t)],
                          {"start_indices": i64_array(start), "limit_indices": i64_array(limit),
                           "strides": i64_array(strides)}, t)


_INDEX_VALUES = [-3, 0, 1, 2, 4, 7, 100]


@spec("stablehlo.dynamic_slice")
def dynamic_slice_cases():
    op = "stablehlo.dynamic_slice"
    for t in ("f32", "i8", "complex<f32>", "bf16", "i1"):
        for it in ("i32", "i64", "ui32", "i8", "ui8", "i16"):
            for i0, i1 in [(0, 0), (1, 2), (-3, 7), (100, -1), (4, 4)]:
                if it.startswith("u") and (i0 < 0 or i1 < 0):
                    continue
                name = f"{t}/{it}/[{i0},{i1}]"
                rng = rng_for(op + name)
                x = el.fill(t, (5, 6), rng)
                idx = [np.array(i0, el.dtype(it)), np.array(i1, el.dtype(it))]
                yield _shaped(op, name, [((5, 6), t), ((), it), ((), it)], [x] + idx,
                              [((2, 3), t)], {"slice_sizes": i64_array([2, 3])}, t)
    for it in ("i32", "i64"):
        name = f"f32/min-max/{it}"
        lo, hi = el.int_range(it)
        yield _shaped(op, name, [((5, 6), "f32"), ((), it), ((), it)],
                      [el.fill("f32", (5, 6), rng_for(name)), np.array(lo, el.dtype(it)),
                       np.array(hi, el.dtype(it))], [((2, 3), "f32")],
                      {"slice_sizes": i64_array([2, 3])}, "f32")
    yield _shaped(op, "f32/zero-size", [((5, 0), "f32"), ((), "i32"), ((), "i32")],
                  [np.zeros((5, 0), np.float32), np.array(2, np.int32), np.array(0, np.int32)],
                  [((2, 0), "f32")], {"slice_sizes": i64_array([2, 0])}, "f32")
    yield _shaped(op, "f32/scalar", [((), "f32")], [np.array(1.5, np.float32)], [((), "f32")],
                  {"slice_sizes": i64_array([])}, "f32")


@spec("stablehlo.dynamic_update_slice")
def dynamic_update_slice_cases():
    op = "stablehlo.dynamic_update_slice"
    for t in ("f32", "i8", "complex<f32>", "bf16", "i1", "ui64"):
        for it in ("i32", "i64", "ui8"):
            for i0, i1 in [(0, 0), (1, 2), (-3, 7), (100, -1), (3, 3)]:
                if it.startswith("u") and (i0 < 0 or i1 < 0):
                    continue
                name = f"{t}/{it}/[{i0},{i1}]"
                rng = rng_for(op + name)
                x, u = el.fill(t, (5, 6), rng), el.fill(t, (2, 3), rng)
                idx = [np.array(i0, el.dtype(it)), np.array(i1, el.dtype(it))]
                yield _shaped(op, name, [((5, 6), t), ((2, 3), t), ((), it), ((), it)],
                              [x, u] + idx, [((5, 6), t)], dtype=t)
    yield _shaped(op, "f32/zero-size-update", [((5, 6), "f32"), ((0, 3), "f32"), ((), "i32"),
                                               ((), "i32")],
                  [el.fill("f32", (5, 6), rng_for("zu")), np.zeros((0, 3), np.float32),
                   np.array(9, np.int32), np.array(1, np.int32)], [((5, 6), "f32")], dtype="f32")


@spec("stablehlo.concatenate")
def concatenate_cases():
    op = "stablehlo.concatenate"
    configs = [([(2, 3), (4, 3)], 0), ([(2, 3), (2, 1), (2, 0), (2, 2)], 1), ([(3,)], 0),
               ([(0, 2), (0, 2)], 0), ([(1, 2, 3), (1, 2, 3), (1, 2, 3)], 2)]
    for t in SHAPE_TYPES:
        for shapes, dim in configs:
            name = f"{t}/{'+'.join(shape_name(s) for s in shapes)}/dim{dim}"
            rng = rng_for(op + name)
            xs = [el.fill(t, s, rng) for s in shapes]
            out = list(shapes[0])
            out[dim] = sum(s[dim] for s in shapes)
            yield _shaped(op, name, [(s, t) for s in shapes], xs, [(tuple(out), t)],
                          {"dimension": i64(dim)}, t)


@spec("stablehlo.pad")
def pad_cases():
    op = "stablehlo.pad"
    configs = [([1, 2], [0, 1], [0, 0]), ([-1, 0], [0, -2], [0, 0]), ([0, 0], [0, 0], [1, 2]),
               ([-1, 2], [1, -3], [1, 1]), ([2, -3], [-2, 1], [2, 0]), ([0, 0], [0, 0], [0, 0]),
               ([-3, 0], [0, 0], [0, 0]), ([1, 1], [1, 1], [3, 3]), ([-2, -2], [-2, -2], [1, 1])]
    for t in SHAPE_TYPES:
        for lo, hi, interior in configs:
            name = f"{t}/lo{lo}/hi{hi}/in{interior}"
            rng = rng_for(op + name)
            shape = (3, 4)
            x, v = el.fill(t, shape, rng), el.fill(t, (), rng)
            out = tuple(max(0, lo_ + hi_ + d + max(d - 1, 0) * i)
                        for d, lo_, hi_, i in zip(shape, lo, hi, interior))
            yield _shaped(op, name, [(shape, t), ((), t)], [x, v], [(out, t)],
                          {"edge_padding_low": i64_array(lo), "edge_padding_high": i64_array(hi),
                           "interior_padding": i64_array(interior)}, t)
    yield _shaped(op, "f32/empty-operand", [((0, 2), "f32"), ((), "f32")],
                  [np.zeros((0, 2), np.float32), np.array(7, np.float32)], [((3, 4), "f32")],
                  {"edge_padding_low": i64_array([1, 1]), "edge_padding_high": i64_array([2, 1]),
                   "interior_padding": i64_array([1, 0])}, "f32")


@spec("stablehlo.reverse")
def reverse_cases():
    op = "stablehlo.reverse"
    for t in SHAPE_TYPES:
        for dims in [[], [0], [1], [2], [0, 2], [0, 1, 2]]:
            name = f"{t}/dims{dims}"
            x = el.fill(t, (2, 3, 4), rng_for(op + name))
            yield _shaped(op, name, [((2, 3, 4), t)], [x], [((2, 3, 4), t)],
                          {"dimensions": i64_array(dims)}, t)


@spec("stablehlo.iota")
def iota_cases():
    op = "stablehlo.iota"
    for t in el.INTS + el.FLOATS + el.COMPLEX:
        for shape, dim in [((5,), 0), ((2, 3, 4), 1), ((3, 300), 1), ((0, 3), 1), ((4, 2), 0)]:
            name = f"{t}/{shape_name(shape)}/dim{dim}"
            f = Function([])
            f.returns(f.op(op, [], [(shape, t)], {"iota_dimension": i64(dim)}))
            yield case(op, name, f, [], dtype=t)


@spec("stablehlo.constant")
def constant_cases():
    op = "stablehlo.constant"
    for t in el.ALL:
        for shape in [(), (7,), (2, 0), (3, 4)]:
            name = f"{t}/{shape_name(shape)}"
            rng = rng_for(op + name)
            f = Function([])
            f.returns(f.constant(el.fill(t, shape, rng), t))
            yield case(op, name, f, [], dtype=t)
        # A splat: one value for the whole tensor.
        f = Function([])
        value = el.fill(t, (1,), rng_for(op + t + "splat"))
        from .harness import dense_literal
        f.returns(f.op(op, [], [((3, 2), t)],
                       {"value": dense_literal(value, t).replace("tensor<1x", "tensor<3x2x")}))
        yield case(op, f"{t}/splat", f, [], dtype=t)


@spec("stablehlo.tuple", "stablehlo.get_tuple_element")
def tuple_cases():
    for t in ("f32", "i1", "complex<f64>"):
        f = Function([((2,), t), ((), "i32")])
        a, b = f.args
        tup = f.op("stablehlo.tuple", [a, b], [f"tuple<{a.type}, {b.type}>"])
        x = f.op("stablehlo.get_tuple_element", [tup], [a.like()], {"index": "0 : i32"})
        y = f.op("stablehlo.get_tuple_element", [tup], [b.like()], {"index": "1 : i32"})
        f.returns(x, y)
        rng = rng_for("tuple" + t)
        yield case("stablehlo.tuple", t, f, [el.fill(t, (2,), rng), np.array(5, np.int32)],
                   dtype=t)


# --------------------------------------------------------------------------------------------
# Reductions and dot_general

REDUCE_BODIES = {
    "stablehlo.add": el.ALL, "stablehlo.multiply": el.ALL, "stablehlo.maximum": el.ALL,
    "stablehlo.minimum": el.ALL, "stablehlo.and": el.BOOL + el.INTS,
    "stablehlo.or": el.BOOL + el.INTS, "stablehlo.xor": el.BOOL + el.INTS}


def _reduce(f, inputs, inits, dims, bodies_factory, etypes, out_shape):
    region = bodies_factory(f)
    results = [(out_shape, t) for t in etypes]
    return f.op("stablehlo.reduce", inputs + inits, results, {"dimensions": i64_array(dims)},
                [region])


@spec("stablehlo.reduce")
def reduce_cases():
    op = "stablehlo.reduce"
    shapes = [((3, 4, 5), [1]), ((3, 4, 5), [0, 2]), ((3, 4, 5), [0, 1, 2]), ((3, 4, 5), []),
              ((3, 0, 2), [1]), ((6,), [0]), ((2, 0), [0])]
    for body_op, types in REDUCE_BODIES.items():
        for t in types:
            for shape, dims in shapes:
                # "small" values keep float sums and products exact in any order (edge values
                # inf and NaN included); wide random floats go to the "close" cases below.
                name = f"{body_op.split('.')[1]}/{t}/{shape_name(shape)}/dims{dims}"
                rng = rng_for(op + name)
                kind = "small" if body_op in ("stablehlo.add", "stablehlo.multiply") else "mixed"
                x = el.fill(t, shape, rng, kind=kind)
                if body_op == "stablehlo.multiply" and t in el.FLOATS + el.COMPLEX:
                    x = _unit_powers(x, rng)
                init = el.fill(t, (), rng, kind=kind)
                out = tuple(d for i, d in enumerate(shape) if i not in dims)
                f = Function([(shape, t), ((), t)])
                r = _reduce(f, [f.args[0]], [f.args[1]], dims, body(body_op, t), [t], out)
                f.returns(r)
                known = [_NO_DIMS] if not dims else []
                if t == "f4E2M1FN" and body_op in ("stablehlo.add", "stablehlo.multiply"):
                    known.append(_NARROW_ACCUMULATION)
                # Complex products: the sign of a zero part depends on the order.
                cmp = ulp(0) if el.is_complex(t) and body_op == "stablehlo.multiply" else EXACT
                yield case(op, name, f, [x, init], cmp, known, dtype=t)
    # Float sums of arbitrary values: the order is implementation-defined.
    for t, rtol in [("f32", 1e-5), ("f64", 1e-12), ("f16", 1e-2), ("bf16", 2e-2)]:
        for shape, dims in [((50,), [0]), ((8, 30), [1]), ((4, 5, 6), [0, 2])]:
            name = f"add-unit/{t}/{shape_name(shape)}/dims{dims}"
            rng = rng_for(op + name)
            x = el.random_values(t, int(np.prod(shape)), rng, "unit").reshape(shape)
            out = tuple(d for i, d in enumerate(shape) if i not in dims)
            f = Function([(shape, t), ((), t)])
            f.returns(_reduce(f, [f.args[0]], [f.args[1]], dims, body("stablehlo.add", t), [t],
                              out))
            count = np.prod([shape[d] for d in dims])
            yield case(op, name, f, [x, np.array(0, el.dtype(t))],
                       close(rtol, atol=float(count) * rtol), dtype=t)
    # A body pyrt does not pattern-match: max via compare + select (integers: associative).
    for t in ("i32", "ui8", "i64"):
        def select_max(parent, t=t):
            r = Region(parent, [((), t), ((), t)])
            gt = r.op("stablehlo.compare", r.args, [((), "i1")],
                      {"comparison_direction": enum("comparison_direction", "GT")})
            return r.returns(r.op("stablehlo.select", [gt] + r.args, [((), t)]))

        for shape, dims in [((3, 4, 5), [1]), ((3, 4, 5), [0, 2]), ((7,), [0])]:
            name = f"select-max/{t}/{shape_name(shape)}/dims{dims}"
            rng = rng_for(op + name)
            x, init = el.fill(t, shape, rng), np.array(el.int_range(t)[0], el.dtype(t))
            out = tuple(d for i, d in enumerate(shape) if i not in dims)
            f = Function([(shape, t), ((), t)])
            f.returns(_reduce(f, [f.args[0]], [f.args[1]], dims, select_max, [t], out))
            yield case(op, name, f, [x, init], dtype=t)
    # Two operands: JAX's argmax / argmin comparator over an iota of indices.
    for t in ("f32", "i32", "bf16", "f64", "ui8"):
        for direction in ("GT", "LT"):
            for shape, dim in [((4, 7), 1), ((6, 3), 0), ((9,), 0)]:
                kind = "argmax" if direction == "GT" else "argmin"
                name = f"{kind}/{t}/{shape_name(shape)}/dim{dim}"
                rng = rng_for(op + name)
                x = el.fill(t, shape, rng)
                init = np.array(-np.inf if direction == "GT" else np.inf) if t in el.FLOATS else \
                    np.array(el.int_range(t)[0 if direction == "GT" else 1])
                f = Function([(shape, t), ((), t)])
                idx = f.op("stablehlo.iota", [], [(shape, "i32")], {"iota_dimension": i64(dim)})
                zero = f.constant(np.array(0, np.int32), "i32")
                out = tuple(d for i, d in enumerate(shape) if i != dim)
                r = f.op("stablehlo.reduce", [f.args[0], idx, f.args[1], zero],
                         [(out, t), (out, "i32")], {"dimensions": i64_array([dim])},
                         [_argmax_body(f, t, direction)])
                f.returns(*r)
                yield case(op, name, f, [x, init.astype(el.dtype(t))], dtype=t)
    # Two operands, independent sums (the general path).
    for t in ("i32", "f32"):
        name = f"variadic-sum/{t}"
        rng = rng_for(op + name)
        x, y = el.fill(t, (4, 6), rng, "small"), el.fill(t, (4, 6), rng, "small")

        def pair_sum(parent, t=t):
            r = Region(parent, [((), t)] * 4)
            a = r.op("stablehlo.add", [r.args[0], r.args[2]], [((), t)])
            b = r.op("stablehlo.multiply", [r.args[1], r.args[3]], [((), t)])
            return r.returns(a, b)

        f = Function([((4, 6), t), ((4, 6), t), ((), t), ((), t)])
        r = f.op("stablehlo.reduce", f.args, [((4,), t), ((4,), t)],
                 {"dimensions": i64_array([1])}, [pair_sum(f)])
        f.returns(*r)
        yield case(op, name, f, [x, np.sign(y).astype(y.dtype), np.array(0, el.dtype(t)),
                                 np.array(1, el.dtype(t))], dtype=t)


_NO_DIMS = Known(
    "reduce over no dimensions: the spec lets the schedule use the init value any number of "
    "times; pyrt (as XLA) returns the operand, the interpreter combines it with init once",
    lambda x, init: np.ones(x.shape, bool))
_NARROW_ACCUMULATION = Known(
    "narrow float sums and products: pyrt (as XLA:CPU) accumulates in float32 and rounds once; "
    "the interpreter rounds to f4E2M1FN after every step", lambda x, init: True)


def _unit_powers(x, rng):
    """Replaces finite values by +-1, +-2, +-0.5 (products stay exact), keeping inf/NaN/0."""
    if x.size == 0:
        return x
    parts = [x.real, x.imag] if np.iscomplexobj(x) else [x]
    out = x.copy()
    choices = np.array([1, -1, 2, -2, 0.5, -0.5, 1, -1])
    vals = []
    for p in parts:
        w = p.astype(np.float64)
        repl = choices[rng.integers(0, len(choices), p.shape)]
        vals.append(np.where(np.isfinite(w) & (w != 0), repl, w))
    if np.iscomplexobj(x):
        out.real = vals[0].astype(x.real.dtype)
        out.imag = np.zeros_like(vals[1]).astype(x.real.dtype)
    else:
        out[...] = vals[0].astype(np.float64).astype(x.dtype)
    return out


def _argmax_body(parent, t, direction):
    """JAX's argmax/argmin comparator (see jax_pyrt.ops.reduction._ARG_REDUCE_BODY)."""
    r = Region(parent, [((), t), ((), "i32"), ((), t), ((), "i32")])
    a0, a1, a2, a3 = r.args
    cmp = lambda d, x, y: r.op("stablehlo.compare", [x, y], [((), "i1")],
                               {"comparison_direction": enum("comparison_direction", d)})
    r0 = cmp(direction, a0, a2)
    r1 = cmp("NE", a0, a0)
    r2 = r.op("stablehlo.or", [r0, r1], [((), "i1")])
    r3 = cmp("EQ", a0, a2)
    r4 = cmp("LT", a1, a3)
    r5 = r.op("stablehlo.and", [r3, r4], [((), "i1")])
    r6 = r.op("stablehlo.or", [r2, r5], [((), "i1")])
    r7 = r.op("stablehlo.select", [r2, a0, a2], [((), t)])
    r8 = r.op("stablehlo.select", [r6, a1, a3], [((), "i32")])
    return r.returns(r7, r8)


def dot_dims(lb, rb, lc, rc):
    return (f"#stablehlo.dot<lhs_batching_dimensions = [{', '.join(map(str, lb))}], "
            f"rhs_batching_dimensions = [{', '.join(map(str, rb))}], "
            f"lhs_contracting_dimensions = [{', '.join(map(str, lc))}], "
            f"rhs_contracting_dimensions = [{', '.join(map(str, rc))}]>")


@spec("stablehlo.dot_general")
def dot_general_cases():
    op = "stablehlo.dot_general"
    # lhs shape, rhs shape, (lhs batch, rhs batch, lhs contracting, rhs contracting), result
    configs = [
        ((2, 3), (3, 4), ([], [], [1], [0]), (2, 4)),
        ((3,), (3,), ([], [], [0], [0]), ()),
        ((2, 3), (3,), ([], [], [1], [0]), (2,)),
        ((2, 3, 4), (2, 4, 5), ([0], [0], [2], [1]), (2, 3, 5)),
        ((3, 2, 4), (4, 3, 5), ([0], [1], [2], [0]), (3, 2, 5)),
        ((2, 0), (0, 3), ([], [], [1], [0]), (2, 3)),
        ((2, 3), (4, 3), ([], [], [1], [1]), (2, 4)),
        ((2, 3), (4, 5), ([], [], [], []), (2, 3, 4, 5)),
        ((2, 3, 4), (4, 3, 2), ([], [], [1, 2], [1, 0]), (2, 2)),
    ]
    for t in el.BOOL + el.INT + ("i4", "ui4") + el.FLOAT + el.COMPLEX + ("f8E4M3FN", "f8E5M2"):
        for ls, rs, (lb, rb, lc, rc), out in configs:
            name = f"{t}/{shape_name(ls)}x{shape_name(rs)}/b{lb}{rb}c{lc}{rc}"
            rng = rng_for(op + name)
            # Integer-valued small floats: every sum exact, so any order gives the same bits.
            kind = "small" if t in el.FLOATS + el.COMPLEX else "mixed"
            a, b = el.fill(t, ls, rng, kind), el.fill(t, rs, rng, kind)
            f = single(op, [(ls, t), (rs, t)], [(out, t)],
                       {"dot_dimension_numbers": dot_dims(lb, rb, lc, rc)})
            empty = any(ls[d] == 0 for d in lc)
            interpreter = ("the interpreter aborts on an empty contracting dimension "
                           "(\"Incompatible index and shape found while flattening index\")"
                           if empty else "")
            # Complex: the sign of zero parts and the inf/NaN pattern depend on the order.
            cmp = ulp(0) if el.is_complex(t) else EXACT
            yield case(op, name, f, [a, b], cmp, interpreter=interpreter, dtype=t)
    for t, rtol in [("f32", 1e-5), ("f64", 1e-12), ("complex<f32>", 1e-5), ("bf16", 2e-2)]:
        name = f"{t}/unit/8x16x16x8"
        rng = rng_for(op + name)
        a = el.random_values(t, 8 * 16, rng, "unit").reshape(8, 16)
        b = el.random_values(t, 16 * 8, rng, "unit").reshape(16, 8)
        f = single(op, [((8, 16), t), ((16, 8), t)], [((8, 8), t)],
                   {"dot_dimension_numbers": dot_dims([], [], [1], [0])})
        yield case(op, name, f, [a, b], close(rtol, 16 * rtol), dtype=t)
    # Mixed precision: the result type is wider than the operands.
    for src, dst in [("i8", "i32"), ("bf16", "f32"), ("f16", "f32"), ("ui8", "ui32"),
                     ("i1", "i32")]:
        name = f"{src}->{dst}/4x5x5x3"
        rng = rng_for(op + name)
        kind = "small" if src in el.FLOATS else "mixed"
        a, b = el.fill(src, (4, 5), rng, kind), el.fill(src, (5, 3), rng, kind)
        f = single(op, [((4, 5), src), ((5, 3), src)], [((4, 3), dst)],
                   {"dot_dimension_numbers": dot_dims([], [], [1], [0])})
        yield case(op, name, f, [a, b], EXACT, dtype=src)


@spec("stablehlo.dot")
def dot_cases():
    op = "stablehlo.dot"
    for t in ("f32", "i32", "complex<f64>"):
        for ls, rs, out in [((2, 3), (3, 4), (2, 4)), ((3,), (3,), ()), ((2, 3), (3,), (2,))]:
            name = f"{t}/{shape_name(ls)}x{shape_name(rs)}"
            rng = rng_for(op + name)
            a, b = el.fill(t, ls, rng, "small"), el.fill(t, rs, rng, "small")
            f = single(op, [(ls, t), (rs, t)], [(out, t)])
            yield case(op, name, f, [a, b], ulp(0), interpreter=(
                "the interpreter does not implement stablehlo.dot (deprecated; it aborts)"),
                dtype=t)


# --------------------------------------------------------------------------------------------
# Control flow (small fixed programs)

@spec("stablehlo.while")
def while_cases():
    op = "stablehlo.while"
    for t in ("f32", "i32", "ui8", "f16", "complex<f32>"):
        for n in (0, 1, 5):
            name = f"{t}/n{n}"
            rng = rng_for(op + name)
            x = el.fill(t, (3,), rng, "small")
            f = Function([((3,), t), ((), "i32")])
            acc0, limit = f.args
            zero = f.constant(np.array(0, np.int32), "i32")

            def cond(parent):
                r = Region(parent, [((), "i32"), ((3,), t)])
                lt = r.op("stablehlo.compare", [r.args[0], limit], [((), "i1")],
                          {"comparison_direction": enum("comparison_direction", "LT")})
                return r.returns(lt)

            def body_(parent):
                r = Region(parent, [((), "i32"), ((3,), t)])
                one = r.constant(np.array(1, np.int32), "i32")
                i = r.op("stablehlo.add", [r.args[0], one], [((), "i32")])
                acc = r.op("stablehlo.add", [r.args[1], acc0], [((3,), t)])
                acc = r.op("stablehlo.multiply", [acc, acc0], [((3,), t)]) if t == "ui8" else acc
                return r.returns(i, acc)

            res = f.op(op, [zero, acc0], [((), "i32"), ((3,), t)], regions=[cond(f), body_(f)])
            f.returns(*res)
            yield case(op, name, f, [x, np.array(n, np.int32)], dtype=t)


@spec("stablehlo.if")
def if_cases():
    op = "stablehlo.if"
    for t in ("f32", "i64", "i1"):
        for p in (True, False):
            name = f"{t}/{p}"
            rng = rng_for(op + name)
            x, y = el.fill(t, (4,), rng), el.fill(t, (4,), rng)
            f = Function([((), "i1"), ((4,), t), ((4,), t)])
            pred, a, b = f.args
            then = Region(f, [])
            then.returns(then.op("stablehlo.maximum", [a, b], [((4,), t)]), a)
            other = Region(f, [])
            other.returns(b, other.op("stablehlo.minimum", [a, b], [((4,), t)]))
            res = f.op(op, [pred], [((4,), t), ((4,), t)], regions=[then, other])
            f.returns(*res)
            yield case(op, name, f, [np.array(p), x, y], dtype=t)


@spec("stablehlo.case")
def case_cases():
    op = "stablehlo.case"
    for index in (-1, 0, 1, 2, 3, 100, -2 ** 31):
        name = f"f32/index{index}"
        rng = rng_for(op + name)
        x = el.fill("f32", (5,), rng)
        f = Function([((), "i32"), ((5,), "f32")])
        i, a = f.args
        branches = []
        for op_name in ("stablehlo.negate", "stablehlo.abs", "stablehlo.floor"):
            r = Region(f, [])
            r.returns(r.op(op_name, [a], [((5,), "f32")]))
            branches.append(r)
        res = f.op(op, [i], [((5,), "f32")], regions=branches)
        f.returns(res)
        yield case(op, name, f, [np.array(index, np.int32), x], dtype="f32")


@spec("stablehlo.optimization_barrier")
def optimization_barrier_cases():
    op = "stablehlo.optimization_barrier"
    for t in ("f32", "i8"):
        rng = rng_for(op + t)
        x, y = el.fill(t, (3,), rng), el.fill(t, (), rng)
        yield _shaped(op, t, [((3,), t), ((), t)], [x, y], [((3,), t), ((), t)], dtype=t)


@spec("func.call")
def call_cases():
    for t in ("f32", "i32"):
        f = Function([((3,), t), ((3,), t)])
        g = f.function([((3,), t), ((3,), t)], "helper")
        g.returns(g.op("stablehlo.subtract", g.args, [((3,), t)]))
        r = f.op("func.call", f.args, [((3,), t)], {"callee": "@helper"})
        f.returns(r)
        rng = rng_for("call" + t)
        yield case("func.call", t, f, [el.fill(t, (3,), rng), el.fill(t, (3,), rng)], dtype=t)


@spec("stablehlo.composite")
def composite_cases():
    for t in ("f32",):
        f = Function([((3,), t)])
        g = f.function([((3,), t)], "my.tanh_impl")
        g.returns(g.op("stablehlo.tanh", g.args, [((3,), t)]))
        r = f.op("stablehlo.composite", f.args, [((3,), t)],
                 {"name": '"my.tanh"', "decomposition": "@my.tanh_impl"})
        f.returns(r)
        yield case("stablehlo.composite", t, f, [el.fill(t, (3,), rng_for("composite"))],
                   ulp(4), dtype=t)


# The specs of the remaining ops live in a module of their own; importing it registers them.
importlib.import_module(f"{__package__}.specs_more")
