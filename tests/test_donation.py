"""Buffer donation: jax.jit(f, donate_argnums=...) on pyrt reuses the donated input's memory
(same buffer pointer, no new device allocation), deletes the donated array as XLA:CPU does, and
falls back to new memory whenever writing in place would be visible to someone else."""

import gc
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_pyrt
from conftest import assert_same


def stats(device):
    gc.collect()
    s = jax_pyrt.memory_stats(device)
    return s["bytes_in_use"], s["num_allocs"]


def on_cpu(fn, *args, **kw):
    cpu = jax.devices("cpu")[0]
    return jax.tree_util.tree_map(np.asarray, jax.jit(fn, **kw)(*[jax.device_put(a, cpu) for a in args]))


def fresh(device, x):
    """`x` as an output of a pyrt program (the usual way arrays arrive on a device)."""
    return jax.jit(lambda a: (a | False) if a.dtype == bool else a + 0)(jax.device_put(x, device))


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.complex64, jnp.bfloat16, np.bool_])
def test_donated_output_reuses_input_memory(pyrt_device, dtype):
    x = (np.arange(4096) % 7).astype(dtype)
    f = lambda a: ~a if dtype == np.bool_ else a * 3 + 1
    xd = fresh(pyrt_device, x)
    xd.block_until_ready()
    ptr = xd.unsafe_buffer_pointer()
    before = stats(pyrt_device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Some donated buffers were not usable"
        y = jax.jit(f, donate_argnums=0)(xd)
        y.block_until_ready()
    assert y.unsafe_buffer_pointer() == ptr
    assert stats(pyrt_device) == before  # no new device memory, no new allocation
    assert xd.is_deleted()
    with pytest.raises(RuntimeError, match="deleted"):
        np.asarray(xd)
    assert_same(np.asarray(y), on_cpu(f, x))


def test_lowering_marks_aliases(pyrt_device):
    x = jax.device_put(np.ones(8, np.float32), pyrt_device)
    text = jax.jit(lambda a: a + 1, donate_argnums=0).lower(x).as_text()
    assert "tf.aliasing_output = 0" in text
    c = jax.jit(lambda a, b: (b * 2, a - 1), donate_argnums=(0, 1)).lower(x, x).compile()
    m = c.memory_analysis()
    assert m.alias_size_in_bytes == 64 and m.argument_size_in_bytes == 64


def test_training_loop_keeps_one_buffer(pyrt_device):
    w = fresh(pyrt_device, np.linspace(-1, 1, 1000).astype(np.float32))
    g = jax.device_put(np.full(1000, 0.5, np.float32), pyrt_device)
    step = jax.jit(lambda w, g: w - 0.1 * jnp.tanh(w + g), donate_argnums=0)
    w = step(w, g)
    w.block_until_ready()
    ptr, before = w.unsafe_buffer_pointer(), stats(pyrt_device)
    expect = np.asarray(w).copy()
    for _ in range(5):
        w = step(w, g)
        expect = on_cpu(lambda w, g: w - 0.1 * jnp.tanh(w + g), expect, np.full(1000, 0.5, np.float32))
    w.block_until_ready()
    assert w.unsafe_buffer_pointer() == ptr
    assert stats(pyrt_device) == before
    assert_same(np.asarray(w), expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["transpose", "two_outputs", "pytree", "donate_one_of_two"])
def test_values_match_cpu(pyrt_device, case):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 6)).astype(np.float32)
    y = rng.standard_normal((6, 6)).astype(np.float32)
    fns = {
        "transpose": (lambda a: a.T, (0,)),  # the result overlaps the donated memory
        "two_outputs": (lambda a: (a * 2, a), (0,)),  # an output viewing the donated input
        "pytree": (lambda d: {"a": d["a"] + d["b"], "b": d["b"][::-1]}, (0,)),
        "donate_one_of_two": (lambda a, b: (a @ b, b - a), (1,)),
    }
    fn, donate = fns[case]
    args = ({"a": x, "b": y},) if case == "pytree" else (x, y) if case == "donate_one_of_two" else (x,)
    placed = jax.tree_util.tree_map(lambda a: fresh(pyrt_device, a), args)
    out = jax.jit(fn, donate_argnums=donate)(*placed)
    assert_same(jax.tree_util.tree_map(np.asarray, out), on_cpu(fn, *args), rtol=1e-5, atol=1e-5)
    for i, a in enumerate(placed):
        deleted = [leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(a)]
        assert all(deleted) if i in donate else not any(deleted)


def test_zero_copy_host_alias_is_not_overwritten(pyrt_device):
    # device_put of aligned, dense host memory aliases it (as on XLA:CPU): donating such an
    # array must not write into the caller's NumPy array; the output gets new memory instead.
    buf = np.empty(4096 + 64, np.uint8)
    off = (-buf.ctypes.data) % 64
    host = buf[off:off + 4096].view(np.float32)
    host[:] = np.arange(1024)
    xd = jax.device_put(host, pyrt_device)
    aliased = xd.unsafe_buffer_pointer() == host.ctypes.data
    y = jax.jit(lambda a: a + 1, donate_argnums=0)(xd)
    assert_same(np.asarray(y), np.arange(1024, dtype=np.float32) + 1)
    assert_same(host, np.arange(1024, dtype=np.float32))  # untouched
    if aliased:
        assert y.unsafe_buffer_pointer() != host.ctypes.data


def test_constants_are_not_overwritten(pyrt_device):
    # An output that is a program constant must stay read-only when donated later.
    make = jax.jit(lambda a: (a, jnp.full((256,), 7.0, jnp.float32)))
    _, c = make(jax.device_put(np.zeros(256, np.float32), pyrt_device))
    jax.jit(lambda a: a * 0 - 1, donate_argnums=0)(c).block_until_ready()
    _, c2 = make(jax.device_put(np.zeros(256, np.float32), pyrt_device))
    assert_same(np.asarray(c2), np.full(256, 7.0, np.float32))


def test_same_array_twice_and_viewed_arrays(pyrt_device):
    x = fresh(pyrt_device, np.arange(64, dtype=np.float32))
    # the same buffer as two arguments: XLA:CPU refuses to donate it, and so does pyrt
    with pytest.raises(Exception, match="previously donated in the same call"):
        jax.jit(lambda a, b: a + b, donate_argnums=0)(x, x).block_until_ready()
    assert not x.is_deleted()
    # a NumPy view of the array (an external reference) keeps its memory from being reused
    x = fresh(pyrt_device, np.arange(64, dtype=np.float32))
    view = np.asarray(x)
    y = jax.jit(lambda a: a * 2, donate_argnums=0)(x)
    assert not x.is_deleted()  # as on XLA:CPU
    assert_same(np.asarray(y), np.arange(64, dtype=np.float32) * 2)
    assert_same(view, np.arange(64, dtype=np.float32))


NON_DONATABLE = """
import ctypes as C, json, os, sys
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, TESTS)
import jax, numpy as np
import jax_pyrt, test_abi as t
from jaxlib import _jax
from jaxlib.mlir._mlir_libs import _stablehlo

module = jax.jit(lambda x: x * 2 + 1, donate_argnums=0).lower(
    np.zeros(256, np.float32)).compiler_ir("stablehlo")
artifact = bytes(_stablehlo.serialize_portable_artifact(module, "1.17.0"))
pl = t.Plugin(jax_pyrt.library_path())
client = pl.create_client()
exe, err = t._compile(pl, client, artifact, b"mlir", _jax.CompileOptions().SerializeAsString())
assert err is None, err
Ptr = t.args_struct("Ptr", ("buffer", t.P), ("pointer", C.c_uint64))

def run(non_donatable):
    x = np.arange(256, dtype=np.float32)
    buf, done = pl.put(client, x)
    pl.await_event(done)
    before = pl.call("Buffer_UnsafePointer", pl.new(Ptr, buffer=buf)).pointer
    idx = (C.c_int64 * 1)(0)
    opts = pl.new(t.ExecuteOptions, launch_id=1, call_location=b"",
                  non_donatable_input_indices=C.addressof(idx) if non_donatable else None,
                  num_non_donatable_input_indices=1 if non_donatable else 0)
    args = (t.P * 1)(buf); arg_lists = (t.P * 1)(C.addressof(args))
    outs = (t.P * 1)(); out_lists = (t.P * 1)(C.addressof(outs)); events = (t.P * 1)()
    a = pl.new(t.Execute, executable=exe, options=C.addressof(opts),
               argument_lists=C.addressof(arg_lists), num_devices=1, num_args=1,
               output_lists=C.addressof(out_lists), device_complete_events=C.addressof(events))
    pl.call("LoadedExecutable_Execute", a)
    assert pl.await_event(events[0]) is None
    deleted = pl.call("Buffer_IsDeleted", pl.new(t.BufferBoolOut, buffer=buf)).out
    after = pl.call("Buffer_UnsafePointer", pl.new(Ptr, buffer=outs[0])).pointer
    value = pl.get(outs[0], (256,), np.float32)
    return {"deleted": deleted, "same_memory": before == after,
            "correct": bool(np.array_equal(value, x * 2 + 1))}

print(json.dumps({"donated": run(False), "kept": run(True)}))
"""


def test_non_donatable_input_indices_are_honoured():
    # PJRT_ExecuteOptions.non_donatable_input_indices is set by the caller: drive the C API.
    import os
    from conftest import run_subprocess
    code = NON_DONATABLE.replace("TESTS", repr(os.path.dirname(os.path.abspath(__file__))))
    r = run_subprocess(code)
    assert r["donated"] == {"deleted": True, "same_memory": True, "correct": True}
    assert r["kept"] == {"deleted": False, "same_memory": False, "correct": True}
