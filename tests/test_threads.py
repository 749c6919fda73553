"""Kernels split by rows over threads (threads.py): the values of the whole kernel, bit for bit,
and XLA:CPU's values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_pyrt import _bridge, threads

RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 96, 48), dtype=np.float32)  # 294912 elements: split
PROGRAMS = {
    "sum over the last axis": lambda x: x.sum(-1),
    "max over the middle axis": lambda x: x.max(1),
    "mean over two axes": lambda x: x.mean((1, 2)),
    "argmax": lambda x: jnp.argmax(x, axis=2),
    "variadic reduce (a custom body)": lambda x: jax.lax.reduce(
        (x, x * 2), (np.float32(0), np.float32(1)),
        lambda a, b: (a[0] + b[0], jnp.maximum(a[1], b[1])), (1,)),
    "max pool": lambda x: jax.lax.reduce_window(x[..., None], -jnp.inf, jax.lax.max,
                                                (1, 2, 2, 1), (1, 2, 2, 1), "VALID"),
    "average pool with padding": lambda x: jax.lax.reduce_window(
        x, 0.0, jax.lax.add, (1, 3, 3), (1, 1, 1), "SAME"),
}


def _on_pyrt(fn, count, monkeypatch, pyrt_device):
    monkeypatch.setenv("PYRT_THREADS", str(count))
    _bridge._cache.clear()  # the split is chosen at compile time
    jax.clear_caches()
    return jax.tree.map(np.asarray, jax.jit(fn)(jax.device_put(X, pyrt_device)))


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_split_kernels_give_the_whole_kernels_values(name, monkeypatch, pyrt_device,
                                                      cpu_device):
    fn = PROGRAMS[name]
    whole = _on_pyrt(fn, 1, monkeypatch, pyrt_device)
    shares = []
    run_shares = threads.run_shares
    monkeypatch.setattr(threads, "run_shares",
                        lambda work, parts: shares.append(len(parts)) or run_shares(work, parts))
    for count in (2, 3):
        split = _on_pyrt(fn, count, monkeypatch, pyrt_device)
        jax.tree.map(np.testing.assert_array_equal, split, whole)
        assert shares and shares[-1] == count, shares
    expected = jax.tree.map(np.asarray, jax.jit(fn)(jax.device_put(X, cpu_device)))
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=2e-6, atol=2e-5), whole,
                 expected)
