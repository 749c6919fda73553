"""stablehlo.fft (FFT, IFFT, RFFT, IRFFT over the last 1-3 dimensions) against the CPU backend:
jnp.fft with lengths, axes, norms and batches, hand-written modules, precision, edge values."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import random_values
from jax_pyrt import dtypes

REAL = [np.float32, np.float64]
COMPLEX = [np.complex64, np.complex128]


def make(shape, dtype, seed=0):
    return random_values(shape, dtype, seed)


def tolerance(dtype):
    single = np.dtype(dtype) in (np.float32, np.complex64)
    return dict(rtol=1e-5, atol=1e-4) if single else dict(rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("dtype", COMPLEX, ids=lambda d: np.dtype(d).name)
def test_complex_transforms(check, dtype):
    x = make((3, 8, 6), dtype)
    f = lambda x: (jnp.fft.fft(x), jnp.fft.ifft(x), jnp.fft.fft(x, n=5), jnp.fft.ifft(x, n=11),
                   jnp.fft.fft(x, axis=1), jnp.fft.fft2(x), jnp.fft.ifft2(x),
                   jnp.fft.fftn(x), jnp.fft.ifftn(x), jnp.fft.fftn(x, s=(4, 3), axes=(0, 2)),
                   jnp.fft.fft(x, norm="ortho"), jnp.fft.ifft(x, norm="forward"))
    text = jax.jit(f).lower(x).as_text()
    assert "type = FFT" in text and "type = IFFT" in text
    out = check(f, x, **tolerance(dtype))
    assert out[0].dtype == dtype


@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
def test_real_transforms(check, dtype):
    x = make((4, 6, 10), dtype)
    f = lambda x: (jnp.fft.rfft(x), jnp.fft.rfft(x, n=7), jnp.fft.rfft(x, n=16, axis=0),
                   jnp.fft.rfft2(x), jnp.fft.rfftn(x), jnp.fft.rfftn(x, s=(3, 5)),
                   jnp.fft.rfft(x, norm="ortho"), jnp.fft.fft(x))
    assert "type = RFFT" in jax.jit(f).lower(x).as_text()
    out = check(f, x, **tolerance(dtype))
    assert out[0].dtype == (np.complex64 if dtype == np.float32 else np.complex128)


@pytest.mark.parametrize("dtype", COMPLEX, ids=lambda d: np.dtype(d).name)
def test_inverse_real_transforms(check, dtype):
    x = make((3, 5, 9), dtype)
    f = lambda x: (jnp.fft.irfft(x), jnp.fft.irfft(x, n=7), jnp.fft.irfft(x, n=18),
                   jnp.fft.irfft(x, n=4, axis=0), jnp.fft.irfft2(x), jnp.fft.irfftn(x),
                   jnp.fft.irfftn(x, s=(4, 6, 8)), jnp.fft.irfft(x, norm="forward"))
    assert "type = IRFFT" in jax.jit(f).lower(x).as_text()
    out = check(f, x, **tolerance(dtype))
    assert out[0].dtype == (np.float32 if dtype == np.complex64 else np.float64)
    assert out[1].shape == (3, 5, 7) and out[2].shape == (3, 5, 18)


def test_round_trips_and_hermitian_parts(check):
    # irfft ignores the imaginary parts of the zero and Nyquist frequencies; both backends must.
    x = make((2, 9), np.complex128)
    f = lambda x: (jnp.fft.irfft(x, n=16), jnp.fft.irfft(x, n=17),
                   jnp.fft.irfft(jnp.fft.rfft(x.real, n=17), n=17))
    check(f, x, rtol=1e-12, atol=1e-12)


def test_single_precision(check):
    # Computed in float32 (as XLA:CPU does), not in float64 and rounded: the results agree with
    # the CPU to float32 rounding, and differ from a double-precision transform.
    x = make((1 << 12,), np.float32, 3) * 1000
    out = check(jnp.fft.rfft, x, rtol=1e-5, atol=1e-1)
    exact = np.fft.rfft(x.astype(np.float64))
    assert out.dtype == np.complex64
    assert np.max(np.abs(out - exact)) > 0


@pytest.mark.parametrize("shape", [(0, 8), (3, 0, 4)])
def test_zero_size_batches(check, shape):
    x = make(shape, np.complex64)
    check(lambda x: (jnp.fft.fft(x), jnp.fft.ifft(x), jnp.fft.irfft(x), jnp.fft.rfft(x.real)), x)


def test_non_contiguous_and_large_batch(check):
    x = make((64, 2048), np.complex64, 1)
    check(lambda x: (jnp.fft.fft(x[:, ::2]), jnp.fft.fft(x.T[:, :32]), jnp.fft.fft2(x[::-1]),
                     jnp.fft.rfft(x.real[::3])), x, rtol=1e-4, atol=1e-3)


def test_edge_values(check):
    x = np.array([[1, np.nan, 0, 0], [np.inf, 0, 0, 0], [-0.0, 0, 0, -0.0],
                  [1e30, -1e30, 1e30, -1e30]], np.float32)
    check(lambda x: (jnp.fft.rfft(x), jnp.fft.fft(x.astype(jnp.complex64))), x,
          rtol=1e-6, atol=1e-6)


FFT_MODULE = """
func.func @main(%x: tensor<{inp}>) -> tensor<{out}> {{
  %0 = stablehlo.fft %x, type = {kind}, length = [{lengths}] : (tensor<{inp}>) -> tensor<{out}>
  return %0 : tensor<{out}>
}}"""


@pytest.mark.parametrize("kind, inp, out, lengths, dtype", [
    ("FFT", "2x3x4x5xcomplex<f32>", "2x3x4x5xcomplex<f32>", "3, 4, 5", np.complex64),
    ("IFFT", "7x6xcomplex<f64>", "7x6xcomplex<f64>", "7, 6", np.complex128),
    ("RFFT", "2x5x7xf32", "2x5x4xcomplex<f32>", "5, 7", np.float32),
    ("RFFT", "3x4x6x8xf64", "3x4x6x5xcomplex<f64>", "4, 6, 8", np.float64),
    ("IRFFT", "3x5x4xcomplex<f32>", "3x5x7xf32", "5, 7", np.float32),
    ("IRFFT", "3x5x4xcomplex<f64>", "3x5x6xf64", "5, 6", np.float64),
    ("IRFFT", "2x3x4x3xcomplex<f64>", "2x3x4x4xf64", "3, 4, 4", np.float64),
    ("FFT", "1xcomplex<f32>", "1xcomplex<f32>", "1", np.complex64),
])
def test_hand_written(check_mlir, kind, inp, out, lengths, dtype):
    shape = tuple(int(d) for d in re.findall(r"(\d+)x", inp))
    element = inp[inp.rindex("x", 0, inp.index("c") if "c" in inp else len(inp)) + 1:]
    x = make(shape, dtypes.DTYPE_BY_MLIR[element])
    text = FFT_MODULE.format(inp=inp, out=out, kind=kind, lengths=lengths)
    check_mlir(text, x, **tolerance(dtype))
