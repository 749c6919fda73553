"""stablehlo.reduce_window, select_and_scatter and map against the CPU backend: pooling through
lax.reduce_window (max, min, add, mul; padding, strides, base and window dilations), flax-style
avg/max pools, the cumulative reductions JAX lowers to reduce_window (cumsum, cumprod, cummax,
cummin, cumlogsumexp), arbitrary and variadic bodies, the max-pool gradient
(select_and_scatter) and map through hand-written StableHLO."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import random_values
from jax_pyrt import dtypes

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]


def ids(d):
    return np.dtype(d).name


def make(shape, dtype, seed=0, small=False):
    return random_values(shape, dtype, seed, int_bound=3 if small else None)


def lowest(dtype):
    dtype = np.dtype(dtype)
    if dtypes.is_integer(dtype):
        return np.array(np.iinfo(dtype).min, dtype)
    return np.array(-np.inf, dtype)


def highest(dtype):
    dtype = np.dtype(dtype)
    if dtypes.is_integer(dtype):
        return np.array(np.iinfo(dtype).max, dtype)
    return np.array(np.inf, dtype)


def as_bits(v):
    """Float bit patterns (-0.0 != 0.0), with every NaN as one pattern (NaN signs may differ)."""
    width = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}
    if jnp.issubdtype(v.dtype, jnp.floating):
        return lax.bitcast_convert_type(jnp.where(jnp.isnan(v), jnp.nan, v).astype(v.dtype),
                                        width[v.dtype.itemsize])
    return v


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype in (np.float16, ml_dtypes.bfloat16):
        return dict(rtol=2e-2, atol=2e-2)
    if dtype in (np.float32, np.complex64):
        return dict(rtol=1e-6, atol=1e-6)
    return {}


WINDOWS = [  # window, strides, padding, base dilation, window dilation (2-D, on H and W)
    ((2, 2), (2, 2), "VALID", (1, 1), (1, 1)),
    ((3, 3), (1, 1), "SAME", (1, 1), (1, 1)),
    ((3, 2), (2, 1), ((1, 2), (0, 1)), (1, 1), (1, 1)),
    ((2, 3), (1, 2), ((0, 0), (2, 1)), (2, 1), (1, 2)),
    ((1, 4), (1, 3), ((0, 0), (-1, 1)), (1, 1), (1, 1)),  # negative padding crops
]


def pool(reducer, init, window, strides, padding, base, dilation):
    def f(x):
        pad = padding if isinstance(padding, str) else ((0, 0),) + padding + ((0, 0),)
        return lax.reduce_window(x, init, reducer, (1,) + window + (1,), (1,) + strides + (1,),
                                 pad, (1,) + base + (1,), (1,) + dilation + (1,))
    return f


# -- fast bodies

@pytest.mark.parametrize("config", WINDOWS, ids=str)
@pytest.mark.parametrize("dtype", [np.uint16, ml_dtypes.bfloat16, np.float32], ids=ids)
def test_max_min_pool(check, dtype, config):
    x = make((2, 9, 10, 3), dtype, small=True)
    check(pool(lax.max, lowest(dtype), *config), x, exact=True)
    check(pool(lax.min, highest(dtype), *config), x, exact=True)


SUM_CASES = ([(d, WINDOWS[3]) for d in INTS + FLOATS + COMPLEX]
             + [(d, c) for d in (np.int32, np.float32) for c in WINDOWS[:3] + WINDOWS[4:]])


@pytest.mark.parametrize("dtype, config", SUM_CASES, ids=str)
def test_sum_pool(check, dtype, config):
    # Integer sums wrap (exact); float sums may round differently from XLA:CPU's order.
    x = make((2, 9, 10, 3), dtype, seed=1)
    check(pool(lax.add, np.array(0, dtype), *config), x, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.int8, np.float32, ml_dtypes.bfloat16, np.complex64],
                         ids=ids)
def test_product_pool(check, dtype):
    x = make((2, 7, 8, 2), dtype, seed=2, small=True)
    for config in WINDOWS[:3]:
        check(pool(lax.mul, np.array(1, dtype), *config), x, **tolerance(dtype))


@pytest.mark.parametrize("window, strides, padding", [((2, 2), (2, 2), "VALID"),
                                                      ((3, 3), (1, 1), "SAME")])
def test_bfloat16_sum_pool_rounds_every_step(check, window, strides, padding):
    # As XLA:CPU: init, then the window in row-major order, rounding to bf16 after every add.
    x = make((2, 9, 10, 3), ml_dtypes.bfloat16, seed=3)
    check(pool(lax.add, np.array(0, ml_dtypes.bfloat16), window, strides, padding, (1, 1),
               (1, 1)), x, exact=True)


def test_bool_windows(check):
    x = make((3, 8, 9, 2), np.bool_, seed=3)
    for config in WINDOWS[2:4]:
        check(pool(lax.bitwise_or, np.array(False), *config), x)
        check(pool(lax.bitwise_and, np.array(True), *config), x)
        check(pool(lax.bitwise_xor, np.array(False), *config), x)


def test_max_pool_signed_zeros_and_nan(check):
    # XLA:CPU orders -0.0 < +0.0 in max/min and propagates NaN.
    x = np.array([-0., 0., 0., -0., -0., -0., 0., 0., np.nan, 1., 1., np.nan, -np.inf, -np.inf],
                 np.float32)
    for reducer, init in ((lax.max, -np.inf), (lax.min, np.inf)):
        for window, stride in (((2,), (2,)), ((7,), (3,))):
            check(lambda x: as_bits(lax.reduce_window(x, np.float32(init), reducer, window, stride,
                                                      "VALID")), x)
            check(lambda x: as_bits(lax.reduce_window(x, np.float32(-0.0), reducer, window, stride,
                                                      ((1, 1),))), x)


def test_flax_style_pools(check):
    x = make((4, 16, 16, 8), np.float32, seed=4)

    def avg_pool(x, window, strides, padding):
        dims, stride = (1,) + window + (1,), (1,) + strides + (1,)
        total = lax.reduce_window(x, 0., lax.add, dims, stride, padding)
        count = lax.reduce_window(jnp.ones_like(x), 0., lax.add, dims, stride, padding)
        return total / count

    def max_pool(x, window, strides, padding):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1,) + window + (1,),
                                 (1,) + strides + (1,), padding)

    check(lambda x: avg_pool(x, (2, 2), (2, 2), "VALID"), x)
    check(lambda x: avg_pool(x, (3, 3), (1, 1), "SAME"), x)
    check(lambda x: max_pool(x, (3, 3), (2, 2), "SAME"), x, exact=True)
    check(lambda x: max_pool(jax.nn.relu(x), (2, 2), (1, 1), "VALID"), x, exact=True)


def test_large_windows(check):
    # Windows too large to walk offset by offset reduce by doubling levels.
    x = make((3, 200), np.int32, seed=5)
    check(lambda x: lax.reduce_window(x, np.int32(0), lax.add, (1, 50), (1, 3), "VALID"), x)
    check(lambda x: lax.reduce_window(x, lowest(np.int32), lax.max, (2, 37), (1, 1),
                                      ((0, 1), (20, 5)), window_dilation=(1, 2)), x)
    f = make((3, 200), np.float32, seed=6)
    check(lambda x: lax.reduce_window(x, np.float32(0), lax.add, (1, 64), (1, 5), "VALID"), f,
          rtol=1e-5, atol=1e-5)


def test_non_contiguous_zero_size_and_scalar(check):
    x = make((6, 10, 8), np.float32, seed=7)
    check(lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (2, 3), (1, 2), "SAME"), x[:, ::2, 3])
    check(lambda x: lax.reduce_window(x, np.float32(0), lax.add, (2, 2), (1, 1), "VALID"),
          x[0].T)
    check(lambda x: lax.reduce_window(x, np.float32(0), lax.add, (2, 2), (1, 1), "VALID"),
          np.zeros((0, 5), np.float32))
    check(lambda x: lax.reduce_window(x, np.float32(0), lax.add, (2, 2), (1, 1), "SAME"),
          np.zeros((0, 5), np.float32))
    check(lambda x: lax.reduce_window(x, np.float32(0), lax.add, (), (), ()), np.float32(2.5))


def test_non_identity_init_without_padding(check):
    # (With padding, XLA:CPU skips the padding instead of reducing the init value there as the
    # spec says, and returns 0-d operands unchanged; pyrt follows the spec, so only padding-free
    # windows of rank >= 1 are compared.)
    x = make((5, 7), np.float32, seed=8)
    check(lambda x: lax.reduce_window(x, np.float32(3), lax.add, (2, 3), (1, 2), "VALID"), x)
    check(lambda x: lax.reduce_window(x, np.float32(0.5), lax.max, (2, 3), (1, 2), "VALID"), x)
    i = make((5, 7), np.int32, seed=9)
    check(lambda x: lax.reduce_window(x, np.int32(7), lax.mul, (3, 1), (2, 1), "VALID"), i)


# -- cumulative reductions (reduce_window with a window of the whole axis)

CUMULATIVE = [jnp.cumsum, jnp.cumprod, lax.cummax, lax.cummin]


@pytest.mark.parametrize("axis, reverse", [(0, False), (1, True)])
@pytest.mark.parametrize("fn", CUMULATIVE, ids=lambda f: f.__name__)
def test_cumulative(check, fn, axis, reverse):
    for dtype in (np.int8, np.float32):
        x = make((13, 17), dtype, seed=10, small=True)
        if reverse:
            f = {jnp.cumsum: lax.cumsum, jnp.cumprod: lax.cumprod}.get(fn, fn)
            check(lambda x: f(x, axis=axis, reverse=True), x, rtol=1e-5, atol=1e-5)
        else:
            check(lambda x: fn(x, axis=axis), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64, np.complex64,
                                   np.int16, np.uint32, np.uint64], ids=ids)
def test_cumsum_dtypes(check, dtype):
    x = make((40,), dtype, seed=11, small=True)
    tol = dict(rtol=2e-2, atol=5e-2) if np.dtype(dtype).itemsize == 2 else {}
    check(lambda x: (jnp.cumsum(x), lax.cummax(x, reverse=True)) if not dtypes.is_complex(x.dtype)
          else jnp.cumsum(x), x, **tol)


def test_cummax_signed_zeros(check):
    x = np.array([-0., 0., -0., -1., 0., np.nan, 2.], np.float32)
    check(lambda x: as_bits(lax.cummax(x)), x)
    check(lambda x: as_bits(lax.cummin(-x)), x)
    check(lambda x: as_bits(lax.cummax(x, reverse=True)), -x[:5])


def test_cumlogsumexp(check):
    # A general body over whole-axis windows: doubling levels, each one body call.
    x = make((5, 300), np.float32, seed=12)
    check(lambda x: lax.cumlogsumexp(x, axis=1), x, rtol=1e-5, atol=1e-5)
    check(lambda x: lax.cumlogsumexp(x, axis=0, reverse=True), x, rtol=1e-5, atol=1e-5)


# -- arbitrary and variadic bodies

def test_custom_body(check):
    x = make((4, 9, 10), np.float32, seed=13)
    body = lambda a, b: a * np.float32(0.5) + b  # noqa: E731 - neither associative nor commutative
    check(lambda x: lax.reduce_window(x, np.float32(0), body, (1, 3, 2), (1, 2, 1), "VALID"), x,
          exact=True)
    check(lambda x: lax.reduce_window(x, np.float32(1), body, (2, 1, 3), (1, 1, 2), "VALID",
                                      window_dilation=(1, 1, 2)), x, exact=True)


def test_variadic_body(check):
    x = make((6, 11), np.float64, seed=14)
    i = lax.broadcasted_iota(jnp.int32, (6, 11), 1)

    def argmax_pool(x):
        def body(a, b):
            take = (b[0] > a[0]) | ((b[0] == a[0]) & (b[1] < a[1]))
            return lax.select(take, b[0], a[0]), lax.select(take, b[1], a[1])
        return lax.reduce_window((x, i), (-jnp.inf, np.int32(-1)), body, (2, 3), (1, 2),
                                 ((0, 1), (1, 1)))

    check(argmax_pool, x, exact=True)
    check(lambda x: lax.reduce_window((x, x), (0., 1.),
                                      lambda a, b: (a[0] + b[0], a[1] * b[1]),
                                      (2, 3), (1, 2), ((1, 1), (1, 0))), x, exact=True)


def test_padding_on_axes_with_size_one_windows(check):
    """Padding an axis whose window is 1 (JAX's lax_autodiff_test testReduceWindowGrad): the
    output grows along it although no window spans it."""
    x = make((3, 2, 4, 6), np.float32, seed=16)
    pad = [(0, 1), (1, 0), (2, 3), (0, 2)]
    for op, init in ((lax.add, 0.0), (lax.max, -np.inf), (lax.mul, 1.0)):
        check(lambda x: lax.reduce_window(x, np.float32(init), op, (2, 1, 2, 1), (1, 1, 1, 1),
                                          pad), x, exact=op is lax.max, rtol=1e-6)
    check(lambda x: jax.grad(lambda v: (lax.reduce_window(
        v, np.float32(0), lax.add, (2, 1, 2, 1), (1, 2, 2, 1), pad) ** 2).sum())(x), x)


def test_body_calling_functions(check):
    """A body that calls jitted helpers (func.call, possibly nested and with several results),
    as jnp.where inside a Python reducer lowers (JAX's lax_vmap_test test_variadic_reduce_window);
    under vmap too."""
    both = jax.jit(lambda c, a, b: (jnp.where(c, a[0], b[0]), jnp.where(c, a[1], b[1])))

    def normpool(x):
        norms = jnp.linalg.norm(x, axis=-1)
        idxs = jnp.arange(x.shape[0])
        body = lambda a, b: both(a[0] >= b[0], a, b)
        init = (jnp.array(-np.inf, norms.dtype), jnp.array(-1, idxs.dtype))
        _, idxs = lax.reduce_window((norms, idxs), init, body, (2,), (2,),
                                    ((0, 0),))
        return x[idxs]

    x = make((3, 6, 3), np.float32, seed=15)
    check(jax.vmap(normpool), x, exact=True)
    halve = jax.jit(lambda a: a * np.float32(0.5))
    check(lambda x: lax.reduce_window(x, np.float32(0), lambda a, b: halve(a) + b, (2, 3),
                                      (1, 2), "VALID"), x[0], exact=True)


_WINDOW_MODULE = """
func.func @main(%x: tensor<7x9xf32>, %i: tensor<f32>) -> tensor<{out}xf32> {{
  %0 = "stablehlo.reduce_window"(%x, %i) <{{window_dimensions = array<i64: {window}>,
      window_strides = array<i64: {strides}>, base_dilations = array<i64: {base}>,
      window_dilations = array<i64: {dilation}>, padding = dense<{padding}> : tensor<2x2xi64>}}> ({{
  ^bb0(%a: tensor<f32>, %b: tensor<f32>):
    %m = stablehlo.maximum %a, %b : tensor<f32>
    %s = stablehlo.subtract %a, %b : tensor<f32>
    %e = stablehlo.abs %s : tensor<f32>
    %r = stablehlo.add %m, %e : tensor<f32>
    stablehlo.return %r : tensor<f32>
  }}) : (tensor<7x9xf32>, tensor<f32>) -> tensor<{out}xf32>
  return %0 : tensor<{out}xf32>
}}"""


@pytest.mark.parametrize("window, strides, base, dilation, out", [
    ("2, 3", "1, 2", "1, 1", "1, 1", "6x4"),
    ("3, 2", "2, 1", "1, 1", "1, 2", "3x7"),
    ("1, 1", "1, 1", "1, 1", "1, 1", "7x9"),
])
def test_custom_body_mlir(check_mlir, window, strides, base, dilation, out):
    text = _WINDOW_MODULE.format(window=window, strides=strides, base=base, dilation=dilation,
                                 padding="0", out=out)
    x = make((7, 9), np.float32, seed=15)
    check_mlir(text, x, np.float32(-1.0), exact=True)


# -- select_and_scatter: the max-pool gradient

@pytest.mark.parametrize("window, strides, padding", [
    ((2, 2), (2, 2), "VALID"), ((3, 3), (1, 1), "SAME"), ((3, 3), (2, 2), "SAME"),
    ((2, 3), (1, 2), "VALID"),
])
def test_max_pool_gradient(check, window, strides, padding):
    x = make((2, 8, 9, 3), np.float32, seed=16)
    dims, stride = (1,) + window + (1,), (1,) + strides + (1,)
    pool_ = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, dims, stride, padding)  # noqa: E731
    weights = make(jax.eval_shape(pool_, x).shape, np.float32, seed=17)
    grad = jax.grad(lambda x: (pool_(x) * weights).sum())
    check(grad, x, exact=True)
    check(grad, np.round(x), exact=True)  # ties: the first maximum in window order gets it
    check(grad, jax.nn.relu(x), exact=True)  # many zero ties


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64], ids=ids)
def test_max_pool_gradient_dtypes(check, dtype):
    x = np.round(make((2, 6, 7, 2), np.float32, seed=18) * 2).astype(dtype)
    dims = (1, 3, 3, 1)
    grad = jax.grad(lambda x: lax.reduce_window(x, -jnp.inf, lax.max, dims, (1, 1, 1, 1),
                                                "SAME").astype(jnp.float32).sum())
    check(grad, x, exact=True)


def test_min_pool_gradient_with_nan(check):
    x = make((1, 6, 6, 1), np.float32, seed=19)
    x[0, 2, 3, 0] = np.nan
    grad = jax.grad(lambda x: lax.reduce_window(x, jnp.inf, lax.min, (1, 2, 2, 1), (1, 1, 1, 1),
                                                "VALID").sum())
    check(grad, x, exact=True)


def _select_and_scatter(shape, source, window, strides, padding, dtype, select, scatter):
    t, s = "x".join(map(str, shape)), "x".join(map(str, source))
    pads = ", ".join(f"[{lo}, {hi}]" for lo, hi in padding)
    ctype = {"f32": "FLOAT", "bf16": "FLOAT", "i32": "SIGNED"}[dtype]
    return f"""
func.func @main(%x: tensor<{t}x{dtype}>, %s: tensor<{s}x{dtype}>, %i: tensor<{dtype}>) -> tensor<{t}x{dtype}> {{
  %0 = "stablehlo.select_and_scatter"(%x, %s, %i) <{{window_dimensions = array<i64: {window}>,
      window_strides = array<i64: {strides}>, padding = dense<[{pads}]> : tensor<{len(shape)}x2xi64>}}> ({{
  ^bb0(%a: tensor<{dtype}>, %b: tensor<{dtype}>):
    %r = stablehlo.compare {select}, %a, %b, {ctype} : (tensor<{dtype}>, tensor<{dtype}>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>
  }}, {{
  ^bb0(%a: tensor<{dtype}>, %b: tensor<{dtype}>):
    %r = stablehlo.{scatter} %a, %b : tensor<{dtype}>
    stablehlo.return %r : tensor<{dtype}>
  }}) : (tensor<{t}x{dtype}>, tensor<{s}x{dtype}>, tensor<{dtype}>) -> tensor<{t}x{dtype}>
  return %0 : tensor<{t}x{dtype}>
}}"""


@pytest.mark.parametrize("select", ["GE", "GT", "LE", "LT"])
@pytest.mark.parametrize("scatter", ["add", "multiply", "maximum"])
def test_select_and_scatter_bodies(check_mlir, select, scatter):
    # Overlapping windows (stride < window) and padding. Distinct operand values: with padding,
    # XLA:CPU's tie-breaking order varies (JAX pads explicitly instead).
    rng = np.random.default_rng(20)
    x = rng.permutation(42).reshape(7, 6).astype(np.int32) - 20
    s = rng.integers(-3, 4, (4, 3)).astype(np.int32)
    text = _select_and_scatter((7, 6), (4, 3), "3, 3", "2, 2", [(1, 1), (1, 1)], "i32", select,
                               scatter)
    check_mlir(text, x, s, np.int32(2))


def test_select_and_scatter_padding_never_selected(check_mlir):
    # Every operand element is negative; windows made only of padding scatter nothing.
    rng = np.random.default_rng(21)
    x = -rng.permutation(4).reshape(2, 2).astype(np.float32) - 1
    s = rng.standard_normal((4, 4)).astype(np.float32)
    text = _select_and_scatter((2, 2), (4, 4), "2, 2", "1, 1", [(2, 1), (2, 1)], "f32", "GE",
                               "add")
    check_mlir(text, x, s, np.float32(0), exact=True)
    x = -np.abs(rng.standard_normal((4, 2))).astype(np.float32)
    text = _select_and_scatter((4, 2), (2, 2), "3, 1", "2, 1", [(0, 1), (0, 0)], "f32", "GE",
                               "add")
    check_mlir(text, x, rng.standard_normal((2, 2)).astype(np.float32), np.float32(0.5),
               exact=True)


def test_select_and_scatter_narrow_float_and_ties(check_mlir):
    rng = np.random.default_rng(22)
    x = rng.integers(-2, 2, (7, 6)).astype(ml_dtypes.bfloat16)  # ties, no padding
    s = rng.standard_normal((3, 2)).astype(ml_dtypes.bfloat16)
    text = _select_and_scatter((7, 6), (3, 2), "3, 3", "2, 2", [(0, 0), (0, 0)], "bf16", "GE",
                               "add")
    check_mlir(text, x, s, ml_dtypes.bfloat16(0.25), exact=True)
    xi = rng.integers(-2, 2, (7, 6)).astype(np.int32)
    si = rng.integers(-5, 5, (3, 2)).astype(np.int32)
    text = _select_and_scatter((7, 6), (3, 2), "3, 3", "2, 2", [(0, 0), (0, 0)], "i32", "LE",
                               "maximum")
    check_mlir(text, xi, si, np.int32(-9))


# -- map

_MAP = """
func.func @main(%x: tensor<{shape}f32>, %y: tensor<{shape}i32>) -> tensor<{shape}f32> {{
  %0 = "stablehlo.map"(%x, %y) <{{dimensions = array<i64{dims}>}}> ({{
  ^bb0(%a: tensor<f32>, %b: tensor<i32>):
    %c = stablehlo.convert %b : (tensor<i32>) -> tensor<f32>
    %m = stablehlo.multiply %a, %c : tensor<f32>
    %k = stablehlo.constant dense<2.5> : tensor<f32>
    %p = stablehlo.compare GT, %m, %k, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %r = stablehlo.select %p, %k, %m : tensor<i1>, tensor<f32>
    stablehlo.return %r : tensor<f32>
  }}) : (tensor<{shape}f32>, tensor<{shape}i32>) -> tensor<{shape}f32>
  return %0 : tensor<{shape}f32>
}}"""


@pytest.mark.parametrize("shape", [(3, 4), (5,), (), (0, 3)], ids=str)
def test_map(check_mlir, shape):
    text = _MAP.format(shape="".join(f"{n}x" for n in shape),
                       dims="".join(f"{', ' if i else ': '}{i}" for i in range(len(shape))))
    x = make(shape, np.float32, seed=23) * 3
    y = make(shape, np.int32, seed=24, small=True)
    check_mlir(text, x, y, exact=True)


def test_map_constant_body(check_mlir):
    text = """
func.func @main(%x: tensor<2x3xi8>) -> tensor<2x3xi8> {
  %0 = "stablehlo.map"(%x) <{dimensions = array<i64: 0, 1>}> ({
  ^bb0(%a: tensor<i8>):
    %k = stablehlo.constant dense<-7> : tensor<i8>
    stablehlo.return %k : tensor<i8>
  }) : (tensor<2x3xi8>) -> tensor<2x3xi8>
  return %0 : tensor<2x3xi8>
}"""
    check_mlir(text, make((2, 3), np.int8))


def test_map_with_non_elementwise_body_is_refused(pyrt_device):
    from conftest import run_mlir
    text = """
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "stablehlo.map"(%x) <{dimensions = array<i64: 0>}> ({
  ^bb0(%a: tensor<f32>):
    %r = stablehlo.reshape %a : (tensor<f32>) -> tensor<1xf32>
    %s = stablehlo.reshape %r : (tensor<1xf32>) -> tensor<f32>
    stablehlo.return %s : tensor<f32>
  }) : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}"""
    with pytest.raises(Exception, match="stablehlo.map.*reshape"):
        run_mlir(pyrt_device, text, np.zeros(4, np.float32))
