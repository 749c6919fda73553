"""Whole-program shapes JAX emits every day that single-op tests miss (found by running JAX's own
test suite on pyrt, docs/conformance.md): programs without outputs, outputs that are inputs,
tuples inside programs. Each is compared with the CPU backend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _sharing(device, fn, *args):
    """Which results share memory with an argument or an earlier result, running fn on device."""
    placed = [jax.device_put(np.asarray(a), device) for a in args]
    seen = [p.unsafe_buffer_pointer() for p in placed]
    outs = jax.tree_util.tree_leaves(fn(*placed))
    shared = []
    for out in outs:
        pointer = out.unsafe_buffer_pointer()
        shared.append(pointer in seen)
        seen.append(pointer)
    return shared


def test_copies_are_new_buffers(pyrt_device, cpu_device):
    """jnp.array(x, copy=True), x.copy() and a jitted identity return new memory unless the
    argument is donated, as on XLA:CPU: nothing written later through one array shows in the
    other (JAX's api_test test_trivial_computations, lax_numpy_test testArrayCopy)."""
    x = np.arange(64, dtype=np.float32)  # large enough to be device_put without a copy
    cases = {
        "array copy": lambda a: jnp.array(a, copy=True),
        "method copy": lambda a: a.copy(),
        "jit identity": jax.jit(lambda a: a),
        "jit reshape": jax.jit(lambda a: a.reshape(8, 8)),
        "jit same result twice": jax.jit(lambda a: (a + 1, a + 1)),
        "jit constant": jax.jit(lambda a: (a, np.float32(3) * np.ones(4, np.float32))),
        "jit donated": jax.jit(lambda a: a * 2, donate_argnums=0),
    }
    for name, fn in cases.items():
        expected = _sharing(cpu_device, fn, x)
        assert _sharing(pyrt_device, fn, x) == expected, name


def test_rematerialized_values_inside_scans(pyrt_device, cpu_device):
    """jax.checkpoint with a policy wraps saved values in stablehlo.optimization_barrier, often
    of a single value, inside scan bodies (JAX's api_test test_remat_*): the barrier's one result
    is a value, not a 1-tuple."""

    @jax.custom_jvp
    def total(x):
        return jnp.sum(x, axis=0)

    @total.defjvp
    def total_jvp(primals, tangents):
        return total(primals[0]), total(tangents[0])

    f = jax.checkpoint(total, policy=jax.checkpoint_policies.checkpoint_dots)
    g = lambda xs: jax.lax.scan(lambda _, x: (None, f(x)), None, xs)[1]
    everything = jax.checkpoint(lambda x: jnp.dot(x, x) * 2, policy=lambda *_, **__: True)

    def derivatives(device):
        with jax.default_device(device):
            xs = jnp.linspace(-1, 1, 6, dtype=jnp.float32).reshape(2, 3)
            return (jax.linearize(g, xs)[1](xs), jax.grad(lambda v: g(v).sum())(xs),
                    jax.jvp(lambda v: jax.grad(lambda w: g(w).sum())(v), (xs,), (xs,)),
                    jax.vjp(everything, xs[:, :2])[1](jnp.ones((2, 2), jnp.float32)))

    assert_same(derivatives(pyrt_device), derivatives(cpu_device), rtol=1e-5)


def test_token_buffers(pyrt_device, cpu_device):
    """Programs taking and returning !stablehlo.token: the buffers are PJRT tokens on both
    backends, which jaxlib refuses to read (JAX's api_test test_print_token_buffer_error), and
    which pass through jit and chain ordered effects."""
    def tokens(device):
        with jax.default_device(device):
            token = jax.lax.create_token()
            with pytest.raises(jax.errors.JaxRuntimeError) as e:
                token._buf._value
            _, out = jax.jit(lambda a, t: (a, t))(jnp.ones(3), token)
            text = ("func.func @main(%t: !stablehlo.token, %a: tensor<2xf32>) -> "
                    "(!stablehlo.token, tensor<2xf32>) {\n"
                    "  %u = stablehlo.after_all %t : !stablehlo.token\n"
                    "  return %u, %a : !stablehlo.token, tensor<2xf32>\n}")
            from jax._src.lib import xla_client
            exe = device.client.compile_and_load(text, xla_client.DeviceList((device,)),
                                                 xla_client.CompileOptions())
            outs = exe.execute_sharded([out._buf, jax.device_put(np.ones(2, np.float32))])
            token_out, array_out = outs.disassemble_into_single_device_arrays()
            return (str(e.value), type(out).__name__, out is token,
                    np.asarray(array_out[0]).tolist(), token_out[0].shape)

    assert tokens(pyrt_device) == tokens(cpu_device)
    assert "Cannot convert a token-shape buffer to a numpy array" in tokens(pyrt_device)[0]
