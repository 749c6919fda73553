"""The code generator: buffer reuse must never overwrite a value that is still visible."""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_pyrt import _bridge

N = 1 << 13  # above compiler.IN_PLACE_ELEMENTS


def _source_of_last_compile():
    return list(_bridge._cache.values())[-1].source


def test_chain_reuses_temporaries_in_place(check):
    x = np.linspace(-2, 2, N, dtype=np.float32)
    check(lambda x: jnp.tanh(x * 2.0 + 1.0) * x - jnp.exp(-x), x, rtol=1e-6)
    assert "out=" in _source_of_last_compile()


def test_no_reuse_of_a_value_that_a_view_still_shows(check):
    x = np.linspace(-2, 2, N, dtype=np.float32)

    def f(x):
        t = x * 3.0
        view = t.reshape(2, -1)  # a view of t's memory
        later = jnp.sin(t)       # t's last use: must not be written in place
        return view, later

    check(f, x, rtol=1e-6)


def test_no_reuse_of_a_value_captured_by_a_loop(check):
    x = np.linspace(-2, 2, N, dtype=np.float32)

    def f(x):
        t = x * 3.0
        loop = lax.fori_loop(0, 3, lambda i, acc: acc + t, jnp.zeros_like(t))
        return loop, t + 1.0

    check(f, x, rtol=1e-6)


def test_no_reuse_of_inputs_or_outputs(check):
    x = np.linspace(-2, 2, N, dtype=np.float32)

    def f(x):
        t = x + 1.0
        return t, t * 2.0  # t is returned: its memory must stay intact

    actual = check(f, x, rtol=1e-6)
    np.testing.assert_allclose(actual[0], x + 1.0, rtol=1e-6)


def test_denormal_constants_survive_compilation(pyrt_device):
    """jaxlib compiles on threads that flush denormals to zero; pyrt keeps IEEE semantics for
    constants read at compile time and for results (NumPy is the oracle: XLA:CPU flushes)."""
    import ml_dtypes

    tiny = np.float32(np.finfo(np.float32).tiny) / np.float32(4)  # a float32 denormal
    f = jax.jit(lambda x: x + jnp.asarray(tiny, jnp.float32))
    assert np.asarray(f(jax.device_put(np.float32(0), pyrt_device))) == tiny
    tiny_bf16 = ml_dtypes.bfloat16(np.finfo(np.float32).tiny)
    g = jax.jit(lambda x: x + jnp.asarray(tiny_bf16, jnp.bfloat16))
    assert np.asarray(g(jax.device_put(ml_dtypes.bfloat16(0), pyrt_device))) == tiny_bf16


def test_compiled_programs_keep_no_mlir_objects(check):
    """A compiled program keeps no MLIR object (a type or attribute keeps its whole MLIR context,
    ~2 MB, alive): pyrt's compile cache of 256 programs used to hold ~500 MB."""
    import gc
    import sys
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8)
    check(lambda a: (jnp.sin(a) * 3 + a @ a).sum(0) + lax.cumsum(a, 1)[0], x, rtol=1e-5)
    executable = list(_bridge._cache.values())[-1]
    # Module namespaces (kernels' __globals__) are shared, not held by the program.
    shared = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen, stack, mlir = set(shared), [executable], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type) or type(obj).__name__ == "module":
            continue
        seen.add(id(obj))
        if (type(obj).__module__ or "").startswith("jaxlib.mlir"):
            mlir.append(type(obj).__name__)
        stack.extend(gc.get_referents(obj))
    assert not mlir, f"a compiled program holds MLIR objects: {sorted(set(mlir))}"
