"""stablehlo.sort against the CPU backend: JAX's comparators (jnp.sort/argsort/lexsort,
lax.sort with several keys, top_k) on the key fast paths, bit-exact including NaN placement and
-0.0 vs 0.0 order, and arbitrary comparators on the vectorised merge sort (check_mlir)."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from jax_pyrt import dtypes
from jax_pyrt.ops import sort as sort_module

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]
ALL = [np.bool_] + INTS + FLOATS + COMPLEX
_BITS = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}


def make(n, dtype, seed=0):
    """n values of `dtype` with many duplicates and the type's edge values (NaNs of both signs,
    +-inf, -0.0 and 0.0 for floats; INT_MIN/INT_MAX/0 for integers)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtypes.is_bool(dtype):
        return rng.random(n) < 0.5
    if dtypes.is_integer(dtype):
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -4), 4, n, endpoint=True).astype(dtype)
        x[:3] = [info.min, info.max, 0]
        return rng.permutation(x)
    if dtypes.is_complex(dtype):
        part = np.dtype(np.float64 if dtype == np.complex128 else np.float32)
        re, im = make(n, part, seed), make(n, part, seed + 1)
        x = np.empty(n, dtype)
        x.real, x.imag = re, im
        return x
    x = rng.integers(-3, 3, n).astype(np.float64) / 2
    special = np.array([np.nan, -np.nan, np.inf, -np.inf, -0.0, 0.0, -0.0, 0.0, np.nan])
    x[:len(special)] = special[:n]
    return rng.permutation(x).astype(dtype)


def bits(tree):
    """Floats as their bit patterns (so -0.0 != 0.0 and NaN signs count); others unchanged."""
    def one(v):
        if jnp.issubdtype(v.dtype, jnp.complexfloating):
            return one(jnp.real(v)), one(jnp.imag(v))
        if jnp.issubdtype(v.dtype, jnp.floating):
            return lax.bitcast_convert_type(v, _BITS[v.dtype.itemsize])
        return v
    return jax.tree_util.tree_map(one, tree)


def exact(fn):
    return lambda *args: bits(fn(*args))


def ids(d):
    return np.dtype(d).name


# -- JAX's comparators (fast paths)

@pytest.mark.parametrize("dtype", ALL, ids=ids)
def test_sort_and_argsort(check, dtype):
    x = make(200, dtype)
    check(exact(lambda x: (jnp.sort(x), jnp.argsort(x))), x)


@pytest.mark.parametrize("dtype", [np.int8, np.uint32, np.float16, ml_dtypes.bfloat16, np.float32,
                                   np.float64, np.complex64], ids=ids)
def test_descending(check, dtype):
    x = make(150, dtype, seed=1)
    check(exact(lambda x: (jnp.sort(x, descending=True), jnp.argsort(x, descending=True))), x)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", [np.int32, np.float32, ml_dtypes.bfloat16], ids=ids)
def test_axes(check, dtype, axis):
    x = make(7 * 40, dtype, seed=2).reshape(7, 40)
    check(exact(lambda x: (jnp.sort(x, axis=axis), jnp.argsort(x, axis=axis))), x)


def test_middle_axis_and_non_contiguous(check):
    x = make(4 * 30 * 5, np.float32, seed=3).reshape(4, 30, 5)
    check(exact(lambda x: (jnp.sort(x, axis=1), jnp.argsort(x, axis=1))), x)
    check(exact(lambda x: jnp.sort(x, axis=0)), x[:, ::2, 1].T)
    check(exact(lambda x: jnp.argsort(x, axis=1)), x[:, ::3].transpose(2, 1, 0))


@pytest.mark.parametrize("num_keys", [1, 2, 3])
def test_lax_sort_num_keys(check, num_keys):
    rng = np.random.default_rng(4)
    a = make(300, np.float32, seed=4)
    b = rng.integers(-2, 2, 300).astype(np.int32)
    c = make(300, np.uint8, seed=5)
    check(exact(lambda a, b, c: lax.sort((a, b, c), num_keys=num_keys)), a, b, c)
    check(exact(lambda a, b, c: lax.sort((b, c, a), num_keys=num_keys)), a, b, c)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.complex128, np.int64], ids=ids)
def test_lax_sort_wide_keys(check, dtype):
    # Keys too wide to pack with the position go through np.lexsort.
    a, b = make(120, dtype, seed=6), make(120, dtype, seed=7)
    check(exact(lambda a, b: lax.sort((a, b, a), num_keys=2)), a, b)


def test_lexsort(check):
    rng = np.random.default_rng(8)
    keys = (rng.integers(0, 3, 100), make(100, np.float32, seed=9), rng.integers(0, 2, 100) > 0)
    check(lambda a, b, c: jnp.lexsort((a, b, c)), *keys)
    check(lambda a, b: jnp.lexsort((a, b)), keys[0], keys[0][::-1])


@pytest.mark.parametrize("k", [1, 5, 60, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, ml_dtypes.bfloat16], ids=ids)
def test_top_k(check, dtype, k):
    x = make(100, dtype, seed=10)
    check(exact(lambda x: lax.top_k(x, k)), x)


def test_top_k_batched_with_ties(check):
    rng = np.random.default_rng(11)
    x = rng.integers(0, 4, (6, 500)).astype(np.float32)
    x[2] = 1.0  # a row of ties only
    x[3, ::7] = np.nan
    check(exact(lambda x: lax.top_k(x, 7)), x)
    check(exact(lambda x: lax.top_k(x, 3)), x.T.copy()[:64].T)


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.complex64], ids=ids)
def test_argsort_payloads(check, dtype):
    # An iota along the sort axis is the permutation; along another axis it stays put.
    x = make(5 * 20, dtype, seed=12).reshape(5, 20)
    rows = lax.broadcasted_iota(jnp.int32, (5, 20), 0)
    cols = lax.broadcasted_iota(jnp.int16, (5, 20), 1)
    check(exact(lambda x: lax.sort((x, rows, cols), dimension=1, num_keys=1)), x)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_tiny_and_empty(check, n):
    x = make(n, np.float32, seed=13)
    check(exact(lambda x: (jnp.sort(x), jnp.argsort(x))), x)
    check(exact(lambda x: jnp.sort(x, axis=0)), np.zeros((0, 4), np.float32))
    check(exact(lambda x: jnp.argsort(x, axis=1)), np.zeros((3, 0), np.int8))


@pytest.mark.parametrize("dtype", [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2], ids=ids)
def test_float8_keys(check, dtype):
    # f8 keys run the general merge sort, calling the comparator on whole arrays.
    # (XLA:CPU rewrites f8 NaNs to one pattern, so values compare NaN-aware, not bitwise.)
    x = make(64, np.float32, seed=14).astype(dtype)
    check(lambda x: (jnp.sort(x).astype(jnp.float32), jnp.argsort(x)), x)


def test_sort_in_a_loop(check):
    def f(x):
        return lax.fori_loop(0, 3, lambda i, v: jnp.sort(v * -1.0 + i, axis=1), x)
    check(exact(f), make(60, np.float32, seed=15).reshape(3, 20))


# -- comparator recognition

def _comparator_keys(fn, *args):
    """What the sort handler reads from the comparator of the first sort in fn's program."""
    module = jax.jit(fn).lower(*args).compiler_ir("stablehlo")
    found = []

    def walk(op):
        for region in op.regions:
            for block in region.blocks:
                for inner in block.operations:
                    if inner.operation.name == "stablehlo.sort":
                        found.append(inner.operation)
                    walk(inner.operation)

    with module.context:
        walk(module.operation)
        op = found[0]
        operand_dtypes = [dtypes.DTYPE_BY_MLIR[str(v.type.element_type)] for v in op.operands]
        return sort_module.comparator_keys(op.regions[0], operand_dtypes)


@pytest.mark.parametrize("fn, dtype, expected", [
    (jnp.sort, np.float32, [(0, None, "canonical", False)]),
    (jnp.argsort, np.int8, [(0, None, "signed", False)]),
    (jnp.sort, np.uint16, [(0, None, "unsigned", False)]),
    (jnp.sort, np.bool_, [(0, None, "unsigned", False)]),
    (jnp.sort, np.complex64, [(0, "real", "canonical", False), (0, "imag", "canonical", False)]),
    (lambda x: jnp.argsort(x, descending=True), np.float32, [(0, None, "canonical", False)]),
    (lambda x: lax.sort((x, x + 1), num_keys=2), np.float64,
     [(0, None, "canonical", False), (1, None, "canonical", False)]),
])
def test_comparator_recognition(fn, dtype, expected):
    assert _comparator_keys(fn, np.zeros(8, dtype)) == expected


# -- arbitrary comparators (general merge sort)

def _sort_module(shape, dim, body, dtype="f32", stable="true"):
    t = "x".join(map(str, shape))
    return f"""
func.func @main(%x: tensor<{t}x{dtype}>, %y: tensor<{t}xi32>) -> (tensor<{t}x{dtype}>, tensor<{t}xi32>) {{
  %0:2 = "stablehlo.sort"(%x, %y) <{{dimension = {dim} : i64, is_stable = {stable}}}> ({{
  ^bb0(%a: tensor<{dtype}>, %b: tensor<{dtype}>, %c: tensor<i32>, %d: tensor<i32>):
{body}
  }}) : (tensor<{t}x{dtype}>, tensor<{t}xi32>) -> (tensor<{t}x{dtype}>, tensor<{t}xi32>)
  return %0#0, %0#1 : tensor<{t}x{dtype}>, tensor<{t}xi32>
}}"""


_BY_ABS = """
    %aa = stablehlo.abs %a : tensor<f32>
    %bb = stablehlo.abs %b : tensor<f32>
    %r = stablehlo.compare LT, %aa, %bb, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    stablehlo.return %r : tensor<i1>"""

# Descending on the payload, ties broken by x ascending: a key chain the fast path does not read
# (the keys are compared in the opposite order of the operands).
_PAYLOAD_FIRST = """
    %lt = stablehlo.compare GT, %c, %d, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %eq = stablehlo.compare EQ, %c, %d, SIGNED : (tensor<i32>, tensor<i32>) -> tensor<i1>
    %xl = stablehlo.negate %a : tensor<f32>
    %yl = stablehlo.negate %b : tensor<f32>
    %k = stablehlo.compare GT, %xl, %yl, TOTALORDER : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %t = stablehlo.and %eq, %k : tensor<i1>
    %r = stablehlo.or %lt, %t : tensor<i1>
    stablehlo.return %r : tensor<i1>"""


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 257])
def test_general_comparator_lengths(check_mlir, n):
    rng = np.random.default_rng(n)
    x = rng.integers(-4, 4, n).astype(np.float32)
    y = rng.integers(0, 3, n).astype(np.int32)
    check_mlir(_sort_module((n,), 0, _BY_ABS), x, y)
    check_mlir(_sort_module((n,), 0, _PAYLOAD_FIRST), x, y)


@pytest.mark.parametrize("dim", [0, 1])
def test_general_comparator_2d(check_mlir, dim):
    rng = np.random.default_rng(20 + dim)
    x = rng.integers(-3, 3, (9, 11)).astype(np.float32)
    x[2, 3], x[4, 4] = -0.0, np.inf
    y = rng.integers(0, 100, (9, 11)).astype(np.int32)
    check_mlir(_sort_module((9, 11), dim, _BY_ABS), x, y, exact=True)
    check_mlir(_sort_module((9, 11), dim, _PAYLOAD_FIRST), x.T.copy().T, y, exact=True)


def test_general_comparator_unstable_unique_keys(check_mlir):
    rng = np.random.default_rng(30)
    x = (rng.permutation(100) + 0.5) * rng.choice([-1, 1], 100)  # distinct magnitudes
    y = np.arange(100, dtype=np.int32)
    check_mlir(_sort_module((100,), 0, _BY_ABS, stable="false"), x.astype(np.float32), y,
               exact=True)


def test_general_comparator_with_constant(check_mlir):
    # Elements below a threshold first, then the rest, each group in input order.
    body = """
    %t = stablehlo.constant dense<1.0> : tensor<f32>
    %p = stablehlo.compare LT, %a, %t, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %q = stablehlo.compare GE, %b, %t, FLOAT : (tensor<f32>, tensor<f32>) -> tensor<i1>
    %r = stablehlo.and %p, %q : tensor<i1>
    stablehlo.return %r : tensor<i1>"""
    rng = np.random.default_rng(31)
    x = rng.standard_normal(200).astype(np.float32)
    check_mlir(_sort_module((200,), 0, body), x, np.arange(200, dtype=np.int32), exact=True)


# -- custom_call @ApproxTopK (jax.lax.approx_max_k / approx_min_k off TPU)

@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64],
                         ids=str)
@pytest.mark.parametrize("shape,dim,k", [((50,), 0, 7), ((6, 40), 1, 40), ((12, 5, 3), 0, 4)])
def test_approx_top_k(check, dtype, shape, dim, k):
    """Distinct values, at most 180 (exact in bfloat16: XLA:CPU orders ties of min-k as its
    unstable sort leaves them), with -0.0 and both infinities among them."""
    rng = np.random.default_rng(k)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32) - 20
    x.reshape(-1)[:3] = [-np.inf, np.inf, -0.0]
    x = x.astype(dtype)
    check(lambda x: lax.approx_max_k(x, k, reduction_dimension=dim), x, exact=True)
    check(lambda x: lax.approx_min_k(x, k, reduction_dimension=dim), x, exact=True)
    check(lambda x: lax.approx_max_k(x, k, reduction_dimension=dim, recall_target=0.5), x,
          exact=True)


def test_approx_max_k_ties_keep_input_order(check):
    x = np.round(np.random.default_rng(5).standard_normal((4, 27)) * 2).astype(np.float32)
    check(lambda x: lax.approx_max_k(x, 17), x, exact=True)
