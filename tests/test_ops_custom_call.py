"""stablehlo.custom_call: the target registry, the targets JAX emits for single-device programs
(GSPMD sharding annotations, memory placement, Shardy round-trip markers) and the error for
targets pyrt does not know."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P, SingleDeviceSharding

from conftest import assert_same, run_mlir
from jax_pyrt import dtypes
from jax_pyrt.ops import custom_call

IDENTITY_TARGETS = {
    "Sharding": '{backend_config = "", mhlo.sharding = "{replicated}"}',
    "SPMDFullToShardShape": '{backend_config = "", mhlo.sharding = "{manual}"}',
    "SPMDShardToFullShape": '{backend_config = "", mhlo.sharding = "{replicated}"}',
    "annotate_device_placement": '{has_side_effect = true, mhlo.frontend_attributes = '
                                 '{_xla_buffer_placement = "pinned_host"}}',
    "xla.sdy.FuncResultSharding": "{has_side_effect = true}",
}
DTYPES = [np.bool_, np.int8, np.uint32, np.int64, np.float16, ml_dtypes.bfloat16, np.float32,
          np.complex128]


def identity_module(target, attrs, t):
    # The custom call's result feeds other ops (XLA:CPU aborts on an xla.sdy.FuncResultSharding
    # returned directly without its frontend attributes).
    return (f"module @m attributes {{mhlo.num_partitions = 1 : i32, mhlo.num_replicas = 1 : i32}}"
            f" {{\n  func.func @main(%x: {t}) -> ({t}, {t}) {{\n"
            f"    %0 = stablehlo.custom_call @{target}(%x) {attrs} : ({t}) -> {t}\n"
            f"    %1 = stablehlo.reverse %0, dims = [0] : {t}\n"
            f"    %2 = stablehlo.reverse %0, dims = [1] : {t}\n"
            f"    return %1, %2 : {t}, {t}\n  }}\n}}\n")


@pytest.mark.parametrize("target", sorted(IDENTITY_TARGETS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_identity_targets(check_mlir, target, dtype):
    t = f"tensor<5x2x{dtypes.MLIR_BY_DTYPE[np.dtype(dtype)]}>"
    x = (np.arange(10).reshape(5, 2) - 4).astype(dtype)
    check_mlir(identity_module(target, IDENTITY_TARGETS[target], t), x)


def test_identity_target_zero_size_and_scalar(check_mlir):
    for t, x in [("tensor<0x3xf32>", np.zeros((0, 3), np.float32))]:
        check_mlir(identity_module("Sharding", IDENTITY_TARGETS["Sharding"], t), x)
    text = ("module {\n  func.func @main(%x: tensor<f64>) -> tensor<f64> {\n"
            "    %0 = stablehlo.custom_call @Sharding(%x) {mhlo.sharding = \"{replicated}\"} : "
            "(tensor<f64>) -> tensor<f64>\n    %1 = stablehlo.negate %0 : tensor<f64>\n"
            "    return %1 : tensor<f64>\n  }\n}\n")
    check_mlir(text, np.float64(-0.0))


def _with_gspmd(fn):
    """Runs fn() with JAX lowering sharding annotations to GSPMD custom calls, not Shardy."""
    saved = jax.config.jax_use_shardy_partitioner
    jax.config.update("jax_use_shardy_partitioner", False)
    try:
        return fn()
    finally:
        jax.config.update("jax_use_shardy_partitioner", saved)


@pytest.mark.parametrize("kind", ["single_device", "named"])
def test_with_sharding_constraint_gspmd(pyrt_device, cpu_device, kind):
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)

    def run(device):
        sharding = (SingleDeviceSharding(device) if kind == "single_device"
                    else NamedSharding(Mesh(np.array([device]), ("a",)), P("a")))

        def f(v):
            return jax.lax.with_sharding_constraint(v * 2, sharding) + 1

        placed = jax.device_put(x, device)
        text = jax.jit(f).lower(placed).as_text()
        assert "custom_call @Sharding" in text and "sdy." not in text, text
        return np.asarray(jax.jit(f)(placed))

    expected = _with_gspmd(lambda: run(cpu_device))
    actual = _with_gspmd(lambda: run(pyrt_device))
    assert_same(actual, expected)


def test_shard_map_gspmd(pyrt_device, cpu_device):
    # shard_map over a one-device mesh, lowered without Shardy.
    x = np.arange(8, dtype=np.int32).reshape(2, 4)

    def run(device):
        mesh = Mesh(np.array([device]), ("a",))
        f = jax.jit(jax.shard_map(lambda v: v * 3 - 1, mesh=mesh, in_specs=P("a"),
                                  out_specs=P("a")))
        return np.asarray(f(jax.device_put(x, device)))

    assert_same(_with_gspmd(lambda: run(pyrt_device)), _with_gspmd(lambda: run(cpu_device)))


def test_dce_sink(check):
    """lax.dce_sink(..., prevent_mlir_dce=True) lowers to custom_call @dce_sink without results
    (checkify and JAX's own tests use it): it runs, and changes nothing."""
    def f(x):
        lax.dce_sink(jnp.sin(x), prevent_mlir_dce=True)
        return x + 1
    assert "@dce_sink" in jax.jit(f).lower(np.ones(3)).as_text()
    check(f, np.arange(3.0))


def test_unknown_target_is_unimplemented(pyrt_device):
    def f(v):
        return jax.ffi.ffi_call("pyrt_no_such_target", jax.ShapeDtypeStruct(v.shape, v.dtype))(v)

    line = f.__code__.co_firstlineno + 1
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        jax.jit(f)(jax.device_put(np.ones(3, np.float32), pyrt_device))
    message = str(info.value)
    assert "UNIMPLEMENTED" in message, message
    assert "'pyrt_no_such_target'" in message, message
    assert f"test_ops_custom_call.py:{line}" in message, message


def test_unknown_target_in_hand_written_module(pyrt_device):
    text = ('module {\n  func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n'
            '    %0 = stablehlo.custom_call @lapack_sgeqrf_ffi(%x) {api_version = 4 : i32} : '
            '(tensor<2xf32>) -> tensor<2xf32> loc("model.py":7:1)\n'
            '    return %0 : tensor<2xf32>\n  }\n}\n')
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, np.ones(2, np.float32))
    message = str(info.value)
    assert "UNIMPLEMENTED" in message and "lapack_sgeqrf_ffi" in message, message
    assert "model.py:7" in message, message


def test_registering_a_target(check_mlir, cpu_device, pyrt_device):
    # A new target is one decorated handler with the op-handler contract. Compare a custom call
    # to it on pyrt with the equivalent StableHLO on CPU.
    name = "pyrt_test_scale_and_shift"

    @custom_call.target(name)
    def scale_and_shift(op_):
        """Test target: x * k + 1, k from backend_config."""
        k = float(op_.value("backend_config"))
        dtype = op_.result.dtype
        return lambda x: (x * k + 1).astype(dtype)

    try:
        assert name in custom_call.targets() and name in custom_call.custom_call.__doc__
        with pytest.raises(ValueError, match="two handlers"):
            custom_call.target(name)(scale_and_shift)
        t = "tensor<2x3xf64>"
        call = (f"module {{\n  func.func @main(%x: {t}) -> {t} {{\n"
                f'    %0 = stablehlo.custom_call @{name}(%x) {{backend_config = "2.5"}} : '
                f"({t}) -> {t}\n    return %0 : {t}\n  }}\n}}\n")
        plain = (f"module {{\n  func.func @main(%x: {t}) -> {t} {{\n"
                 f"    %k = stablehlo.constant dense<2.5> : {t}\n"
                 f"    %one = stablehlo.constant dense<1.0> : {t}\n"
                 f"    %0 = stablehlo.multiply %x, %k : {t}\n"
                 f"    %1 = stablehlo.add %0, %one : {t}\n    return %1 : {t}\n  }}\n}}\n")
        x = np.arange(6.0).reshape(2, 3) - 2
        assert_same(run_mlir(pyrt_device, call, x), run_mlir(cpu_device, plain, x))
    finally:
        custom_call._TARGETS.pop(name, None)
        custom_call._document()
    assert name not in custom_call.custom_call.__doc__


def test_multi_device_sharding_is_unimplemented(pyrt_device):
    text = ('module @m attributes {mhlo.num_partitions = 2 : i32, mhlo.num_replicas = 1 : i32} {\n'
            '  func.func @main(%x: tensor<2x4xf32>) -> tensor<1x4xf32> {\n'
            '    %0 = stablehlo.custom_call @Sharding(%x) {mhlo.sharding = "{devices=[2,1]<=[2]}"}'
            ' : (tensor<2x4xf32>) -> tensor<2x4xf32>\n'
            '    %1 = stablehlo.custom_call @SPMDFullToShardShape(%0) {mhlo.sharding = "{manual}"}'
            ' : (tensor<2x4xf32>) -> tensor<1x4xf32>\n'
            '    return %1 : tensor<1x4xf32>\n  }\n}\n')
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        run_mlir(pyrt_device, text, np.ones((2, 4), np.float32))
    message = str(info.value)
    assert "UNIMPLEMENTED" in message and "Sharding" in message and "2 devices" in message, message
