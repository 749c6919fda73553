"""batch_norm_training, batch_norm_inference and batch_norm_grad against the CPU backend (which
expands them into elementwise ops and reductions). JAX never emits these ops, so the programs
are hand-written."""

import ml_dtypes
import numpy as np
import pytest

ELEMENTS = {"f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32, "f64": np.float64,
            "f8E4M3FN": ml_dtypes.float8_e4m3fn}


def tolerance(dtype):
    dtype = np.dtype(dtype)
    if dtype.itemsize == 1:
        return dict(rtol=0.15, atol=0.5)
    if dtype in (np.float16, ml_dtypes.bfloat16):
        # XLA:CPU sums f16 in f16; pyrt sums in float32 and rounds once.
        return dict(rtol=2e-2, atol=1e-1)
    if dtype == np.float32:
        return dict(rtol=2e-5, atol=2e-5)
    return dict(rtol=1e-12, atol=1e-12)


def module(shape, element, feature_index, epsilon="1.0e-3"):
    """All three ops in one program: (training output, mean, variance, inference output,
    grad operand, grad scale, grad offset)."""
    t = f"tensor<{''.join(f'{d}x' for d in shape)}{element}>"
    v = f"tensor<{shape[feature_index]}x{element}>"
    attrs = f"{{epsilon = {epsilon} : f32, feature_index = {feature_index} : i64}}"
    return f"""
func.func @main(%x: {t}, %s: {v}, %o: {v}, %m: {v}, %var: {v}, %g: {t})
    -> ({t}, {v}, {v}, {t}, {t}, {v}, {v}) {{
  %0:3 = "stablehlo.batch_norm_training"(%x, %s, %o) {attrs}
      : ({t}, {v}, {v}) -> ({t}, {v}, {v})
  %1 = "stablehlo.batch_norm_inference"(%x, %s, %o, %m, %var) {attrs}
      : ({t}, {v}, {v}, {v}, {v}) -> {t}
  %2:3 = "stablehlo.batch_norm_grad"(%x, %s, %m, %var, %g) {attrs}
      : ({t}, {v}, {v}, {v}, {t}) -> ({t}, {v}, {v})
  return %0#0, %0#1, %0#2, %1, %2#0, %2#1, %2#2 : {t}, {v}, {v}, {t}, {t}, {v}, {v}
}}"""


def inputs(shape, feature_index, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[feature_index]
    x = rng.standard_normal(shape) * 2 + 1
    return [a.astype(dtype) for a in (
        x, rng.standard_normal(c), rng.standard_normal(c), rng.standard_normal(c),
        rng.random(c) + 0.5, rng.standard_normal(shape))]


@pytest.mark.parametrize("element", list(ELEMENTS))
@pytest.mark.parametrize("shape, feature_index", [((2, 3, 4, 5), 0), ((2, 3, 4, 5), 1),
                                                  ((2, 3, 4, 5), 3), ((64, 16), 1),
                                                  ((7,), 0), ((1, 3), 1)])
def test_batch_norm(check_mlir, element, shape, feature_index):
    dtype = ELEMENTS[element]
    out = check_mlir(module(shape, element, feature_index), *inputs(shape, feature_index, dtype),
                     **tolerance(dtype))
    assert [o.dtype for o in out] == [np.dtype(dtype)] * 7


def test_batch_norm_non_contiguous_and_epsilon(check_mlir):
    x, s, o, m, v, g = inputs((6, 8, 3), 2, np.float32, 1)
    text = module((3, 8, 6), "f32", 0, epsilon="5.0e-01")
    check_mlir(text, x.T, s, o, m, v, g[::-1].T.copy(), **tolerance(np.float32))


def test_batch_norm_edge_values(check_mlir):
    # A constant feature (variance 0: epsilon keeps it finite), a NaN in one feature only, and
    # infinities, all per feature.
    x, s, o, m, v, g = inputs((4, 5), 1, np.float64, 2)
    x[:, 0] = 3.0
    x[2, 1] = np.nan
    x[1, 2] = np.inf
    v[3] = 0.0
    check_mlir(module((4, 5), "f64", 1), x, s, o, m, v, g, **tolerance(np.float64))


def test_batch_norm_zero_size(check_mlir):
    x, s, o, m, v, g = inputs((0, 3), 1, np.float32)
    check_mlir(module((0, 3), "f32", 1), x, s, o, m, v, g)
