"""Quantization (spec: uniform_quantize, uniform_dequantize).

A quantized tensor (`tensor<...x!quant.uniform<...>>`) is its *storage integers* at run time:
types.to_type maps the quantized element type to its storage dtype and keeps the
quantization parameters (a `types.Quantization`) in `TensorType.quant`. Ops that only move elements
(reshape, transpose, slice, bitcast_convert to the storage type, ...) therefore work on quantized
tensors unchanged. Both per-tensor (`!quant.uniform<i8:f32, 0.5:-3>`) and per-axis
(`!quant.uniform<i8:f32:1, {0.5:1, 0.25:2}>`) types are supported, with an optional narrowed
storage range (`i8<-127:127>`); sub-channel (blockwise) types are not.

The arithmetic follows the StableHLO reference interpreter, which lowers these ops to math with
stablehlo-legalize-quant-to-math, in float32 (float64 for an f64 expressed type):

* quantize:   clamp(x / scale + zero_point, storage_min, storage_max), rounded half to even.
  (The spec rounds x / scale before adding the zero point; the two differ on exact ties with an
  odd zero point. We agree with the interpreter.)
* requantize: clamp(q * (scale_in / scale_out) + (zp_out - zp_in * scale_in / scale_out)),
  rounded half to even; no clamp for 32-bit storage. Identical types are the identity.
* dequantize: float(int32(q) - zero_point) * scale (u32: uint32, wrapping, as the spec).

Float -> integer conversions saturate and map NaN to 0, as XLA:CPU's convert does.
"""

import numpy as np

from .. import dtypes
from ..errors import UnsupportedError
from ..types import storage_bounds
from .base import op

# Ops whose meaning on quantized tensors is the same op on the storage integers, because they
# only move elements (each result element is some operand element, with the same quantization).
# The compiler rejects any other op with a quantized operand or result (check_op), since it
# would silently compute on the storage integers; region bodies are checked op by op.
ELEMENT_MOVING = frozenset("stablehlo." + name for name in (
    "constant broadcast_in_dim reshape transpose slice dynamic_slice dynamic_update_slice "
    "concatenate pad reverse gather select tuple get_tuple_element optimization_barrier while "
    "case all_gather all_to_all collective_permute collective_broadcast dynamic_broadcast_in_dim "
    "dynamic_reshape dynamic_pad real_dynamic_slice get_dimension_size set_dimension_size"
).split())
_CONVERSIONS = frozenset({"stablehlo.uniform_quantize", "stablehlo.uniform_dequantize",
                          "stablehlo.bitcast_convert"})


def check_op(op_):
    """Raises UnsupportedError unless pyrt can run `op_` (an Op with a quantized operand
    or result type) correctly: quantize, dequantize, bitcast_convert, or an op that only moves
    elements between tensors of one quantization (the axis of per-axis types may move)."""
    if op_.name in _CONVERSIONS:
        return
    if op_.name not in ELEMENT_MOVING:
        raise op_.unsupported("quantized operands or results: pyrt runs uniform_quantize, "
                              "uniform_dequantize, bitcast_convert and ops that only move "
                              "elements on quantized tensors; dequantize first")
    kinds = {_without_axis(t.quant) for t in op_.operand_types + op_.result_types
             if getattr(t, "quant", None) is not None}
    if len(kinds) > 1:
        raise op_.unsupported("operands and results of different quantizations (pyrt does not "
                              "requantize implicitly; use uniform_quantize)")


def _without_axis(quant):
    return (quant.storage, quant.storage_min, quant.storage_max, quant.expressed,
            quant.scales, quant.zero_points)


def _to_storage(y, quant):
    """Rounded float values -> storage integers: saturating, NaN -> 0 (as XLA's convert)."""
    lo, hi = storage_bounds(quant.storage)
    y = np.clip(np.nan_to_num(y, nan=0.0, posinf=hi, neginf=lo), lo, hi)
    # A float bound may round outwards (2**31 - 1 -> 2.0**31 in float32): clip again as int64.
    return y.astype(np.int64).clip(lo, hi).astype(quant.storage)


def _quantize_kernel(rank, quant):
    compute = quant.compute
    scale = quant.broadcastable(quant.scales, rank, compute)
    zero_point = quant.broadcastable(quant.zero_points, rank, compute)
    lo, hi = compute.type(quant.storage_min), compute.type(quant.storage_max)

    # Below 32 bits the clamped, rounded values convert exactly: only NaN needs care.
    direct = quant.storage.itemsize < 4 and quant.storage.kind in "iu"
    storage = quant.storage

    def kernel(x):
        y = np.divide(x, scale, dtype=compute)  # a fresh array: update it in place
        y += zero_point
        np.clip(y, lo, hi, out=y)  # keeps NaN, as stablehlo.clamp
        np.rint(y, out=y)
        if direct:
            np.nan_to_num(y, copy=False, nan=0.0)
            return y.astype(storage)
        return _to_storage(y, quant)

    return kernel


def _requantize_kernel(rank, q_in, q_out):
    if q_in == q_out:
        return lambda x: x
    if q_in.axis is not None and q_out.axis is not None and q_in.axis != q_out.axis:
        raise UnsupportedError(f"pyrt cannot requantize {q_in} to {q_out}: the quantization "
                               f"axis changes")
    per_axis = q_out if q_out.axis is not None else q_in
    n = len(per_axis.scales)
    s_in = q_in.scales * n if q_in.axis is None else q_in.scales
    s_out = q_out.scales * n if q_out.axis is None else q_out.scales
    z_in = q_in.zero_points * n if q_in.axis is None else q_in.zero_points
    z_out = q_out.zero_points * n if q_out.axis is None else q_out.zero_points
    merged_scale = [a / b for a, b in zip(s_in, s_out)]  # in double, as the interpreter
    merged_zp = [zo - zi * m for zo, zi, m in zip(z_out, z_in, merged_scale)]
    compute = np.dtype(np.float32)
    scale = per_axis.broadcastable(merged_scale, rank, compute)
    shift = per_axis.broadcastable(merged_zp, rank, compute)
    add = any(z != 0 for z in merged_zp)
    clamp = q_out.storage.itemsize < 4
    lo, hi = np.float32(q_out.storage_min), np.float32(q_out.storage_max)

    def kernel(x):
        y = np.asarray(x).astype(compute) * scale
        if add:
            y = y + shift
        if clamp:
            y = np.clip(y, lo, hi)
        return _to_storage(np.rint(y), q_out)

    return kernel


@op("stablehlo.uniform_quantize")
def uniform_quantize(op_):
    """Spec: uniform_quantize. Float -> quantized (per-tensor or per-axis): clamp(x / scale +
    zero_point) to the storage range, rounded half to even, in float32 as the reference
    interpreter (float64 for f64); quantized -> quantized requantizes through the merged scale.
    Quantized tensors are their storage integers at run time."""
    operand, result = op_.operand_types[0], op_.result
    if result.quant is None:
        raise op_.unsupported(f"a non-quantized result type {result}")
    if operand.quant is not None:
        return _requantize_kernel(result.rank, operand.quant, result.quant)
    if not dtypes.is_float(operand.dtype):
        raise op_.unsupported(f"operand type {operand}")
    return _quantize_kernel(result.rank, result.quant)


@op("stablehlo.uniform_dequantize")
def uniform_dequantize(op_):
    """Spec: uniform_dequantize. float(int32(storage) - zero_point) * scale, per-tensor or
    per-axis, in float32 (float64 for f64), rounded once to the expressed type."""
    operand, result = op_.operand_types[0], op_.result
    quant = operand.quant
    if quant is None:
        raise op_.unsupported(f"a non-quantized operand type {operand}")
    compute = quant.compute
    # The spec subtracts in the storage type (i32 and u32 wrap around); narrower storage
    # cannot overflow in int32, where the interpreter computes.
    wide = np.dtype(np.uint32 if quant.storage == np.uint32 else np.int32)
    zero_point = quant.broadcastable(quant.zero_points, operand.rank, wide)
    scale = quant.broadcastable(quant.scales, operand.rank, compute)
    dtype = result.dtype

    # Below 32 bits, q - zero_point is exact in float32: one pass fewer.
    exact = quant.storage.itemsize < 4 and quant.storage.kind in "iu"
    float_zero_point = zero_point.astype(compute)

    def kernel(x):
        if exact:
            y = np.subtract(x, float_zero_point, dtype=compute)
        else:
            y = (np.asarray(x).astype(wide) - zero_point).astype(compute)
        y *= scale
        return y.astype(dtype, copy=False)

    return kernel
