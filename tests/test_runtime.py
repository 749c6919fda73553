"""The runtime through JAX: asynchronous dispatch, run-time and compile-time errors, concurrent
use from threads, leaks, synchronous mode and several devices. Anything that needs different
environment variables (or could hang) runs in a subprocess with a timeout."""

import gc
import os
import re
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_pyrt
from conftest import run_subprocess
from jax_pyrt import _bridge, ops


def stats(device):
    gc.collect()
    s = jax_pyrt.memory_stats(device)
    return s["bytes_in_use"], s["live_arrays"]


# ------------------------------------------------------------------ asynchronous dispatch

def test_results_chain_without_waiting(pyrt_device):
    """A program may take arguments that are still being computed; deleting an argument right
    after dispatch does not disturb the run that reads it."""
    x = np.linspace(-1, 1, 90000, dtype=np.float32).reshape(300, 300)
    xd = jax.device_put(x, pyrt_device)
    f = jax.jit(lambda a: jnp.sin(a @ a))
    a = f(xd)
    b = f(a)  # depends on a, which is probably not ready yet
    c = jax.jit(lambda u, v: u + v.T)(a, b)
    a.delete()
    xd.delete()
    ea = np.sin(x @ x)
    eb = np.sin(ea @ ea)
    np.testing.assert_allclose(np.asarray(c), ea + eb.T, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ errors

@pytest.fixture
def forget_new_programs():
    """Drops programs compiled during the test from pyrt's compile cache afterwards, so that
    executables built with a monkeypatched (failing) handler cannot leak into later tests."""
    with _bridge._lock:
        before = set(_bridge._cache)
    yield
    with _bridge._lock:
        for key in set(_bridge._cache) - before:
            del _bridge._cache[key]


def patch_kernel(monkeypatch, name, wrap):
    """Programs compiled from now on run `wrap(kernel)` for op `name`."""
    original = ops.lookup(name)
    assert original is not None
    monkeypatch.setitem(ops.base._HANDLERS, name, lambda op: wrap(original(op)))


def test_dispatch_is_asynchronous(pyrt_device, monkeypatch, forget_new_programs):
    """The call returns while the program is still running: here its sine kernel waits for an
    event that is set only after the call has returned."""
    release = threading.Event()

    def waiting(kernel):
        def run(x):
            release.wait(timeout=30)  # a synchronous dispatch would get here only after 30 s
            return kernel(x) * (1.0 if release.is_set() else -1.0)
        return run

    patch_kernel(monkeypatch, "stablehlo.sine", waiting)
    x = np.linspace(0, 1, 1 << 20, dtype=np.float32)  # too big to run on the caller's thread
    y = jax.jit(lambda a: jnp.sin(a) * 2)(jax.device_put(x, pyrt_device))
    assert not y.is_ready()  # the program waits in its kernel
    release.set()
    np.testing.assert_allclose(np.asarray(y), np.sin(x) * 2, rtol=1e-6)


def failing(kernel):
    def run(x):
        if np.any(x > 100):
            raise RuntimeError(f"injected failure for {x.shape}")
        return kernel(x)
    return run


def test_runtime_error_of_a_cheap_program_raises_at_the_call(pyrt_device, monkeypatch,
                                                              forget_new_programs):
    """A cheap program runs inside the call (as on XLA:CPU), so its error raises there, and the
    device stays usable."""
    patch_kernel(monkeypatch, "stablehlo.sine", failing)
    f = jax.jit(lambda a: jnp.sin(a) + 1)
    # A shape nobody else compiles, so neither JAX's nor pyrt's compile cache has this program.
    xd = jax.device_put(np.full((7, 13, 3), 1000, np.float32), pyrt_device)
    before = stats(pyrt_device)
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"injected failure for \(7, 13, 3\)"):
        f(xd)
    # An unexpected exception is a pyrt bug: INTERNAL, naming the op, the user's line and the
    # traceback through the generated program.
    with pytest.raises(jax.errors.JaxRuntimeError) as failure:
        f(xd)
    message = str(failure.value)
    assert re.search(r"INTERNAL: pyrt: stablehlo.sine \(at test_runtime.py:\d+\) failed while "
                     r"running jit__lambda: RuntimeError: injected failure", message), message
    assert "Traceback" in message and "<pyrt program main" in message, message
    assert stats(pyrt_device) == before  # the failed call's outputs were never handed out
    ok = np.linspace(-3, 3, 273, dtype=np.float32).reshape(7, 13, 3)
    np.testing.assert_allclose(np.asarray(f(jax.device_put(ok, pyrt_device))), np.sin(ok) + 1,
                               rtol=1e-6)
    w = jax.jit(lambda a: a @ a)(jax.device_put(np.eye(5, dtype=np.float32) * 2, pyrt_device))
    np.testing.assert_array_equal(np.asarray(w), np.eye(5, dtype=np.float32) * 4)


def test_runtime_error_of_a_queued_program_surfaces_when_read(pyrt_device, monkeypatch,
                                                               forget_new_programs):
    """A program queued on the device worker fails after the call has returned: the error
    surfaces at block_until_ready / np.asarray, and in work that depends on the result."""
    patch_kernel(monkeypatch, "stablehlo.sine", failing)
    f = jax.jit(lambda a: jnp.sin(a) + 1)
    x = np.full((4, 1 << 18), 1000, np.float32)  # too big to run on the caller's thread
    y = f(jax.device_put(x, pyrt_device))  # dispatch succeeds: the failure comes later
    # (sin + 1 is a fused group: the kernel sees blocks of the array)
    with pytest.raises(jax.errors.JaxRuntimeError, match=r"injected failure for \(65536,\)"):
        y.block_until_ready()
    with pytest.raises(jax.errors.JaxRuntimeError, match="injected failure"):
        np.asarray(y)
    # Queued work that depends on the failed result fails with the same error; work that runs
    # at once (a cheap reduction of the now failed result) raises it at its call.
    z = jax.jit(lambda a: a.T + 1)(y)
    with pytest.raises(jax.errors.JaxRuntimeError, match="injected failure"):
        np.asarray(z)
    with pytest.raises(jax.errors.JaxRuntimeError, match="injected failure"):
        jax.jit(jnp.sum)(y)
    ok = np.linspace(-3, 3, 1 << 20, dtype=np.float32).reshape(4, 1 << 18)
    np.testing.assert_allclose(np.asarray(f(jax.device_put(ok, pyrt_device))), np.sin(ok) + 1,
                               rtol=1e-6)


def test_execution_error_keeps_its_message(pyrt_device, monkeypatch, forget_new_programs):
    """A kernel raising errors.ExecutionError reaches the user as INVALID_ARGUMENT, verbatim
    after the op and the user's line."""
    from jax_pyrt.errors import ExecutionError

    original = ops.lookup("stablehlo.transpose")

    def handler(op):
        def kernel(x):
            raise ExecutionError("pyrt: transpose refused the operand at test_runtime.py")
        return kernel

    monkeypatch.setitem(ops.base._HANDLERS, "stablehlo.transpose", handler)
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match=r"INVALID_ARGUMENT: stablehlo.transpose \(at test_runtime.py:\d+\): "
                             r"pyrt: transpose refused the operand"):
        jax.jit(lambda a: a.T)(jax.device_put(np.ones((11, 2, 5), np.int16), pyrt_device))
    monkeypatch.setitem(ops.base._HANDLERS, "stablehlo.transpose", original)
    x = np.arange(110, dtype=np.int16).reshape(11, 2, 5)
    z = jax.jit(lambda a: a.transpose(2, 0, 1))(jax.device_put(x, pyrt_device))
    np.testing.assert_array_equal(np.asarray(z), x.transpose(2, 0, 1))


def _cosine(x):
    return jnp.cos(x) + x


def _fft(x):
    return jnp.fft.fft(x)


# (function, argument, op): the op sits on the function's second line. jnp.fft.fft runs in a
# private function of the program, so its ops carry no file of their own.
UNSUPPORTED_CASES = {
    "direct": (_cosine, np.ones(8, np.float32), "stablehlo.cosine"),
    "in_private_function": (_fft, np.ones(8, np.complex64), "stablehlo.fft"),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED_CASES))
def test_unsupported_op_fails_at_compile_time_with_location(pyrt_device, monkeypatch, case):
    fn, arg, name = UNSUPPORTED_CASES[case]
    # Every StableHLO op has a handler: take one away to see how pyrt reports an op it lacks.
    monkeypatch.delitem(ops.base._HANDLERS, name)
    monkeypatch.setattr(_bridge, "_cache", type(_bridge._cache)())  # force a fresh compile
    line = fn.__code__.co_firstlineno + 1
    with pytest.raises(jax.errors.JaxRuntimeError) as info:
        jax.jit(fn)(jax.device_put(arg, pyrt_device))  # fails in compilation, before any result
    message = str(info.value)
    assert "UNIMPLEMENTED" in message and name in message, message
    assert f"test_runtime.py:{line}" in message, message
    # ... and says what to do, which works.
    assert "jax.device_put(x, jax.devices('cpu')[0])" in message, message
    cpu = jax.devices("cpu")[0]
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(jax.device_put(arg, cpu))), fn(arg),
                               rtol=1e-6)


# ------------------------------------------------------------------ threads, leaks

THREADS_SCRIPT = """
    import json, threading, time
    import jax, jax.numpy as jnp, numpy as np
    devices = jax.devices("pyrt")
    shared_host = np.linspace(-1, 1, 7 * 9, dtype=np.float32).reshape(7, 9)
    shared = jax.device_put(shared_host, devices[0])  # read by every thread at once
    shared_fn = jax.jit(lambda s: jnp.sin(s) + s)
    plus_one = jax.jit(lambda v: v + 1)
    funcs = [
        (lambda a: a + 1, lambda a: a + 1),
        (jnp.sin, np.sin),
        (lambda a: a @ a.T, lambda a: a @ a.T),
        (lambda a: a.T.reshape(-1), lambda a: a.T.reshape(-1)),
        (lambda a: a[1:3, ::2], lambda a: a[1:3, ::2]),
        (lambda a: jnp.concatenate([a, a[::-1]]), lambda a: np.concatenate([a, a[::-1]])),
        (lambda a: jnp.pad(a, 1), lambda a: np.pad(a, 1)),
        (lambda a: (a + a, jnp.sin(a).T), lambda a: (a + a, np.sin(a).T)),
    ]
    DURATION = float(__import__("sys").argv[1]) if len(__import__("sys").argv) > 1 else 3.0
    counts = [0] * len(funcs)
    failures = []

    def worker(i):
        f, ref = funcs[i]
        jf = jax.jit(f)
        rng = np.random.default_rng(i)
        d = devices[i % len(devices)]
        other = devices[(i + 1) % len(devices)]
        deadline = time.monotonic() + DURATION
        try:
            while time.monotonic() < deadline:
                x = rng.standard_normal((5 + i, 7)).astype(np.float32)
                xd = jax.device_put(x, d)
                y = jf(xd)
                if counts[i] % 2:
                    xd.delete()  # delete the argument while the run may be in flight
                leaves = jax.tree_util.tree_leaves(y)
                expected = jax.tree_util.tree_leaves(ref(x))
                if counts[i] % 3 == 0:  # a copy to another device, then work there
                    moved = plus_one(jax.device_put(leaves[0], other))
                    assert moved.devices() == {other}
                    np.testing.assert_allclose(np.asarray(moved), expected[0] + 1,
                                               rtol=2e-5, atol=1e-5)
                z = shared_fn(shared)
                for got, want in zip(leaves, expected):
                    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5, atol=1e-5)
                    got.delete()
                np.testing.assert_allclose(np.asarray(z), np.sin(shared_host) + shared_host,
                                           rtol=1e-6)
                counts[i] += 1
        except Exception as e:
            failures.append(f"thread {i}: {type(e).__name__}: {e}"[:500])

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(len(funcs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    print(json.dumps({"alive": sum(t.is_alive() for t in threads), "counts": counts,
                      "failures": failures, "devices": len(devices),
                      "shared_ok": bool(np.array_equal(np.asarray(shared), shared_host))}))
"""


def test_threads_dispatch_and_delete_concurrently():
    script = "import sys; sys.argv = ['x', '3.0']\n" + textwrap.dedent(THREADS_SCRIPT)
    r = run_subprocess(script, timeout=90, PYRT_DEVICE_COUNT="2")
    assert r["alive"] == 0, "deadlock: threads still running"
    assert r["failures"] == []
    assert r["devices"] == 2 and r["shared_ok"]
    assert all(c >= 3 for c in r["counts"]), r["counts"]


def test_no_leaks_after_many_dispatches(pyrt_device):
    """Device memory returns exactly to where it was; Python memory (NumPy arrays, views,
    results) does not grow with the number of dispatches."""
    f = jax.jit(lambda a, b: (jnp.sin(a) @ b, a + 1, a.reshape(-1)))
    g = jax.jit(lambda a: a.T[::2])
    x = np.arange(4096, dtype=np.float32).reshape(64, 64) / 4096  # 16 KiB per array

    def step(i):
        a = jax.device_put(x + i, pyrt_device)
        p, q, flat = f(a, a)
        r = g(p)
        if i % 3 == 0:
            np.testing.assert_allclose(np.asarray(r), (np.sin(x + i) @ (x + i)).T[::2], rtol=1e-5)
            np.testing.assert_array_equal(np.asarray(flat), (x + i).reshape(-1))
        if i % 2 == 0:
            a.delete()
            q.delete()

    for i in range(30):  # compile and warm up: caches may hold things of their own
        step(i)
    gc.collect()
    bytes0, live0 = stats(pyrt_device)
    compiles = _bridge.compile_count
    tracemalloc.start()
    try:
        for i in range(300):
            step(i)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert _bridge.compile_count == compiles  # every dispatch hit the caches
    assert stats(pyrt_device) == (bytes0, live0)
    # One leaked 16 KiB array per step would be ~5 MB; JAX's own caches account for ~50 KB.
    assert grown < 1_000_000, grown


def test_intermediates_are_freed_when_dead(pyrt_device):
    """A value's memory is released after its last use, not when its function returns (a
    jax.random.bernoulli over 1e8 elements was killed for using 15 GB: JAX's
    random_lax_test testBernoulliSmallProbabilty)."""
    def chain(x):
        for i in range(40):  # ops NumPy cannot do in place: one new array each
            x = jnp.flip(x, 0) if i % 2 else jnp.roll(x, 3)
        return x

    x = jax.device_put(np.ones(2 ** 20, np.float32), pyrt_device)  # 4 MiB
    f = jax.jit(chain)
    f(x).block_until_ready()
    tracemalloc.start()
    try:
        f(x).block_until_ready()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * x.nbytes, f"peak {peak / 2 ** 20:.0f} MiB for 40 ops on 4 MiB"


EXIT_SCRIPT = """
    import sys
    import jax, jax.numpy as jnp, numpy as np
    d = jax.devices("pyrt")[0]
    def chain(x):
        for _ in range(12):
            x = jnp.sin(x @ x)
        return x
    x = jax.device_put(np.full((300, 300), 0.01, np.float32), d)
    ys = [jax.jit(chain)(x) for _ in range(3)]  # ~0.5 s of work, still queued at exit
    print("dispatched", flush=True)
    if sys.argv[-1] == "sys.exit":
        sys.exit(0)
"""


@pytest.mark.parametrize("how", ["end_of_script", "sys.exit"])
def test_exit_with_work_in_flight(how):
    """Python exits cleanly while programs are still queued or running (this used to abort the
    process: a worker needing the GIL during interpreter finalization)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT), how],
                          capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dispatched" in proc.stdout
    assert "Fatal" not in proc.stderr and "terminate" not in proc.stderr, proc.stderr[-3000:]


def test_dispatch_has_backpressure():
    """Dispatching far faster than the device runs does not queue without limit: the arguments
    held by queued runs stay bounded (like XLA:CPU's cap on in-flight computations)."""
    r = run_subprocess("""
        import json
        import jax, jax.numpy as jnp, numpy as np, jax_pyrt
        d = jax.devices("pyrt")[0]
        def slow(a):
            for _ in range(12):
                a = jnp.sin(a @ a)
            return a
        cheap = jax.jit(lambda a: jnp.sin(a).sum())
        w = jax.device_put(np.full((300, 300), 0.01, np.float32), d)
        x = np.full((128, 1024), 0.5, np.float32)  # 512 KiB per argument
        jax.block_until_ready((jax.jit(slow)(w), cheap(jax.device_put(x, d))))  # compile
        blocker = jax.jit(slow)(w)  # occupies the device for a while
        ys = [cheap(jax.device_put(x + i, d)) for i in range(200)]  # each holds its argument
        values = [float(ys[i]) for i in (0, 100, 199)]
        expected = [float(np.sin(x + i).sum()) for i in (0, 100, 199)]
        s = jax_pyrt.memory_stats(d)
        print(json.dumps({"peak": s["peak_bytes_in_use"], "values": values, "expected": expected}))
    """)
    np.testing.assert_allclose(r["values"], r["expected"], rtol=1e-4)
    assert r["peak"] < 64 * 2**20, r["peak"]  # 200 queued arguments would be 100 MiB


# ------------------------------------------------------------------ modes and devices

SYNC_SCRIPT = """
    import json
    import jax, jax.numpy as jnp, numpy as np
    jax.config.update("jax_enable_x64", True)
    d, cpu = jax.devices("pyrt")[0], jax.devices("cpu")[0]
    out = {"ready_at_return": [], "same_as_cpu": []}
    funcs = [lambda a: jnp.sin(a) @ a.T, lambda a: jnp.pad(a, 2)[::-1] + 1.5,
             lambda a: jnp.concatenate([a, a.T.reshape(a.shape)]).sum(axis=0)]
    x = np.linspace(-2, 2, 300 * 300).reshape(300, 300)
    for f in funcs:
        y = jax.jit(f)(jax.device_put(x, d))
        out["ready_at_return"].append(y.is_ready())
        want = np.asarray(jax.jit(f)(jax.device_put(x, cpu)))
        out["same_as_cpu"].append(bool(np.allclose(np.asarray(y), want, rtol=1e-12, atol=1e-12)))
    # A run-time failure in a kernel, and the device recovering from it.
    from jax_pyrt import ops
    sine = ops.lookup("stablehlo.sine")
    def failing(op):
        def kernel(v):
            raise RuntimeError("injected sync failure")
        return kernel
    ops.base._HANDLERS["stablehlo.sine"] = failing
    out["error"], out["raised_at"] = "", None
    try:
        out["raised_at"] = "call"
        # too big to run inline when async
        bad = jax.jit(lambda a: jnp.sin(a) * 3)(jax.device_put(np.ones((3, 5, 70000)), d))
        out["raised_at"] = "read"
        np.asarray(bad)
    except Exception as e:
        out["error"] = str(e)
    ops.base._HANDLERS["stablehlo.sine"] = sine
    good = jax.jit(lambda a: jnp.sin(a) * 3)(jax.device_put(np.ones((3, 5, 8)), d))
    out["after_error_ok"] = bool(np.allclose(np.asarray(good), np.sin(1.0) * 3))
    print(json.dumps(out))
"""


def test_synchronous_mode_gives_the_same_results():
    r = run_subprocess(SYNC_SCRIPT, PYRT_SYNC="1")
    assert r["same_as_cpu"] == [True, True, True]
    assert r["ready_at_return"] == [True, True, True]  # the run happened inside the call
    assert "injected sync failure" in r["error"] and r["after_error_ok"]
    assert r["raised_at"] == "call"
    r = run_subprocess(SYNC_SCRIPT, PYRT_SYNC="0")
    assert r["same_as_cpu"] == [True, True, True]
    assert "injected sync failure" in r["error"] and r["after_error_ok"]
    assert r["raised_at"] == "read"


def test_sync_mode_threads():
    script = "import sys; sys.argv = ['x', '1.0']\n" + textwrap.dedent(THREADS_SCRIPT)
    r = run_subprocess(script, timeout=90, PYRT_SYNC="1")
    assert r["alive"] == 0 and r["failures"] == []
    assert all(c >= 1 for c in r["counts"]), r["counts"]


def test_four_devices():
    r = run_subprocess("""
        import gc, json
        import jax, jax.numpy as jnp, numpy as np, jax_pyrt
        devices = jax.devices("pyrt")
        d2 = devices[2]
        def live():
            gc.collect()
            return [jax_pyrt.memory_stats(d)["live_arrays"] for d in devices]
        before = live()
        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        a = jax.device_put(x, d2)
        y = jax.jit(lambda v: jnp.sin(v) @ v.T)(a)
        z = jax.jit(lambda v: v + 1)(a)
        out = {
            "ids": [d.id for d in devices],
            "reprs": [repr(d) for d in devices],
            "y_devices": [d.id for d in y.devices()],
            "z_devices": [d.id for d in z.devices()],
            "y_ok": bool(np.allclose(np.asarray(y), np.sin(x) @ x.T, rtol=1e-5)),
            "z_ok": bool(np.array_equal(np.asarray(z), x + 1)),
            "live_delta": [n - b for n, b in zip(live(), before)],
        }
        try:
            jax.jit(lambda u, v: u + v)(a, jax.device_put(x, devices[3]))
            out["mixed"] = None
        except Exception as e:
            out["mixed"] = str(e)[:300]
        print(json.dumps(out))
    """, PYRT_DEVICE_COUNT="4")
    assert r["ids"] == [0, 1, 2, 3]
    assert r["reprs"] == [f"PyrtDevice(id={i})" for i in range(4)]
    assert r["y_devices"] == [2] and r["z_devices"] == [2]
    assert r["y_ok"] and r["z_ok"]
    assert r["live_delta"] == [0, 0, 3, 0]  # a, y, z all live on device 2 only
    assert r["mixed"] is not None and "device" in r["mixed"].lower()
