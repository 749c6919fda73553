"""Whole-program shapes JAX emits every day that single-op tests miss (found by running JAX's own
test suite on pyrt, docs/conformance.md): programs without outputs, outputs that are inputs,
tuples inside programs. Each is compared with the CPU backend."""

import jax
import jax.numpy as jnp
import numpy as np

from conftest import assert_same, run_on


def test_program_without_outputs_runs_its_effects(pyrt_device, cpu_device):
    """JAX compiles a program with no results whenever all it does is an effect; the effect is
    the point, so it must run, once per call."""
    seen = {}

    def calls(device):
        log = seen.setdefault(device.platform, [])

        @jax.jit
        def f(x):
            jax.debug.callback(lambda v: log.append(np.asarray(v).tolist()), x * 2)

        module = f.lower(jax.device_put(np.arange(3.0), device)).compiler_ir()
        main = next(op for op in module.body.operations if op.sym_name.value == "main")
        assert not main.type.results, "expected a program without outputs"
        for i in range(3):
            assert f(jax.device_put(np.arange(3.0) + i, device)) is None
        jax.effects_barrier()

    calls(cpu_device)
    calls(pyrt_device)
    assert seen["pyrt"] == seen["cpu"] == [[0, 2, 4], [2, 4, 6], [4, 6, 8]]


def test_eager_constant_gradients(pyrt_device, cpu_device):
    """The same gradients outside jit, where JAX dispatches the zero-output program itself."""
    def grads(device):
        with jax.default_device(device):
            x = jnp.arange(3.0)
            return (jax.grad(lambda z: jax.ops.segment_sum(z, jnp.array([0, 1, 1]), 2).sum())(x),
                    jax.grad(lambda z: jnp.linalg.pinv(z.reshape(3, 1)).sum())(x),
                    jax.jit(lambda z: None)(x))
    assert_same(grads(pyrt_device), grads(cpu_device), rtol=1e-5)
    assert all(leaf.devices() == {pyrt_device}
               for leaf in jax.tree_util.tree_leaves(grads(pyrt_device)))
