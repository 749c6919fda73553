"""stablehlo.convolution and stablehlo.dynamic_conv against the CPU backend."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from conftest import assert_same, run_mlir, run_on

conv = jax.lax.conv_general_dilated
rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def layout(shape_by_letter, spec):
    return tuple(shape_by_letter[c] for c in spec)


# -- dimension numbers and layouts

DIMENSION_NUMBERS_2D = [
    ("NCHW", "OIHW", "NCHW"),
    ("NHWC", "HWIO", "NHWC"),
    ("NHWC", "OIHW", "NCHW"),
    ("CHWN", "IHWO", "WHNC"),
    ("HNWC", "WOHI", "CWNH"),
]


@pytest.mark.parametrize("dn", DIMENSION_NUMBERS_2D, ids="-".join)
def test_layouts_2d(check, dn):
    lhs_spec, rhs_spec, _ = dn
    x = randn(*layout(dict(N=2, C=3, H=7, W=6), lhs_spec))
    w = randn(*layout(dict(O=4, I=3, H=3, W=2), rhs_spec))
    check(lambda x, w: conv(x, w, (2, 1), ((1, 2), (0, 1)), dimension_numbers=dn), x, w,
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dn", [("NWC", "WIO", "NWC"), ("NCW", "OIW", "NCW"),
                                ("WCN", "IWO", "NWC")], ids="-".join)
@pytest.mark.parametrize("strides,padding", [((1,), "SAME"), ((3,), "VALID"), ((2,), ((3, -1),))])
def test_conv_1d(check, dn, strides, padding):
    x = randn(*layout(dict(N=3, C=4, W=11), dn[0]))
    w = randn(*layout(dict(O=5, I=4, W=3), dn[1]))
    check(lambda x, w: conv(x, w, strides, padding, dimension_numbers=dn), x, w,
          rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dn", [("NDHWC", "DHWIO", "NDHWC"), ("NCDHW", "OIDHW", "NCDHW")],
                         ids="-".join)
def test_conv_3d(check, dn):
    x = randn(*layout(dict(N=2, C=3, D=5, H=6, W=4), dn[0]))
    w = randn(*layout(dict(O=4, I=3, D=2, H=3, W=2), dn[1]))
    check(lambda x, w: conv(x, w, (1, 2, 1), "SAME", rhs_dilation=(2, 1, 1),
                            dimension_numbers=dn), x, w, rtol=1e-5, atol=1e-5)


# -- window: strides, padding, dilation

NHWC = ("NHWC", "HWIO", "NHWC")


@pytest.mark.parametrize("strides,padding,lhs_dilation,rhs_dilation", [
    ((1, 1), "SAME", None, None),
    ((1, 1), "VALID", None, None),
    ((2, 3), "SAME", None, None),
    ((3, 2), "VALID", None, None),
    ((1, 1), ((2, 3), (0, 4)), None, None),
    ((1, 2), ((-1, 0), (1, -2)), None, None),  # negative padding crops
    ((1, 1), ((-3, -2), (-1, -1)), None, None),
    ((1, 1), "SAME", None, (2, 3)),  # atrous
    ((2, 1), ((1, 1), (2, 0)), None, (3, 2)),
    ((1, 1), ((2, 2), (1, 1)), (2, 3), None),  # transposed convolution
    ((2, 1), ((1, -1), (-2, 3)), (3, 2), (2, 1)),
    ((1, 1), ((0, 0), (0, 0)), (2, 2), (2, 2)),
])
def test_window(check, strides, padding, lhs_dilation, rhs_dilation):
    x, w = randn(2, 9, 8, 3), randn(3, 2, 3, 4)
    check(lambda x, w: conv(x, w, strides, padding, lhs_dilation=lhs_dilation,
                            rhs_dilation=rhs_dilation, dimension_numbers=NHWC), x, w,
          rtol=1e-5, atol=1e-5)


def test_window_larger_than_input(check):
    x, w = randn(2, 3, 2, 3), randn(5, 4, 3, 2)
    check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC), x, w,
          rtol=1e-5, atol=1e-5)
    check(lambda x, w: conv(x, w, (2, 1), ((2, 2), (1, 3)), dimension_numbers=NHWC), x, w,
          rtol=1e-5, atol=1e-5)


def test_conv_transpose(check):
    x, w = randn(2, 5, 6, 3), randn(3, 3, 3, 4)
    check(lambda x, w: jax.lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=NHWC),
          x, w, rtol=1e-5, atol=1e-5)
    check(lambda x, w: jax.lax.conv_transpose(x, w, (2, 3), "VALID", dimension_numbers=NHWC,
                                              transpose_kernel=True), x, randn(3, 3, 4, 3),
          rtol=1e-5, atol=1e-5)


# -- groups

@pytest.mark.parametrize("dn", [NHWC, ("NCHW", "OIHW", "NCHW")], ids="-".join)
@pytest.mark.parametrize("groups,in_features,out_features", [
    (2, 6, 4), (3, 6, 9), (6, 6, 6), (6, 6, 12), (4, 4, 20), (6, 6, 36)])
def test_feature_groups(check, dn, groups, in_features, out_features):
    x = randn(*layout(dict(N=2, C=in_features, H=7, W=6), dn[0]))
    w = randn(*layout(dict(O=out_features, I=in_features // groups, H=3, W=3), dn[1]))
    check(lambda x, w: conv(x, w, (1, 2), "SAME", feature_group_count=groups,
                            dimension_numbers=dn), x, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dn", [NHWC, ("NCHW", "OIHW", "NCHW"), ("CHWN", "HWIO", "NHWC")],
                         ids="-".join)
@pytest.mark.parametrize("groups,batch,out_features", [(2, 4, 6), (3, 3, 3), (4, 8, 8)])
def test_batch_groups(check, dn, groups, batch, out_features):
    x = randn(*layout(dict(N=batch, C=3, H=6, W=5), dn[0]))
    w = randn(*layout(dict(O=out_features, I=3, H=2, W=3), dn[1]))
    check(lambda x, w: conv(x, w, (1, 1), ((1, 0), (1, 1)), batch_group_count=groups,
                            dimension_numbers=dn), x, w, rtol=1e-5, atol=1e-5)


# -- gradients: the input gradient is an lhs-dilated convolution with a reversed kernel, the
# weight gradient a batch-grouped (or feature-grouped) convolution with a large window.

@pytest.mark.parametrize("strides,padding,rhs_dilation,groups", [
    ((1, 1), "SAME", (1, 1), 1),
    ((2, 2), "SAME", (1, 1), 1),
    ((2, 1), "VALID", (1, 2), 1),
    ((1, 2), ((1, -1), (2, 0)), (2, 1), 1),
    ((1, 1), "SAME", (1, 1), 2),
    ((2, 2), "SAME", (1, 1), 4),
])
def test_gradients(check, strides, padding, rhs_dilation, groups):
    x, w = randn(4, 9, 8, 4), randn(3, 3, 4 // groups, 8)

    def loss(x, w):
        y = conv(x, w, strides, padding, rhs_dilation=rhs_dilation,
                 feature_group_count=groups, dimension_numbers=NHWC)
        return jnp.sum(jnp.tanh(y))

    check(jax.grad(loss, argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-4)


def test_gradients_nchw(check):
    x, w = randn(3, 4, 8, 7), randn(6, 4, 3, 2)
    dn = ("NCHW", "OIHW", "NCHW")
    loss = lambda x, w: jnp.sum(conv(x, w, (2, 1), "SAME", dimension_numbers=dn) ** 2)
    check(jax.grad(loss, argnums=(0, 1)), x, w, rtol=1e-4, atol=1e-4)


def test_vmapped_gradients(check):
    # Per-example weight gradients: vmap turns the batch into feature/batch groups.
    x, w = randn(3, 2, 6, 5, 2), randn(3, 3, 2, 4)
    loss = lambda x, w: jnp.sum(conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC) ** 2)
    check(jax.vmap(jax.grad(loss, argnums=1), in_axes=(0, None)), x, w, rtol=1e-4, atol=1e-4)


# -- dtypes

@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16,
                                   np.complex64, np.complex128])
def test_float_dtypes(check, dtype):
    x = (randn(2, 7, 6, 5) + (1j * randn(2, 7, 6, 5) if np.dtype(dtype).kind == "c" else 0))
    w = (randn(3, 3, 5, 4) + (1j * randn(3, 3, 5, 4) if np.dtype(dtype).kind == "c" else 0))
    tol = {np.dtype(np.float16): 2e-3,
           np.dtype(ml_dtypes.bfloat16): 2e-2}.get(np.dtype(dtype), 1e-5)
    out = check(lambda x, w: conv(x, w, (1, 2), "SAME", rhs_dilation=(1, 2),
                                  dimension_numbers=NHWC),
                x.astype(dtype), w.astype(dtype), rtol=tol, atol=tol)
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32])
def test_integer_dtypes_wrap(check, dtype):
    info = np.iinfo(dtype)
    x = rng.integers(info.min, info.max, (2, 6, 5, 8), dtype=dtype, endpoint=True)
    w = rng.integers(info.min, info.max, (3, 2, 8, 3), dtype=dtype, endpoint=True)
    x[0, 0, 0, :2] = [info.min, info.max]
    w[0, 0, :2, 0] = [info.max, info.min]
    out = check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC), x, w)
    assert out.dtype == dtype


def test_int8_grouped_and_dilated(check):
    x = rng.integers(-128, 128, (2, 9, 8, 6), dtype=np.int8)
    w = rng.integers(-128, 128, (3, 3, 2, 6), dtype=np.int8)
    check(lambda x, w: conv(x, w, (2, 1), ((2, 1), (0, 2)), lhs_dilation=(1, 2),
                            feature_group_count=3, dimension_numbers=NHWC), x, w)


@pytest.mark.parametrize("in_dtype,out_dtype", [
    (ml_dtypes.bfloat16, np.float32), (np.float16, np.float32), (np.float32, np.float64),
    (np.int8, np.int32), (np.int16, np.int64), (np.int8, np.float32)])
def test_preferred_element_type(check, in_dtype, out_dtype):
    if np.dtype(in_dtype).kind == "i":
        x = rng.integers(-128, 128, (2, 7, 6, 16)).astype(in_dtype)
        w = rng.integers(-128, 128, (3, 3, 16, 4)).astype(in_dtype)
    else:
        x, w = randn(2, 7, 6, 16, dtype=in_dtype), randn(3, 3, 16, 4, dtype=in_dtype)
    out = check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC,
                                  preferred_element_type=out_dtype), x, w, rtol=1e-5, atol=1e-5)
    assert out.dtype == out_dtype


@pytest.mark.parametrize("in_dtype,out_dtype", [
    (ml_dtypes.float8_e4m3fn, None), (ml_dtypes.float8_e5m2, None),
    (ml_dtypes.float8_e4m3fnuz, None), (ml_dtypes.float8_e4m3b11fnuz, None),
    (ml_dtypes.float4_e2m1fn, None), (ml_dtypes.float8_e4m3fn, ml_dtypes.bfloat16),
    (ml_dtypes.float8_e5m2, np.float32), (np.float16, ml_dtypes.bfloat16),
    (ml_dtypes.bfloat16, np.float16)])
def test_narrow_float_rounding(pyrt_device, cpu_device, in_dtype, out_dtype):
    # XLA:CPU rounds 8-bit float convolutions through float16 and mixed float16/bfloat16 ones
    # through bfloat16: results agree bit for bit except where the float32 accumulation order
    # decides a rounding.
    x, w = randn(2, 8, 8, 16) * 0.3, randn(3, 3, 16, 8) * 0.3
    f = lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC,
                          preferred_element_type=out_dtype)
    args = x.astype(in_dtype), w.astype(in_dtype)
    expected = run_on(cpu_device, f, *args)
    actual = run_on(pyrt_device, f, *args)
    assert_same(actual, expected, rtol=0.3, atol=1e-2)
    a, e = actual.astype(np.float32), expected.astype(np.float32)
    assert np.mean((a == e) | (np.isnan(a) & np.isnan(e))) > 0.99


def test_edge_values(check):
    x, w = randn(2, 6, 5, 3), randn(3, 3, 3, 2)
    x[0, 1, 1, 0], x[0, 4, 2, 1], x[1, 0, 0, 2], x[1, 3, 3, 0] = np.nan, np.inf, -np.inf, -0.0
    w[2, 2, 2, 1] = 0.0
    check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC), x, w,
          rtol=1e-5, atol=1e-5)


# -- shapes: zero-size, non-contiguous, one-shot and blocked im2col

@pytest.mark.parametrize("x_shape,w_shape,padding", [
    ((0, 5, 4, 3), (2, 2, 3, 4), "SAME"),   # no batch
    ((2, 5, 4, 0), (2, 2, 0, 4), "SAME"),   # no input features: zeros
    ((2, 5, 4, 3), (2, 2, 3, 0), "SAME"),   # no output features
    ((2, 1, 4, 3), (3, 2, 3, 4), "VALID"),  # window larger than the input: no outputs
    ((2, 0, 4, 3), (1, 2, 3, 4), ((1, 1), (0, 0))),  # empty spatial dimension, padded
    ((2, 4, 4, 3), (2, 2, 3, 4), ((-2, -2), (0, 0))),  # cropped away entirely
])
def test_zero_size(check, x_shape, w_shape, padding):
    check(lambda x, w: conv(x, w, (1, 1), padding, dimension_numbers=NHWC),
          randn(*x_shape), randn(*w_shape))


def test_non_contiguous_inputs(check):
    x, w = randn(3, 10, 7, 8), randn(4, 3, 8, 5)
    f = lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC)
    check(f, x[:, ::2, :, ::2], w[:, ::2, ::2], rtol=1e-5, atol=1e-5)
    check(f, x.transpose(0, 2, 1, 3), np.asfortranarray(w), rtol=1e-5, atol=1e-5)
    # Unpadded: the windows are a strided view straight into the (strided, flipped) operand.
    g = lambda x, w: conv(jnp.flip(x, 1)[:, :, ::2], w, (1, 2), "VALID", dimension_numbers=NHWC)
    check(g, x.transpose(0, 2, 1, 3), w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 300])
@pytest.mark.parametrize("case", ["plain", "grouped", "batch_grouped", "strided", "1d", "3d"])
def test_blocked_im2col(check, monkeypatch, case, chunk):
    # Small buffers force the blocked im2col path through every way of splitting the rows.
    from jax_pyrt.ops import convolution
    monkeypatch.setattr(convolution, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(convolution, "MIN_ROWS", 1)
    kw = dict(rtol=1e-5, atol=1e-5)
    if case == "plain":
        check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC),
              randn(3, 9, 7, 4), randn(3, 2, 4, 5), **kw)
    elif case == "grouped":
        check(lambda x, w: conv(x, w, (1, 1), "SAME", feature_group_count=2,
                                dimension_numbers=NHWC),
              randn(3, 9, 7, 4), randn(3, 2, 2, 6), **kw)
    elif case == "batch_grouped":
        check(lambda x, w: conv(x, w, (1, 1), "VALID", batch_group_count=3, dimension_numbers=NHWC),
              randn(6, 9, 7, 4), randn(3, 2, 4, 6), **kw)
    elif case == "strided":
        check(lambda x, w: conv(x, w, (2, 3), ((1, 2), (3, 0)), lhs_dilation=(1, 2),
                                rhs_dilation=(2, 1), dimension_numbers=("NCHW", "OIHW", "NCHW")),
              randn(3, 4, 9, 7), randn(5, 4, 3, 2), **kw)
    elif case == "1d":
        check(lambda x, w: conv(x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")),
              randn(3, 40, 4), randn(5, 4, 6), **kw)
    else:
        dn = ("NDHWC", "DHWIO", "NDHWC")
        check(lambda x, w: conv(x, w, (1, 1, 2), "SAME", dimension_numbers=dn),
              randn(2, 5, 4, 6, 3), randn(2, 3, 2, 3, 4), **kw)


def test_large_conv(check):
    x, w = randn(4, 32, 32, 16), randn(3, 3, 16, 32)
    check(lambda x, w: conv(x, w, (1, 1), "SAME", dimension_numbers=NHWC), x, w,
          rtol=1e-4, atol=1e-4)


def test_large_depthwise(check):
    x, w = randn(4, 32, 32, 16), randn(3, 3, 1, 32)
    check(lambda x, w: conv(x, w, (1, 1), "SAME", feature_group_count=16, dimension_numbers=NHWC),
          x, w, rtol=1e-5, atol=1e-5)


# -- hand-written StableHLO: window reversal, dynamic_conv

CONV = """
func.func @main(%x: tensor<2x7x5x3xf32>, %w: tensor<3x2x3x4xf32>{extra_args}) -> tensor<{out}xf32> {{
  %0 = "stablehlo.{name}"(%x, %w{extra}) {{dimension_numbers = #stablehlo.conv<[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]>,
      feature_group_count = 1 : i64, batch_group_count = 1 : i64,
      window_strides = array<i64: {strides}>, {padding}
      lhs_dilation = array<i64: {lhs_dilation}>, rhs_dilation = array<i64: 1, 1>,
      window_reversal = array<i1: {reversal}>}}
      : (tensor<2x7x5x3xf32>, tensor<3x2x3x4xf32>{extra_types}) -> tensor<{out}xf32>
  return %0 : tensor<{out}xf32>
}}"""


def conv_text(name, out, padding, strides="1, 1", lhs_dilation="1, 1", reversal="false, false"):
    dynamic = name == "dynamic_conv"
    return CONV.format(
        name=name, out=out, strides=strides, lhs_dilation=lhs_dilation, reversal=reversal,
        extra_args=", %p: tensor<2x2xi64>" if dynamic else "",
        extra=", %p" if dynamic else "", extra_types=", tensor<2x2xi64>" if dynamic else "",
        padding="" if dynamic else f"padding = dense<{padding}> : tensor<2x2xi64>,")


@pytest.mark.parametrize("reversal", ["true, false", "false, true", "true, true"])
def test_window_reversal(check_mlir, reversal):
    text = conv_text("convolution", "2x7x4x4", "[[1, 1], [0, 0]]", reversal=reversal)
    check_mlir(text, randn(2, 7, 5, 3), randn(3, 2, 3, 4), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,out,strides,lhs_dilation", [
    ([[1, 1], [0, 0]], "2x7x4x4", "1, 1", "1, 1"),
    ([[0, 2], [-1, 3]], "2x7x6x4", "1, 1", "1, 1"),
    ([[2, 1], [1, 0]], "2x4x9x4", "2, 1", "1, 2"),
])
def test_dynamic_conv(pyrt_device, cpu_device, padding, out, strides, lhs_dilation):
    # The CPU backend cannot compile dynamic_conv; its oracle is the same static convolution.
    x, w = randn(2, 7, 5, 3), randn(3, 2, 3, 4)
    kw = dict(out=out, padding=padding, strides=strides, lhs_dilation=lhs_dilation,
              reversal="true, false")
    expected = run_mlir(cpu_device, conv_text("convolution", **kw), x, w)
    actual = run_mlir(pyrt_device, conv_text("dynamic_conv", **kw), x, w,
                      np.array(padding, np.int64))
    assert_same(actual, expected, rtol=1e-5, atol=1e-5)


def test_dynamic_conv_bad_padding(pyrt_device):
    text = conv_text("dynamic_conv", "2x7x4x4", None)
    with pytest.raises(Exception, match="padding gives"):
        run_mlir(pyrt_device, text, randn(2, 7, 5, 3), randn(3, 2, 3, 4),
                 np.array([[1, 2], [0, 0]], np.int64))
