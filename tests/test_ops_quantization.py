"""uniform_quantize / uniform_dequantize against the StableHLO reference interpreter.

XLA:CPU cannot compile quantized programs, so the oracle is jaxlib's reference interpreter
(`_stablehlo.eval_module`), run once for all cases in a subprocess (it aborts the process on
ops it does not support). Programs take and return plain float/integer tensors and quantize
inside; quantized parameters are fed as their storage integers. Where the interpreter is wrong
(unsigned storage: it stores into signed integers) or cannot run a case (a per-axis type whose
axis is not the last dimension), the oracle is the same formula written out in NumPy.
"""

import json

import jax
import ml_dtypes
import numpy as np
import pytest

from conftest import assert_same, run_mlir, run_subprocess
from jax_pyrt.errors import UnsupportedError
from jax_pyrt.types import quantized_type

EDGES = np.array([1.25, 1.75, -1.25, 0.25, -0.0, np.nan, np.inf, -np.inf, 2.5, -2.5, 1e9, -1e9],
                 np.float32)


def values(shape, scale=20.0, seed=0):
    n = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    flat = (rng.standard_normal(n) * scale).astype(np.float32)
    flat[:min(n, EDGES.size)] = EDGES[:min(n, EDGES.size)]
    return flat.reshape(shape)


def storage_name(q):
    return q.split(":")[0].split("<")[0]


def qdq(q, shape):
    """x -> quantize -> (dequantize, storage integers as i32)."""
    t = f"tensor<{'x'.join(map(str, shape))}x"
    qt, st = f"{t}!quant.uniform<{q}>>", f"{t}{storage_name(q).replace('u', 'ui')}>"
    return (f"module {{\n  func.func @main(%x: {t}f32>) -> ({t}f32>, {t}i32>) {{\n"
            f"    %q = stablehlo.uniform_quantize %x : ({t}f32>) -> {qt}\n"
            f"    %d = stablehlo.uniform_dequantize %q : ({qt}) -> {t}f32>\n"
            f"    %s = stablehlo.bitcast_convert %q : ({qt}) -> {st}\n"
            f"    %i = stablehlo.convert %s : ({st}) -> {t}i32>\n"
            f"    return %d, %i : {t}f32>, {t}i32>\n  }}\n}}\n")


def requantize(q1, q2, shape):
    t = f"tensor<{'x'.join(map(str, shape))}x"
    t1, t2 = f"{t}!quant.uniform<{q1}>>", f"{t}!quant.uniform<{q2}>>"
    return (f"module {{\n  func.func @main(%x: {t}f32>) -> {t}f32> {{\n"
            f"    %q = stablehlo.uniform_quantize %x : ({t}f32>) -> {t1}\n"
            f"    %r = stablehlo.uniform_quantize %q : ({t1}) -> {t2}\n"
            f"    %d = stablehlo.uniform_dequantize %r : ({t2}) -> {t}f32>\n"
            f"    return %d : {t}f32>\n  }}\n}}\n")


QUANTIZE = {  # name: (quantized type, shape)
    "i8": ("i8:f32, 0.5:-3", (12,)),
    "i8_inexact_scale": ("i8:f32, 0.1", (12,)),
    "i8_narrow_range": ("i8<-127:127>:f32, 0.25:-1", (12,)),
    "i16": ("i16:f32, 0.03:7", (12,)),
    "i32": ("i32:f32, 0.5:5", (12,)),
    "per_axis": ("i8:f32:1, {0.5:1, 0.25:2}", (6, 2)),
    "per_axis_3d": ("i8:f32:2, {0.5:1, 0.25, 2.0:-5, 0.125:127}", (2, 3, 4)),
    "per_axis_narrow": ("i16<-1000:1000>:f32:1, {0.01:3, 1.5:-2, 0.3:0}", (4, 3)),
}
REQUANTIZE = {
    "tensor_to_tensor": ("i8:f32, 0.5:-3", "i8:f32, 0.3:2", (12,)),
    "i8_to_i16": ("i8:f32, 0.5:-3", "i16:f32, 0.03:2", (12,)),
    "i8_to_i32": ("i8:f32, 0.5:-3", "i32:f32, 0.03:2", (12,)),
    "same_type": ("i8:f32, 0.5:-3", "i8:f32, 0.5:-3", (12,)),
    "tensor_to_axis": ("i8:f32, 0.5:-3", "i8:f32:1, {0.3:2, 0.7:-1}", (6, 2)),
    "axis_to_tensor": ("i8:f32:1, {0.3:2, 0.7:-1}", "i8:f32, 0.5:-3", (6, 2)),
    "axis_to_axis": ("i8:f32:1, {0.3:2, 0.7:-1}", "i8:f32:1, {0.1:0, 0.9:4}", (6, 2)),
}
QPARAM = "!quant.uniform<i8:f32:1, {0.5:3, 0.25:-2, 2.0}>"
QTENSOR = "!quant.uniform<i8<-100:100>:f32, 0.375:4>"
OTHER = {
    # A quantized parameter, fed as its storage integers.
    "quantized_parameter": (
        f"module {{\n  func.func @main(%q: tensor<4x3x{QPARAM}>) -> tensor<4x3xf32> {{\n"
        f"    %d = stablehlo.uniform_dequantize %q : (tensor<4x3x{QPARAM}>) -> tensor<4x3xf32>\n"
        f"    return %d : tensor<4x3xf32>\n  }}\n}}\n",
        [np.array([[-128, 127, 0], [3, -2, 1], [5, 6, 7], [-1, -100, 100]], np.int8)]),
    # Shape ops work on quantized tensors (as their storage integers).
    "transpose_reshape": (
        "module {\n  func.func @main(%x: tensor<2x3xf32>) -> tensor<6xf32> {\n"
        "    %q = stablehlo.uniform_quantize %x : (tensor<2x3xf32>) -> "
        "tensor<2x3x!quant.uniform<i8:f32, 0.25:3>>\n"
        "    %t = stablehlo.transpose %q, dims = [1, 0] : (tensor<2x3x!quant.uniform<i8:f32, "
        "0.25:3>>) -> tensor<3x2x!quant.uniform<i8:f32, 0.25:3>>\n"
        "    %r = stablehlo.reshape %t : (tensor<3x2x!quant.uniform<i8:f32, 0.25:3>>) -> "
        "tensor<6x!quant.uniform<i8:f32, 0.25:3>>\n"
        "    %d = stablehlo.uniform_dequantize %r : (tensor<6x!quant.uniform<i8:f32, 0.25:3>>) "
        "-> tensor<6xf32>\n    return %d : tensor<6xf32>\n  }\n}\n",
        [values((2, 3), scale=5)]),
    # Ops that only move elements, on quantized tensors.
    "concatenate_select_slice": (
        "module {\n  func.func @main(%x: tensor<2x3xf32>, %y: tensor<2x3xf32>) -> tensor<4x3xf32> {\n"
        f"    %a = stablehlo.uniform_quantize %x : (tensor<2x3xf32>) -> tensor<2x3x{QTENSOR}>\n"
        f"    %b = stablehlo.uniform_quantize %y : (tensor<2x3xf32>) -> tensor<2x3x{QTENSOR}>\n"
        "    %p = stablehlo.compare GT, %x, %y : (tensor<2x3xf32>, tensor<2x3xf32>) -> "
        "tensor<2x3xi1>\n"
        f"    %s = stablehlo.select %p, %a, %b : tensor<2x3xi1>, tensor<2x3x{QTENSOR}>\n"
        f"    %c = stablehlo.concatenate %s, %a, dim = 0 : (tensor<2x3x{QTENSOR}>, "
        f"tensor<2x3x{QTENSOR}>) -> tensor<4x3x{QTENSOR}>\n"
        f"    %d = stablehlo.uniform_dequantize %c : (tensor<4x3x{QTENSOR}>) -> tensor<4x3xf32>\n"
        "    return %d : tensor<4x3xf32>\n  }\n}\n",
        [values((2, 3), scale=30, seed=1), values((2, 3), scale=30, seed=2)]),
    "i4": (
        "module {\n  func.func @main(%x: tensor<12xf32>) -> tensor<12xf32> {\n"
        "    %q = stablehlo.uniform_quantize %x : (tensor<12xf32>) -> "
        "tensor<12x!quant.uniform<i4:f32, 0.5:1>>\n"
        "    %d = stablehlo.uniform_dequantize %q : (tensor<12x!quant.uniform<i4:f32, 0.5:1>>) "
        "-> tensor<12xf32>\n    return %d : tensor<12xf32>\n  }\n}\n",
        [values((12,), scale=3)]),
}


def cases():
    all_cases = {}
    for name, (q, shape) in QUANTIZE.items():
        all_cases[f"quantize_{name}"] = (qdq(q, shape), [values(shape)])
    for name, (q1, q2, shape) in REQUANTIZE.items():
        all_cases[f"requantize_{name}"] = (requantize(q1, q2, shape), [values(shape, 7)])
    all_cases.update(OTHER)
    return all_cases


CASES = cases()

_INTERPRET = """
import json, os, sys
import numpy as np
from jaxlib.mlir import ir
from jaxlib.mlir._mlir_libs import _stablehlo

cases = json.loads({payload!r})
results = {{}}
for name, (text, args) in cases.items():
    artifact = _stablehlo.serialize_portable_artifact_str(text, _stablehlo.get_current_version())
    with ir.Context() as context, ir.Location.unknown():
        module = _stablehlo.deserialize_portable_artifact(context, artifact)
        inputs = [ir.DenseElementsAttr.get(np.frombuffer(bytes.fromhex(h), d).reshape(s))
                  for h, d, s in args]
        outs = [np.asarray(o) for o in _stablehlo.eval_module(module, inputs)]
    results[name] = [(o.tobytes().hex(), o.dtype.str, o.shape) for o in outs]
print(json.dumps(results))
sys.stdout.flush()
os._exit(0)
"""


@pytest.fixture(scope="module")
def interpreted():
    """{case name: outputs} from the StableHLO reference interpreter, for every case at once."""
    payload = json.dumps({name: (text, [(a.tobytes().hex(), a.dtype.str, a.shape) for a in args])
                          for name, (text, args) in CASES.items()})
    raw = run_subprocess(_INTERPRET.format(payload=payload))
    return {name: [np.frombuffer(bytes.fromhex(h), d).reshape(s) for h, d, s in outs]
            for name, outs in raw.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_interpreter(pyrt_device, interpreted, name):
    text, args = CASES[name]
    assert_same(run_mlir(pyrt_device, text, *args), interpreted[name], exact=True)


# -- cases checked against the formula in NumPy

def numpy_quantize(x, scales, zero_points, axis, lo, hi, storage):
    """The interpreter's formula: clamp(x / scale + zero_point), half to even, in float32."""
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = len(scales)
    s = np.asarray(scales, np.float32).reshape(shape)
    z = np.asarray(zero_points, np.float32).reshape(shape)
    y = np.rint(np.clip(x.astype(np.float32) / s + z, np.float32(lo), np.float32(hi)))
    return np.where(np.isnan(y), 0, y).astype(np.int64).astype(storage)


def numpy_dequantize(q, scales, zero_points, axis, dtype=np.float32):
    shape = [1] * q.ndim
    if axis is not None:
        shape[axis] = len(scales)
    z = np.asarray(zero_points, np.int32).reshape(shape)
    s = np.asarray(scales, np.float32).reshape(shape)
    return ((q.astype(np.int32) - z).astype(np.float32) * s).astype(dtype)


@pytest.mark.parametrize("q,shape,params", [
    # Unsigned storage: the interpreter clamps to the signed range, the spec does not.
    ("u8:f32, 0.1:128", (12,), ((0.1,), (128,), None, 0, 255, np.uint8)),
    ("u4:f32, 0.5:8", (12,), ((0.5,), (8,), None, 0, 15, ml_dtypes.uint4)),
    # Per-axis along a leading dimension: the interpreter fails to lower it.
    ("i8:f32:0, {0.5:1, 0.25:2, 4.0:-7}", (3, 4), ((0.5, 0.25, 4.0), (1, 2, -7), 0, -128, 127,
                                                   np.int8)),
    ("i8:f32:1, {0.5:1, 0.25:2, 4.0:-7}", (2, 3, 2), ((0.5, 0.25, 4.0), (1, 2, -7), 1, -128,
                                                      127, np.int8)),
], ids=["u8", "u4", "axis0", "axis1_of_3"])
def test_against_numpy(pyrt_device, q, shape, params):
    scales, zps, axis, lo, hi, storage = params
    x = values(shape)
    expected_q = numpy_quantize(x, scales, zps, axis, lo, hi, storage)
    expected = [numpy_dequantize(expected_q, scales, zps, axis), expected_q.astype(np.int32)]
    assert_same(run_mlir(pyrt_device, qdq(q, shape), x), expected, exact=True)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64], ids=str)
def test_expressed_types(pyrt_device, dtype):
    # Expressed types other than f32 (the interpreter only takes f32): float32 arithmetic
    # (float64 for f64), one rounding to the expressed type.
    name = {np.float16: "f16", ml_dtypes.bfloat16: "bf16", np.float64: "f64"}[dtype]
    q = f"!quant.uniform<i8:{name}, 0.375:-3>"
    text = (f"module {{\n  func.func @main(%x: tensor<12x{name}>) -> tensor<12x{name}> {{\n"
            f"    %q = stablehlo.uniform_quantize %x : (tensor<12x{name}>) -> tensor<12x{q}>\n"
            f"    %d = stablehlo.uniform_dequantize %q : (tensor<12x{q}>) -> tensor<12x{name}>\n"
            f"    return %d : tensor<12x{name}>\n  }}\n}}\n")
    x = values((12,), scale=15).astype(dtype)
    compute = np.float64 if dtype == np.float64 else np.float32
    y = np.rint(np.clip(x.astype(compute) / compute(0.375) - 3, -128, 127))
    stored = np.where(np.isnan(y), 0, y).astype(np.int32)
    expected = ((stored + 3).astype(compute) * compute(0.375)).astype(dtype)
    assert_same(run_mlir(pyrt_device, text, x), [expected], exact=True)


def test_quantized_result_is_unimplemented(pyrt_device):
    # jaxlib aborts on quantized entry results, so pyrt refuses them when compiling.
    q = "tensor<4x!quant.uniform<i8:f32, 0.5:-3>>"
    text = (f"module {{\n  func.func @main(%x: tensor<4xf32>) -> {q} {{\n"
            f"    %q = stablehlo.uniform_quantize %x : (tensor<4xf32>) -> {q}\n"
            f"    return %q : {q}\n  }}\n}}\n")
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, np.ones(4, np.float32))
    message = str(info.value)
    assert "UNIMPLEMENTED" in message and "quantized" in message, message


# -- the quantized element type parser (compiler.to_type uses it)

def test_parse_quantized_types():
    q = quantized_type("!quant.uniform<i8<-127:127>:f32:1, {5.000000e-01:1,2.500000e-01}>", (3, 2))
    assert (q.storage, q.storage_min, q.storage_max, q.axis) == (np.int8, -127, 127, 1)
    assert (q.scales, q.zero_points, q.expressed) == ((0.5, 0.25), (1, 0), np.float32)
    q = quantized_type("!quant.uniform<u4:f32, 0x3FB999999999999A:3>", ())
    assert (q.storage, q.storage_min, q.storage_max) == (np.dtype(ml_dtypes.uint4), 0, 15)
    assert (q.scales, q.zero_points, q.axis) == ((0.1,), (3,), None)
    q = quantized_type("!quant.uniform<i32:f32, 0.123456789123>", (5,))
    assert (q.storage, q.scales, q.storage_min) == (np.int32, (0.123456789123,), -2 ** 31)


@pytest.mark.parametrize("text", [
    "!quant.uniform<i8:f32:{0:1, 1:2}, {{0.5:1, 0.25:2}}>",  # sub-channel
    "!quant.any<i8:f32>",
    "!quant.calibrated<f32<-1.0:1.0>>",
    "!quant.uniform<i8:f32:1, {0.5, 0.25, 0.3}>",  # 3 scales for a dimension of 2
])
def test_unsupported_quantized_types(text):
    with pytest.raises(UnsupportedError):
        quantized_type(text, (3, 2))


def test_arithmetic_on_quantized_tensors_is_unimplemented(pyrt_device):
    # Arithmetic on quantized tensors means dequantize-op-quantize; pyrt refuses it rather than
    # compute on the storage integers.
    q = "tensor<4x!quant.uniform<i8:f32, 0.5:-3>>"
    text = (f"module {{\n  func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {{\n"
            f"    %q = stablehlo.uniform_quantize %x : (tensor<4xf32>) -> {q}\n"
            f'    %a = stablehlo.add %q, %q : {q} loc("quant_model.py":9:2)\n'
            f"    %d = stablehlo.uniform_dequantize %a : ({q}) -> tensor<4xf32>\n"
            f"    return %d : tensor<4xf32>\n  }}\n}}\n")
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, np.ones(4, np.float32))
    message = str(info.value)
    assert "UNIMPLEMENTED" in message and "stablehlo.add" in message, message
    assert "quantized" in message and "quant_model.py:9" in message, message
