"""Introspection on pyrt as on CPU: compiled.cost_analysis() / memory_analysis(),
Array.unsafe_buffer_pointer(), device.memory_stats() and DLPack in both directions."""

import gc
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import assert_same, run_subprocess


def compiled(device, fn, *args, **kw):
    return jax.jit(fn, **kw).lower(*[jax.device_put(a, device) for a in args]).compile()


F32 = np.float32


@pytest.mark.parametrize("case", ["dot", "batched_dot", "exp", "tanh_sqrt", "add", "conv"])
def test_cost_analysis_matches_cpu(pyrt_device, cpu_device, case):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16)).astype(F32)
    b = rng.standard_normal((16, 4)).astype(F32)
    fns = {
        "dot": (lambda x, y: x @ y, a, b),
        "batched_dot": (lambda x, y: jnp.einsum("bij,bjk->bik", x, y),
                        np.stack([a] * 3), np.stack([b] * 3)),
        "exp": (jnp.exp, a),
        "tanh_sqrt": (lambda x: jnp.tanh(x) + jnp.sqrt(x), a),
        "add": (lambda x, y: x + y, a, a),
        "conv": (lambda x, w: jax.lax.conv(x, w, (1, 1), "VALID"),
                 rng.standard_normal((2, 3, 9, 9)).astype(F32),
                 rng.standard_normal((5, 3, 3, 3)).astype(F32)),
    }
    fn, *args = fns[case]
    ours = compiled(pyrt_device, fn, *args).cost_analysis()
    cpu = compiled(cpu_device, fn, *args).cost_analysis()
    assert set(ours) <= {"flops", "transcendentals", "bytes accessed"}  # zeros left out, as CPU
    assert ours.get("flops", 0.0) == cpu.get("flops", 0.0)
    assert ours.get("transcendentals", 0.0) == cpu.get("transcendentals", 0.0)
    # bytes accessed: every operand and result of every op once (XLA's fusion changes its own)
    if case in ("dot", "batched_dot", "exp", "add"):  # one op
        out = jax.eval_shape(fn, *args)
        assert ours["bytes accessed"] == sum(a.nbytes for a in args) + out.size * out.dtype.itemsize
    assert ours["bytes accessed"] > 0


def test_cost_analysis_counts_reductions(pyrt_device, cpu_device):
    a = np.ones((32, 64), F32)
    ours = compiled(pyrt_device, lambda x: x.sum(axis=1), a).cost_analysis()
    cpu = compiled(cpu_device, lambda x: x.sum(axis=1), a).cost_analysis()
    assert abs(ours["flops"] - cpu["flops"]) <= 64  # XLA counts (inputs - outputs) per reduce


@pytest.mark.parametrize("donate", [(), (0,), (0, 1)])
def test_memory_analysis_matches_cpu(pyrt_device, cpu_device, donate):
    a, b = np.ones((64, 32), F32), np.ones((64, 32), np.float64)
    fn = lambda x, y: (x * 2, y + 1, x.sum())
    ours = compiled(pyrt_device, fn, a, b, donate_argnums=donate).memory_analysis()
    cpu = compiled(cpu_device, fn, a, b, donate_argnums=donate).memory_analysis()
    for field in ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes"):
        assert getattr(ours, field) == getattr(cpu, field), field
    assert ours.alias_size_in_bytes == {(): 0, (0,): a.nbytes, (0, 1): a.nbytes + b.nbytes}[donate]
    assert ours.generated_code_size_in_bytes > 0


def test_unsafe_buffer_pointer_and_memory_stats(pyrt_device):
    gc.collect()
    before = pyrt_device.memory_stats()
    x = jax.device_put(np.arange(1000, dtype=np.float64) + 0.5, pyrt_device)
    x.block_until_ready()
    after = pyrt_device.memory_stats()
    assert after["bytes_in_use"] - before["bytes_in_use"] == 8000
    assert after["num_allocs"] == before["num_allocs"] + 1
    assert after["peak_bytes_in_use"] >= after["bytes_in_use"]
    host = np.asarray(x)  # zero-copy view of the device memory
    assert x.unsafe_buffer_pointer() == host.ctypes.data
    assert x.unsafe_buffer_pointer() % 64 == 0
    del x, host
    gc.collect()
    assert pyrt_device.memory_stats()["bytes_in_use"] == before["bytes_in_use"]


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint64, np.complex128, np.bool_])
@pytest.mark.parametrize("shape", [(), (0,), (3, 5)])
def test_dlpack_export_is_zero_copy(pyrt_device, dtype, shape):
    x = (np.arange(int(np.prod(shape))) % 3).astype(dtype).reshape(shape)
    y = jax.jit(lambda a: a == a if dtype == np.bool_ else a * 2)(jax.device_put(x, pyrt_device))
    host = np.from_dlpack(y)
    cpu = jax.jit(lambda a: a == a if dtype == np.bool_ else a * 2)(jax.device_put(x, jax.devices("cpu")[0]))
    assert_same(host, np.asarray(cpu))
    assert y.__dlpack_device__()[0] == 1  # kDLCPU: pyrt memory is host memory
    if host.size:
        assert host.ctypes.data == y.unsafe_buffer_pointer()
    del y
    gc.collect()
    assert_same(host, np.asarray(cpu))  # the capsule keeps the memory alive


def test_dlpack_import(pyrt_device):
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    for data in (src, src.T, np.zeros((0, 3), np.int16)):
        y = jax.dlpack.from_dlpack(data, device=pyrt_device)
        assert y.devices() == {pyrt_device}
        assert_same(np.asarray(y), data)
        assert_same(np.asarray(jax.jit(lambda a: a + 1)(y)), data + 1)
    # round trip through DLPack again
    assert_same(np.from_dlpack(jax.dlpack.from_dlpack(src, device=pyrt_device)), src)


def test_dlpack_import_is_zero_copy(pyrt_device):
    """A dense host tensor becomes a pyrt array over the same memory
    (PJRT_Client_CreateViewOfDeviceBuffer); the tensor is released with the last pyrt buffer."""
    src = np.arange(1 << 16, dtype=np.float32)
    refs = sys.getrefcount(src)
    for import_ in (jax.dlpack.from_dlpack, jnp.from_dlpack):
        y = import_(src, device=pyrt_device)
        assert y.devices() == {pyrt_device}
        assert y.unsafe_buffer_pointer() == src.ctypes.data
        assert sys.getrefcount(src) > refs  # the capsule's owner holds the tensor
        z = jax.jit(lambda a: a * 2)(y)
        assert_same(np.asarray(z), src * 2)
        del y, z
        gc.collect()
        assert sys.getrefcount(src) == refs  # released with the buffer
    # A donated view is deleted, but its memory (the tensor's) is never written.
    y = jax.dlpack.from_dlpack(src, device=pyrt_device)
    out = jax.jit(lambda a: a + 1, donate_argnums=0)(y)
    assert y.is_deleted() and out.unsafe_buffer_pointer() != src.ctypes.data
    assert_same(np.asarray(out), np.arange(1 << 16, dtype=np.float32) + 1)
    assert_same(src, np.arange(1 << 16, dtype=np.float32))


def test_dlpack_import_copies(pyrt_device):
    src = np.arange(12, dtype=np.float32).reshape(3, 4)
    copied = jax.dlpack.from_dlpack(src, device=pyrt_device, copy=True)
    assert copied.unsafe_buffer_pointer() != src.ctypes.data
    transposed = jax.dlpack.from_dlpack(src.T, device=pyrt_device)  # pyrt views row-major only
    with pytest.raises(ValueError, match="needs a copy"):
        jax.dlpack.from_dlpack(src.T, device=pyrt_device, copy=False)
    src[0, 0] = 100
    assert_same(np.asarray(copied), np.arange(12, dtype=np.float32).reshape(3, 4))
    assert_same(np.asarray(transposed), np.arange(12, dtype=np.float32).reshape(3, 4).T)
    # Without x64, f64 becomes f32 as on CPU.
    f = jax.dlpack.from_dlpack(np.arange(3.0), device=pyrt_device)
    assert f.dtype == jax.dlpack.from_dlpack(np.arange(3.0), device=jax.devices("cpu")[0]).dtype


def test_dlpack_import_of_a_pyrt_array(pyrt_device, cpu_device):
    """A pyrt array stays on its device (jax alone would move it to cpu: it says kDLCPU)."""
    x = jax.device_put(np.arange(6, dtype=np.int32), pyrt_device)
    y = jax.dlpack.from_dlpack(x)
    assert y.devices() == {pyrt_device} and y.unsafe_buffer_pointer() == x.unsafe_buffer_pointer()
    on_cpu = jax.dlpack.from_dlpack(x, device=cpu_device)
    assert on_cpu.devices() == {cpu_device}
    assert_same(np.asarray(on_cpu), np.arange(6, dtype=np.int32))
    with pytest.raises(ValueError, match="copy=False"):
        jax.dlpack.from_dlpack(x, device=cpu_device, copy=False)


def test_dlpack_import_without_a_cpu_backend():
    """jax imports a host tensor onto the cpu backend; under JAX_PLATFORMS=pyrt the default
    device takes its place (zero-copy)."""
    r = run_subprocess("""
        import json
        import jax, jax.numpy as jnp, numpy as np
        jax.devices()  # plugins (and so pyrt's wrapper) load with the first backend use
        src = np.arange(1 << 12, dtype=np.float32)
        y = jnp.from_dlpack(src)
        print(json.dumps({"devices": [d.platform for d in y.devices()],
                          "zero_copy": y.unsafe_buffer_pointer() == src.ctypes.data,
                          "equal": bool(np.array_equal(np.asarray(y * 2), src * 2))}))
    """, JAX_PLATFORMS="pyrt")
    assert r == {"devices": ["pyrt"], "zero_copy": True, "equal": True}


def test_layouts_and_shardings_as_on_cpu(pyrt_device, cpu_device):
    """pyrt reports executables' layouts and shardings itself (the Layouts and Shardings
    extensions): row-major layouts and no shardings for one device, as XLA:CPU reports."""
    def formats(device):
        put = lambda x: jax.device_put(x, device)  # noqa: E731
        args = (put(np.ones((2, 3, 4), np.float32)), put(np.int32(3)), put(np.ones(5)))
        compiled = jax.jit(lambda a, b, c: (a.sum(0), b * 2, c[::-1], a)).lower(*args).compile()
        executable = compiled.runtime_executable()
        layouts = [f.layout.major_to_minor for f in jax.tree_util.tree_leaves(
            (compiled.input_formats, compiled.output_formats),
            is_leaf=lambda x: hasattr(x, "layout"))]
        return (layouts, executable.get_output_shardings(), executable.get_parameter_shardings(),
                [a.format.layout.major_to_minor for a in args])
    assert formats(pyrt_device) == formats(cpu_device)


def test_programs_jaxlib_cannot_translate_to_hlo():
    """jaxlib used to translate every pyrt program to HLO (to read layouts and shardings) and
    aborted the process on what its translation does not handle, e.g. an f6E2M3FN constant."""
    out = run_subprocess("""
        import json, jax
        from jax._src.lib import xla_client
        device = jax.devices("pyrt")[0]
        text = '''func.func @main() -> tensor<3xf32> {
          %c = stablehlo.constant dense<[1.0, -2.5, 7.5]> : tensor<3xf6E2M3FN>
          %d = stablehlo.convert %c : (tensor<3xf6E2M3FN>) -> tensor<3xf32>
          return %d : tensor<3xf32>
        }'''
        exe = device.client.compile_and_load(text, xla_client.DeviceList((device,)),
                                             xla_client.CompileOptions())
        (out,), = exe.execute_sharded([]).disassemble_into_single_device_arrays()
        print(json.dumps(out.tolist()))
    """, JAX_PLATFORMS="pyrt")
    assert out == [1.0, -2.5, 7.5]
