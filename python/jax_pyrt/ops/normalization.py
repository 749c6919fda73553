"""Batch normalization (spec: batch_norm_training, batch_norm_inference, batch_norm_grad).

Each op is a few whole-array NumPy passes: per-feature sums over every dimension but
`feature_index`, and per-feature vectors broadcast back along it. Narrow floats (f16, bf16, f8)
compute in float32 and round each result once; f32 and f64 compute in their own type."""

import numpy as np

from .. import dtypes
from .base import op


def _setup(op_):
    """(compute dtype, result dtype, reduced axes, feature-vector broadcast shape, epsilon)."""
    operand = op_.operand_types[0]
    dtype = operand.dtype
    if not dtypes.is_float(dtype):
        raise op_.unsupported(f"element type {dtype}")
    feature = op_.int("feature_index")
    compute = np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)
    axes = tuple(d for d in range(operand.rank) if d != feature)
    vector_shape = tuple(n if d == feature else 1 for d, n in enumerate(operand.shape))
    # epsilon is an f32 attribute; XLA converts it to the element type.
    epsilon = compute.type(np.asarray(np.float32(op_.value("epsilon")), dtype))
    count = int(np.prod([operand.shape[d] for d in axes], dtype=np.int64))
    return compute, dtype, axes, vector_shape, epsilon, count


@op("stablehlo.batch_norm_training")
def batch_norm_training(op_):
    """Spec: batch_norm_training. Mean and (biased) variance over every dimension but
    feature_index; the variance is that of the centred values (two passes, as the spec writes
    it; XLA's expansion uses E[x^2] - E[x]^2, which loses precision for large means).

    dtypes: f16, bf16, f8 (in float32), f32, f64."""
    compute, dtype, axes, vshape, eps, count = _setup(op_)

    def kernel(x, scale, offset):
        x = x.astype(compute, copy=False)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            mean = np.sum(x, axis=axes, keepdims=True) / compute.type(count)
            centred = x - mean
            var = np.sum(centred * centred, axis=axes, keepdims=True) / compute.type(count)
            factor = scale.astype(compute).reshape(vshape) / np.sqrt(var + eps)
            centred *= factor
            centred += offset.astype(compute).reshape(vshape)
        return (centred.astype(dtype, copy=False), mean.reshape(-1).astype(dtype, copy=False),
                var.reshape(-1).astype(dtype, copy=False))

    return kernel


@op("stablehlo.batch_norm_inference")
def batch_norm_inference(op_):
    """Spec: batch_norm_inference. x * s + (offset - mean * s) with
    s = scale / sqrt(variance + epsilon) per feature (XLA's expansion).

    dtypes: f16, bf16, f8 (in float32), f32, f64."""
    compute, dtype, _, vshape, eps, _ = _setup(op_)

    def kernel(x, scale, offset, mean, variance):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            s = scale.astype(compute) / np.sqrt(variance.astype(compute) + eps)
            shift = offset.astype(compute) - mean.astype(compute) * s
            out = x.astype(compute) * s.reshape(vshape)
            out += shift.reshape(vshape)
        return out.astype(dtype, copy=False)

    return kernel


@op("stablehlo.batch_norm_grad")
def batch_norm_grad(op_):
    """Spec: batch_norm_grad. Gradients of batch_norm_training with respect to operand, scale
    and offset, given the mean and variance, by the spec's formulas.

    dtypes: f16, bf16, f8 (in float32), f32, f64."""
    compute, dtype, axes, vshape, eps, count = _setup(op_)

    def kernel(x, scale, mean, variance, grad):
        x = x.astype(compute, copy=False)
        grad = grad.astype(compute, copy=False)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            var_eps = variance.astype(compute).reshape(vshape) + eps
            centred = x - mean.astype(compute).reshape(vshape)
            grad_offset = np.sum(grad, axis=axes, keepdims=True)
            sum_gc = np.sum(grad * centred, axis=axes, keepdims=True)
            rstd = 1 / np.sqrt(var_eps)
            grad_scale = sum_gc * rstd
            # scale / sqrt(var + eps) / N * (N * grad - sum(grad) - centred * sum_gc / (var + eps))
            centred *= sum_gc / var_eps
            out = grad * compute.type(count)
            out -= grad_offset
            out -= centred
            out *= scale.astype(compute).reshape(vshape) * rstd / compute.type(count)
        return (out.astype(dtype, copy=False), grad_scale.reshape(-1).astype(dtype, copy=False),
                grad_offset.reshape(-1).astype(dtype, copy=False))

    return kernel
