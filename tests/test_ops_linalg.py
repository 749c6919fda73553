"""triangular_solve and cholesky against the CPU backend: every flag combination, dtypes,
batches (both of XLA's algorithms), multi-block matrices, singular and non-positive-definite
inputs, hand-written modules."""

import itertools

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import random_values

FLOATS = [np.float32, np.float64, np.complex64, np.complex128]


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype in (np.float16, ml_dtypes.bfloat16):
        return dict(rtol=2e-2, atol=2e-2)
    if dtype in (np.float32, np.complex64):
        return dict(rtol=1e-4, atol=1e-5)
    return dict(rtol=1e-10, atol=1e-12)


def triangular(shape, dtype, seed=0, unit=False):
    """Well-conditioned matrices: a dominant diagonal, or small off-diagonal entries when the
    diagonal is taken as ones."""
    rng = np.random.default_rng(seed)
    k = shape[-1]
    a = rng.standard_normal(shape) / (k if unit else 1)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape) / (k if unit else 1)
    return (a + 3 * np.sqrt(k) * np.eye(k)).astype(dtype)


def make(shape, dtype, seed=1):
    return random_values(shape, dtype, seed)


# (transpose_a, conjugate_a) as lax.linalg.triangular_solve takes them; (False, True) makes JAX
# conjugate a first.
TRANSPOSES = [(False, False), (True, False), (True, True), (False, True)]


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("left_side", [True, False])
@pytest.mark.parametrize("batch", [(), (2, 3), (10,)], ids=["single", "batch6", "batch10"])
def test_triangular_solve_flags(check, dtype, left_side, batch):
    # batch10 with k=5 takes XLA's substitution path; the others invert diagonal blocks.
    k, n = 5, 3
    a = triangular(batch + (k, k), dtype)
    b = make(batch + ((k, n) if left_side else (n, k)), dtype)

    def f(a, b):
        return [lax.linalg.triangular_solve(a, b, left_side=left_side, lower=lower,
                                            transpose_a=t, conjugate_a=c, unit_diagonal=unit)
                for lower, (t, c), unit in itertools.product([True, False], TRANSPOSES,
                                                             [False, True])]
    text = jax.jit(f).trace(a, b).lower(lowering_platforms=("pyrt",)).as_text()
    assert "stablehlo.triangular_solve" in text  # (on CPU, JAX calls LAPACK's trsm instead)
    check(f, a, b, **tolerance(dtype))


@pytest.mark.parametrize("k, batch", [(130, ()), (300, ()), (40, (9,)), (1, (4,)), (2, (12,))])
@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_triangular_solve_sizes(check, k, batch, dtype):
    # Several 128-blocks, a partial last block, batched blocked solves and 1x1 matrices.
    a = triangular(batch + (k, k), dtype, 2)
    b = make(batch + (k, 7), dtype, 3)
    f = lambda a, b: [lax.linalg.triangular_solve(a, b, left_side=True, lower=lower,
                                                  transpose_a=t, conjugate_a=c)
                      for lower, (t, c) in itertools.product([True, False], TRANSPOSES[:3])]
    check(f, a, b, **tolerance(dtype))


def test_solve_triangular_scipy(check):
    a = triangular((6, 6), np.float64, 4)
    b = make((6, 4), np.float64, 5)
    f = lambda a, b: (jax.scipy.linalg.solve_triangular(a, b, lower=True),
                      jax.scipy.linalg.solve_triangular(a, b, trans=1),
                      jax.scipy.linalg.solve_triangular(a, b[:, 0], trans="C", unit_diagonal=True),
                      jax.scipy.linalg.solve_triangular(a.T, b[:, ::2], lower=False))
    check(f, a, b[:, :], **tolerance(np.float64))
    check(f, a.T, b[::-1], **tolerance(np.float64))  # non-contiguous inputs


def test_triangular_solve_zero_size(check):
    a, b = triangular((3, 4, 4), np.float32), make((3, 4, 0), np.float32)
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=True, lower=True), a, b)
    a0, b0 = np.zeros((0, 4, 4), np.float32), np.zeros((0, 4, 2), np.float32)
    check(lambda a, b: lax.linalg.triangular_solve(a, b, left_side=True), a0, b0)


TRSM_MODULE = """
func.func @main(%a: tensor<{a}>, %b: tensor<{b}>) -> tensor<{b}> {{
  %0 = "stablehlo.triangular_solve"(%a, %b) {{left_side = {left}, lower = {lower},
      unit_diagonal = {unit}, transpose_a = #stablehlo<transpose {transpose}>}}
      : (tensor<{a}>, tensor<{b}>) -> tensor<{b}>
  return %0 : tensor<{b}>
}}"""


@pytest.mark.parametrize("element, dtype", [("f16", np.float16), ("bf16", ml_dtypes.bfloat16),
                                            ("f32", np.float32), ("complex<f64>", np.complex128)])
@pytest.mark.parametrize("transpose", ["NO_TRANSPOSE", "TRANSPOSE", "ADJOINT"])
def test_triangular_solve_hand_written(check_mlir, element, dtype, transpose):
    a = triangular((2, 4, 4), dtype, 6)
    b = make((2, 3, 4), dtype, 7)
    text = TRSM_MODULE.format(a=f"2x4x4x{element}", b=f"2x3x4x{element}", left="false",
                              lower="false", unit="false", transpose=transpose)
    check_mlir(text, a, b, **tolerance(dtype))


@pytest.mark.parametrize("batch", [(), (10,)], ids=["inverting", "substituting"])
def test_triangular_solve_singular_matches_xla(check_mlir, batch):
    # A zero on the diagonal: XLA's algorithms give particular infinities and NaNs (the blocked
    # one NaNs where it scales by 1/0); pyrt runs the same algorithms, so they match exactly.
    # (JAX on CPU calls LAPACK's trsm instead of stablehlo.triangular_solve, so this compares
    # the op itself.)
    a = np.array([[2., 1, 1], [1, 0, 1], [1, 1, 3]])
    a = np.broadcast_to(a, batch + (3, 3)).copy()
    b = make(batch + (3, 2), np.float64)
    shape = "".join(f"{d}x" for d in batch)
    for left, lower, transpose in itertools.product(["true", "false"], ["true", "false"],
                                                    ["NO_TRANSPOSE", "TRANSPOSE"]):
        rhs = b if left == "true" else np.swapaxes(b, -1, -2).copy()
        b_type = shape + ("3x2xf64" if left == "true" else "2x3xf64")
        text = TRSM_MODULE.format(a=shape + "3x3xf64", b=b_type, left=left, lower=lower,
                                  unit="false", transpose=transpose)
        out = check_mlir(text, a, rhs, exact=True)[0]
        assert not np.isfinite(out).all()


# -- cholesky -------------------------------------------------------------------------------

def positive_definite(shape, dtype, seed=0):
    m = make(shape, dtype, seed)
    return (m @ np.swapaxes(m.conj(), -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
def test_cholesky_jnp(check, dtype):
    a = positive_definite((3, 6, 6), dtype)
    text = jax.jit(jnp.linalg.cholesky).trace(a).lower(lowering_platforms=("pyrt",)).as_text()
    assert "stablehlo.cholesky" in text  # pyrt gets the generic lowering, not LAPACK calls
    check(lambda a: (jnp.linalg.cholesky(a), jnp.linalg.cholesky(a[0], upper=True),
                     jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(a[1]), a[2])),
          a, **tolerance(dtype))


def test_cholesky_not_positive_definite(check):
    # A matrix that is not positive definite comes out all NaN (JAX then zeroes the upper
    # triangle); the others are unaffected.
    a = positive_definite((5, 4, 4), np.float64, 1)
    a[1, 2, 2] = -10
    a[3] = -a[3]
    out = check(jnp.linalg.cholesky, a, **tolerance(np.float64))
    lower = np.tril(np.ones((4, 4), bool))
    assert np.isnan(out[[1, 3]][:, lower]).all() and not np.isnan(out[[0, 2, 4]]).any()


def test_cholesky_sizes(check):
    a = positive_definite((200, 200), np.float32, 2)
    check(jnp.linalg.cholesky, a, rtol=1e-3, atol=1e-4)
    check(jnp.linalg.cholesky, positive_definite((40, 3, 3), np.float64, 3), **tolerance(np.float64))
    check(jnp.linalg.cholesky, np.full((2, 1, 1), 4.0))
    check(jnp.linalg.cholesky, np.zeros((0, 3, 3)))


CHOLESKY_MODULE = """
func.func @main(%a: tensor<{t}>) -> tensor<{t}> {{
  %0 = stablehlo.cholesky %a, lower = {lower} : tensor<{t}>
  return %0 : tensor<{t}>
}}"""


@pytest.mark.parametrize("element, dtype, n", [
    ("f16", np.float16, 5), ("bf16", ml_dtypes.bfloat16, 5), ("f32", np.float32, 5),
    ("f64", np.float64, 5), ("complex<f32>", np.complex64, 5), ("complex<f64>", np.complex128, 5),
    ("f64", np.float64, 40), ("complex<f32>", np.complex64, 40)])  # (LAPACK potrf from 32)
@pytest.mark.parametrize("lower", ["true", "false"])
def test_cholesky_hand_written(check_mlir, element, dtype, n, lower):
    # Only the named triangle is read: the other one holds garbage, which must not matter; the
    # result's other triangle is zero.
    a = positive_definite((3, n, n), np.complex128 if "complex" in element else np.float64, 4)
    junk = np.triu(np.full((n, n), 100.0), 1)
    a = (a + (junk if lower == "true" else junk.T)).astype(dtype)
    a[1, 3, 3] = -1  # not positive definite
    a[2, 4, 1] = a[2, 1, 4] = np.nan  # a NaN in the triangle read
    out = check_mlir(CHOLESKY_MODULE.format(t=f"3x{n}x{n}x{element}", lower=lower), a,
                     **tolerance(dtype))[0]
    assert np.isnan(out[1:].astype(np.complex128)).all()
