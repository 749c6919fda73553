"""jit(..., compiler_options={...}): pyrt accepts and rejects exactly what XLA:CPU does, with
XLA:CPU's messages (the oracle is XLA:CPU compiling the same function with the same options)."""

import jax
import jax.numpy as jnp
import pytest

# One harmless option of each kind XLA's DebugOptions has (setting them changes nothing that
# could break XLA:CPU's compile), plus names that do not exist.
OPTIONS = [
    "xla_embed_ir_in_executable",                          # bool
    "xla_dump_max_hlo_modules",                            # int32
    "xla_gpu_all_reduce_combine_threshold_bytes",          # int64
    "xla_gpu_auto_spmd_partitioning_memory_budget_ratio",  # float
    "xla_gpu_cuda_data_dir",                               # string
    "xla_gpu_shape_checks",                                # enum
    "xla_cpu_experimental_xnn_fusion_type",                # repeated enum
    "xla_disable_hlo_passes",                              # repeated string
    "xla_backend_extra_options",                           # map (repeated message)
    "invalid_key", "exec_time_compilation_effort",         # no such option
]
VALUES = [True, False, 0, 1, 7, -3, 2 ** 31, 2 ** 40, 0.5, 1e20, 1e300, float("nan"),
          "True", "False", "true", "1", " 7", "+7", "2147483648", "9223372036854775808", "0.5",
          "0x1p3", "abc", "RUNTIME", "LIBRARY_FUSION_TYPE_DOT,bogus", "a,b", "", "1,2"]


def compile_outcome(device, options):
    """None if compiling `x + 1` with `options` on `device` works, else the error message."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=options).lower(
            jax.device_put(1.0, device)).compile()
        return None
    except jax.errors.JaxRuntimeError as e:
        return str(e)


@pytest.mark.parametrize("name", OPTIONS)
def test_overrides_accepted_and_rejected_as_on_cpu(name, pyrt_device, cpu_device):
    for value in VALUES:
        expected = compile_outcome(cpu_device, {name: value})
        assert compile_outcome(pyrt_device, {name: value}) == expected, (name, value)


def test_jax_api_test_messages(pyrt_device):
    """The messages JAX's own api_test asserts, and options set on the build options."""
    f = jax.jit(lambda x: jnp.sqrt(x ** 2) + 1.0)
    lowered = f.lower(jax.device_put(1.0, pyrt_device))
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match="INVALID_ARGUMENT: No such compile option: 'invalid_key'"):
        lowered.compile(compiler_options={"invalid_key": "invalid_value"})
    with pytest.raises(jax.errors.JaxRuntimeError, match="is not a valid bool value."):
        lowered.compile(compiler_options={"xla_embed_ir_in_executable": "invalid_value"})
    for options in ({"exec_time_optimization_effort": 0.0}, {"memory_fitting_effort": 1.0},
                    {"optimization_level": 1}, {"memory_fitting_level": 0},
                    {"xla_embed_ir_in_executable": True, "xla_dump_max_hlo_modules": 200}):
        assert float(lowered.compile(compiler_options=options)(2.0)) == 3.0
