"""Fourier transforms (spec: fft).

scipy.fft (pocketfft) does the work: it keeps single precision (complex64/float32 in, complex64/
float32 out, computed in float32 as XLA:CPU does) and is faster than numpy.fft here. Large
batched transforms use every core (`workers`), as XLA:CPU's ducc FFT does."""

import os

import numpy as np
import scipy.fft

from .. import dtypes
from .base import op

# Transforms over at least this many elements with more than one transform in the batch are
# split across threads.
_PARALLEL_ELEMENTS = 1 << 16
_WORKERS = os.cpu_count() or 1


@op("stablehlo.fft")
def fft(op_):
    """Spec: fft. FFT, IFFT, RFFT and IRFFT (real output of length fft_length[-1]) over the
    last 1-3 dimensions with scipy.fft; IFFT/IRFFT scale by 1/n; single precision is computed
    in single precision.

    dtypes: FFT/IFFT c64, c128; RFFT f32 -> c64, f64 -> c128; IRFFT c64 -> f32, c128 -> f64."""
    kind = op_.enum("fft_type")
    lengths = tuple(op_.ints("fft_length"))
    operand, out = op_.operand_types[0], op_.result
    k = len(lengths)
    if not 1 <= k <= operand.rank:
        raise op_.unsupported(f"fft_length {list(lengths)} on a rank-{operand.rank} operand")
    axes = tuple(range(operand.rank - k, operand.rank))
    out_dtype, out_shape = out.dtype, out.shape
    if kind in ("FFT", "IFFT"):
        if not dtypes.is_complex(operand.dtype):
            raise op_.unsupported(f"{kind} of {operand.dtype}")
        transform = {"FFT": scipy.fft.fftn, "IFFT": scipy.fft.ifftn}[kind]
        args = dict(axes=axes)
    elif kind == "RFFT":
        if operand.dtype not in (np.float32, np.float64):
            raise op_.unsupported(f"RFFT of {operand.dtype}")
        transform, args = scipy.fft.rfftn, dict(axes=axes)
    elif kind == "IRFFT":
        if not dtypes.is_complex(operand.dtype):
            raise op_.unsupported(f"IRFFT of {operand.dtype}")
        transform, args = scipy.fft.irfftn, dict(s=lengths, axes=axes)
    else:
        raise op_.unsupported(f"fft_type {kind}")
    if out.size == 0 or operand.size == 0:
        return lambda x: np.zeros(out_shape, out_dtype)
    batch = int(np.prod(out_shape[:operand.rank - k], dtype=np.int64))
    if batch > 1 and max(operand.size, out.size) >= _PARALLEL_ELEMENTS:
        args["workers"] = _WORKERS

    def kernel(x):
        return transform(x, **args).astype(out_dtype, copy=False)

    return kernel
