"""Dynamic-shape ops with static result types (dynamic_broadcast_in_dim, dynamic_reshape,
dynamic_iota, dynamic_pad, real_dynamic_slice, get_dimension_size, set_dimension_size) against
the CPU backend, and the errors pyrt gives for shapes it cannot run."""

import jax
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array as make, tensor_type as mlir_type

from conftest import assert_same, run_mlir
from jax_pyrt import dtypes

DTYPES = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16,
          ml_dtypes.bfloat16, np.float32, np.float64, np.complex64, np.complex128]
IDS = [np.dtype(d).name for d in DTYPES]


def module(args, results, body):
    """A one-function module; args and results are lists of (name, type)."""
    params = ", ".join(f"%{n}: {t}" for n, t in args)
    rets = ", ".join(t for _, t in results)
    values = ", ".join(f"%{n}" for n, _ in results)
    return (f"module {{\n  func.func @main({params}) -> ({rets}) {{\n{body}\n"
            f"    return {values} : {rets}\n  }}\n}}\n")


def const(name, values, dtype="i64"):
    values = list(values)
    return (f"    %{name} = stablehlo.constant dense<{values}> : "
            f"tensor<{len(values)}x{dtype}>")


def expect_error(pyrt_device, text, *args, code, match):
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, *args)
    message = str(info.value)
    assert code in message and all(m in message for m in match), message
    return message


# -- dynamic_broadcast_in_dim

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_dynamic_broadcast_in_dim(check_mlir, dtype):
    t_in, t_out = mlir_type((3, 1), dtype), mlir_type((2, 3, 4), dtype)
    text = module([("x", t_in)], [("r", t_out)], "\n".join([
        const("s", [2, 3, 4]),
        f"    %r = stablehlo.dynamic_broadcast_in_dim %x, %s, dims = [1, 2] : "
        f"({t_in}, tensor<3xi64>) -> {t_out}"]))
    check_mlir(text, make((3, 1), dtype))


@pytest.mark.parametrize("shape_dtype", [np.int32, np.int64, np.uint32])
def test_dynamic_broadcast_in_dim_runtime_shape(check_mlir, shape_dtype):
    # The output dimensions come from a parameter: pyrt checks them on every run.
    element = dtypes.MLIR_BY_DTYPE[np.dtype(shape_dtype)]
    text = module([("x", "tensor<3x2xf32>"), ("s", f"tensor<3x{element}>")],
                  [("r", "tensor<2x4x3xf32>")],
                  f"    %r = stablehlo.dynamic_broadcast_in_dim %x, %s, dims = [2, 0] "
                  f"{{known_nonexpanding_dimensions = array<i64: 0, 1>}} : "
                  f"(tensor<3x2xf32>, tensor<3x{element}>) -> tensor<2x4x3xf32>")
    x = make((2, 3), np.float32).T  # non-contiguous
    check_mlir(text, x, np.array([2, 4, 3], shape_dtype))


@pytest.mark.parametrize("in_shape,out_shape,dims", [
    ((), (2, 3), []), ((0,), (4, 0), [1]), ((1,), (5,), [0]), ((2, 1), (2, 0), [0, 1])],
    ids=["scalar", "zero-size", "expand", "to-zero-size"])
def test_dynamic_broadcast_in_dim_shapes(check_mlir, in_shape, out_shape, dims):
    t_in, t_out = mlir_type(in_shape, np.int16), mlir_type(out_shape, np.int16)
    text = module([("x", t_in)], [("r", t_out)], "\n".join([
        const("s", out_shape, "i32") if out_shape else "",
        f"    %r = stablehlo.dynamic_broadcast_in_dim %x, %s, dims = {list(dims)} : "
        f"({t_in}, tensor<{len(out_shape)}xi32>) -> {t_out}"]))
    check_mlir(text, make(in_shape, np.int16))


def test_dynamic_broadcast_in_dim_mismatch(pyrt_device):
    text = module([("x", "tensor<3xf32>"), ("s", "tensor<2xi64>")], [("r", "tensor<2x3xf32>")],
                  "    %r = stablehlo.dynamic_broadcast_in_dim %x, %s, dims = [1] : "
                  "(tensor<3xf32>, tensor<2xi64>) -> tensor<2x3xf32>")
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(run_mlir(pyrt_device, text, x, np.array([2, 3]))[0],
                                  np.broadcast_to(x, (2, 3)))
    expect_error(pyrt_device, text, x, np.array([5, 3]), code="INVALID_ARGUMENT",
                 match=["stablehlo.dynamic_broadcast_in_dim", "[5, 3]", "[2, 3]",
                        "dynamic shapes"])


# -- dynamic_reshape

@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_dynamic_reshape(check_mlir, dtype):
    t_in, t_out = mlir_type((2, 6), dtype), mlir_type((3, 1, 4), dtype)
    text = module([("x", t_in)], [("r", t_out)], "\n".join([
        const("s", [3, 1, 4], "i32"),
        f"    %r = stablehlo.dynamic_reshape %x, %s : ({t_in}, tensor<3xi32>) -> {t_out}"]))
    check_mlir(text, make((2, 6), dtype))


def test_dynamic_reshape_runtime_shape(check_mlir, pyrt_device):
    text = module([("x", "tensor<4x3xi64>"), ("s", "tensor<2xi64>")], [("r", "tensor<6x2xi64>")],
                  "    %r = stablehlo.dynamic_reshape %x, %s : "
                  "(tensor<4x3xi64>, tensor<2xi64>) -> tensor<6x2xi64>")
    x = make((3, 4), np.int64).T
    check_mlir(text, x, np.array([6, 2]))
    expect_error(pyrt_device, text, x, np.array([2, 6]), code="INVALID_ARGUMENT",
                 match=["stablehlo.dynamic_reshape", "output_shape is [2, 6]", "[6, 2]"])


def test_dynamic_reshape_zero_size_and_scalar(check_mlir):
    text = module([("x", "tensor<0x3xf32>"), ("y", "tensor<1x1xf64>")],
                  [("r", "tensor<3x0xf32>"), ("q", "tensor<f64>")], "\n".join([
                      const("s", [3, 0]),
                      "    %e = stablehlo.constant dense<> : tensor<0xi64>",
                      "    %r = stablehlo.dynamic_reshape %x, %s : "
                      "(tensor<0x3xf32>, tensor<2xi64>) -> tensor<3x0xf32>",
                      "    %q = stablehlo.dynamic_reshape %y, %e : "
                      "(tensor<1x1xf64>, tensor<0xi64>) -> tensor<f64>"]))
    check_mlir(text, np.zeros((0, 3), np.float32), np.array([[-0.0]]))


# -- dynamic_iota

@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.int64, np.float16,
                                   ml_dtypes.bfloat16, np.float32, np.float64, np.complex64],
                         ids=str)
@pytest.mark.parametrize("dim", [0, 1])
def test_dynamic_iota(check_mlir, dtype, dim):
    t_out = mlir_type((3, 5), dtype)
    text = module([("x", "tensor<1xf32>")], [("x", "tensor<1xf32>"), ("r", t_out)], "\n".join([
        const("s", [3, 5]),
        f"    %r = stablehlo.dynamic_iota %s, dim = {dim} : (tensor<2xi64>) -> {t_out}"]))
    check_mlir(text, np.zeros(1, np.float32))


def test_dynamic_iota_runtime_shape(check_mlir, pyrt_device):
    text = module([("s", "tensor<3xi32>")], [("r", "tensor<2x0x4xi32>"), ("q", "tensor<4xi32>")],
                  "\n".join([
                      "    %r = stablehlo.dynamic_iota %s, dim = 2 : "
                      "(tensor<3xi32>) -> tensor<2x0x4xi32>",
                      const("t", [4], "i32"),
                      "    %q = stablehlo.dynamic_iota %t, dim = 0 : "
                      "(tensor<1xi32>) -> tensor<4xi32>"]))
    check_mlir(text, np.array([2, 0, 4], np.int32))
    expect_error(pyrt_device, text, np.array([2, 1, 4], np.int32), code="INVALID_ARGUMENT",
                 match=["stablehlo.dynamic_iota", "[2, 1, 4]", "[2, 0, 4]"])


# -- dynamic_pad

PADS = [  # operand shape, low, high, interior
    ((5,), [1], [3], [1]),
    ((2, 3), [0, -1], [2, 1], [0, 2]),
    ((4, 2), [-2, 1], [-1, 0], [1, 0]),
    ((3,), [-4], [2], [2]),  # crops everything but the padding
    ((0, 2), [1, 1], [1, 0], [3, 1]),
]


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint32, np.float16, np.float32,
                                   np.complex128], ids=str)
@pytest.mark.parametrize("case", range(len(PADS)))
def test_dynamic_pad(check_mlir, dtype, case):
    shape, low, high, interior = PADS[case]
    out = tuple(lo + hi + n + max(n - 1, 0) * i for n, lo, hi, i in zip(shape, low, high, interior))
    t_in, t_out, t_val = mlir_type(shape, dtype), mlir_type(out, dtype), mlir_type((), dtype)
    r = len(shape)
    text = module([("x", t_in), ("p", t_val)], [("r", t_out)], "\n".join([
        const("lo", low), const("hi", high), const("in", interior),
        f"    %r = stablehlo.dynamic_pad %x, %p, %lo, %hi, %in : ({t_in}, {t_val}, "
        f"tensor<{r}xi64>, tensor<{r}xi64>, tensor<{r}xi64>) -> {t_out}"]))
    check_mlir(text, make(shape, dtype), make((), dtype, seed=3))


def test_dynamic_pad_runtime_paddings(check_mlir, pyrt_device):
    def text(runtime):
        pads = [("lo", "tensor<2xi32>"), ("hi", "tensor<2xi32>"), ("in", "tensor<2xi32>")]
        body = [] if runtime else [const("lo", [1, -1], "i32"), const("hi", [0, 2], "i32"),
                                   const("in", [1, 0], "i32")]
        body.append("    %r = stablehlo.dynamic_pad %x, %p, %lo, %hi, %in : (tensor<3x4xf64>, "
                    "tensor<f64>, tensor<2xi32>, tensor<2xi32>, tensor<2xi32>) -> tensor<6x5xf64>")
        return module([("x", "tensor<3x4xf64>"), ("p", "tensor<f64>")] + (pads if runtime else []),
                      [("r", "tensor<6x5xf64>")], "\n".join(body))

    x, p = make((4, 3), np.float64).T, np.float64(-7.5)
    pads = [np.array(v, np.int32) for v in ([1, -1], [0, 2], [1, 0])]
    expected = run_mlir(jax.devices("cpu")[0], text(False), x, p)
    assert_same(run_mlir(pyrt_device, text(True), x, p, *pads), expected)
    check_mlir(text(False), x, p)
    expect_error(pyrt_device, text(True), x, p, pads[0], np.array([1, 2], np.int32), pads[2],
                 code="INVALID_ARGUMENT", match=["stablehlo.dynamic_pad", "[7, 5]", "[6, 5]"])
    expect_error(pyrt_device, text(True), x, p, np.array([-5, -1], np.int32), pads[1],
                 np.array([0, 0], np.int32), code="INVALID_ARGUMENT",
                 match=["stablehlo.dynamic_pad", "negative shape"])
    expect_error(pyrt_device, text(True), x, p, pads[0], pads[1], np.array([-1, 0], np.int32),
                 code="INVALID_ARGUMENT", match=["stablehlo.dynamic_pad", "negative"])


# -- real_dynamic_slice

SLICES = [  # operand shape, start, limit, strides
    ((7,), [1], [6], [2]),
    ((4, 5), [0, 1], [4, 5], [3, 1]),
    ((3, 4), [1, 4], [3, 4], [1, 2]),  # empty along the second dimension
    ((6, 2, 3), [5, 0, 0], [6, 2, 3], [1, 1, 5]),
]


@pytest.mark.parametrize("dtype", [np.bool_, np.int64, np.uint8, ml_dtypes.bfloat16,
                                   np.float64, np.complex64], ids=str)
@pytest.mark.parametrize("case", range(len(SLICES)))
def test_real_dynamic_slice(check_mlir, dtype, case):
    shape, start, limit, strides = SLICES[case]
    out = tuple(-(-(l - s) // st) for s, l, st in zip(start, limit, strides))
    t_in, t_out, r = mlir_type(shape, dtype), mlir_type(out, dtype), len(shape)
    text = module([("x", t_in)], [("r", t_out)], "\n".join([
        const("a", start), const("b", limit), const("c", strides),
        f"    %r = stablehlo.real_dynamic_slice %x, %a, %b, %c : ({t_in}, tensor<{r}xi64>, "
        f"tensor<{r}xi64>, tensor<{r}xi64>) -> {t_out}"]))
    check_mlir(text, make(shape, dtype))


def test_real_dynamic_slice_runtime_indices(pyrt_device):
    # XLA:CPU only takes constant indices: its result for constants is the oracle.
    def text(runtime):
        idx = [("a", "tensor<2xi64>"), ("b", "tensor<2xi64>"), ("c", "tensor<2xi64>")]
        body = [] if runtime else [const("a", [1, 0]), const("b", [5, 3]), const("c", [2, 2])]
        body.append("    %r = stablehlo.real_dynamic_slice %x, %a, %b, %c : (tensor<6x3xi32>, "
                    "tensor<2xi64>, tensor<2xi64>, tensor<2xi64>) -> tensor<2x2xi32>")
        return module([("x", "tensor<6x3xi32>")] + (idx if runtime else []),
                      [("r", "tensor<2x2xi32>")], "\n".join(body))

    x = make((3, 6), np.int32).T
    expected = run_mlir(jax.devices("cpu")[0], text(False), x)
    args = [np.array(v) for v in ([1, 0], [5, 3], [2, 2])]
    assert_same(run_mlir(pyrt_device, text(True), x, *args), expected)
    # Same result shape, other start: still fine.
    assert_same(run_mlir(pyrt_device, text(True), x, np.array([2, 0]), np.array([6, 3]),
                         args[2]), [x[2:6:2, 0:3:2]])
    expect_error(pyrt_device, text(True), x, np.array([3, 0]), np.array([7, 3]), args[2],
                 code="INVALID_ARGUMENT", match=["stablehlo.real_dynamic_slice", "[7, 3]"])
    expect_error(pyrt_device, text(True), x, args[0], args[1], np.array([2, 0]),
                 code="INVALID_ARGUMENT", match=["stablehlo.real_dynamic_slice", "strides"])
    expect_error(pyrt_device, text(True), x, args[0], np.array([3, 3]), args[2],
                 code="INVALID_ARGUMENT", match=["stablehlo.real_dynamic_slice", "[1, 2]"])


# -- get_dimension_size / set_dimension_size

def test_get_dimension_size(check_mlir):
    text = module([("x", "tensor<3x0x7xf32>")], [("a", "tensor<i32>"), ("b", "tensor<i32>"),
                                                 ("c", "tensor<i32>")], "\n".join(
        f"    %{n} = stablehlo.get_dimension_size %x, dim = {d} : (tensor<3x0x7xf32>) -> "
        f"tensor<i32>" for n, d in (("a", 0), ("b", 1), ("c", 2))))
    check_mlir(text, np.zeros((3, 0, 7), np.float32))


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint64, np.float16, np.complex128],
                         ids=str)
def test_set_dimension_size(check_mlir, dtype):
    t = mlir_type((4, 3), dtype)
    text = module([("x", t)], [("r", t), ("n", "tensor<i32>")], "\n".join([
        "    %s = stablehlo.constant dense<3> : tensor<i32>",
        f"    %r = stablehlo.set_dimension_size %x, %s, dim = 1 : ({t}, tensor<i32>) -> {t}",
        f"    %n = stablehlo.get_dimension_size %r, dim = 1 : ({t}) -> tensor<i32>"]))
    check_mlir(text, make((4, 3), dtype))


def test_set_dimension_size_runtime(check_mlir, pyrt_device):
    text = module([("x", "tensor<4xf32>"), ("s", "tensor<i32>")], [("r", "tensor<4xf32>")],
                  "    %r = stablehlo.set_dimension_size %x, %s, dim = 0 : "
                  "(tensor<4xf32>, tensor<i32>) -> tensor<4xf32>")
    x = make((4,), np.float32)
    check_mlir(text, x, np.int32(4))
    # XLA:CPU leaves the elements past a smaller size undefined; pyrt cannot shrink a static
    # dimension and says so.
    expect_error(pyrt_device, text, x, np.int32(2), code="INVALID_ARGUMENT",
                 match=["stablehlo.set_dimension_size", "size 2", "static size 4"])


# -- dynamic result types

def test_dynamic_result_type_is_unimplemented(pyrt_device):
    text = module([("x", "tensor<6xf32>")], [("r", "tensor<2x3xf32>")], "\n".join([
        const("s", [2, 3]),
        '    %d = stablehlo.dynamic_reshape %x, %s : (tensor<6xf32>, tensor<2xi64>) -> '
        'tensor<?x3xf32> loc("user_model.py":42:7)',
        "    %r = stablehlo.dynamic_reshape %d, %s : (tensor<?x3xf32>, tensor<2xi64>) -> "
        "tensor<2x3xf32>"]))
    expect_error(pyrt_device, text, np.zeros(6, np.float32), code="UNIMPLEMENTED",
                 match=["stablehlo.dynamic_reshape", "user_model.py:42", "dynamic shapes",
                        "tensor<?x3xf32>"])


def test_bounded_dynamic_type_is_unimplemented(pyrt_device):
    text = module([("x", "tensor<4xf32>"), ("s", "tensor<i32>")], [("r", "tensor<f32>")],
                  "\n".join([
                      "    %d = stablehlo.set_dimension_size %x, %s, dim = 0 : (tensor<4xf32>, "
                      "tensor<i32>) -> tensor<?xf32, #stablehlo.bounds<4>>",
                      "    %z = stablehlo.constant dense<0.0> : tensor<f32>",
                      "    %r = stablehlo.reduce(%d init: %z) applies stablehlo.add across "
                      "dimensions = [0] : (tensor<?xf32, #stablehlo.bounds<4>>, tensor<f32>) -> "
                      "tensor<f32>"]))
    expect_error(pyrt_device, text, np.zeros(4, np.float32), np.int32(2), code="UNIMPLEMENTED",
                 match=["stablehlo.set_dimension_size", "dynamic shapes"])
