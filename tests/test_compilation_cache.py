"""The persistent compilation cache and executable serialization on pyrt.

A serialized pyrt executable carries the prepared program (generated source + pickled kernels),
so loading it -- from JAX's persistent cache in a new process, or via
jax.experimental.serialize_executable -- does not run pyrt's compiler (_bridge.compile_count).
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import serialize_executable

import jax_pyrt
from jax_pyrt import _bridge
from jax_pyrt.executable import Executable

from conftest import assert_same, run_on


def _mlp(x, w):
    h = jnp.tanh(x @ w)
    return jax.nn.softmax(h, axis=-1).sum(0), jnp.cumsum(h, axis=1)


def _loop(x, w):  # while + scan + sort (a comparator region) + gather
    y = jax.lax.fori_loop(0, 3, lambda i, c: jnp.sin(c) + i, x)
    s, _ = jax.lax.scan(lambda c, r: (c + r.sum(), c), 0.0, y)
    idx = jnp.argsort(y[0])
    return jnp.sort(y, axis=1), s, w[:, idx[:2]]


def _ints(x, w):
    i = (x * 100).astype(jnp.int32)
    return jnp.bitwise_xor(i, 7) >> 1, jnp.argmax(w, axis=0), (i % 3 == 0).any()


PROGRAMS = {"mlp": _mlp, "loop": _loop, "ints": _ints}
X = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5) / 7
W = np.cos(np.arange(20, dtype=np.float32)).reshape(4, 5)


def _artifact(fn):
    exported = jax.export.export(jax.jit(fn), platforms=["cpu"])(X, W)
    return exported.mlir_module_serialized


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_executable_round_trip_does_not_compile(name, pyrt_device, cpu_device):
    exe = Executable(_artifact(PROGRAMS[name]), b"")
    data = exe.serialize()
    before = _bridge.compile_count
    restored = _bridge.deserialize(data, b"").handle
    assert not restored.recompiled, "the prepared program should be restored, not recompiled"
    assert _bridge.compile_count == before
    assert restored.source == exe.source and restored.text == exe.text
    assert restored.input_specs == exe.input_specs and restored.output_specs == exe.output_specs
    views = [np.ascontiguousarray(X).view(np.uint8).reshape(-1),
             np.ascontiguousarray(W).view(np.uint8).reshape(-1)]
    for a, b in zip(restored.run(views), exe.run(views)):
        np.testing.assert_array_equal(a, b)


def test_stale_program_recompiles_and_counts(monkeypatch):
    exe = Executable(_artifact(_mlp), b"")
    data = exe.serialize()
    from jax_pyrt import program_pickle
    monkeypatch.setattr(program_pickle, "environment", lambda: b"another python")
    before = _bridge.compile_count
    restored = _bridge.deserialize(data, b"").handle
    assert restored.recompiled and _bridge.compile_count == before + 1
    assert restored.source == exe.source


def test_other_version_is_refused():
    data = Executable(_artifact(_mlp), b"").serialize()
    old = jax_pyrt.__version__.encode()
    new = old[:-1] + (b"x" if old[-1:] != b"x" else b"y")  # same length: the framing holds
    with pytest.raises(Exception, match="serialized by pyrt"):
        Executable.deserialize(data.replace(old, new, 1))


def test_serialize_executable_round_trip(pyrt_device, cpu_device):
    args = [jax.device_put(a, pyrt_device) for a in (X, W)]
    compiled = jax.jit(_loop).lower(*args).compile()
    payload, in_tree, out_tree = serialize_executable.serialize(compiled)
    before = _bridge.compile_count
    loaded = serialize_executable.deserialize_and_load(payload, in_tree, out_tree, backend="pyrt")
    assert _bridge.compile_count == before
    out = jax.tree_util.tree_map(np.asarray, loaded(*args))
    assert_same(out, run_on(cpu_device, _loop, X, W), rtol=1e-6, atol=1e-6)


def test_cache_is_enabled_for_pyrt_and_key_has_version(pyrt_device):
    from jax._src import cache_key
    from jax._src import compilation_cache as cc
    assert hasattr(cc.is_cache_used, "_pyrt_platforms")
    jax_pyrt.jax_integration.compilation_cache.install("pyrt")  # again: harmless
    client = pyrt_device.client
    assert jax_pyrt.__version__ in client.platform_version

    class Other:  # the same backend but another pyrt version
        platform = client.platform
        platform_version = client.platform_version.replace(jax_pyrt.__version__, "0.0.0-x")

    def digest(backend):
        h = hashlib.sha256()
        cache_key._hash_platform(h, backend)
        return h.digest()

    assert digest(client) != digest(Other())


_CHILD = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_compilation_cache_dir", sys.argv[1])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    sys.path.insert(0, sys.argv[2])
    import test_compilation_cache as t
    from jax_pyrt import _bridge
    d = jax.devices("pyrt")[0]
    out = {name: [np.asarray(o).tolist() for o in jax.tree_util.tree_leaves(
                  jax.jit(fn)(jax.device_put(t.X, d), jax.device_put(t.W, d)))]
           for name, fn in sorted(t.PROGRAMS.items())}
    print(json.dumps({"compiles": _bridge.compile_count,
                      "deserializes": _bridge.deserialize_count, "out": out}))
""")


def test_persistent_cache_hit_in_a_second_process(tmp_path, cpu_device):
    env = dict(os.environ, JAX_PLATFORMS="pyrt,cpu")
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "cache"),
                               os.path.dirname(__file__)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first, second = runs
    assert first["compiles"] == len(PROGRAMS) and first["deserializes"] == 0
    assert len(os.listdir(tmp_path / "cache")) >= len(PROGRAMS)
    # The second process loads every program from the cache: pyrt's compiler never runs.
    assert second["compiles"] == 0 and second["deserializes"] == len(PROGRAMS)
    for name, fn in sorted(PROGRAMS.items()):
        expected = jax.tree_util.tree_leaves(run_on(cpu_device, fn, X, W))
        for got, want in zip(second["out"][name], expected):
            np.testing.assert_allclose(np.asarray(got, dtype=want.dtype), want, rtol=1e-6, atol=1e-6)
        assert second["out"][name] == first["out"][name]


def test_host_callbacks_are_not_stored(pyrt_device):
    """A host callback calls a function of this process: its program is stored as StableHLO only
    (recompiling in another process then refuses it with a clear error)."""
    seen = []

    def f(x):
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), x)
        return x * 2

    x = jax.device_put(X, pyrt_device)
    before = _bridge.compile_count
    np.testing.assert_array_equal(np.asarray(jax.jit(f)(x)), X * 2)
    assert _bridge.compile_count == before + 1
    exe = next(reversed(_bridge._cache.values()))  # the most recently compiled program
    assert "pyrt_python_callback" in exe.text
    restored = Executable.deserialize(exe.serialize())
    assert restored.recompiled  # same process: the callback is still known
    views = [np.ascontiguousarray(X).view(np.uint8).reshape(-1)]
    np.testing.assert_array_equal(restored.run(views)[0].view(np.float32).reshape(X.shape), X * 2)
    assert len(seen) == 2 and all(np.array_equal(s, X) for s in seen)
