"""stablehlo.gather / scatter / dynamic_gather against the CPU backend: jnp fancy indexing, take,
take_along_axis, x.at[...] updates (duplicates, out-of-range indices in every mode), segment
reductions, batched (vmap) gathers and scatters, custom scatter bodies, many dtypes, and
hand-written StableHLO for batching dimensions, multi-op and variadic bodies, overlapping
windows and dynamic_gather.

Scatters apply updates in XLA:CPU's order, so even float results with duplicate indices are
compared bit-exactly."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import assert_same, random_values, run_mlir, run_on
from jax_pyrt import dtypes

DTYPES = [np.float32, np.float64, ml_dtypes.bfloat16, np.float16, np.int32, np.int8, np.uint8,
          np.int64, np.uint64, np.bool_, np.complex64]
IDS = lambda d: np.dtype(d).name  # noqa: E731


def make(shape, dtype, seed=0):
    return random_values(shape, dtype, seed, scale=4)


# Duplicates, negative (wrapped by jnp) and out-of-range indices.
IDX = np.array([1, 3, 3, -2, 12, -20, 0, 3, 7, 1], np.int32)


# -- gather through jnp

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_take_dtypes(check, dtype):
    x = make((10,), dtype)
    m = make((6, 7), dtype, seed=1)
    check(lambda x, m, i: (x[i], m[i % 6], m[:, i % 7], m[i % 6, i % 7]), x, m, IDX, exact=True)


GATHERS = {
    "rows_2d_index": lambda m, i: m[i.reshape(2, 5) % 6],
    "middle_axis": lambda m, i: m[:, i % 5],
    "last_axis": lambda m, i: m[..., i % 4],
    "two_adjacent": lambda m, i: m[i % 6, i % 5],
    "two_apart": lambda m, i: m[i % 6, :, i % 4],
    "slice_and_index": lambda m, i: m[1:5, i % 5, ::2],
    "index_and_newaxis": lambda m, i: m[i % 6, None, 2:4],
    "take_axis1": lambda m, i: jnp.take(m, i, axis=1, mode="clip"),
    "take_fill": lambda m, i: jnp.take(m, i, axis=2, mode="fill", fill_value=-7),
    "take_wrap": lambda m, i: jnp.take(m, i, axis=0, mode="wrap"),
    "take_along_axis": lambda m, i: jnp.take_along_axis(
        m, jnp.broadcast_to(i[:6, None, None] % 5, (6, 3, 4)), axis=1),
    "transposed_operand": lambda m, i: m.T[i % 4],
}


@pytest.mark.parametrize("name", GATHERS)
def test_gather_patterns(check, name):
    m = make((6, 5, 4), np.float32)
    check(GATHERS[name], m, IDX, exact=True)


def test_gather_noncontiguous_inputs(check):
    m = make((8, 10), np.int32)
    i = np.arange(20, dtype=np.int32).reshape(10, 2) * 3 - 4
    check(lambda m, i: m[i[:, 0] % 8, :], m[:, ::2], i[::2])
    check(lambda m, i: m[i, 1], m.T, i.T)
    # A transposed (non-contiguous) intermediate indexed in every dimension.
    check(lambda m, i: m.T[i[:, 0] % 10, i[:, 1] % 8], m, i)


@pytest.mark.parametrize("mode", ["clip", "fill", "promise_in_bounds"])
def test_gather_modes(check, mode):
    x = make((10, 3), np.float64)
    i = IDX if mode != "promise_in_bounds" else np.abs(IDX) % 10
    check(lambda x, i: x.at[i].get(mode=mode, fill_value=np.nan), x, i, exact=True)


@pytest.mark.parametrize("index_dtype", [np.int8, np.uint8, np.int16, np.uint32, np.int64,
                                         np.uint64], ids=IDS)
def test_index_dtypes(check, index_dtype):
    x = make((120,), np.float32)  # jnp wraps negative indices by adding 120: fits int8
    i = np.array([0, 5, 127, 100, 255, 7, 119]).astype(index_dtype)
    check(lambda x, i: (x[i], x.at[i].add(1.0), x.at[i].get(mode="clip")), x, i, exact=True)


def test_gather_clamps_start_indices(check):
    x = make((10, 8), np.int32)
    starts = np.array([[-5, 3], [9, 9], [2, 100], [7, -1]], np.int32)
    # Windows of 4x3 at clamped starts (lax.gather clamps under mode="clip").
    dn = lax.GatherDimensionNumbers(offset_dims=(1, 2), collapsed_slice_dims=(),
                                    start_index_map=(0, 1))
    check(lambda x, s: lax.gather(x, s, dn, (4, 3), mode="clip"), x, starts)
    dn2 = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,),
                                     start_index_map=(0,))
    check(lambda x, s: lax.gather(x, s[:, :1], dn2, (1, 8), mode="clip"), x, starts)


def test_gather_scalar_index(check):
    x = make((5, 3), np.float32)
    dn = lax.GatherDimensionNumbers(offset_dims=(0,), collapsed_slice_dims=(0,),
                                    start_index_map=(0,))
    check(lambda x, i: lax.gather(x, i, dn, (1, 3), mode="clip"), x, np.array([7], np.int32))


def test_vmap_gather(check):
    m = make((4, 9, 3), np.float32)
    i = (np.arange(20, dtype=np.int32).reshape(4, 5) * 7) % 9
    check(jax.vmap(lambda r, j: r[j]), m, i)
    check(jax.vmap(lambda r, j: r[j % 4], in_axes=(2, 1)), m[:, :5], i.T[:, :3])
    check(jax.vmap(jax.vmap(lambda r, j: r[j], in_axes=(1, None)), in_axes=(0, None)), m, i[0, :3])


# -- scatter through jnp

UPDATES = ["set", "add", "mul", "min", "max"]


def updates_of(dtype):
    dt = np.dtype(dtype)
    if dtypes.is_bool(dt):
        return ["set", "min", "max"]  # jnp has no bool add/mul scatter
    if dtypes.is_complex(dt):
        return ["set", "add", "mul"]  # nor complex min/max
    return UPDATES


def all_updates(names, **kw):
    """x.at[i].<name>(u, **kw) for every name, as one program."""
    return lambda x, i, u: tuple(getattr(x.at[i], name)(u, **kw) for name in names)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_scatter_dtypes(check, dtype):
    x = make((10,), dtype)
    u = make((IDX.size,), dtype, seed=1)
    names = updates_of(dtype)
    if dtypes.is_complex(np.dtype(dtype)):
        # XLA:CPU's complex product rounds differently from NumPy's (a last-bit difference).
        check(all_updates(["mul"]), x, IDX, u, rtol=1e-6, atol=0)
        names = ["set", "add"]
    check(all_updates(names), x, IDX, u, exact=True)


@pytest.mark.parametrize("mode", ["drop", "clip", "promise_in_bounds", None])
def test_scatter_modes(check, mode):
    x = make((10, 4), np.float32)
    u = make((IDX.size, 4), np.float32, seed=2)
    i = np.abs(IDX) % 10 if mode == "promise_in_bounds" else IDX
    check(all_updates(UPDATES, mode=mode), x, i, u, exact=True)


@pytest.mark.parametrize("update", UPDATES + ["apply"])
def test_scatter_rows(check, update):
    """Windows of whole rows (scattered as units) with duplicates and dropped rows."""
    m = make((12, 40), np.float32)
    rng = np.random.default_rng(3)
    i = rng.integers(-14, 14, 60).astype(np.int32)
    u = make((60, 40), np.float32, seed=4)
    u[::7] = 0.0
    u[::5] = -0.0
    if update == "apply":
        fn = lambda m, i, u: m.at[i].apply(lambda v: v * 2 - 1)  # noqa: E731
    else:
        fn = lambda m, i, u: getattr(m.at[i], update)(u)  # noqa: E731
    check(fn, m, i, u, exact=True)
    check(lambda m, i, u: getattr(m.at[:, i % 3, 1:], "add")(u[:, None, :39]), m.reshape(4, 3, 40),
          i[:4], u[:4], exact=True)


def test_scatter_accumulation_order(check):
    """Float sums of duplicates depend on the order: XLA:CPU adds in update order."""
    x = np.zeros(3, np.float32)
    u = np.array([1e8, 1, -1e8, 1, 3e-8, 1e8, -1e8], np.float32)
    i = np.array([0, 0, 0, 1, 1, 2, 2], np.int32)
    check(lambda x, i, u: (x.at[i].add(u), x.at[i].mul(u)), x, i, u, exact=True)
    b = np.zeros(2, ml_dtypes.bfloat16)
    ones = np.ones(600, ml_dtypes.bfloat16)
    check(lambda b, i, u: b.at[i].add(u), b, np.arange(600, dtype=np.int32) % 2, ones, exact=True)


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.float64], ids=IDS)
def test_scatter_edge_floats(check, dtype):
    x = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, 0.0, -0.0], dtype)
    u = np.array([-0.0, 0.0, 1.0, np.nan, np.inf, -np.inf, -0.0, -0.0, 0.0, np.nan], dtype)
    i = np.array([0, 1, 2, 3, 4, 5, 6, 7, 7, 6], np.int32)

    def fn(x, i, u):
        # Zero results with their sign (NaN-aware comparison ignores -0.0 vs +0.0).
        rs = all_updates(UPDATES)(x, i, u)
        return rs, [jnp.where(r == 0, jnp.signbit(r), False) for r in rs]

    check(fn, x, i, u, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8], ids=IDS)
def test_scatter_edge_ints(check, dtype):
    info = np.iinfo(dtype)
    x = np.array([info.max, info.min, 0, 1, info.max], dtype)
    u = np.array([1, info.min, info.max, info.max, 2, info.min, 0], dtype)
    i = np.array([0, 1, 1, 2, 3, 4, 4], np.int32)
    check(all_updates(UPDATES), x, i, u)


def test_scatter_nd_and_vmap(check):
    x = make((5, 6, 3), np.float32)
    rng = np.random.default_rng(5)
    i, j = rng.integers(-6, 8, 30).astype(np.int32), rng.integers(-7, 7, 30).astype(np.int32)
    u = make((30, 3), np.float32, seed=6)
    check(lambda x, i, j, u: (x.at[i, j].add(u), x.at[i, :, j % 3].set(u[:, :1]),
                              x.at[:, j].max(u[None, :, :])), x, i, j, u, exact=True)
    # Batched scatters: vmap produces input/indices batching dimensions.
    bi = rng.integers(-1, 7, (5, 8)).astype(np.int32)
    bu = make((5, 8, 3), np.float32, seed=7)
    check(jax.vmap(lambda r, k, v: r.at[k].add(v)), x, bi, bu, exact=True)
    check(jax.vmap(lambda r, k, v: r.at[k].set(v), in_axes=(1, 1, 0)), x, bi[:, :6],
          bu[:, :6].transpose(1, 0, 2), exact=True)


def test_scatter_apply_custom_body(check):
    x = make((9,), np.float32)
    i = np.array([1, 1, 1, 4, 8, 9, -1, 4], np.int32)
    dn = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                     scatter_dims_to_operand_dims=(0,))
    check(lambda x, i: lax.scatter_apply(x, i[:, None], lambda v: v * 2 + 1, dn,
                                         update_shape=i.shape, mode="drop"), x, i, exact=True)
    check(lambda x, i: x.at[i].apply(lambda v: jnp.sin(v) * v), x, i, exact=True)
    check(lambda x, i: x.at[i % 9].apply(jnp.cos, unique_indices=True), x,
          np.array([3, 0, 8, 1], np.int32), exact=True)


def test_scatter_many_duplicates(check):
    """A general body with a few targets hit hundreds of times (ranked by sorting)."""
    x = make((4,), np.float64)
    i = np.random.default_rng(8).integers(0, 4, 700).astype(np.int32)
    i[:400] = 2
    check(lambda x, i: x.at[i].apply(lambda v: v * 0.999 + 0.5), x, i, exact=True)
    big = np.random.default_rng(9).integers(-50, 3000, 20000).astype(np.int32)
    check(lambda x, i: x.at[i].apply(lambda v: v * 1.5 - 1), make((3000,), np.float32), big,
          rtol=1e-5)  # XLA:CPU fuses v * 1.5 - 1 into an FMA


@pytest.mark.parametrize("fn", ["segment_sum", "segment_max", "segment_min", "segment_prod"])
def test_segment_ops(check, fn):
    data = make((40, 3), np.float32)
    seg = np.sort(np.random.default_rng(10).integers(0, 7, 40)).astype(np.int32)
    seg[-3:] = 9  # out of range: dropped
    check(lambda d, s: getattr(jax.ops, fn)(d, s, num_segments=8), data, seg, exact=True)
    check(lambda d, s: getattr(jax.ops, fn)(d, s, num_segments=8, indices_are_sorted=True),
          data[:, 0], seg, exact=True)


def test_scatter_zero_size(check):
    x = make((5,), np.float32)
    check(lambda x, i, u: x.at[i].add(u), x, np.zeros((0,), np.int32), np.zeros((0,), np.float32))
    check(lambda x, i, u: x.at[i].set(u), np.zeros((0, 2), np.float32), np.array([0, 1], np.int32),
          np.zeros((2, 2), np.float32))


def test_gather_scatter_benchmark_shapes(check):
    """The benchmark programs (1M-element scatter-add, gather) at a smaller size."""
    rng = np.random.default_rng(11)
    n = 1 << 14
    x = rng.standard_normal(n).astype(np.float32)
    i = rng.integers(0, n, n).astype(np.int32)
    u = rng.standard_normal(n).astype(np.float32)
    check(lambda x, i, u: (x.at[i].add(u), x[i], x.at[i].set(u), x.at[i].max(u)), x, i, u,
          exact=True)


# -- hand-written StableHLO

def _scatter_module(inputs, indices, updates, dims, body_args, body, unique="false"):
    n = len(inputs)
    sig = ", ".join(f"%arg{k}: {t}" for k, t in enumerate(inputs + [indices] + updates))
    operands = ", ".join(f"%arg{k}" for k in range(2 * n + 1))
    results = ", ".join(inputs)
    result_type = results if n == 1 else f"({results})"
    return f"""
func.func public @main({sig}) -> {result_type} {{
  %r:{n} = "stablehlo.scatter"({operands}) <{{indices_are_sorted = false,
      scatter_dimension_numbers = #stablehlo.scatter<{dims}>, unique_indices = {unique}}}> ({{
    ^bb0({body_args}):
{body}
  }}) : ({', '.join(inputs + [indices] + updates)}) -> {result_type}
  return {', '.join(f'%r#{k}' for k in range(n))} : {results}
}}"""


def test_mlir_scatter_multi_op_body(check_mlir):
    text = _scatter_module(
        ["tensor<6xf32>"], "tensor<7x1xi32>", ["tensor<7xf32>"],
        "inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1",
        "%a: tensor<f32>, %b: tensor<f32>",
        """      %m = stablehlo.multiply %a, %b : tensor<f32>
      %c = stablehlo.constant dense<0.5> : tensor<f32>
      %s = stablehlo.subtract %m, %c : tensor<f32>
      stablehlo.return %s : tensor<f32>""")
    x = make((6,), np.float32)
    i = np.array([[2], [2], [5], [6], [-1], [0], [2]], np.int32)
    check_mlir(text, x, i, make((7,), np.float32, seed=1), rtol=1e-6)  # XLA:CPU uses an FMA


def test_mlir_scatter_variadic(check_mlir):
    text = _scatter_module(
        ["tensor<5xf32>", "tensor<5xi32>"], "tensor<6x1xi32>", ["tensor<6xf32>", "tensor<6xi32>"],
        "inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1",
        "%a0: tensor<f32>, %a1: tensor<i32>, %b0: tensor<f32>, %b1: tensor<i32>",
        """      %s = stablehlo.add %a0, %b0 : tensor<f32>
      %m = stablehlo.maximum %a1, %b1 : tensor<i32>
      stablehlo.return %s, %m : tensor<f32>, tensor<i32>""")
    i = np.array([[0], [4], [4], [1], [5], [4]], np.int32)
    check_mlir(text, make((5,), np.float32), make((5,), np.int32), i,
               make((6,), np.float32, seed=1), make((6,), np.int32, seed=2), exact=True)
    replace = _scatter_module(
        ["tensor<5xf32>", "tensor<5xi32>"], "tensor<6x1xi32>", ["tensor<6xf32>", "tensor<6xi32>"],
        "inserted_window_dims = [0], scatter_dims_to_operand_dims = [0], index_vector_dim = 1",
        "%a0: tensor<f32>, %a1: tensor<i32>, %b0: tensor<f32>, %b1: tensor<i32>",
        "      stablehlo.return %b0, %b1 : tensor<f32>, tensor<i32>")
    check_mlir(replace, make((5,), np.float32), make((5,), np.int32), i,
               make((6,), np.float32, seed=1), make((6,), np.int32, seed=2), exact=True)


def test_mlir_scatter_batching_dims(check_mlir):
    # input 3x5 (batch dim 0), indices 4x3x1 (batch dim 1), updates 4x3 (scatter dims both).
    text = _scatter_module(
        ["tensor<3x5xf32>"], "tensor<4x3x1xi32>", ["tensor<4x3xf32>"],
        "inserted_window_dims = [1], input_batching_dims = [0], "
        "scatter_indices_batching_dims = [1], scatter_dims_to_operand_dims = [1], "
        "index_vector_dim = 2",
        "%a: tensor<f32>, %b: tensor<f32>",
        """      %m = stablehlo.multiply %a, %b : tensor<f32>
      %s = stablehlo.add %m, %b : tensor<f32>
      stablehlo.return %s : tensor<f32>""")
    i = np.array([[[0], [4], [2]], [[0], [5], [2]], [[1], [-1], [2]], [[0], [4], [3]]], np.int32)
    check_mlir(text, make((3, 5), np.float32), i, make((4, 3), np.float32, seed=1), rtol=1e-6)


def test_mlir_scatter_window_order(check_mlir):
    """Window dims before scatter dims in the updates, overlapping windows (the later scatter
    index wins), a window that does not fit (dropped whole) and index_vector_dim = 0."""
    text = _scatter_module(
        ["tensor<7x3xi32>"], "tensor<1x5xi32>", ["tensor<2x5x3xi32>"],
        "update_window_dims = [0, 2], scatter_dims_to_operand_dims = [0], index_vector_dim = 0",
        "%a: tensor<i32>, %b: tensor<i32>", "      stablehlo.return %b : tensor<i32>")
    i = np.array([[0, 1, 6, 5, 3]], np.int32)
    check_mlir(text, make((7, 3), np.int32), i, make((2, 5, 3), np.int32, seed=1))
    add = text.replace("      stablehlo.return %b : tensor<i32>",
                       "      %s = stablehlo.add %a, %b : tensor<i32>\n"
                       "      stablehlo.return %s : tensor<i32>")
    check_mlir(add, make((7, 3), np.int32), i, make((2, 5, 3), np.int32, seed=1))


GATHER = """
func.func public @main(%x: {xt}, %i: {it}) -> {rt} {{
  %r = "stablehlo.gather"(%x, %i) <{{dimension_numbers = #stablehlo.gather<{dims}>,
      indices_are_sorted = false, slice_sizes = array<i64: {sizes}>}}> : ({xt}, {it}) -> {rt}
  return %r : {rt}
}}"""


def test_mlir_gather_batching_dims(check_mlir):
    text = GATHER.format(
        xt="tensor<2x5x3xf32>", it="tensor<4x2x1xi32>", rt="tensor<3x4x2xf32>",
        dims="offset_dims = [0], collapsed_slice_dims = [1], operand_batching_dims = [0], "
             "start_indices_batching_dims = [1], start_index_map = [1], index_vector_dim = 2",
        sizes="1, 1, 3")
    i = np.array([[[0], [4]], [[7], [2]], [[-3], [1]], [[3], [3]]], np.int32)
    check_mlir(text, make((2, 5, 3), np.float32), i, exact=True)
    # Only batching dims, no start index: a diagonal-like gather.
    text2 = GATHER.format(
        xt="tensor<3x4xf32>", it="tensor<3x0xi32>", rt="tensor<3x4xf32>",
        dims="offset_dims = [1], operand_batching_dims = [0], start_indices_batching_dims = [0], "
             "index_vector_dim = 1", sizes="1, 4")
    check_mlir(text2, make((3, 4), np.float32), np.zeros((3, 0), np.int32), exact=True)


def test_mlir_gather_index_vector_dim_first(check_mlir):
    text = GATHER.format(
        xt="tensor<6x7x8xi32>", it="tensor<2x5xi64>", rt="tensor<5x2x3xi32>",
        dims="offset_dims = [1, 2], collapsed_slice_dims = [2], start_index_map = [2, 0], "
             "index_vector_dim = 0", sizes="2, 3, 1")
    i = np.array([[0, 7, 9, -1, 3], [5, 5, -2, 4, 100]], np.int64)
    check_mlir(text, make((6, 7, 8), np.int32), i)


def test_mlir_gather_zero_size(check_mlir):
    text = GATHER.format(xt="tensor<5x3xf32>", it="tensor<0x1xi32>", rt="tensor<0x3xf32>",
                         dims="offset_dims = [1], collapsed_slice_dims = [0], "
                              "start_index_map = [0], index_vector_dim = 1", sizes="1, 3")
    check_mlir(text, make((5, 3), np.float32), np.zeros((0, 1), np.int32))


DYNAMIC_GATHER = """
func.func public @main(%x: tensor<6x5xf32>, %i: tensor<4x1xi32>, %s: tensor<2xi32>)
    -> tensor<4x3xf32> {
  %r = "stablehlo.dynamic_gather"(%x, %i, %s) <{dimension_numbers = #stablehlo.gather<
      offset_dims = [1], collapsed_slice_dims = [0], start_index_map = [MAP],
      index_vector_dim = 1>, indices_are_sorted = false}>
      : (tensor<6x5xf32>, tensor<4x1xi32>, tensor<2xi32>) -> tensor<4x3xf32>
  return %r : tensor<4x3xf32>
}"""


@pytest.mark.parametrize("start_map", ["0", "1"])
def test_mlir_dynamic_gather(pyrt_device, cpu_device, start_map):
    """XLA:CPU cannot compile dynamic_gather: compare with the same gather on CPU."""
    gather = GATHER.format(xt="tensor<6x5xf32>", it="tensor<4x1xi32>", rt="tensor<4x3xf32>",
                           dims="offset_dims = [1], collapsed_slice_dims = [0], "
                                f"start_index_map = [{start_map}], index_vector_dim = 1",
                           sizes="1, 3")
    text = DYNAMIC_GATHER.replace("MAP", start_map)
    x, i = make((6, 5), np.float32), np.array([[0], [5], [9], [-2]], np.int32)
    actual = run_mlir(pyrt_device, text, x, i, np.array([1, 3], np.int32))
    assert_same(actual, run_mlir(cpu_device, gather, x, i), exact=True)
    with pytest.raises(Exception, match="slice_sizes"):
        run_mlir(pyrt_device, text, x, i, np.array([1, 4], np.int32))


@pytest.mark.parametrize("case", ["collapsed_unindexed", "unindexed_offset", "scalar_operand"])
def test_mlir_gather_unindexed_dims(check_mlir, case):
    """Dims no start index addresses: collapsed (dropped), partial offset windows, rank 0."""
    xt, it, rt, dims, sizes, x = {
        "collapsed_unindexed": ("tensor<4x5x3xf32>", "tensor<6x1xi32>", "tensor<6x2xf32>",
                                "offset_dims = [1], collapsed_slice_dims = [0, 1], "
                                "start_index_map = [1], index_vector_dim = 1", "1, 1, 2",
                                make((4, 5, 3), np.float32)),
        "unindexed_offset": ("tensor<4x5x3xf32>", "tensor<6x1xi32>", "tensor<2x6x3xf32>",
                             "offset_dims = [0, 2], collapsed_slice_dims = [1], "
                             "start_index_map = [1], index_vector_dim = 1", "2, 1, 3",
                             make((4, 5, 3), np.float32)),
        "scalar_operand": ("tensor<f32>", "tensor<6x0xi32>", "tensor<6xf32>",
                           "index_vector_dim = 1", "", np.float32(2.5)),
    }[case]
    i = np.array([[0], [4], [9], [-3], [2], [2]], np.int32)
    if case == "scalar_operand":
        i = np.zeros((6, 0), np.int32)
    text = GATHER.format(xt=xt, it=it, rt=rt, dims=dims, sizes=sizes)
    check_mlir(text.replace("array<i64: >", "array<i64>"), x, i, exact=True)


def test_scatter_noncontiguous_and_whole_operand(check):
    m = make((8, 6), np.float32)
    u = make((8, 10), np.float32, seed=1)
    i = np.array([5, 0, 5, 9, -1, 2, 2, 7, 1, 3], np.int32)
    check(lambda m, i, u: (m.at[i].add(u), m.at[i].set(u)), m.T, i[::2], u.T[::2], exact=True)
    # (exp differs from XLA:CPU's in the last bits, compounded by repeated application)
    check(lambda m, i: m.at[i].apply(jnp.exp), m.T, i[::2], rtol=1e-4)
    # No start index at all: every update window covers the whole operand, in order. (XLA:CPU
    # fails to compile the rank-0 form of this.)
    dn = lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(),
                                     scatter_dims_to_operand_dims=())
    none = np.zeros((5, 0), np.int32)
    check(lambda x, i, u: (lax.scatter_add(x, i, u, dn), lax.scatter(x, i, u, dn),
                           lax.scatter_max(x, i, u, dn)),
          make((3,), np.float32), none, make((5, 3), np.float32, seed=2), exact=True)


def test_scatter_rank0_operand(pyrt_device, cpu_device):
    """XLA:CPU cannot compile a scatter into a rank-0 operand (and applies only the last update
    to a 1-element one): compare with updates all sent to element 0 of a 2-element array."""
    def fn(rank0):
        if rank0:
            dn = lax.ScatterDimensionNumbers((), (), ())
            i = jnp.zeros((5, 0), jnp.int32)
        else:
            dn = lax.ScatterDimensionNumbers((), (0,), (0,))
            i = jnp.zeros((5, 1), jnp.int32)
        return lambda x, u: (lax.scatter_add(x, i, u, dn), lax.scatter(x, i, u, dn),
                             lax.scatter_max(x, i, u, dn),
                             lax.scatter_apply(x, i, lambda v: v * 3 - 1, dn, update_shape=(5,)))
    u = make((5,), np.float32, seed=3)
    actual = run_on(pyrt_device, fn(True), np.float32(0.25), u)
    expected = run_on(cpu_device, fn(False), np.array([0.25, 7], np.float32), u)
    assert_same(list(actual), [e[0] for e in expected], rtol=1e-6)
