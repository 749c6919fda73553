"""dot_general against the CPU backend: every dtype, preferred element types, batch dimensions,
einsum layouts, broadcasting matmul, vectors, zero-size and non-contiguous operands."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import random_values

INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOATS = [np.float16, ml_dtypes.bfloat16, np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]
ALL = [np.bool_] + INTS + FLOATS + COMPLEX


def make(shape, dtype, seed=0, full_range=False):
    return random_values(shape, dtype, seed, int_bound=None if full_range else 5,
                         true_fraction=0.3)


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype in (np.float16, ml_dtypes.bfloat16):
        return dict(rtol=2e-2, atol=5e-2)
    if dtype in (np.float32, np.complex64):
        return dict(rtol=2e-5, atol=2e-5)
    return {}


@pytest.mark.parametrize("dtype", ALL, ids=lambda d: np.dtype(d).name)
def test_matmul_dtypes(check, dtype):
    a, b = make((5, 7), dtype), make((7, 3), dtype, 1)
    f = lambda a, b: (a @ b, jnp.dot(a, b[:, 0]), jnp.dot(a[0], b), jnp.dot(a[0], a[1]))
    assert "stablehlo.dot_general" in jax.jit(f).lower(a, b).as_text()
    check(f, a, b, **tolerance(dtype))


@pytest.mark.parametrize("dtype", INTS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("k", [3, 300])
def test_integer_matmul_wraps(check, dtype, k):
    a, b = make((4, k), dtype, full_range=True), make((k, 5), dtype, 1, full_range=True)
    check(lambda a, b: (a @ b, jnp.matmul(a, b, preferred_element_type=jnp.int64)), a, b)


@pytest.mark.parametrize("in_dtype, out_dtype", [
    (ml_dtypes.bfloat16, np.float32), (np.float16, np.float32), (np.int8, np.int32),
    (np.int8, np.float32), (np.uint8, np.int32), (np.int16, np.int64), (np.float32, np.float64),
    (np.bool_, np.int32),
], ids=str)
def test_preferred_element_type(check, in_dtype, out_dtype):
    a, b = make((3, 2, 64), in_dtype), make((3, 64, 4), in_dtype, 1)
    f = lambda a, b: (jnp.dot(a[0], b[0], preferred_element_type=out_dtype),
                      jnp.matmul(a, b, preferred_element_type=out_dtype),
                      jnp.einsum("bik,bkj->bij", a, b, preferred_element_type=out_dtype))
    text = jax.jit(f).lower(a, b).as_text()
    assert "stablehlo.dot_general" in text
    check(f, a, b, **tolerance(np.float32))


def test_bf16_preferred_f32_is_not_rounded(check):
    # With preferred float32 the bf16 products are accumulated and returned in float32: no
    # rounding to bf16 anywhere (values chosen so that rounding would show).
    a = (1 + np.arange(16).reshape(2, 8) / 128).astype(ml_dtypes.bfloat16)
    b = (1 + np.arange(24).reshape(8, 3) / 64).astype(ml_dtypes.bfloat16)
    out = check(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32), a, b, rtol=1e-7, atol=0)
    assert out.dtype == np.float32


EINSUMS = [
    ("ij,jk->ik", (4, 5), (5, 3)),
    ("ji,jk->ik", (5, 4), (5, 3)),
    ("ij,kj->ik", (4, 5), (3, 5)),
    ("ji,kj->ki", (5, 4), (3, 5)),
    ("bij,bjk->bik", (2, 4, 5), (2, 5, 3)),
    ("ibj,jbk->bik", (4, 2, 5), (5, 2, 3)),
    ("bij,jk->bik", (2, 4, 5), (5, 3)),
    ("i,i->", (6,), (6,)),
    ("ij,j->i", (4, 6), (6,)),
    ("j,jk->k", (6,), (6, 3)),
    ("i,j->ij", (4,), (3,)),
    ("ij,ij->i", (4, 6), (4, 6)),
    ("bhqd,bhkd->bhqk", (2, 3, 4, 5), (2, 3, 6, 5)),
    ("bqhd,bkhd->bhqk", (2, 4, 3, 5), (2, 6, 3, 5)),
    ("abcd,cdbe->bae", (2, 3, 4, 5), (4, 5, 3, 2)),
    ("ijk,ikl->ijl", (3, 1, 4), (3, 4, 1)),
]


@pytest.mark.parametrize("spec, lhs_shape, rhs_shape", EINSUMS, ids=[e[0] for e in EINSUMS])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.complex128], ids=str)
def test_einsum(check, spec, lhs_shape, rhs_shape, dtype):
    a, b = make(lhs_shape, dtype), make(rhs_shape, dtype, 1)
    check(lambda a, b: jnp.einsum(spec, a, b), a, b, **tolerance(dtype))


def test_dot_general_batch_dims_not_leading(check):
    a, b = make((4, 3, 5), np.float64), make((5, 6, 3), np.float64, 1)
    f = lambda a, b: lax.dot_general(a, b, (((2,), (0,)), ((1,), (2,))))
    assert "batching_dims = [1] x [2]" in jax.jit(f).lower(a, b).as_text()
    check(f, a, b)
    f2 = lambda a, b: lax.dot_general(a, b, (((0, 2), (1, 0)), ((), ())))
    check(f2, a, make((5, 4, 7), np.float64, 2))


@pytest.mark.parametrize("lhs_shape, rhs_shape", [
    ((2, 1, 3, 4), (5, 4, 2)), ((3, 4), (2, 4, 5)), ((6, 2, 3), (3,)), ((3,), (2, 3, 4)),
    ((1, 3, 4), (7, 4, 2)),
], ids=str)
def test_matmul_broadcasting_batches(check, lhs_shape, rhs_shape):
    a, b = make(lhs_shape, np.float32), make(rhs_shape, np.float32, 1)
    check(jnp.matmul, a, b, **tolerance(np.float32))


@pytest.mark.parametrize("lhs_shape, rhs_shape", [
    ((0, 3), (3, 4)), ((3, 0), (0, 4)), ((2, 0, 3), (2, 3, 5)), ((0,), (0,)), ((4, 3), (3, 0)),
], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_], ids=str)
def test_zero_size(check, lhs_shape, rhs_shape, dtype):
    a, b = make(lhs_shape, dtype), make(rhs_shape, dtype, 1)
    check(jnp.matmul, a, b)


def test_non_contiguous_operands(check):
    a, b = make((6, 8), np.float32), make((8, 10), np.float32, 1)
    check(lambda a, b: (a @ b, a.T @ a), a[::2, ::2], b[::2, 1::2], **tolerance(np.float32))
    check(lambda a, b: a @ b, np.asarray(a.T), b[:6].T.copy().T, **tolerance(np.float32))


def test_special_values(check):
    a = np.array([[np.nan, 1.0], [np.inf, 0.0], [-np.inf, np.inf], [-0.0, -0.0]])
    b = np.array([[1.0, 0.0], [2.0, -0.0]])
    check(lambda a, b: a @ b, a, b)


def test_int_min_max(check):
    info = np.iinfo(np.int32)
    a = np.array([[info.min, info.max, -1], [0, info.max, info.max]], np.int32)
    b = np.array([[info.min], [2], [info.min]], np.int32)
    check(lambda a, b: (a @ b, jnp.matmul(a, b, preferred_element_type=jnp.int64)), a, b)


def test_large_float32(check):
    a, b = make((64, 300), np.float32), make((300, 48), np.float32, 1)
    check(lambda a, b: a @ b, a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_, ml_dtypes.bfloat16],
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)], ids=["2d", "batched", "two-batch-dims"])
def test_product_read_only_by_a_transpose(check, pyrt_device, dtype, batch):
    # JAX's gradient of x @ w is a dot_general whose one reader swaps its last two axes: pyrt
    # computes it transposed (the transpose then gives a C-contiguous array). A second reader
    # of the product keeps the plain form.
    a, b = make(batch + (6, 4), dtype), make(batch + (6, 5), dtype, 1)
    dims = (((len(batch),), (len(batch),)), (tuple(range(len(batch))),) * 2)
    swap = lambda x: jnp.swapaxes(x, -1, -2)
    only = lambda a, b: swap(lax.dot_general(a, b, dims)) * 2
    shared = lambda a, b: (swap(lax.dot_general(a, b, dims)), lax.dot_general(a, b, dims))
    for f in (only, shared):
        assert "stablehlo.transpose" in jax.jit(f).lower(a, b).as_text()
        check(f, a, b, **tolerance(dtype))
    grad = jax.grad(lambda w, x: jnp.sum(jnp.tanh(x @ w)))
    w, x = make((64, 32), np.float32), make((16, 64), np.float32, 1)
    check(grad, w, x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.int32],
                         ids=lambda d: np.dtype(d).name)
def test_attention_heads_of_one_projection(check, dtype):
    # Batched products of views: heads sliced, reshaped and transposed out of one array go to
    # BLAS as they are (np.matmul loops over the batch dimensions); every-other-element slices
    # (no unit stride) are copied first.
    qkv = make((2, 16, 3 * 32), dtype)
    heads = lambda t: t.reshape(2, 16, 4, 8).transpose(0, 2, 1, 3)

    def attention(qkv):
        q, k, v = jnp.split(qkv, 3, axis=-1)
        s = heads(q) @ heads(k).transpose(0, 1, 3, 2)
        return s, s @ heads(v), heads(q)[:, :, ::2, ::2] @ heads(k)[:, :, ::2, ::2].swapaxes(-1, -2)

    check(attention, qkv, **tolerance(dtype))
