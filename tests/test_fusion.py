"""Fusion of elementwise ops (fusion.py): the same values as XLA:CPU, and as pyrt op by op."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_pyrt import _bridge, fusion

N = 1 << 18  # 16 blocks; groups this large fuse in these tests (fuse_from_64k)


@pytest.fixture(autouse=True)
def fuse_from_64k(monkeypatch):
    """Groups of 64K elements and more fuse, so that the tests' arrays stay small (by default
    groups fuse from FUSE_ELEMENTS, 1M; test_default_threshold checks that one)."""
    monkeypatch.setattr(fusion, "FUSE_ELEMENTS", 1 << 16)


def _source_of_last_compile():
    return list(_bridge._cache.values())[-1].source


def _group_calls(source):
    return re.findall(r"= g\d+\(", source)


def _op_by_op(pyrt_device, fn, *args, monkeypatch):
    """fn on pyrt with fusion off: each op a whole-array NumPy call, as before fusion."""
    with monkeypatch.context() as m:
        m.setattr(fusion, "FUSE_ELEMENTS", 1 << 62)
        jax.clear_caches()
        out = jax.jit(fn)(*[jax.device_put(a, pyrt_device) for a in args])
        assert not _group_calls(_source_of_last_compile())
        return jax.tree.map(np.asarray, out)


def test_exact_chain_is_one_call_equal_to_cpu(check):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 512), dtype=np.float32)
    bias = rng.standard_normal(512, dtype=np.float32)

    def f(x, b):  # no a * b + c: XLA:CPU contracts those into fused multiply-adds
        y = jnp.maximum(x * 3.0, -1.0) + b
        return jnp.where(y > 0.5, y - b, -y).astype(jnp.float16) * 2

    check(f, x, bias, exact=True)
    assert _group_calls(_source_of_last_compile())  # jnp.where's call divides the chain


def test_transcendental_chain_equals_op_by_op(check, pyrt_device, monkeypatch):
    x = np.linspace(-3, 3, N, dtype=np.float32)
    f = lambda x: jnp.tanh(x * 2.0 + 1.0) * x - jnp.exp(-x) + jax.nn.sigmoid(x)  # noqa: E731
    fused = check(f, x, rtol=2e-6, atol=1e-6)
    assert _group_calls(_source_of_last_compile())
    np.testing.assert_array_equal(fused, _op_by_op(pyrt_device, f, x, monkeypatch=monkeypatch))


def test_values_read_after_the_group(check):
    """Several group values escape: to a reduction, to the results, to a later group."""
    x = np.arange(N, dtype=np.float32).reshape(64, -1) / N

    def f(x):
        a = x * 2.0
        b = a + 1.0
        c = b * b
        total = c.sum(axis=1)  # ends the group; c escapes
        return a, total, (c - a) * 0.5

    check(f, x, rtol=1e-6)


def test_integer_semantics_in_blocks(check):
    """Division and remainder by zero, shifts, overflow: XLA:CPU's rules in every block."""
    rng = np.random.default_rng(1)
    a = rng.integers(-2**31, 2**31 - 1, (3, 40001), dtype=np.int32)  # blocks do not divide it
    b = rng.integers(-3, 4, (3, 40001), dtype=np.int32)

    def f(a, b):
        q = a // b + a % b
        return (q << (b & 7)) ^ (a * b), jnp.clip(q, -5, 5)

    check(f, a, b, exact=True)
    assert _group_calls(_source_of_last_compile())


@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_any_thread_count_gives_the_same_values(check, monkeypatch, threads):
    monkeypatch.setenv("PYRT_THREADS", threads)
    x = np.linspace(-1, 1, N + 7, dtype=np.float32)
    check(lambda x: (jnp.sqrt(jnp.abs(x) + 1.0) - x) * 0.5, x, exact=True)


def test_small_arrays_run_op_by_op(check):
    x = np.linspace(-1, 1, 1000, dtype=np.float32)
    check(lambda x: (x * 2.0 + 1.0) * x, x, exact=True)
    assert not _group_calls(_source_of_last_compile())


def test_a_failing_block_raises_at_the_call(pyrt_device):
    """An op that fails at run time in a worker thread fails the program, naming the group."""
    from jax_pyrt.fusion import Fused

    def bad(x):
        raise ValueError("bad block")

    group = Fused((N,), [(np.negative, [0], 1, np.float32), (bad, [1], 2, np.float32)], 1, [2],
                  [np.float32],
                  ["negate", "bad"])
    with pytest.raises(ValueError, match="bad block"):
        group(np.zeros(N, np.float32))
    assert "negate bad" in repr(group)


def test_special_values_raise_no_warnings_in_worker_threads(check):
    """NumPy's error state is per thread: pool threads ignore overflow and x / 0 as the caller
    does (JAX's own tests turn warnings into errors)."""
    import warnings

    x = np.linspace(-1, 1, 4 * N, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(lambda x: jnp.exp(x * 1e3) - (x - x) / (x - x), x, exact=True)


def test_a_fused_program_serializes_without_recompiling(pyrt_device):
    """The persistent cache stores fused groups too (their generated loop is remade on load)."""
    from jax_pyrt.executable import Executable

    x = np.linspace(-2, 2, N, dtype=np.float32)
    f = lambda x: jnp.tanh(x * 2.0 + 1.0) * x - jnp.exp(-x)  # noqa: E731
    exe = Executable(jax.export.export(jax.jit(f), platforms=["cpu"])(x).mlir_module_serialized,
                     b"")
    assert _group_calls(exe.source)
    restored = _bridge.deserialize(exe.serialize(), b"").handle
    assert not restored.recompiled
    view = [x.view(np.uint8)]
    np.testing.assert_array_equal(restored.run(view)[0], exe.run(view)[0])
    np.testing.assert_array_equal(exe.run(view)[0].view(np.float32),
                                  np.asarray(jax.jit(f)(jax.device_put(x, pyrt_device))))


def test_a_kernel_returning_a_view_keeps_its_buffer(check_mlir):
    """A same-type convert returns its operand: the add after it must not reuse the buffer the
    convert's result still shows."""
    text = """
    func.func @main(%x: tensor<131072xf32>) -> tensor<131072xf32> {
      %a = stablehlo.multiply %x, %x : tensor<131072xf32>
      %b = stablehlo.convert %a : (tensor<131072xf32>) -> tensor<131072xf32>
      %c = stablehlo.add %x, %x : tensor<131072xf32>
      %d = stablehlo.subtract %b, %c : tensor<131072xf32>
      return %d : tensor<131072xf32>
    }"""
    check_mlir(text, np.linspace(-3, 3, 131072, dtype=np.float32), rtol=1e-6)  # XLA: an fma
    assert _group_calls(_source_of_last_compile())


def test_fusion_does_not_raise_peak_memory(pyrt_device, monkeypatch):
    """A group's inputs live until its call ends, so large independent ops are not moved
    before a group that spans them: that raised a train step's peak by two activations."""
    import tracemalloc

    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [rng.standard_normal((m, n), dtype=np.float32) / np.sqrt(m)
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((2048, 784), dtype=np.float32)
    y = rng.integers(0, 10, 2048)

    def loss(params, x, y):
        for w in params[:-1]:
            x = jax.nn.relu(x @ w + 0.1)
        logits = jax.nn.log_softmax(x @ params[-1])
        return -jnp.take_along_axis(logits, y[:, None], axis=1).mean()

    peaks = {}
    for fuse in ("0", "1"):
        monkeypatch.setenv("PYRT_FUSION", fuse)
        _bridge._cache.clear()
        jax.clear_caches()
        step = jax.jit(jax.grad(loss))
        placed = jax.device_put((params, x, y), pyrt_device)
        jax.block_until_ready(step(*placed))
        tracemalloc.start()
        try:
            jax.block_until_ready(step(*placed))
            peaks[fuse] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        if fuse == "1":
            assert _group_calls(_source_of_last_compile())
    assert peaks["1"] <= 1.1 * peaks["0"], peaks


def test_groups_take_in_small_elementwise_functions(check):
    """jnp.where and jax.nn.relu lower to calls of private functions; a group takes their ops
    in, so the chain around them is one call."""
    x = np.linspace(-2, 2, N, dtype=np.float32)

    def f(x):
        y = jax.nn.relu(x * 3.0) - 1.0
        return jnp.where(y > 0.5, y, -y) * 2.0

    check(f, x, exact=True)
    source = _source_of_last_compile()
    assert len(_group_calls(source)) == 1, source
    assert not re.search(r"= f_(relu|_where)", source), source  # no call left outside


def test_default_threshold(pyrt_device, monkeypatch):
    monkeypatch.undo()  # the default FUSE_ELEMENTS
    f = lambda x: jnp.tanh(x * 2.0 + 1.0) * x
    for n, fused in ((fusion.FUSE_ELEMENTS // 2, False), (fusion.FUSE_ELEMENTS, True)):
        x = np.linspace(-1, 1, n, dtype=np.float32)
        jax.clear_caches()
        out = jax.jit(f)(jax.device_put(x, pyrt_device))
        assert bool(_group_calls(_source_of_last_compile())) == fused
        np.testing.assert_array_equal(np.asarray(out), np.tanh(x * 2 + 1) * x)
