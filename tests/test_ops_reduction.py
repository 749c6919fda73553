"""stablehlo.reduce against the CPU backend: the ufunc fast paths (sum, prod, max, min, any,
all), variadic reducers (argmax/argmin), arbitrary bodies (pairwise tree path), empty and
zero-size reductions, NaN propagation and narrow-float accumulation."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import random_values
from jax_pyrt import dtypes
from jax_pyrt.ops import reduction

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]
ALL = [np.bool_] + INTS + FLOATS + COMPLEX
AXES = [None, 1, (2, 0), ()]


def make(shape, dtype, seed=0, small=False):
    """Random values of `dtype`: full-range integers (so sums and products wrap) unless `small`."""
    return random_values(shape, dtype, seed, int_bound=3 if small else None,
                         scale=1 if small else 10)


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype in (np.float16, ml_dtypes.bfloat16):
        return dict(rtol=2e-2, atol=2e-2)
    if dtype in (np.float32, np.complex64):
        return dict(rtol=1e-5, atol=1e-5)
    return {}


def lowered(f, *args):
    return jax.jit(f).lower(*args).as_text()


# -- fast paths through jnp

@pytest.mark.parametrize("dtype", ALL, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_sum_prod(check, dtype, axis):
    x = make((3, 4, 5), dtype, small=True)
    out = jnp.dtype(dtype) if not dtypes.is_bool(np.dtype(dtype)) else jnp.int32
    check(lambda x: (jnp.sum(x, axis=axis, dtype=out), jnp.prod(x, axis=axis, dtype=out)), x,
          **tolerance(dtype))


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
def test_integer_sum_and_product_wrap(check, dtype):
    x = make((4, 33), dtype)  # full range: the sums and products overflow and must wrap
    f = lambda x: (lax.reduce(x, dtype(0), lax.add, (1,)), lax.reduce(x, dtype(1), lax.mul, (0, 1)),
                   jnp.sum(x, axis=0, dtype=dtype))
    check(f, x)


@pytest.mark.parametrize("dtype", [np.bool_] + INTS + FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", AXES, ids=str)
def test_max_min(check, dtype, axis):
    x = make((3, 4, 5), dtype)
    check(lambda x: (jnp.max(x, axis=axis), jnp.min(x, axis=axis)), x)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_nan_and_inf(check, dtype):
    x = make((4, 6), dtype)
    x[0, 2] = np.nan
    x[1, :] = np.inf
    x[2, 0], x[2, 5] = -np.inf, np.nan
    x[3, :] = -0.0
    check(lambda x: (jnp.max(x, axis=1), jnp.min(x, axis=1), jnp.max(x, axis=0), jnp.min(x),
                     jnp.sum(x, axis=1), jnp.prod(x, axis=0), jnp.mean(x, axis=1)),
          x, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint32, np.float32, np.complex64], ids=str)
@pytest.mark.parametrize("axis", [None, 0, (1, 2), ()], ids=str)
def test_any_all(check, dtype, axis):
    x = make((3, 4, 5), dtype, small=True)
    f = lambda x: (jnp.any(x, axis=axis), jnp.all(x, axis=axis), jnp.any(x == x, axis=axis),
                   jnp.all(x != x, axis=axis))
    check(f, x)


@pytest.mark.parametrize("op", [lax.bitwise_and, lax.bitwise_or, lax.bitwise_xor], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.int64, np.uint16, np.uint64], ids=str)
def test_bitwise_reductions(check, op, dtype):
    x = make((5, 7), dtype)
    init = {lax.bitwise_and: ~np.zeros((), dtype)}.get(op, np.zeros((), dtype))
    check(lambda x: (lax.reduce(x, init, op, (0,)), lax.reduce(x, init, op, (0, 1))), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, ml_dtypes.bfloat16, np.complex128], ids=str)
@pytest.mark.parametrize("axis", [None, 0, (0, 2)], ids=str)
def test_mean(check, dtype, axis):
    x = make((4, 3, 6), dtype)
    check(lambda x: jnp.mean(x, axis=axis), x, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=str)
def test_narrow_float_sum_accumulates_in_float32(check, dtype):
    # lax.reduce on a narrow float (no upcast by jnp): pyrt accumulates in float32, rounds once.
    x = (np.ones((3, 1000)) + np.linspace(0, 1, 3000).reshape(3, 1000) * 1e-2).astype(dtype)
    f = lambda x: (lax.reduce(x, dtype(0), lax.add, (1,)), lax.reduce(x, dtype(-np.inf), lax.max, (1,)),
                   jnp.sum(x, axis=1))
    assert "applies stablehlo.add" in lowered(f, x)
    check(f, x, rtol=1e-2, atol=0)


def test_float32_sum_large(check):
    x = make((257, 1031), np.float32)
    check(lambda x: (jnp.sum(x), jnp.sum(x, axis=0), jnp.sum(x, axis=1)), x, rtol=1e-4, atol=1e-3)


def test_non_contiguous_inputs(check):
    x = make((6, 8, 4), np.float32)
    check(lambda x: (jnp.sum(x, axis=1), jnp.max(x, axis=(0, 2)), jnp.argmax(x, axis=1)),
          x[:, ::2], **tolerance(np.float32))
    check(lambda x: (jnp.sum(x, axis=0), jnp.argmin(x, axis=0)), np.asarray(x[0].T), **tolerance(np.float32))


# -- empty and zero-size reductions

@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8, np.float32, ml_dtypes.bfloat16, np.complex64], ids=str)
def test_zero_size_reductions(check, dtype):
    x = make((0, 3), dtype)
    f = lambda x: (jnp.sum(x, axis=0), jnp.sum(x, axis=1), jnp.sum(x), jnp.prod(x, axis=0),
                   jnp.any(x, axis=0), jnp.all(x, axis=0))
    check(f, x)
    if not dtypes.is_complex(np.dtype(dtype)):
        init = np.array(7, dtype)
        check(lambda x: (jnp.max(x, axis=0, initial=init), jnp.min(x, axis=0, initial=init),
                         lax.reduce(x, init, lax.max, (0, 1))), x)


def test_reduce_over_no_dimensions(check):
    x = make((3, 4), np.float32)
    x[0, 0] = np.nan
    f = lambda x: (lax.reduce(x, np.float32(1.5), lax.add, ()), lax.reduce(x, np.float32(0), lax.max, ()),
                   jnp.sum(x, axis=()), lax.reduce(x, np.float32(2), lambda a, b: a * b + 1, ()))
    check(f, x)


def test_scalar_reductions(check):
    check(lambda x: (jnp.sum(x), jnp.max(x), jnp.argmax(x), lax.reduce(x, np.float32(1), lax.mul, ())),
          np.float32(3.5))


# -- variadic and general bodies

@pytest.mark.parametrize("dtype", [np.bool_] + INTS + FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", [None, 0, 2], ids=str)
def test_argmax_argmin(check, dtype, axis):
    x = make((3, 7, 5), dtype, small=True)  # small values: many ties, first index must win
    f = lambda x: (jnp.argmax(x, axis=axis), jnp.argmin(x, axis=axis))
    text = lowered(f, x)
    assert "stablehlo.reduce" in text and "reducer" in text  # the two-operand comparator form
    check(f, x)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_argmax_argmin_nan(check, dtype):
    x = make((4, 9), dtype)
    x[0, 3] = x[0, 6] = np.nan
    x[1, 8] = np.nan
    x[2, :] = np.inf
    x[3, 0], x[3, 4] = -np.inf, -np.inf
    check(lambda x: (jnp.argmax(x, axis=1), jnp.argmin(x, axis=1), jnp.argmax(x, axis=0),
                     jnp.argmin(x)), x)


def hand_written_argmax(x, axes):
    """argmax over `axes` through lax.reduce with a comparator JAX's fast-path template does not
    match (NaN-propagating, first index wins), so pyrt runs its general pairwise-tree path."""
    index = lax.broadcasted_iota(jnp.int32, x.shape, axes[-1])
    for a in axes[:-1]:
        index = index + lax.broadcasted_iota(jnp.int32, x.shape, a) * 1000

    def body(a, b):
        (av, ai), (bv, bi) = a, b
        take_a = (av > bv) | jnp.isnan(av) | ((av == bv) & (ai < bi))
        return jnp.where(take_a, av, bv), jnp.where(take_a, ai, bi)

    return lax.reduce((x, index), (np.float32(-np.inf), np.int32(0)), body, axes)


@pytest.mark.parametrize("length", [1, 2, 3, 5, 7, 16, 17, 1000], ids=str)
def test_tree_reduction_odd_lengths(check, length):
    x = make((3, length), np.float32, small=True).round()  # many ties
    x[1, length // 2:] = np.nan
    i = make((3, length), np.int32, seed=1)
    f = lambda x, i: (hand_written_argmax(x, (1,)), hand_written_argmax(x, (0,)),
                      jnp.argmax(x, axis=1), jnp.argmin(x, axis=0),
                      lax.reduce(i, np.int32(0), lambda a, b: (a + b) * 1, (1,)))
    check(f, x, i)


def test_tree_reduction_several_axes(check):
    x = make((4, 5, 6), np.float32, small=True).round()
    x[2, 1, 3] = np.nan
    check(lambda x: (hand_written_argmax(x, (0, 2)), hand_written_argmax(x, (1, 2)),
                     hand_written_argmax(x, (0, 1, 2))), x)


def test_variadic_custom_body(check):
    x = make((5, 6, 7), np.float32)
    y = make((5, 6, 7), np.int64, seed=3)

    def body(a, b):
        (ax, ay), (bx, by) = a, b
        return jnp.maximum(jnp.abs(ax), jnp.abs(bx)), ay + by

    f = lambda x, y: lax.reduce((x, y), (np.float32(0), np.int64(5)), body, (0, 2))
    assert "reducer" in lowered(f, x, y)
    check(f, x, y)
    check(lambda x, y: lax.reduce((x, y), (np.float32(0), np.int64(5)), body, (1,)), x, y)
    check(lambda x, y: lax.reduce((x, y), (np.float32(0), np.int64(5)), body, ()), x, y)


def test_body_returning_constant(check):
    x = make((4, 5), np.float32)
    check(lambda x: lax.reduce(x, np.float32(1), lambda a, b: jnp.float32(3), (1,)), x)


def test_reduce_inside_loop_and_with_closure(check):
    x = make((4, 5), np.float32)

    def f(x):
        def body(i, acc):
            return acc + jnp.max(x * i, axis=1) + jnp.argmax(x + acc[:, None], axis=1).astype(jnp.float32)
        return lax.fori_loop(0, 3, body, jnp.zeros(4, jnp.float32))

    check(f, x)


# -- fast-path recognition

def _reduce_ops(f, *args):
    module = jax.jit(f).lower(*args).compiler_ir("stablehlo")
    found = []

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "stablehlo.reduce":
                        found.append(inner.operation)
                    walk(inner.operation)

    walk(module.operation)
    return found


@pytest.mark.parametrize("fn, expected", [
    (lambda x: jnp.sum(x), "stablehlo.add"),
    (lambda x: jnp.prod(x, axis=0), "stablehlo.multiply"),
    (lambda x: jnp.max(x, axis=1), "stablehlo.maximum"),
    (lambda x: jnp.min(x), "stablehlo.minimum"),
    (lambda x: jnp.any(x > 0), "stablehlo.or"),
    (lambda x: jnp.all(x > 0), "stablehlo.and"),
    (lambda x: lax.reduce(x, np.float32(0), lambda a, b: b + a, (0,)), "stablehlo.add"),
    (lambda x: lax.reduce(x, np.float32(0), lambda a, b: a - b, (0,)), None),
    (lambda x: lax.reduce(x, np.float32(0), lambda a, b: a + a, (0,)), None),
    (lambda x: jnp.argmax(x), None),
], ids=["sum", "prod", "max", "min", "any", "all", "swapped", "sub", "self", "argmax"])
def test_fast_path_recognition(fn, expected):
    x = np.ones((3, 4), np.float32)
    (reduce_op,) = _reduce_ops(fn, x)
    assert reduction.simple_body(reduce_op.regions[0]) == expected


@pytest.mark.parametrize("fn, expected", [
    (lambda x: jnp.argmax(x, axis=1), "max"),
    (lambda x: jnp.argmin(x, axis=0), "min"),
    (lambda x: jnp.argmax(x.astype(jnp.int8)), "max"),
    (lambda x: jnp.argmin(x > 0, keepdims=True), "min"),
    (lambda x: hand_written_argmax(x, (1,)), None),
    (lambda x: jnp.sum(x), None),
], ids=["argmax", "argmin", "argmax-int8", "argmin-bool", "hand-written", "sum"])
def test_arg_reduce_recognition(fn, expected):
    x = np.ones((3, 4), np.float32)
    (reduce_op,) = _reduce_ops(fn, x)
    assert reduction.arg_reduce_body(reduce_op.regions[0]) == expected


# -- signed zeros and complex max/min (found by tests/differential)

def _bits(x):
    """Float results as their bit patterns: -0.0 and +0.0 compared exactly."""
    return lax.bitcast_convert_type(x, {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[
        np.dtype(x.dtype).itemsize])


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_max_min_order_signed_zeros(check, dtype):
    """max is +0.0 when any reduced zero (or the init value) is +0.0, min -0.0 when any is
    -0.0, whatever order the ufunc reduction met them in (NumPy returns either zero on a
    tie)."""
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([0.0, -0.0, -0.0, -1.5]), (4, 6, 5)).astype(dtype)
    x[0] = -0.0  # rows of -0.0 only
    x[1, :, :2] = 0.0
    y = -x
    dt = np.dtype(dtype).type
    f = lambda x, y: [_bits(r) for r in (
        jnp.max(x), jnp.max(x, axis=1), jnp.max(x, axis=(0, 2)), jnp.min(y, axis=2),
        jnp.min(y), jnp.max(x[:, ::2, 1:]), jnp.max(x.T, axis=0),
        lax.reduce(x, dt(0.0), lax.max, (1,)), lax.reduce(x, dt(-0.0), lax.max, (0, 2)),
        lax.reduce(y, dt(-0.0), lax.min, (2,)), lax.reduce(y, dt(0.0), lax.min, (0,)))]
    check(f, x, y)
    pair = np.array([0.0, -0.0], dtype)
    check(lambda x, y: [_bits(r) for r in (jnp.max(x), jnp.max(y), jnp.min(x), jnp.min(y))],
          pair, pair[::-1])


def test_windows_and_scatter_order_signed_zeros(check):
    """The reduce_window (cummax, pooling) and scatter max/min fast paths order -0.0 < +0.0 too."""
    rng = np.random.default_rng(4)
    for dtype in (np.float32, ml_dtypes.bfloat16):
        x = rng.choice(np.array([0.0, -0.0, -0.0, -2.0]), (6, 9)).astype(dtype)
        u = rng.choice(np.array([0.0, -0.0]), (5, 9)).astype(dtype)
        idx = np.array([0, 3, 3, 5, 0])
        f = lambda x, u: [_bits(r) for r in (
            lax.cummax(x, axis=1), lax.cummin(-x, axis=0, reverse=True),
            lax.reduce_window(x, -np.inf, lax.max, (2, 3), (1, 1), "VALID"),
            lax.reduce_window(-x, np.inf, lax.min, (3, 2), (2, 1), "SAME"),
            x.at[idx].max(u), (-x).at[idx].min(-u))]
        check(f, x, u)


def _complex_reduce_module(kind, shape, dims, part):
    out = [n for i, n in enumerate(shape) if i not in dims]
    t = lambda s: f"tensor<{'x'.join(map(str, s)) + 'x' if s else ''}complex<{part}>>"
    return f"""
    func.func @main(%x: {t(shape)}, %init: {t(())}) -> {t(out)} {{
      %0 = stablehlo.reduce(%x init: %init) applies stablehlo.{kind} across dimensions =
          [{', '.join(map(str, dims))}] : ({t(shape)}, {t(())}) -> {t(out)}
      return %0 : {t(out)}
    }}"""


def _sequential_fold(x, init, dims, body):
    """The interpreter's reduce schedule in JAX: init, then the reduced elements in row-major
    order, one body call each (lax.scan)."""
    kept = [d for d in range(x.ndim) if d not in dims]
    flat = jnp.transpose(x, list(dims) + kept).reshape((-1,) + tuple(x.shape[d] for d in kept))
    carry = jnp.broadcast_to(init, flat.shape[1:])
    return lax.scan(lambda acc, v: (body(acc, v), None), carry, flat)[0]


@pytest.mark.parametrize("dtype", COMPLEX, ids=lambda d: np.dtype(d).name)
def test_complex_max_min_reduce_with_nan_parts(pyrt_device, cpu_device, dtype):
    """A reduce whose body is one complex maximum/minimum (`a if a > b else b`, lexicographic,
    NaN parts not propagating, not associative with them) gives exactly the fold the reference
    interpreter computes: init, then the elements in row-major order. The oracle is that fold
    on XLA:CPU (lax.scan of JAX's compare/select lowering of lax.max/lax.min; XLA:CPU's own
    complex maximum op compares real parts only, and its reduce loops in other orders)."""
    from conftest import run_mlir, run_on
    nan, inf = np.nan, np.inf
    values = np.array([complex(1, nan), complex(nan, 1), complex(nan, nan), complex(1, 0),
                       complex(1, 2), complex(2, nan), complex(0, 0), complex(-0.0, 0),
                       complex(1, -0.0), complex(0, 1), complex(inf, nan), complex(-1, 5)],
                      dtype)
    part = "f64" if np.dtype(dtype) == np.complex128 else "f32"
    rng = np.random.default_rng(5)
    for kind, body in (("maximum", lax.max), ("minimum", lax.min)):
        # A leading kept dimension of 8 folds, each over its own few values.
        for shape, dims in (((8, 9), (1,)), ((8, 4, 5), (2,)), ((3, 8, 4, 5), (0, 3)),
                            ((8, 3, 4, 2), (1, 2, 3))):
            lead = shape.index(8)
            picks = [values[rng.permutation(len(values))[:rng.integers(2, 7)]] for _ in range(8)]
            rest = shape[:lead] + shape[lead + 1:]
            x = np.stack([p[rng.integers(0, len(p), rest)] for p in picks], axis=lead)
            init = np.asarray(values[rng.integers(0, len(values))])
            (actual,) = run_mlir(pyrt_device, _complex_reduce_module(kind, shape, dims, part),
                                 x, init)
            expected = run_on(cpu_device, lambda x, i: _sequential_fold(x, i, dims, body),
                              x, init)
            for get in (np.real, np.imag):
                a, e = get(actual), get(expected)
                np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
                a, e = np.where(np.isnan(a), 0, a), np.where(np.isnan(e), 0, e)
                np.testing.assert_array_equal(np.signbit(a), np.signbit(e))
                np.testing.assert_array_equal(a, e)
