"""Shape ops (constant, iota, broadcast_in_dim, reshape, transpose, slice, dynamic_slice,
dynamic_update_slice, concatenate, pad, reverse) against the CPU backend."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array as make
from jax import lax


DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64,
          np.complex128]
IDS = [np.dtype(d).name for d in DTYPES]


# -- constant and iota

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_constant(check, dtype):
    const = make((2, 3), dtype, seed=1)
    check(lambda x: (x, jnp.asarray(const), jnp.asarray(const[0, 0])), make((4,), dtype))


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.float16, ml_dtypes.bfloat16,
                                   np.float32, np.float64, np.complex64], ids=str)
def test_arange(check, dtype):
    # x is returned too, so that the program runs on the device x is on.
    check(lambda x: (x, jnp.arange(10, dtype=dtype), jnp.arange(3, 40, 7, dtype=dtype)), np.zeros(1))


def test_iota_multi_dim(check):
    x = np.zeros((1,), np.float32)
    check(lambda x: (x, lax.broadcasted_iota(jnp.int32, (3, 4, 5), 1),
                     lax.broadcasted_iota(jnp.float32, (3, 4), 0),
                     jnp.arange(0.0, 5.0, 0.5), jnp.arange(0), jnp.eye(4, dtype=jnp.int8)), x)


# -- broadcast_in_dim, reshape, transpose

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_reshape_transpose_broadcast(check, dtype):
    x = make((4, 6), dtype)
    check(lambda x: (jnp.reshape(x, (3, 8)), jnp.reshape(x, (2, 2, 6)), x.T,
                     jnp.transpose(x.reshape(2, 2, 6), (2, 0, 1)),
                     jnp.broadcast_to(x[:, :1], (3, 4, 5)), jnp.expand_dims(x, (0, 2)),
                     x.reshape(-1), jnp.broadcast_to(x[0, 0], (2, 3))), x)


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1,)], ids=str)
def test_reshape_transpose_broadcast_edge_shapes(check, shape):
    x = make(shape, np.float32)
    check(lambda x: (x.reshape(1, *shape), jnp.transpose(x), jnp.broadcast_to(x, (2,) + shape),
                     jnp.expand_dims(x, 0), x.reshape(-1)), x)


def test_broadcast_in_dim_permuted_dims(check):
    # broadcast_in_dim with non-increasing broadcast_dimensions (operand axes land out of order).
    x = make((3, 4), np.int32)
    f = lambda x: lax.broadcast_in_dim(x, (4, 2, 3), (2, 0))
    assert "dims = [2, 0]" in jax.jit(f).lower(x).as_text()
    check(f, x)
    check(lambda x: lax.broadcast_in_dim(x, (3, 4, 1, 5), (0, 1)), x)
    check(lambda x: lax.broadcast_in_dim(x[:1], (2, 5, 4), (0, 2)), x)


def test_non_contiguous_inputs(check):
    x = make((6, 8), np.float64)
    check(lambda x: (x.reshape(4, 6), x.T, x[:, ::-1]), x[:, ::2].copy())
    check(lambda x: (x.reshape(-1), x[::2, 1:5:3], x.T.reshape(8, 6)), np.asarray(x.T))
    check(lambda x: (x.reshape(-1), jnp.concatenate([x, x], 0)), x[:, ::2])


# -- slice and reverse

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_slice(check, dtype):
    x = make((7, 9), dtype)
    f = lambda x: (x[::2, 1:5:3], x[1:, :-1], x[3:4, 8:], x[2:2], x[::3, ::4])
    assert "stablehlo.slice" in jax.jit(f).lower(x).as_text()
    check(f, x)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_reverse(check, dtype):
    x = make((4, 5, 3), dtype)
    f = lambda x: (x[::-1], x[:, ::-1], lax.rev(x, (0, 2)), x[::-1, :, ::-1][1:])
    assert "stablehlo.reverse" in jax.jit(f).lower(x).as_text()
    check(f, x)


def test_slice_reverse_edge_shapes(check):
    check(lambda x: (x[::-1], x[1:]), make((0,), np.int32))
    check(lambda x: (x[::-1], x[1:3]), make((0, 5), np.float32))
    check(lambda x: lax.rev(x, ()), make((), np.float32))


# -- dynamic_slice / dynamic_update_slice

STARTS = [(0, 0), (2, 3), (-1, 2), (10, -4), (-100, 100), (3, 7)]


@pytest.mark.parametrize("starts", STARTS, ids=str)
def test_dynamic_slice(check, starts):
    x = make((5, 9), np.float32)
    i, j = (np.int32(s) for s in starts)
    f = lambda x, i, j: lax.dynamic_slice(x, (i, j), (2, 3))
    assert "stablehlo.dynamic_slice" in jax.jit(f).lower(x, i, j).as_text()
    check(f, x, i, j)


@pytest.mark.parametrize("index_dtype", [np.int8, np.int64, np.uint8, np.uint32, np.uint64], ids=str)
def test_dynamic_slice_index_dtypes(check, index_dtype):
    x = make((5, 300), np.int16)
    for start in (0, 1, 100, 200, np.iinfo(index_dtype).max):
        if start > np.iinfo(index_dtype).max:
            continue
        i = np.array(start, index_dtype)
        check(lambda x, i: lax.dynamic_slice(x, (i, i), (5, 100)), x, i)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_dynamic_slice_dtypes(check, dtype):
    x = make((4, 6), dtype)
    check(lambda x, i: (lax.dynamic_slice(x, (i, i), (2, 2)), lax.dynamic_slice(x, (i, i * 0), (4, 0)),
                        x[i]), x, np.int32(3))


def test_dynamic_slice_full_and_scalar(check):
    x = make((3,), np.float32)
    check(lambda x, i: (lax.dynamic_slice(x, (i,), (3,)), lax.dynamic_slice(x, (i,), (0,))), x, np.int32(2))


@pytest.mark.parametrize("starts", STARTS, ids=str)
def test_dynamic_update_slice(check, starts):
    x = make((5, 9), np.float32)
    u = make((2, 3), np.float32, seed=2)
    i, j = (np.int64(s) for s in starts)

    def f(x, u, i, j):
        y = lax.dynamic_update_slice(x, u, (i, j))
        return y, x + x  # x is used again: the update must not have written into it

    assert "stablehlo.dynamic_update_slice" in jax.jit(f).lower(x, u, i, j).as_text()
    check(f, x, u, i, j)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_dynamic_update_slice_dtypes(check, dtype):
    x = make((4, 6), dtype)
    u = make((2, 5), dtype, seed=3)
    check(lambda x, u, i: (lax.dynamic_update_slice(x, u, (i, i)), x, lax.dynamic_update_slice(x, u, (i, i * 0)),
                           lax.dynamic_update_slice(x, u[:0], (i, i))), x, u, np.int32(3))


def test_dynamic_update_slice_in_loop_keeps_inputs(check):
    # Repeated updates of a carried buffer inside a loop; the input itself stays unchanged.
    x = make((6, 3), np.float32)

    def f(x):
        def body(i, buf):
            return lax.dynamic_update_slice(buf, lax.dynamic_slice(x, (i, 0), (1, 3)) + buf[0], (i, 0))
        y = lax.fori_loop(0, 6, body, x)
        return y, x

    check(f, x)


# -- concatenate

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_concatenate(check, dtype):
    a, b, c = make((2, 3), dtype), make((4, 3), dtype, 1), make((2, 5), dtype, 2)
    f = lambda a, b, c: (jnp.concatenate([a, b, a], axis=0), jnp.concatenate([a, c], axis=1),
                         jnp.concatenate([a[:0], b]), jnp.concatenate([a.reshape(-1)] * 5))
    assert "stablehlo.concatenate" in jax.jit(f).lower(a, b, c).as_text()
    check(f, a, b, c)


def test_concatenate_non_contiguous_and_empty(check):
    x = make((4, 6), np.float32)
    check(lambda x: (jnp.concatenate([x[:, ::2], x.T[:3, :3]], axis=0), jnp.concatenate([x[:0], x[:0]])), x)


# -- pad

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_jnp_pad_constant(check, dtype):
    x = make((3, 4), dtype)
    value = make((1,), dtype, seed=5)[0]
    f = lambda x: (jnp.pad(x, ((1, 2), (0, 3))), jnp.pad(x, 2, constant_values=value),
                   jnp.pad(x, ((0, 0), (1, 0))))
    assert "stablehlo.pad" in jax.jit(f).lower(x).as_text()
    check(f, x)


PADS = [
    [(1, 2, 0), (0, 3, 0)],        # plain edge padding
    [(-1, 2, 1), (1, -2, 0)],      # crop + interior
    [(0, 0, 2), (0, 0, 3)],        # interior only
    [(-2, -1, 0), (-3, -1, 0)],    # crop only
    [(-4, -3, 2), (-1, 0, 1)],     # crop into interior padding
    [(-3, 2, 0), (0, 0, 0)],       # crop everything on axis 0 but 0 rows, then pad
    [(2, -5, 0), (0, 0, 0)],       # crop all real rows away from the high side
    [(3, 3, 5), (-8, -1, 2)],
]


@pytest.mark.parametrize("config", PADS, ids=str)
def test_lax_pad(check, config):
    x = make((3, 4), np.float32)
    f = lambda x, v: lax.pad(x, v, config)
    check(f, x, np.float32(-7.5))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint64, ml_dtypes.bfloat16, np.complex128], ids=str)
def test_lax_pad_dtypes(check, dtype):
    x = make((3, 4), dtype)
    v = make((1,), dtype, seed=7)[0]
    check(lambda x, v: lax.pad(x, v, [(-1, 2, 1), (2, -1, 2)]), x, v)


def test_pad_edge_shapes(check):
    check(lambda x: lax.pad(x, np.float32(1), [(2, 3, 4)]), make((0,), np.float32))
    check(lambda x: lax.pad(x, np.float32(1), [(1, 1, 1)]), make((1,), np.float32))
    check(lambda x: lax.pad(x, np.float32(1), []), make((), np.float32))
    check(lambda x: lax.pad(x, np.float32(1), [(1, 0, 0), (0, 1, 1)]), make((4, 6), np.float32)[:, ::2])


# -- tuple / get_tuple_element (JAX no longer emits them: a hand-written module, compiled through
#    each backend's PJRT client directly, a jaxlib-internal API; the CPU result is the oracle)

TUPLE_MODULE = """
module @m {
  func.func public @main(%x: tensor<3xf32>, %y: tensor<i32>) -> (tensor<i32>, tensor<3xf32>) {
    %t = stablehlo.tuple %x, %y : tuple<tensor<3xf32>, tensor<i32>>
    %n = stablehlo.tuple %t, %x : tuple<tuple<tensor<3xf32>, tensor<i32>>, tensor<3xf32>>
    %i = stablehlo.get_tuple_element %n[0] : (tuple<tuple<tensor<3xf32>, tensor<i32>>, tensor<3xf32>>) -> tuple<tensor<3xf32>, tensor<i32>>
    %a = stablehlo.get_tuple_element %i[1] : (tuple<tensor<3xf32>, tensor<i32>>) -> tensor<i32>
    %b = stablehlo.get_tuple_element %n[1] : (tuple<tuple<tensor<3xf32>, tensor<i32>>, tensor<3xf32>>) -> tensor<3xf32>
    return %a, %b : tensor<i32>, tensor<3xf32>
  }
}
"""


def test_tuple_and_get_tuple_element(check_mlir):
    check_mlir(TUPLE_MODULE, np.array([1.5, -0.0, np.nan], np.float32), np.int32(-7))
