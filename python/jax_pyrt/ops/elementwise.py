"""Elementwise ops (spec: abs, add, ..., xor): NumPy ufuncs over whole arrays.

Every handler decides at compile time, from the element type, how the op is computed:

* When NumPy's own loop for the dtype has exactly the StableHLO / XLA:CPU semantics, the handler
  returns the bare ufunc (`np.add`, `np.sin`, ...) and the generated program calls it directly.
* Narrow floats (bf16, f8*, f4) are computed in float32 and rounded once to the result type, as
  XLA:CPU does. float16 uses NumPy's half loops (which compute in float32 and round once) for the
  exactly rounded ops (+ - * / sqrt, rounding, comparisons...) and float32 explicitly for
  transcendental functions.
* Narrow integers (int4, uint4, int2, uint2 from ml_dtypes) are computed in (u)int8/int16 and
  converted back, which wraps modulo 2**bits.
* Integer division, remainder, power, shifts, float->int conversion, signed zeros in max/min and
  sign, rounding half away from zero and reduce_precision get small wrappers that implement the
  XLA:CPU results exactly (see each docstring).

Known differences from XLA:CPU, all outside what StableHLO specifies: XLA:CPU flushes f32/f64/
bf16 denormals to zero (inputs and results; pyrt keeps IEEE denormals); it keeps float32
precision across fused float16 ops (pyrt rounds after every op, as the spec says); it counts
the sign-extended 8-bit pattern in popcnt of negative int4 values (pyrt counts the 4 bits); and
NaN payloads and signs can differ where either side canonicalizes NaNs.
"""

import ml_dtypes
import numpy as np

from .. import dtypes
from .base import op
from .precision import elementwise_dtype, is_narrow_float, is_narrow_int

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
BF16 = np.dtype(ml_dtypes.bfloat16)
BOOL = np.dtype(np.bool_)
_UNSIGNED_OF = {1: np.dtype(np.uint8), 2: np.dtype(np.uint16), 4: np.dtype(np.uint32),
                8: np.dtype(np.uint64)}
_SIGNED_OF = {1: np.dtype(np.int8), 2: np.dtype(np.int16), 4: np.dtype(np.int32),
              8: np.dtype(np.int64)}


# --------------------------------------------------------------------------------------------
# dtype helpers (compile time)

def _int_bits(dt):
    return ml_dtypes.iinfo(dt).bits


def _lift(fn, dt, out=None, exact=True):
    """A kernel applying `fn` to operands of type `dt`, giving `out` (default `dt`): `fn` itself
    when NumPy computes in `dt` already, else a wrapper computing in `elementwise_dtype(dt)`."""
    out = dt if out is None else out
    compute = elementwise_dtype(dt, exact)
    if compute == dt:
        return fn

    def kernel(*args):
        return np.asarray(fn(*[np.asarray(a, compute) for a in args])).astype(out, copy=False)

    return kernel


def _complex(re, im, dt):
    """A complex array from its parts, without arithmetic (inf * 1j would make NaNs)."""
    re = np.asarray(re)
    z = np.empty(np.broadcast_shapes(re.shape, np.shape(im)), dt)
    z.real, z.imag = re, im
    return z


def _operand(op_, i=0):
    return op_.operand_types[i].dtype


def _no_bool(op_, dt):
    if dt == BOOL:
        raise op_.unsupported("i1 (bool) operands")


# --------------------------------------------------------------------------------------------
# Binary arithmetic

@op("stablehlo.add")
def add(op_):
    """Spec: add. Integers wrap around; on i1 it is logical or.

    dtypes: all element types."""
    dt = op_.result.dtype
    if dt == BOOL:
        return np.logical_or
    return _lift(np.add, dt)


@op("stablehlo.subtract")
def subtract(op_):
    """Spec: subtract. Integers wrap around.

    dtypes: integers, floats, complex (not i1)."""
    dt = op_.result.dtype
    _no_bool(op_, dt)
    return _lift(np.subtract, dt)


@op("stablehlo.multiply")
def multiply(op_):
    """Spec: multiply. Integers wrap around; on i1 it is logical and.

    dtypes: all element types."""
    dt = op_.result.dtype
    if dt == BOOL:
        return np.logical_and
    return _lift(np.multiply, dt)


def _int_divide(dt):
    """Truncating integer division with XLA's results for the undefined cases (x / 0 = -1 or
    all ones, INT_MIN / -1 = INT_MIN)."""
    unsigned = dtypes.is_unsigned(dt)
    x_by_zero = dt.type(np.iinfo(dt).max if unsigned else -1)
    i64 = np.dtype(np.int64)

    if dt.itemsize <= 4:
        # float64 holds the operands exactly and rounds their quotient to the right side of
        # every integer (|x| < 2**53), so trunc gives the exact truncated quotient; NumPy's
        # float division is several times faster than its integer floor_divide.
        def quotient(x, y):
            q = np.trunc(np.true_divide(x, y))
            return q.astype(i64).astype(dt) if not unsigned else q.astype(dt)  # INT_MIN / -1 wraps
    elif unsigned:
        quotient = np.floor_divide
    else:
        def quotient(x, y):
            # x - fmod(x, y) is an exact multiple of y, so floor division truncates; NumPy
            # gives INT_MIN // -1 = INT_MIN.
            return np.floor_divide(x - np.fmod(x, y), y)

    def kernel(x, y):
        zero = y == 0
        if not np.any(zero):
            return quotient(x, y)
        return np.where(zero, x_by_zero, quotient(x, np.where(zero, dt.type(1), y)))

    return kernel


def _int_remainder(dt):
    if dtypes.is_unsigned(dt):
        def kernel(x, y):
            zero = y == 0
            return np.where(zero, x, np.remainder(x, np.where(zero, 1, y)))
    else:
        def kernel(x, y):
            zero = y == 0
            # fmod truncates (sign of the dividend); NumPy gives fmod(INT_MIN, -1) == 0.
            return np.where(zero, x, np.fmod(x, np.where(zero, 1, y)))

    return kernel


def _xla_complex_divide(a, b):
    """XLA:CPU's complex division (Smith's algorithm, then the C99 Annex G corner cases when
    that gives NaN + NaN: zero denominator, infinite numerator, infinite denominator)."""
    ar, ai, br, bi = a.real, a.imag, b.real, b.imag
    abs_br, abs_bi = np.abs(br), np.abs(bi)
    r1 = br / bi
    d1 = bi + r1 * br
    r2 = bi / br
    d2 = br + r2 * bi
    small_real = abs_br < abs_bi
    cr = np.where(small_real, (r1 * ar + ai) / d1, (r2 * ai + ar) / d2)
    ci = np.where(small_real, (r1 * ai - ar) / d1, (ai - r2 * ar) / d2)
    one, zero, inf = ar.dtype.type(1), ar.dtype.type(0), ar.dtype.type(np.inf)
    # 1. zero denominator, numerator not NaN + NaN: inf with b_r's sign times a
    zero_den = (abs_br == 0) & (abs_bi == 0) & ~(np.isnan(ar) & np.isnan(ai))
    s = np.copysign(inf, br)
    zr, zi = s * ar, s * ai
    # 2. infinite numerator, finite denominator
    abs_ar, abs_ai = np.abs(ar), np.abs(ai)
    ar_inf, ai_inf = abs_ar == inf, abs_ai == inf
    b_finite = (abs_br != inf) & (abs_bi != inf) & ~np.isnan(br) & ~np.isnan(bi)
    inf_num = (ar_inf | ai_inf) & b_finite
    xr = np.copysign(np.where(ar_inf, one, zero), ar)
    xi = np.copysign(np.where(ai_inf, one, zero), ai)
    nr, ni = inf * (xr * br + xi * bi), inf * (xi * br - xr * bi)
    # 3. finite numerator, infinite denominator
    a_finite = (abs_ar != inf) & (abs_ai != inf) & ~np.isnan(ar) & ~np.isnan(ai)
    br_inf, bi_inf = abs_br == inf, abs_bi == inf
    inf_den = (br_inf | bi_inf) & a_finite
    yr = np.copysign(np.where(br_inf, one, zero), br)
    yi = np.copysign(np.where(bi_inf, one, zero), bi)
    fr, fi = zero * (ar * yr + ai * yi), zero * (ai * yr - ar * yi)
    both_nan = np.isnan(cr) & np.isnan(ci)
    cases = [both_nan & zero_den, both_nan & ~zero_den & inf_num,
             both_nan & ~zero_den & ~inf_num & inf_den]
    return _complex(np.select(cases, [zr, nr, fr], cr), np.select(cases, [zi, ni, fi], ci),
                    a.dtype)


def _complex_divide(a, b):
    """np.divide (Smith's algorithm too), with XLA's results where NumPy's are not finite."""
    r = np.asarray(np.divide(a, b))  # a fresh array: ours to patch
    bad = ~np.isfinite(r)
    if bad.any():
        a, b = np.broadcast_arrays(a, b)
        r[bad] = _xla_complex_divide(a[bad], b[bad])
    return r


@op("stablehlo.divide")
def divide(op_):
    """Spec: divide. Integers truncate toward zero; as XLA:CPU, x / 0 is -1 for signed and
    all-ones for unsigned integers, and INT_MIN / -1 is INT_MIN. Floats are IEEE. Complex:
    NumPy's Smith division, and XLA:CPU's C99 corner cases (x / 0, infinities) where that is not
    finite.

    dtypes: integers, floats, complex (not i1)."""
    dt = op_.result.dtype
    _no_bool(op_, dt)
    if dtypes.is_integer(dt):
        compute = elementwise_dtype(dt)
        return _lift(_int_divide(compute), dt)
    if dtypes.is_complex(dt):
        return _complex_divide
    return _lift(np.divide, dt)


@op("stablehlo.remainder")
def remainder(op_):
    """Spec: remainder. Sign of the dividend (C fmod); as XLA:CPU, integer x % 0 is x and
    INT_MIN % -1 is 0; float x % 0 is NaN.

    dtypes: integers, floats (not i1 or complex)."""
    dt = op_.result.dtype
    _no_bool(op_, dt)
    if dtypes.is_integer(dt):
        return _lift(_int_remainder(elementwise_dtype(dt)), dt)
    if dtypes.is_complex(dt):
        raise op_.unsupported("complex operands")
    return _lift(np.fmod, dt)


def _int_power(dt):
    """XLA:CPU's integer power, computed in elementwise_dtype(dt): six square-and-multiply steps
    (the exponent counts mod 64) and, for an exponent whose sign bit is set (8-bit and wider
    unsigned types too), 1 for base 1, +-1 for base -1 (all ones) by the exponent's parity and
    0 otherwise."""
    compute = elementwise_dtype(dt)  # narrow ints: XLA:CPU works on (u)int8 values too
    bits = compute.itemsize * 8
    unsigned = dtypes.is_unsigned(dt)
    c = compute.type
    one, zero = c(1), c(0)
    all_ones = c((1 << bits) - 1 if unsigned else -1)
    sign_bit = c(1 << (bits - 1)) if unsigned else None

    def kernel(x, e):
        negative = (e >= sign_bit) if unsigned else (e < 0)
        r = np.power(x, e & c(63))  # & 63 is non-negative for signed e too
        if not np.any(negative):
            return r
        odd = (e & one) != 0
        neg_result = np.where(x == one, one,
                              np.where(x == all_ones, np.where(odd, all_ones, one), zero))
        return np.where(negative, neg_result, r)

    return kernel


def _complex_power(x, y):
    """XLA:CPU's complex power: |x|**c * exp(-d arg x) * (cos q + i sin q), q = c arg x +
    d log|x| for y = c + di, with 0**0 = x**0 = 1**y = 1, 0**c = 0 (c > 0), inf**c = inf or 0."""
    x, y = np.asarray(x), np.asarray(y)
    a, b, c, d = x.real, x.imag, y.real, y.imag
    modulus = np.abs(x)
    arg = np.arctan2(b, a)
    coeff = np.power(modulus, c) * np.exp(-d * arg)
    q = c * arg + d * np.log(modulus)
    re, im = coeff * np.cos(q), coeff * np.sin(q)
    one, zero, inf = a.dtype.type(1), a.dtype.type(0), a.dtype.type(np.inf)
    real_c = d == 0
    cases = [(a == inf) & (b == 0) & real_c & (c < 0), (a == inf) & (b == 0) & real_c & (c > 0),
             (a == 1) & (b == 0), (c == 0) & real_c, (modulus == 0) & real_c & (c >= 0)]
    re = np.select(cases, [zero, inf, one, one, np.where(c == 0, one, zero)], re)
    return _complex(re, np.select(cases, [zero] * 5, im), x.dtype)


@op("stablehlo.power", cost="transcendental")
def power(op_):
    """Spec: power. Integers wrap around and match XLA:CPU exactly (the spec leaves these
    cases open): the exponent counts mod 64 (XLA squares six times) and an exponent with its
    sign bit set (read as signed, also for 8-bit and wider unsigned types) gives 1 for base 1,
    (-1)**e for base -1 (all ones) and 0 otherwise.
    Floats: np.power (narrow floats in float32); complex: XLA:CPU's polar formula and special
    cases (0**y, x**0, 1**y, inf**c).

    dtypes: integers, floats, complex (not i1)."""
    dt = op_.result.dtype
    _no_bool(op_, dt)
    if dtypes.is_integer(dt):
        return _lift(_int_power(dt), dt)
    if dtypes.is_complex(dt):
        return _complex_power
    return _lift(np.power, dt, exact=False)


def float_max(dt):
    """NaN-propagating maximum where -0.0 < +0.0 (XLA:CPU). NumPy returns either operand when
    they compare equal, which only matters for two zeros: then the result is -0.0 exactly
    when both are."""
    pos, neg = np.array(0.0, dt), np.array(-0.0, dt)

    def kernel(a, b):
        r = np.maximum(a, b)
        tie = a == b
        if np.any(tie):
            r = np.where(tie & (r == 0), np.where(np.signbit(a) & np.signbit(b), neg, pos), r)
        return r

    return kernel


def float_min(dt):
    """As float_max: of two zeros, minimum is +0.0 exactly when both are."""
    pos, neg = np.array(0.0, dt), np.array(-0.0, dt)

    def kernel(a, b):
        r = np.minimum(a, b)
        tie = a == b
        if np.any(tie):
            r = np.where(tie & (r == 0), np.where(np.signbit(a) | np.signbit(b), neg, pos), r)
        return r

    return kernel


def complex_greater(a, b):
    """a > b for complex arrays, lexicographically on (real, imag) with IEEE comparisons: false
    when a compared part is NaN (-0.0 == +0.0)."""
    ar, br = a.real, b.real
    return (ar > br) | ((ar == br) & (a.imag > b.imag))


def complex_max(a, b):
    """stablehlo.maximum of complex arrays: `a if a > b else b` (lexicographic, see
    complex_greater), as the reference interpreter and the compare/select JAX lowers lax.max
    to: an operand with a NaN part (in a compared position) is never greater, so the result is
    b whenever a comparison involves NaN (max(1+nanj, 1+1j) = 1+1j, max(1+1j, 1+nanj) = 1+nanj,
    max(nan+0j, 2+0j) = 2+0j). Of two equal values (-0.0 vs +0.0 parts) it is b."""
    a, b = np.asarray(a), np.asarray(b)
    return np.where(complex_greater(a, b), a, b)


def complex_min(a, b):
    """stablehlo.minimum of complex arrays: `a if a < b else b`, as complex_max."""
    a, b = np.asarray(a), np.asarray(b)
    return np.where(complex_greater(b, a), a, b)


@op("stablehlo.maximum")
def maximum(op_):
    """Spec: maximum. On i1 it is logical or. Floats: NaN propagates and -0.0 < +0.0, as
    XLA:CPU. Complex: lexicographic on (real, imag), `a if a > b else b` with IEEE comparisons
    (NaN compares false, -0.0 == +0.0), so a NaN part does not propagate: the result is b
    whenever a compared part is NaN (the reference interpreter's rule, and what JAX's
    compare/select lowering of lax.max computes on XLA:CPU; XLA:CPU's own complex maximum op
    compares the real parts only, which pyrt does not follow).

    dtypes: all element types."""
    dt = op_.result.dtype
    if dtypes.is_float(dt):
        return _lift(float_max(elementwise_dtype(dt)), dt)
    if dtypes.is_complex(dt):
        return complex_max
    return _lift(np.maximum, dt)


@op("stablehlo.minimum")
def minimum(op_):
    """Spec: minimum. On i1 it is logical and. Floats: NaN propagates and -0.0 < +0.0, as
    XLA:CPU. Complex: lexicographic, `a if a < b else b` with IEEE comparisons, so the result
    is b whenever a compared part is NaN (as maximum).

    dtypes: all element types."""
    dt = op_.result.dtype
    if dtypes.is_float(dt):
        return _lift(float_min(elementwise_dtype(dt)), dt)
    if dtypes.is_complex(dt):
        return complex_min
    return _lift(np.minimum, dt)


def _complex_atan2(y, x):
    # Spec: atan2(y, x) = -i * log((x + i*y) / sqrt(x**2 + y**2)); the products by i are exact.
    y, x = np.asarray(y), np.asarray(x)
    q = _complex_divide(x + _complex(-y.imag, y.real, y.dtype), np.sqrt(x * x + y * y))
    return _complex(np.arctan2(q.imag, q.real), -np.log(np.abs(q)), q.dtype)


@op("stablehlo.atan2", cost="transcendental")
def atan2(op_):
    """Spec: atan2. Floats: np.arctan2 (narrow floats in float32); complex: the spec's formula.

    dtypes: floats, complex."""
    dt = op_.result.dtype
    if dtypes.is_complex(dt):
        return _complex_atan2
    return _lift(np.arctan2, dt, exact=False)


# --------------------------------------------------------------------------------------------
# Bitwise and logical ops

def _bitwise(op_, ufunc):
    dt = op_.result.dtype
    if not (dtypes.is_integer(dt) or dt == BOOL):
        raise op_.unsupported(f"{dt} operands")
    return _lift(ufunc, dt)


@op("stablehlo.and")
def and_(op_):
    """Spec: and. Bitwise on integers, logical on i1.

    dtypes: integers, i1."""
    return _bitwise(op_, np.bitwise_and)


@op("stablehlo.or")
def or_(op_):
    """Spec: or. Bitwise on integers, logical on i1.

    dtypes: integers, i1."""
    return _bitwise(op_, np.bitwise_or)


@op("stablehlo.xor")
def xor(op_):
    """Spec: xor. Bitwise on integers, logical on i1.

    dtypes: integers, i1."""
    return _bitwise(op_, np.bitwise_xor)


@op("stablehlo.not")
def not_(op_):
    """Spec: not. Bitwise on integers, logical on i1.

    dtypes: integers, i1."""
    return _bitwise(op_, np.invert)


def _narrow_shift(kind, dt):
    """Shifts on int4/uint4/int2/uint2, computed on int16 values with the bit width checked."""
    n = _int_bits(dt)
    mask = (1 << n) - 1
    half = 1 << (n - 1)
    signed = not dtypes.is_unsigned(dt)
    i16 = np.dtype(np.int16)

    def kernel(x, s):
        x = np.asarray(x, i16)
        s = np.asarray(s, i16)
        ok = (s >= 0) & (s < n)
        s = np.where(ok, s, 0)
        if kind == "left":
            r = np.where(ok, x << s, 0)
        elif kind == "arithmetic":
            v = x if signed else (x ^ half) - half  # the bit pattern as a signed n-bit value
            r = np.where(ok, v >> s, np.where(v < 0, -1, 0))
        else:
            r = np.where(ok, (x & mask) >> s, 0)
        return r.astype(dt)

    return kernel


def _shift(op_, kind):
    dt = op_.result.dtype
    if not dtypes.is_integer(dt):
        raise op_.unsupported(f"{dt} operands")
    if is_narrow_int(dt):
        return _narrow_shift(kind, dt)
    # NumPy's shifts already give 0 (or the sign fill) for amounts outside [0, bits): it
    # compares the amount as an unsigned value against the width.
    if kind == "left":
        return np.left_shift
    unsigned = dtypes.is_unsigned(dt)
    if kind == "arithmetic":
        if not unsigned:
            return np.right_shift
        signed = _SIGNED_OF[dt.itemsize]
        return lambda x, s: np.right_shift(np.asarray(x).view(signed),
                                           np.asarray(s).view(signed)).view(dt)
    if unsigned:
        return np.right_shift
    unsigned_dt = _UNSIGNED_OF[dt.itemsize]
    return lambda x, s: np.right_shift(np.asarray(x).view(unsigned_dt),
                                       np.asarray(s).view(unsigned_dt)).view(dt)


@op("stablehlo.shift_left")
def shift_left(op_):
    """Spec: shift_left. Amounts outside [0, bits) give 0.

    dtypes: integers."""
    return _shift(op_, "left")


@op("stablehlo.shift_right_arithmetic")
def shift_right_arithmetic(op_):
    """Spec: shift_right_arithmetic. Amounts outside [0, bits) give the sign fill (0 or -1);
    unsigned operands are shifted as their signed bit pattern.

    dtypes: integers."""
    return _shift(op_, "arithmetic")


@op("stablehlo.shift_right_logical")
def shift_right_logical(op_):
    """Spec: shift_right_logical. Amounts outside [0, bits) give 0; signed operands are shifted
    as their unsigned bit pattern.

    dtypes: integers."""
    return _shift(op_, "logical")


def _unsigned_bits(dt):
    """(kernel x -> non-negative integer array holding x's bit pattern, bit width, mask)."""
    if is_narrow_int(dt):
        n = _int_bits(dt)
        mask = (1 << n) - 1
        i16 = np.dtype(np.int16)
        return (lambda x: np.asarray(x, i16) & mask), n, mask
    u = _UNSIGNED_OF[dt.itemsize]
    return (lambda x: np.asarray(x).view(u)), dt.itemsize * 8, None


@op("stablehlo.popcnt")
def popcnt(op_):
    """Spec: popcnt. Counts the set bits of the two's complement pattern at the type's width
    (XLA:CPU counts the sign-extended 8-bit pattern of a negative int4 instead; pyrt follows the
    spec).

    dtypes: integers."""
    dt = op_.result.dtype
    if not dtypes.is_integer(dt):
        raise op_.unsupported(f"{dt} operands")
    bits, _, _ = _unsigned_bits(dt)
    if dt.kind == "u":
        return lambda x: np.bitwise_count(x).astype(dt, copy=False)
    return lambda x: np.bitwise_count(bits(x)).astype(dt, copy=False)


@op("stablehlo.count_leading_zeros")
def count_leading_zeros(op_):
    """Spec: count_leading_zeros. The bit width minus the bit length, from frexp of the
    pattern as float64 (two 32-bit halves for 64-bit types); 0 gives the bit width.

    dtypes: integers."""
    dt = op_.result.dtype
    if not dtypes.is_integer(dt):
        raise op_.unsupported(f"{dt} operands")
    bits, n, _ = _unsigned_bits(dt)
    f64 = np.dtype(np.float64)

    def bit_length(u):  # exact for u < 2**53: frexp's exponent is the bit length (0 for 0)
        return np.frexp(u.astype(f64))[1]

    if n <= 32:
        return lambda x: (n - bit_length(bits(x))).astype(dt)
    low = np.uint64(0xFFFFFFFF)

    def kernel(x):
        u = bits(x)
        high = u >> np.uint64(32)
        return np.where(high != 0, 32 - bit_length(high), 64 - bit_length(u & low)).astype(dt)

    return kernel


# --------------------------------------------------------------------------------------------
# Unary arithmetic

@op("stablehlo.negate")
def negate(op_):
    """Spec: negate. Integers wrap (INT_MIN stays INT_MIN, unsigned is 2**n - x).

    dtypes: all element types (i1: the identity)."""
    dt = op_.result.dtype
    if dt == BOOL:  # 1-bit two's complement: -x == x
        return lambda x: x
    return _lift(np.negative, dt)


@op("stablehlo.abs")
def abs_(op_):
    """Spec: abs. INT_MIN stays INT_MIN; complex gives the real modulus.

    dtypes: integers, floats, complex (not i1)."""
    dt = _operand(op_)
    _no_bool(op_, dt)
    if dtypes.is_complex(dt):
        return np.abs
    return _lift(np.abs, dt)


def _float_sign(dt):
    # np.sign gives +0.0 for -0.0; copysign restores the sign of zeros (NaN stays NaN).
    return lambda x: np.copysign(np.sign(x), x)


def _complex_sign(z):
    # np.sign is z / |z| (0 for 0), but gives a finite unit value for infinite z (sign(inf - 0j)
    # = 1 + 0j) and odd ones where |z| overflows (sign(max + max j) = 1j). Where |z| is not
    # finite, the spec's z / abs(z) as XLA:CPU (and the interpreter) compute it is used: each
    # part divided by |z| = inf or NaN (NaN parts for infinite z, 0 for overflowing finite z).
    z = np.asarray(z)
    r = np.asarray(np.sign(z))
    modulus = np.abs(z)
    bad = ~np.isfinite(modulus)
    if bad.any():
        zb, mb = z[bad], modulus[bad]
        r[bad] = _complex(zb.real / mb, zb.imag / mb, r.dtype)
    return r


@op("stablehlo.sign")
def sign(op_):
    """Spec: sign. -1/0/1 for integers; floats keep the sign of zeros (sign(-0.0) = -0.0) and
    NaN; complex gives z / abs(z) (0 for 0); where abs(z) is not finite each part is divided
    by it, as XLA:CPU: NaN parts for an infinite or NaN z, 0 where abs(z) overflows.

    dtypes: integers (unsigned give 0 or 1), floats, complex."""
    dt = op_.result.dtype
    _no_bool(op_, dt)
    if dtypes.is_float(dt):
        return _lift(_float_sign(elementwise_dtype(dt)), dt)
    if dtypes.is_complex(dt):
        return _complex_sign
    return _lift(np.sign, dt)


def _float_only(op_, fn, exact):
    dt = op_.result.dtype
    if not (dtypes.is_float(dt) or dtypes.is_complex(dt)):
        raise op_.unsupported(f"{dt} operands")
    return _lift(fn, dt, exact=exact)


def _real_only(op_, fn, exact):
    dt = op_.result.dtype
    if not dtypes.is_float(dt):
        raise op_.unsupported(f"{dt} operands")
    return _lift(fn, dt, exact=exact)


@op("stablehlo.ceil")
def ceil(op_):
    """Spec: ceil.

    dtypes: floats."""
    return _real_only(op_, np.ceil, True)


@op("stablehlo.floor")
def floor(op_):
    """Spec: floor.

    dtypes: floats."""
    return _real_only(op_, np.floor, True)


@op("stablehlo.round_nearest_even")
def round_nearest_even(op_):
    """Spec: round_nearest_even. np.rint (ties to even).

    dtypes: floats."""
    return _real_only(op_, np.rint, True)


def _round_afz(x):
    # The fraction d = x - trunc(x) is exact (floor(|x| + 0.5) would round 0.49999997 up), and
    # trunc(2d) is +-1 exactly when |d| >= 0.5. d is NaN for +-inf (-> adjust by 0); copysign
    # restores -0.0 (-0.0 + 0.0 is +0.0).
    t = np.trunc(x)
    d = x - t
    return np.copysign(t + np.nan_to_num(np.trunc(d + d), nan=0.0), x)


@op("stablehlo.round_nearest_afz")
def round_nearest_afz(op_):
    """Spec: round_nearest_afz. Ties away from zero, via trunc and the exact fraction.

    dtypes: floats."""
    dt = op_.result.dtype
    if not dtypes.is_float(dt):
        raise op_.unsupported(f"{dt} operands")
    compute = elementwise_dtype(dt)
    return lambda x: np.asarray(_round_afz(np.asarray(x, compute))).astype(dt, copy=False)


@op("stablehlo.sqrt", cost="transcendental")
def sqrt(op_):
    """Spec: sqrt.

    dtypes: floats, complex."""
    return _float_only(op_, np.sqrt, dtypes.is_float(op_.result.dtype))


def _rsqrt(x):
    return np.reciprocal(np.sqrt(x))


def _complex_rsqrt(z):
    # 1 / sqrt(z) with XLA:CPU's complex division: NumPy's reciprocal gives NaN + NaN j for an
    # infinite sqrt (XLA:CPU and the interpreter: 0, with the conjugate's signs) and for 0
    # (XLA:CPU: inf + NaN j).
    s = np.sqrt(np.asarray(z))
    return _complex_divide(np.ones((), s.dtype), s)


@op("stablehlo.rsqrt", cost="transcendental")
def rsqrt(op_):
    """Spec: rsqrt. 1 / sqrt(x). Complex: 1 / sqrt(z) with XLA:CPU's complex division (0 for a
    value with an infinite part, inf for 0).

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return _complex_rsqrt
    return _float_only(op_, _rsqrt, False)


@op("stablehlo.cbrt", cost="transcendental")
def cbrt(op_):
    """Spec: cbrt. Real cube root (negative for negative x); for complex z, the principal root
    exp(log(z) / 3), as the spec and the reference interpreter (XLA:CPU refuses complex cbrt).

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return _float_only(op_, _complex_cbrt, False)
    return _real_only(op_, np.cbrt, False)


def _complex_cbrt(z):
    # In polar form, in float64: no intermediate overflows for huge |z| (as pow's would), and
    # complex64 keeps full precision near 0.
    z = np.asarray(z)
    w = z.astype(np.complex128)
    r, t = np.cbrt(np.abs(w)), np.angle(w) / 3
    return _complex(r * np.cos(t), r * np.sin(t), z.dtype)


@op("stablehlo.exponential", cost="transcendental")
def exponential(op_):
    """Spec: exponential. Complex: e^x cos y + i e^x sin y, through e^(x/2) twice where e^x
    overflows, imaginary part +0 for y = 0: StableHLO's complex-math expansion, which XLA:CPU
    follows (C's cexp differs for infinite parts: cexp(-inf - inf i) = 0, XLA gives NaN).

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return _complex_exp
    return _float_only(op_, np.exp, False)


def _complex_exp(z):
    z = np.asarray(z)
    x, y = z.real, z.imag
    e = np.exp(x)
    half = np.exp(x * x.dtype.type(0.5))
    overflow = e == np.inf
    cos, sin = np.cos(y), np.sin(y)
    re = np.where(overflow, half * cos * half, e * cos)
    im = np.where(y == 0, x.dtype.type(0), np.where(overflow, half * sin * half, e * sin))
    return _complex(re, im, z.dtype)


def _complex_expm1(z):
    # expm1(x + iy) = (expm1(x) cos y - 2 sin^2(y/2)) + i exp(x) sin y: accurate near 0. For
    # y = 0 the imaginary part is y (exp(x) * 0 would be NaN for x = inf), as XLA:CPU.
    z = np.asarray(z)
    x, y = z.real, z.imag
    half = np.sin(0.5 * y)
    im = np.where(y == 0, y, np.exp(x) * np.sin(y))
    return _complex(np.expm1(x) * np.cos(y) - 2 * half * half, im, z.dtype)


def _complex_log1p(z):
    # log1p(x + iy) = log|1 + z| + i atan2(y, 1 + x). The real part is 0.5 log1p(x (2 + x) + y^2)
    # where |1 + z|^2 is near 1 (accurate near z = 0, where log|1 + z| would cancel), and
    # log(m) + 0.5 log1p((n / m)^2) for m, n = the larger and smaller of |1 + x|, |y| elsewhere
    # (no overflow of the squares near the top of the range, no cancellation to -inf near
    # z = -1; 1 + x is exact or accurate enough there). An infinite part gives +inf.
    z = np.asarray(z)
    x, y = z.real, z.imag
    xp1 = 1 + x
    s = x * (2 + x) + y * y
    near_one = np.abs(s) <= 0.5
    ax, ay = np.abs(xp1), np.abs(y)
    m, n = np.maximum(ax, ay), np.minimum(ax, ay)
    q = n / m
    far = np.log(m) + 0.5 * np.log1p(q * q)
    re = np.where(near_one, 0.5 * np.log1p(s), far)
    re = np.where(np.isinf(x) | np.isinf(y), np.array(np.inf, x.dtype), re)
    return _complex(re, np.arctan2(y, xp1), z.dtype)


@op("stablehlo.exponential_minus_one", cost="transcendental")
def exponential_minus_one(op_):
    """Spec: exponential_minus_one. Complex: expm1(x)cos(y) - 2sin^2(y/2) + i e^x sin(y).

    dtypes: floats, complex."""
    dt = op_.result.dtype
    if dtypes.is_complex(dt):
        return _complex_expm1
    return _real_only(op_, np.expm1, False)


@op("stablehlo.log", cost="transcendental")
def log(op_):
    """Spec: log.

    dtypes: floats, complex."""
    return _float_only(op_, np.log, False)


@op("stablehlo.log_plus_one", cost="transcendental")
def log_plus_one(op_):
    """Spec: log_plus_one. Complex: log|1 + z| + i atan2(y, 1 + x), the real part as
    0.5 log1p(2x + x^2 + y^2) where |1 + z| is near 1 and as a scaled log hypot elsewhere (no
    overflow near the top of the range, no cancellation near z = -1). (JAX programs do not
    reach the complex case: jaxlib expands complex log_plus_one before handing a program to a
    plugin.)

    dtypes: floats, complex."""
    dt = op_.result.dtype
    if dtypes.is_complex(dt):
        return _complex_log1p
    return _real_only(op_, np.log1p, False)


def _logistic(x):
    # exp(-x) overflows to inf for very negative x, giving 1 / inf = 0 (warnings are off).
    return np.reciprocal(1 + np.exp(-x))


def _complex_logistic(z):
    # 1 / (1 + exp(-z)) with XLA:CPU's complex division: for a large negative real part
    # exp(-z) is infinite and the result 0 (NumPy's reciprocal gives NaN + NaN j).
    d = 1 + np.exp(-np.asarray(z))
    return _complex_divide(np.ones((), d.dtype), d)


@op("stablehlo.logistic", cost="transcendental")
def logistic(op_):
    """Spec: logistic. 1 / (1 + exp(-x)); narrow floats in float32. Complex: the division as
    XLA:CPU's (0 for a large negative real part, where exp(-z) overflows).

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return _complex_logistic
    return _float_only(op_, _logistic, False)


@op("stablehlo.sine", cost="transcendental")
def sine(op_):
    """Spec: sine. Complex: sin x cosh y + i cos x sinh y, as XLA:CPU (so sin(+-inf i) has a
    NaN real part where C's csin gives 0).

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return lambda z: _complex_trig(z, np.sin, np.cos, 1)
    return _float_only(op_, np.sin, False)


@op("stablehlo.cosine", cost="transcendental")
def cosine(op_):
    """Spec: cosine. Complex: cos x cosh y - i sin x sinh y, as XLA:CPU.

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return lambda z: _complex_trig(z, np.cos, np.sin, -1)
    return _float_only(op_, np.cos, False)


def _complex_trig(z, f, g, sign):
    z = np.asarray(z)
    x, y = z.real, z.imag
    return _complex(f(x) * np.cosh(y), sign * g(x) * np.sinh(y), z.dtype)


@op("stablehlo.tan", cost="transcendental")
def tan(op_):
    """Spec: tan. Complex: C's ctan, except NaN + NaN i (as XLA:CPU) where the imaginary part is
    0 and the real part not finite.

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return lambda z: _nan_where(np.tan(z), np.imag(z) == 0, np.real(z))
    return _float_only(op_, np.tan, False)


@op("stablehlo.tanh", cost="transcendental")
def tanh(op_):
    """Spec: tanh. Complex: C's ctanh, except NaN + NaN i (as XLA:CPU) where the real part is
    0 and the imaginary part not finite.

    dtypes: floats, complex."""
    if dtypes.is_complex(op_.result.dtype):
        return lambda z: _nan_where(np.tanh(z), np.real(z) == 0, np.imag(z))
    return _float_only(op_, np.tanh, False)


def _nan_where(r, zero_part, other_part):
    r = np.asarray(r)
    bad = zero_part & ~np.isfinite(other_part)
    if bad.any():
        r = np.array(r)
        r[bad] = complex(np.nan, np.nan)
    return r


@op("stablehlo.is_finite")
def is_finite(op_):
    """Spec: is_finite. False for +-inf and NaN.

    dtypes: floats (result i1)."""
    dt = _operand(op_)
    if not dtypes.is_float(dt):
        raise op_.unsupported(f"{dt} operands")
    return _lift(np.isfinite, dt, out=BOOL)


# --------------------------------------------------------------------------------------------
# Complex numbers

@op("stablehlo.complex")
def complex_(op_):
    """Spec: complex. Builds real and imaginary parts directly (no inf * 1j = NaN).

    dtypes: f32 or f64 parts, giving complex<f32> or complex<f64>."""
    dt = op_.result.dtype
    return lambda re, im: _complex(re, im, dt)


@op("stablehlo.real")
def real(op_):
    """Spec: real. A view of the real part; the identity on real operands.

    dtypes: floats, complex (complex gives its part type)."""
    if dtypes.is_complex(_operand(op_)):
        return np.real
    return lambda x: x


@op("stablehlo.imag")
def imag(op_):
    """Spec: imag. A view of the imaginary part; zeros for real operands.

    dtypes: floats, complex (complex gives its part type)."""
    if dtypes.is_complex(_operand(op_)):
        return np.imag
    out = op_.result
    zeros = np.zeros(out.shape, out.dtype)
    zeros.setflags(write=False)
    return lambda x: zeros


# --------------------------------------------------------------------------------------------
# Comparison and selection

_COMPARE = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
            "GT": np.greater, "GE": np.greater_equal}
_FLOAT_TOTAL_ORDER_VIA_F32 = {np.dtype(t) for t in (
    ml_dtypes.float8_e4m3fnuz, ml_dtypes.float8_e5m2fnuz, ml_dtypes.float8_e4m3b11fnuz,
    ml_dtypes.float8_e8m0fnu, ml_dtypes.float4_e2m1fn)}


def _total_order_key(dt):
    """x -> integers ordered as XLA's total order of floats: -NaN < -inf < ... < -0.0 < +0.0 <
    ... < +inf < +NaN (the bit pattern as a signed integer, magnitude bits flipped if negative).
    The fnuz f8 types, f8E8M0FNU and f4 go through float32 as XLA:CPU does, so the single NaN
    of the fnuz types (sign bit set) orders below everything."""
    if dt in _FLOAT_TOTAL_ORDER_VIA_F32:
        inner = _total_order_key(F32)
        return lambda x: inner(np.asarray(x, F32))
    signed = _SIGNED_OF[dt.itemsize]
    magnitude = signed.type(np.iinfo(signed).max)
    shift = dt.itemsize * 8 - 1

    def key(x):
        i = np.asarray(x).view(signed)
        return i ^ ((i >> shift) & magnitude)

    return key


@op("stablehlo.compare")
def compare(op_):
    """Spec: compare. FLOAT is IEEE (NaN compares unordered: only NE is true); TOTALORDER orders
    floats -NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN by bit pattern, as XLA;
    SIGNED/UNSIGNED follow the element type; i1 compares false < true.

    dtypes: all element types (complex: EQ and NE only); result i1."""
    direction = op_.enum("comparison_direction")
    ufunc = _COMPARE.get(direction)
    if ufunc is None:
        raise op_.unsupported(f"comparison direction {direction}")
    dt = _operand(op_)
    compare_type = op_.enum("compare_type")
    if compare_type == "TOTALORDER" and dtypes.is_float(dt):
        key = _total_order_key(dt)
        return lambda a, b: ufunc(key(a), key(b))
    if dtypes.is_complex(dt) and direction not in ("EQ", "NE"):
        raise op_.unsupported(f"complex operands with comparison direction {direction}")
    return _lift(ufunc, dt, out=BOOL)


@op("stablehlo.select")
def select(op_):
    """Spec: select. A scalar predicate picks a whole operand (no copy); large selects of 1-,
    2-, 4- or 8-byte elements pick bits through a mask (_select_bits), others use np.where.

    dtypes: all element types (i1 predicate)."""
    if op_.operand_types[0].rank == 0 and op_.result.rank > 0:
        return lambda pred, on_true, on_false: on_true if pred else on_false
    dt = op_.result.dtype
    if op_.result.size >= SELECT_BITS_ELEMENTS and dt.itemsize in (1, 2, 4, 8):
        return _select_bits(np.dtype(f"u{dt.itemsize}"), dt)
    return np.where


# np.where branches on each element: an unpredictable predicate (a ReLU's gradient) costs
# about 3.5 ns an element, five branch-free passes over the bits about 0.5 ns (64K f32:
# 0.18 ms against 0.036 ms; a predictable one: 0.039 ms against 0.036 ms).
SELECT_BITS_ELEMENTS = 1 << 12


def _select_bits(unsigned, dt):
    """select as (on_true & mask) | (on_false & ~mask), the mask all ones where the predicate
    holds: the operands' bits, exactly as np.where copies them. A broadcast predicate (a
    causal mask) is a pattern np.where predicts well, without the mask's extra memory (on
    8x4x128x128 f32: 0.36 ms against 3.5 ms)."""
    def kernel(pred, on_true, on_false):
        if np.ndim(pred) == 0 or 0 in pred.strides:
            return np.where(pred, on_true, on_false)
        mask = pred.view(np.uint8).astype(unsigned)
        np.negative(mask, out=mask)
        picked = np.bitwise_and(np.asarray(on_true).view(unsigned), mask)
        np.invert(mask, out=mask)
        np.bitwise_and(np.asarray(on_false).view(unsigned), mask, out=mask)
        return np.bitwise_or(picked, mask, out=picked).view(dt)

    return kernel


@op("stablehlo.clamp")
def clamp(op_):
    """Spec: clamp. min(max(operand, min), max) with maximum/minimum's semantics (NaN in any
    operand propagates, -0.0 < +0.0); min and max may be scalars.

    dtypes: all element types."""
    dt = op_.result.dtype
    if dtypes.is_float(dt):
        compute = elementwise_dtype(dt)
        fmax, fmin = float_max(compute), float_min(compute)
        return _lift(lambda lo, x, hi: fmin(fmax(x, lo), hi), dt)
    if dtypes.is_complex(dt):
        return lambda lo, x, hi: complex_min(complex_max(x, lo), hi)
    return _lift(lambda lo, x, hi: np.minimum(np.maximum(x, lo), hi), dt)


# --------------------------------------------------------------------------------------------
# Conversions

def _float_to_int(src, dst):
    """Float -> integer as XLA:CPU: truncate, NaN -> 0, out-of-range values saturate."""
    compute = elementwise_dtype(src)
    if compute == F16:
        compute = F32
    narrow = is_narrow_int(dst)
    target = elementwise_dtype(dst)  # (u)int8 for narrow ints
    info = ml_dtypes.iinfo(dst)
    lo = compute.type(info.min)  # exact: 0 or -2**(bits-1)
    hi = compute.type(float(info.max) + 1)  # 2**bits or 2**(bits-1), exact
    hi_below = np.nextafter(hi, compute.type(0))
    # When the float's precision is coarser than the integer range, hi_below truncates below
    # the maximum and values >= hi need the maximum put in.
    fix_top = int(hi_below) != info.max

    def kernel(x):
        x = np.asarray(x, compute)
        t = np.clip(np.nan_to_num(x, nan=0.0), lo, hi_below)
        r = t.astype(target)
        if fix_top:
            r = np.where(x >= hi, target.type(info.max), r)
        return r.astype(dst) if narrow else r

    return kernel


def _convert(op_, src, dst):
    if src == dst:
        return lambda x: x
    if dst == BOOL:
        if src == BOOL:
            return lambda x: x
        if dtypes.is_complex(src):  # the imaginary part is ignored (spec, XLA:CPU)
            return lambda x: np.not_equal(np.real(x), 0)
        return _lift(lambda x: np.not_equal(x, 0), src, out=BOOL)
    if dtypes.is_complex(src):
        if dtypes.is_complex(dst):
            return lambda x: np.asarray(x).astype(dst)
        inner = _convert(op_, F64 if src == np.complex128 else F32, dst)
        return lambda x: inner(np.real(x))
    if dtypes.is_float(src) and dtypes.is_integer(dst):
        return _float_to_int(src, dst)
    if src == BOOL and dst.kind in "iu" and dst.itemsize == 1:
        # XLA:CPU copies the byte (its simplifier makes this convert a bitcast): a bool whose
        # byte is not 0/1 (a view of raw bytes) keeps it, as jnp.view expects.
        return lambda x: np.asarray(x).view(dst)
    if src == BOOL or is_narrow_int(src):
        via = np.dtype(np.uint8) if src == BOOL or dtypes.is_unsigned(src) else np.dtype(np.int8)
        if dtypes.is_float(dst) or dtypes.is_complex(dst):
            via = F32 if is_narrow_float(dst) or dst == F16 else via
        return lambda x: np.asarray(x, via).astype(dst)
    if (is_narrow_float(src) or src == F16) and (is_narrow_float(dst) or dst == F16
                                                   or dtypes.is_complex(dst)):
        # bf16 -> f8 etc.: via float32, which holds the source exactly, so one rounding.
        return lambda x: np.asarray(x, F32).astype(dst)
    if is_narrow_float(dst) and dtypes.is_integer(src):
        # int -> bf16 / f8: XLA:CPU converts through float32.
        return lambda x: np.asarray(x, F32).astype(dst)
    if src == F64 and dst in (F16, BF16):
        # XLA:CPU rounds f64 -> f16 / bf16 twice, through float32 (but f64 -> f8 once);
        # ml_dtypes >= 0.7 and NumPy round once, so go through float32 explicitly.
        return lambda x: np.asarray(x).astype(F32).astype(dst)
    return lambda x: np.asarray(x).astype(dst)


@op("stablehlo.convert")
def convert(op_):
    """Spec: convert. As XLA:CPU: float -> integer truncates, NaN -> 0 and out-of-range values
    (and +-inf) saturate to the integer's min/max; integers wrap; anything -> i1 is x != 0;
    i1 -> number is 0/1; complex -> anything else takes the real part and ignores the imaginary
    one, complex -> i1 too (Re z != 0: the spec says so explicitly for complex-to-any-other-type
    conversions, and XLA:CPU and the interpreter agree, so 0 + 1j -> false); narrow floats go
    through float32 (one rounding); f64 -> f16 / bf16 rounds twice, through float32, as XLA:CPU.

    dtypes: all element types, to and from each other."""
    return _convert(op_, _operand(op_), op_.result.dtype)


def _bit_width(dt):
    if dt == BOOL:
        return 1
    if is_narrow_int(dt):
        return _int_bits(dt)
    if is_narrow_float(dt):
        return ml_dtypes.finfo(dt).bits
    return dt.itemsize * 8


@op("stablehlo.bitcast_convert", cost="data")
def bitcast_convert(op_):
    """Spec: bitcast_convert. A NumPy view (little-endian, as XLA:CPU); width-changing forms add
    or drop a minor dimension (e.g. f32[n] <-> i8[n, 4]).

    dtypes: all element types, between types of one bit width or with a minor dimension for the
    width ratio (i1 is one bit wide; sub-byte types pack least significant first)."""
    src, dst = _operand(op_), op_.result.dtype
    shape = op_.result.shape
    src_bits, dst_bits = _bit_width(src), _bit_width(dst)
    if src_bits == dst_bits and src.itemsize == dst.itemsize:
        return lambda x: np.asarray(x).view(dst)
    if src.itemsize * 8 != src_bits or dst.itemsize * 8 != dst_bits:
        return _bitcast_bits(src, dst, shape)
    return lambda x: np.ascontiguousarray(x).reshape(-1).view(dst).reshape(shape)


def _bits_of(x, bits):
    """The bits of each element of `x` (least significant first), as a flat bool array."""
    x = np.ascontiguousarray(x)
    raw = np.unpackbits(x.reshape(-1).view(np.uint8), bitorder="little")
    if bits == x.dtype.itemsize * 8:
        return raw
    return raw.reshape(-1, 8)[:, :bits].reshape(-1)  # sub-byte: the code in each byte's low bits


def _from_bits(flat, dtype, bits, shape):
    """Elements of `dtype` (`bits` wide) from a flat bool array of their bits."""
    if bits != dtype.itemsize * 8:  # sub-byte: one code per byte, in its low bits
        flat = np.pad(flat.reshape(-1, bits), ((0, 0), (0, 8 - bits))).reshape(-1)
    return np.packbits(flat, bitorder="little").view(dtype).reshape(shape)


def _bitcast_bits(src, dst, shape):
    """A bitcast where a side is narrower than its storage (i1 is one bit wide, the spec says;
    int4, f4E2M1FN, ... hold their code in a byte's low bits): through the bits, least
    significant element first (as XLA:CPU packs sub-byte types; XLA:CPU refuses i1 to wider
    types, whose pred is 8 bits wide, where this follows the spec and the interpreter)."""
    src_bits, dst_bits = _bit_width(src), _bit_width(dst)
    return lambda x: _from_bits(_bits_of(x, src_bits), dst, dst_bits, shape)


def _reduce_precision_bits(work, exponent_bits, mantissa_bits):
    """XLA's ReducePrecision on the bit pattern of `work` (f16, bf16, f32 or f64)."""
    finfo = ml_dtypes.finfo(work)
    nbits = work.itemsize * 8
    src_m = finfo.nmant
    src_e = nbits - 1 - src_m
    u = _UNSIGNED_OF[work.itemsize]
    c = u.type
    sign_mask = c(1 << (nbits - 1))
    exp_mask = c(((1 << src_e) - 1) << src_m)
    abs_mask = c((1 << (nbits - 1)) - 1)
    round_mantissa = mantissa_bits < src_m
    if round_mantissa:
        shift = src_m - mantissa_bits
        base_bias = c((1 << (shift - 1)) - 1)
        truncation = c(((1 << nbits) - 1) & ~((1 << shift) - 1))
    reduce_exponent = exponent_bits < src_e
    if reduce_exponent:
        bias = (1 << (src_e - 1)) - 1
        reduced_bias = (1 << (exponent_bits - 1)) - 1
        max_exp = c((bias + reduced_bias) << src_m)
        min_exp = c((bias - reduced_bias) << src_m)

    def kernel(x):
        x = np.asarray(x, work)
        bits = x.view(u)
        is_nan = (bits & abs_mask) > exp_mask
        if round_mantissa:  # round to nearest even: add 0111.. plus the last kept bit
            bits = (bits + ((bits >> shift) & c(1)) + base_bias) & truncation
        if reduce_exponent:  # overflow -> +-inf, underflow (incl. denormals) -> +-0
            exponent = bits & exp_mask
            signed_zero = bits & sign_mask
            bits = np.where(exponent > max_exp, signed_zero | exp_mask,
                            np.where(exponent <= min_exp, signed_zero, bits))
        return np.where(is_nan, x, np.asarray(bits).view(work))

    return kernel


def _narrow_work_type(dt):
    """The IEEE type XLA:CPU runs reduce_precision of an f8/f4 type in: float16 when it holds
    the type's exponent range (denormals included), else float32."""
    f = ml_dtypes.finfo(dt)
    fits = float(f.max) <= 65504 and float(f.smallest_subnormal) >= 2.0 ** -24
    return F16 if fits else F32


@op("stablehlo.reduce_precision")
def reduce_precision(op_):
    """Spec: reduce_precision. XLA's bit algorithm: mantissa rounded to nearest even, exponent
    overflow -> +-inf, underflow (denormals too) -> +-0, NaN kept as is. Works on the bits of
    f16/bf16/f32/f64; f8/f4 go through float16 (or float32 for wide exponents), as XLA:CPU.

    dtypes: floats."""
    dt = op_.result.dtype
    if not dtypes.is_float(dt):
        raise op_.unsupported(f"{dt} operands")
    e, m = op_.int("exponent_bits"), op_.int("mantissa_bits")
    work = dt if dt in (F16, BF16, F32, F64) else _narrow_work_type(dt)
    finfo = ml_dtypes.finfo(work)
    if m >= finfo.nmant and e >= work.itemsize * 8 - 1 - finfo.nmant:
        return lambda x: x  # a no-op on the work type (XLA drops it, NaN payloads survive)
    kernel = _reduce_precision_bits(work, e, m)
    if work == dt:
        return kernel
    return lambda x: kernel(x).astype(dt)
