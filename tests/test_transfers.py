"""Host <-> pyrt transfers through JAX: jax.device_put / np.asarray round trips for every dtype and
memory layout, copies between devices and backends, and the per-device memory counters."""

import gc

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jax_pyrt
from conftest import run_subprocess

DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
          np.uint64, np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64,
          np.complex128, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2, ml_dtypes.int4,
          ml_dtypes.uint4]
IDS = [np.dtype(d).name for d in DTYPES]


def sample(dtype, shape, seed=0):
    """Values that exercise the type: edge values (NaN, ±inf, -0.0, extremes) where it has them."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    if dtype in (np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.uint4)):
        info = ml_dtypes.iinfo(dtype)
        return rng.integers(int(info.min), int(info.max) + 1, n).astype(dtype).reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        edges = np.array([info.min, info.max, 0, 1], dtype)
        values = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
    elif dtype.kind == "c":
        part = np.dtype(np.float32 if dtype == np.complex64 else np.float64)
        with np.errstate(invalid="ignore"):  # inf * 1j
            values = (sample(part, (n,), seed) + 1j * sample(part, (n,), seed + 1)).astype(dtype)
        edges = np.array([complex(np.nan, 1), complex(-0.0, np.inf)], dtype)
    else:  # real floats, including ml_dtypes ones
        values = (rng.standard_normal(n) * 4).astype(dtype)
        specials = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40]
        if dtype == np.dtype(ml_dtypes.float8_e4m3fn):  # no infinities
            specials = [np.nan, -0.0, 0.0, 448.0, -448.0]
        edges = np.array(specials, np.float64).astype(dtype)
    k = min(n, len(edges))
    values[:k] = edges[:k]
    return values.reshape(shape)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and (
        np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())


LAYOUTS = {
    "0d": lambda x: x.reshape(-1)[0].reshape(()),
    "empty": lambda x: x[:0],
    "empty_3d": lambda x: x.reshape(4, 12, 2)[:, :0],
    "1d": lambda x: x.reshape(-1),
    "2d": lambda x: x,
    "3d": lambda x: x.reshape(2, 4, 12),
    "strided": lambda x: x[:, ::2],
    "transposed": lambda x: x.T,
    "negative_strides": lambda x: x[::-1, ::-3],
    "mixed_3d_view": lambda x: x.reshape(2, 4, 12).transpose(2, 0, 1)[1::2, :, ::-1],
    "broadcast_zero_stride": lambda x: np.broadcast_to(x[:1], (5, 12)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_round_trip_bit_exact(dtype, layout, pyrt_device):
    host = LAYOUTS[layout](sample(dtype, (8, 12)))
    expected = host.copy()
    y = jax.device_put(host, pyrt_device)
    assert y.devices() == {pyrt_device}
    assert y.shape == host.shape and y.dtype == host.dtype
    assert same_bits(np.asarray(y), expected)
    assert same_bits(jax.device_get(y), expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_computed_arrays_read_back(dtype, pyrt_device):
    """Arrays produced by a program (not by device_put) read back exactly, views included."""
    x = sample(dtype, (6, 10), seed=3)
    y = jax.jit(lambda a: (a.T, a.reshape(3, 20)))(jax.device_put(x, pyrt_device))
    assert all(leaf.devices() == {pyrt_device} for leaf in y)
    assert same_bits(y[0], x.T) and same_bits(y[1], x.reshape(3, 20))
    # ... and go back in as arguments, from a strided host view too.
    z = jax.jit(lambda a, b: (a.T, b))(y[0], x[::2, ::-1])
    assert same_bits(z[0], x) and same_bits(z[1], x[::2, ::-1])


def test_large_arrays(pyrt_device):
    x = np.random.default_rng(1).integers(0, 255, (4096, 4096), dtype=np.uint8)  # 16 MiB
    assert same_bits(jax.device_put(x, pyrt_device), x)
    f = np.random.default_rng(2).standard_normal((1024, 2048))  # 16 MiB of f64
    y = jax.device_put(f[:, ::2], pyrt_device)  # a non-contiguous 8 MiB view
    assert same_bits(y, f[:, ::2])
    t = jax.jit(lambda a: a.T)(y)
    assert same_bits(t, f[:, ::2].T)


def test_host_data_may_go_away(pyrt_device):
    """The array stays valid after the caller drops (and the allocator reuses) the host data,
    whether pyrt copied it or aliased it (zero-copy keeps the NumPy array alive)."""
    x = np.arange(1 << 16, dtype=np.float32) * 0.5
    expected = x.copy()
    y = jax.device_put(x, pyrt_device)
    del x
    gc.collect()
    junk = [np.full(1 << 16, -7, np.float32) for _ in range(8)]  # likely reuses the memory
    assert same_bits(y, expected)
    assert same_bits(jax.jit(lambda a: a.reshape(256, 256))(y), expected.reshape(256, 256))
    del junk


def aligned_array(n, alignment, offset=0):
    raw = np.zeros(n * 4 + alignment * 2, np.uint8)
    start = (-raw.ctypes.data) % alignment + offset
    return raw[start:start + n * 4].view(np.float32)


@pytest.mark.parametrize("may_alias", [None, False])
@pytest.mark.parametrize("alignment,offset", [(64, 0), (64, 16), (64, 4)])
def test_later_host_writes_match_cpu(alignment, offset, may_alias, pyrt_device, cpu_device):
    """device_put may alias the host array (kImmutableZeroCopy); whether a later write to the
    host array shows through must be the same on pyrt as on the CPU backend."""
    seen = []
    for device in (cpu_device, pyrt_device):
        x = aligned_array(4096, alignment, offset)
        x[:] = 1
        y = jax.device_put(x, device, may_alias=may_alias).block_until_ready()
        x[:] = -1  # breaks the caller's promise; JAX users do it anyway
        seen.append(np.asarray(y)[:3].tolist())
    assert seen[1] == seen[0]


def test_copy_to_host_async_and_device_get(pyrt_device):
    x = np.linspace(-1, 1, 300 * 300, dtype=np.float32).reshape(300, 300)
    y = jax.jit(lambda a: jnp.sin(a @ a))(jax.device_put(x, pyrt_device))
    y.copy_to_host_async()  # while the run may still be going
    expected = np.sin(x @ x)
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)
    tree = jax.device_get({"y": y, "s": jax.device_put(np.float16(2.5), pyrt_device), "n": 3})
    np.testing.assert_allclose(tree["y"], expected, rtol=1e-4, atol=1e-5)
    assert tree["s"] == np.float16(2.5) and tree["s"].dtype == np.float16 and tree["n"] == 3
    assert y.on_device_size_in_bytes() == x.nbytes


def test_device_put_from_pyrt_to_cpu(pyrt_device, cpu_device):
    x = sample(np.float64, (5, 7), seed=4)
    y = jax.device_put(x, pyrt_device)
    c = jax.device_put(y, cpu_device)
    assert c.devices() == {cpu_device}
    assert same_bits(c, x)
    # ... and back, through a CPU computation.
    c2 = jax.jit(lambda a: a.T)(c)
    back = jax.device_put(c2, pyrt_device)
    assert back.devices() == {pyrt_device}
    assert same_bits(back, x.T)
    for dtype in (ml_dtypes.bfloat16, np.complex64, ml_dtypes.int4, np.bool_):
        v = sample(dtype, (3, 4), seed=5)
        assert same_bits(jax.device_put(jax.device_put(v, pyrt_device), cpu_device), v)


def stats(device):
    gc.collect()
    s = jax_pyrt.memory_stats(device)
    return s["bytes_in_use"], s["live_arrays"]


def test_memory_stats_rise_and_fall(pyrt_device):
    bytes0, live0 = stats(pyrt_device)
    a = jax.device_put(np.ones((100, 10), np.float32), pyrt_device).block_until_ready()
    assert stats(pyrt_device) == (bytes0 + 4000, live0 + 1)
    b = jax.device_put(np.ones(3, np.complex128), pyrt_device).block_until_ready()
    assert stats(pyrt_device) == (bytes0 + 4048, live0 + 2)
    c = jax.jit(lambda x: jnp.sin(x.T))(a).block_until_ready()  # a new 4000-byte array
    assert stats(pyrt_device) == (bytes0 + 8048, live0 + 3)
    s = jax_pyrt.memory_stats(pyrt_device)
    assert s["peak_bytes_in_use"] >= bytes0 + 8048 and s["num_allocs"] >= 3
    a.delete()  # explicit delete frees at once
    assert stats(pyrt_device) == (bytes0 + 4048, live0 + 2)
    del b  # dropping the last reference frees too
    assert stats(pyrt_device) == (bytes0 + 4000, live0 + 1)
    np.testing.assert_allclose(np.asarray(c), np.sin(np.ones((10, 100))), rtol=1e-6)
    del c
    assert stats(pyrt_device) == (bytes0, live0)


def test_memory_stats_of_results_that_view_arguments(pyrt_device):
    """A result that is an argument's memory (reshape) or part of it (slice) is new memory, as on
    XLA:CPU: counted on its own, alive after the argument is deleted, never pinning it."""
    bytes0, live0 = stats(pyrt_device)
    x = np.arange(1000, dtype=np.float32).reshape(100, 10)
    a = jax.device_put(x, pyrt_device).block_until_ready()
    r, s = jax.jit(lambda v: (v.reshape(10, 100), v[:2]))(a)
    r.block_until_ready()
    assert r.unsafe_buffer_pointer() != a.unsafe_buffer_pointer()
    assert stats(pyrt_device) == (bytes0 + 4000 + 4000 + 80, live0 + 3)
    a.delete()
    assert stats(pyrt_device) == (bytes0 + 4000 + 80, live0 + 2)
    assert same_bits(r, x.reshape(10, 100)) and same_bits(s, x[:2])
    del r
    assert stats(pyrt_device) == (bytes0 + 80, live0 + 1)
    del s
    assert stats(pyrt_device) == (bytes0, live0)


def test_copies_between_pyrt_devices():
    r = run_subprocess("""
        import gc, json
        import jax, numpy as np, ml_dtypes, jax_pyrt
        jax.config.update("jax_enable_x64", True)
        d0, d1 = jax.devices("pyrt")
        out = {"n": len(jax.devices("pyrt"))}
        def live(d):
            gc.collect()
            s = jax_pyrt.memory_stats(d)
            return [s["bytes_in_use"], s["live_arrays"]]
        base0, base1 = live(d0), live(d1)
        ok = []
        for dt in (np.float32, np.int64, ml_dtypes.bfloat16, np.complex128, np.bool_, ml_dtypes.int4):
            x = (np.arange(60) % 7).astype(dt).reshape(6, 10)
            a = jax.device_put(x, d0)
            b = jax.device_put(a, d1)           # device-to-device copy
            c = jax.jit(lambda v: v.T)(b)       # computed on d1
            ok.append([b.devices() == {d1}, c.devices() == {d1},
                       np.asarray(b).tobytes() == x.tobytes(),
                       np.asarray(c).tobytes() == np.ascontiguousarray(x.T).tobytes()])
        out["ok"] = ok
        del x, a, b, c
        x = np.ones((50, 20), np.float32)
        a = jax.device_put(x, d0).block_until_ready()
        b = jax.device_put(a, d1).block_until_ready()
        out["with_copy"] = [live(d0), live(d1)]
        a.delete()
        out["after_delete_source"] = [live(d0), live(d1), np.asarray(b).tolist() == x.tolist()]
        del b
        out["end"] = [live(d0), live(d1)]
        out["base"] = [base0, base1]
        print(json.dumps(out))
    """, PYRT_DEVICE_COUNT="2")
    assert r["n"] == 2
    assert all(all(row) for row in r["ok"]), r["ok"]
    (b0, l0), (b1, l1) = r["base"]
    assert r["with_copy"] == [[b0 + 4000, l0 + 1], [b1 + 4000, l1 + 1]]
    assert r["after_delete_source"] == [[b0, l0], [b1 + 4000, l1 + 1], True]
    assert r["end"] == r["base"]


def test_readback_is_zero_copy_and_pins_the_storage(pyrt_device):
    """np.asarray reads device memory in place (pyrt's memory is host memory, as on CPU); the
    view keeps the storage alive after the jax.Array is deleted."""
    host = np.arange(4096, dtype=np.float32)
    y = jax.jit(lambda x: x * 2)(jax.device_put(host, pyrt_device))
    view = np.asarray(y)
    assert view.ctypes.data == y.unsafe_buffer_pointer()
    assert not view.flags.writeable
    before = jax_pyrt.memory_stats(pyrt_device)["live_arrays"]
    y.delete()
    gc.collect()
    assert jax_pyrt.memory_stats(pyrt_device)["live_arrays"] == before  # pinned by the view
    np.testing.assert_array_equal(view, host * 2)
    del view
    gc.collect()
    assert jax_pyrt.memory_stats(pyrt_device)["live_arrays"] == before - 1


def test_pinned_host_memory(pyrt_device, cpu_device):
    """Each device has a pinned_host memory beside its default one, as on CPU: device_put into
    it, programs whose parameters and results JAX annotates with it, copies between the two."""
    from jax.sharding import SingleDeviceSharding

    seen = {}
    for device in (pyrt_device, cpu_device):
        pinned = SingleDeviceSharding(device, memory_kind="pinned_host")
        on_device = SingleDeviceSharding(device, memory_kind="device")
        a = jax.device_put(np.arange(6, dtype=np.float32).reshape(2, 3), pinned)
        b = jax.jit(lambda x: x * 2)(a)
        c = jax.device_put(b, on_device)
        d = jax.jit(lambda x: x + 1, out_shardings=pinned)(c)
        seen[device.platform] = (
            [m.kind for m in device.addressable_memories() if m.kind != "unpinned_host"],
            device.default_memory().kind,
            [x.sharding.memory_kind for x in (a, b, c, d)],
            [np.asarray(x).tolist() for x in (a, b, c, d)])
    assert seen["pyrt"] == seen["cpu"]
    assert seen["pyrt"][2] == ["pinned_host", "pinned_host", "device", "pinned_host"]
