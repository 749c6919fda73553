"""Host callbacks on pyrt (jax_integration/callbacks.py): jax.debug.print, jax.debug.callback,
jax.pure_callback and io_callback inside jit, compared with the CPU backend."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import io_callback

from conftest import run_on, run_subprocess


def _both(capsys, pyrt_device, cpu_device, fn, *args, **jit_kwargs):
    """Runs fn on CPU then pyrt; returns (cpu result, cpu stdout, pyrt result, pyrt stdout)."""
    capsys.readouterr()
    expected = run_on(cpu_device, fn, *args, **jit_kwargs)
    jax.effects_barrier()
    cpu_out = capsys.readouterr().out
    actual = run_on(pyrt_device, fn, *args, **jit_kwargs)
    jax.effects_barrier()
    pyrt_out = capsys.readouterr().out
    return expected, cpu_out, actual, pyrt_out


def occupy(device):
    """Keeps `device` busy for about half a second (longer than compiling a small program), so
    that programs dispatched meanwhile queue on its worker; returns the pending result."""
    busy = jax.jit(lambda a: jax.lax.fori_loop(0, 1000, lambda i, v: jnp.sin(v @ v), a))
    return busy(jax.device_put(np.full((300, 300), 0.01), device))


def _same(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int8, np.uint64,
                                   np.bool_, np.complex64])
def test_debug_print_dtypes(capsys, pyrt_device, cpu_device, dtype):
    x = (np.arange(6).reshape(2, 3) % 2).astype(dtype)

    def f(x):
        jax.debug.print("x={x} sum={s}", x=x, s=x.sum())
        return x

    e, eo, a, ao = _both(capsys, pyrt_device, cpu_device, f, x)
    _same(a, e)
    assert ao == eo and "x=" in ao


def test_debug_print_scalar_and_empty(capsys, pyrt_device, cpu_device):
    def f(x, y):
        jax.debug.print("{} {}", x, y)
        return x + 1

    e, eo, a, ao = _both(capsys, pyrt_device, cpu_device, f, np.float32(-0.0),
                         np.zeros((0, 3), np.int64))
    _same(a, e)
    assert ao == eo


def test_debug_print_in_scan_while_cond(capsys, pyrt_device, cpu_device):
    def f(x):
        def body(c, xi):
            jax.debug.print("scan c={c} xi={xi}", c=c, xi=xi)
            return c + xi, c * 2

        c, ys = jax.lax.scan(body, 0.0, x)

        def wbody(i):
            jax.debug.print("while {i}", i=i)
            return i + 1

        i = jax.lax.while_loop(lambda i: i < 3, wbody, 0)
        z = jax.lax.cond(c > 1, lambda v: (jax.debug.print("big {v}", v=v), v)[1],
                         lambda v: (jax.debug.print("small {v}", v=v), -v)[1], c)
        return c, ys, i, z

    x = np.arange(4.0)
    e, eo, a, ao = _both(capsys, pyrt_device, cpu_device, f, x)
    _same(a, e)
    # unordered effects: compare the multiset of lines, as JAX promises no order.
    assert sorted(ao.splitlines()) == sorted(eo.splitlines())
    assert len(ao.splitlines()) == 4 + 3 + 1


def test_debug_print_under_vmap_and_grad(capsys, pyrt_device, cpu_device):
    def f(x):
        def g(v):
            jax.debug.print("v={v}", v=v)
            return jnp.sin(v).sum()

        return jax.vmap(g)(x), jax.grad(g)(x[0])

    x = np.arange(6.0).reshape(2, 3)
    e, eo, a, ao = _both(capsys, pyrt_device, cpu_device, f, x)
    _same(a, e)
    assert sorted(ao.splitlines()) == sorted(eo.splitlines())


def test_debug_callback_args(pyrt_device, cpu_device):
    seen = {}

    def f(x):
        jax.debug.callback(lambda a, b: seen.setdefault(tag, []).append((a.copy(), b)), x, x * 2)
        return x

    x = np.arange(5, dtype=np.int16)[::2]  # non-contiguous input
    for tag, dev in (("cpu", cpu_device), ("pyrt", pyrt_device)):
        run_on(dev, f, x)
        jax.effects_barrier()
    assert len(seen["cpu"]) == len(seen["pyrt"]) == 1
    for (a, b), (c, d) in zip(seen["cpu"], seen["pyrt"]):
        assert type(a) is type(c) and np.asarray(a).dtype == np.asarray(c).dtype
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.uint8, np.bool_,
                                   np.complex128])
def test_pure_callback(check, dtype):
    def host(a):
        return (np.flip(a), np.asarray(a.sum()).astype(a.dtype))

    def f(x):
        out = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((), x.dtype))
        y, s = jax.pure_callback(host, out, x)
        return y, s, y == x

    check(f, (np.arange(6).reshape(2, 3) % 3).astype(dtype))


def test_pure_callback_scalar_empty_and_no_operands(check):
    def f(x, e):
        a = jax.pure_callback(lambda v: v * 3, jax.ShapeDtypeStruct((), x.dtype), x)
        b = jax.pure_callback(lambda v: v, jax.ShapeDtypeStruct(e.shape, e.dtype), e)
        c = jax.pure_callback(lambda: np.arange(3, dtype=np.int32),
                              jax.ShapeDtypeStruct((3,), np.int32))
        return a, b, c

    check(f, np.float32(np.inf), np.zeros((2, 0), np.float16))


@pytest.mark.parametrize("vmap_method", ["sequential", "expand_dims", "broadcast_all",
                                         "legacy_vectorized"])
def test_pure_callback_vmap(check, vmap_method):
    calls = []

    def host(a, b):
        calls.append(a.shape)
        return np.asarray(np.sin(a) * b, dtype=a.dtype)

    def f(x, b):
        def g(v):
            return jax.pure_callback(host, jax.ShapeDtypeStruct(v.shape, v.dtype), v, b,
                                     vmap_method=vmap_method)
        return jax.vmap(g)(x)

    x = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    check(f, x, np.array([2.0, -1.0, 0.5], np.float32))
    n = len(calls) // 2
    assert calls[:n] == calls[n:]  # same batching on both backends


def test_pure_callback_in_control_flow(check):
    def host(v):
        return np.asarray(np.cos(v), v.dtype)

    def f(x):
        spec = jax.ShapeDtypeStruct((), x.dtype)
        c, ys = jax.lax.scan(lambda c, xi: (c + jax.pure_callback(host, spec, xi), c), 0.0, x)
        w = jax.lax.while_loop(lambda s: s[0] < 3,
                               lambda s: (s[0] + 1, jax.pure_callback(host, spec, s[1])),
                               (0, x[0]))
        k = jax.lax.cond(c > 0, lambda v: jax.pure_callback(host, spec, v), lambda v: v, c)
        return c, ys, w, k

    check(f, np.linspace(0, 1, 5))


def test_pure_callback_grad_via_custom_jvp(check):
    @jax.custom_jvp
    def sin(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    sin.defjvp(lambda p, t: (sin(p[0]), jnp.cos(p[0]) * t[0]))
    check(lambda x: jax.grad(lambda v: sin(v).sum())(x), np.linspace(-1, 1, 7))


def test_io_callback_unordered(pyrt_device, cpu_device):
    log = {"cpu": [], "pyrt": []}

    def f(x):
        def host(v):
            log[tag].append(np.asarray(v).copy())
            return np.asarray(v * 2)

        y = io_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return jax.lax.scan(lambda c, xi: (c + io_callback(host, jax.ShapeDtypeStruct(
            (), xi.dtype), xi), None), 0.0, y)[0]

    x = np.arange(4.0)
    results = {}
    for tag, dev in (("cpu", cpu_device), ("pyrt", pyrt_device)):
        results[tag] = run_on(dev, f, x)
        jax.effects_barrier()
    _same(results["pyrt"], results["cpu"])
    assert len(log["pyrt"]) == len(log["cpu"]) == 5
    for a, b in zip(log["pyrt"], log["cpu"]):
        np.testing.assert_array_equal(a, b)


def test_io_callback_order_across_calls(pyrt_device):
    """Unordered io_callbacks still run in submission order on pyrt (one in-order device)."""
    seen = []

    @jax.jit
    def f(i, x):
        io_callback(lambda i: seen.append(int(i)), None, i)
        return x + i

    x = jax.device_put(np.zeros(1000), pyrt_device)
    outs = [f(i, x) for i in range(20)]
    jax.block_until_ready(outs)
    jax.effects_barrier()
    assert seen == list(range(20))
    np.testing.assert_array_equal(np.asarray(outs[-1]), np.full(1000, 19.0))


@pytest.mark.parametrize("n", [3, 600_000])  # cheap / big enough to queue on the device worker
def test_callback_exception_raises_at_the_call(pyrt_device, cpu_device, n):
    """As on CPU, a program with a host callback finishes inside the call, so the callback's
    exception raises there, naming the callback; the device stays usable."""
    def boom(v):
        raise ValueError("boom from host")

    f = jax.jit(lambda x: jax.pure_callback(boom, jax.ShapeDtypeStruct(x.shape, x.dtype), x))
    x = np.linspace(0, 1, n)
    with pytest.raises(Exception, match="boom from host"):
        f(jax.device_put(x, cpu_device))
    busy = occupy(pyrt_device)
    with pytest.raises(Exception, match="boom from host") as info:
        f(jax.device_put(x, pyrt_device))  # queued behind `busy`, then waited for
    assert "host callback" in str(info.value) and "boom" in str(info.value)
    assert busy.is_ready()
    np.testing.assert_array_equal(run_on(pyrt_device, lambda v: v + 1, x), x + 1)


@pytest.mark.parametrize("n", [3, 200_000])
def test_callback_program_has_run_when_the_call_returns(pyrt_device, cpu_device, n):
    """As on CPU: the callback's side effect is visible right after the call, without waiting."""
    for device in (cpu_device, pyrt_device):
        seen = []
        f = jax.jit(lambda x: (io_callback(lambda v: seen.append(v.shape), None, x), x * 2)[1])
        y = f(jax.device_put(np.ones(n), device))
        assert seen == [(n,)], device
        assert y.is_ready()


def test_callback_wrong_result_shape_or_dtype(pyrt_device, cpu_device):
    def f(x):
        return jax.pure_callback(lambda v: v[:1], jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    def g(x):
        return jax.pure_callback(lambda v: v.astype(np.int32),
                                 jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    x = np.arange(3.0)
    for fn, what in ((f, "shape"), (g, "dtype")):
        for dev in (cpu_device, pyrt_device):
            with pytest.raises(Exception, match=f"Incorrect output {what}"):
                jax.block_until_ready(run_on(dev, fn, x))
    np.testing.assert_array_equal(run_on(pyrt_device, lambda v: v * 2, x), x * 2)


def test_install_tolerates_unknown_platform_and_reinstall():
    from jax_pyrt.jax_integration import callbacks

    callbacks.install("no-such-platform")  # not registered: nothing happens
    callbacks.install("pyrt")  # again: idempotent
    assert "pyrt_python_callback" in __import__(
        "jax_pyrt.ops.custom_call", fromlist=["targets"]).targets()


def test_io_callback_ordered_across_calls(pyrt_device, cpu_device):
    """Ordered io_callback / debug.print thread JAX's runtime tokens through @main (pyrt maps
    them to bool[0] arrays, see executable._untokenize_entry); order holds within and across
    calls, as on CPU."""
    seen = {"cpu": [], "pyrt": []}

    def f(i, x):
        def body(c, xi):
            io_callback(lambda a, b: seen[tag].append((int(a), float(b))), None, i, xi,
                        ordered=True)
            return c + xi, None

        c, _ = jax.lax.scan(body, 0.0, x)
        return c + i

    x = np.arange(3.0)
    for tag, dev in (("cpu", cpu_device), ("pyrt", pyrt_device)):
        fn = jax.jit(f)
        xd = jax.device_put(x, dev)
        outs = [fn(jax.device_put(np.int32(i), dev), xd) for i in range(6)]
        jax.block_until_ready(outs)
        jax.effects_barrier()
        assert all(o.devices() == {dev} for o in outs)
        seen[tag + "_out"] = [float(o) for o in outs]
    assert seen["pyrt"] == seen["cpu"] == [(i, float(v)) for i in range(6) for v in x]
    assert seen["pyrt_out"] == seen["cpu_out"]


def test_ordered_debug_print_and_io_callback(capsys, pyrt_device, cpu_device):
    def f(x):
        jax.debug.print("first {x}", x=x, ordered=True)
        y = io_callback(lambda v: np.asarray(v * 3), jax.ShapeDtypeStruct(x.shape, x.dtype), x,
                        ordered=True)
        jax.debug.print("second {y}", y=y, ordered=True)
        return y

    e, eo, a, ao = _both(capsys, pyrt_device, cpu_device, f, np.arange(4, dtype=np.int32))
    _same(a, e)
    assert ao == eo and ao.index("first") < ao.index("second")


def test_ordered_callback_exception(pyrt_device, cpu_device):
    """An ordered callback that raises: as on CPU, the error raises at the call naming the
    callback, and later ordered calls and jax.effects_barrier() are unaffected."""
    def f(x):
        io_callback(lambda v: 1 // 0, None, x, ordered=True)
        return x

    x = np.ones(2)
    for device, match in ((cpu_device, "ZeroDivisionError"),
                          (pyrt_device, "host callback .*ZeroDivisionError")):
        with pytest.raises(Exception, match=match):
            run_on(device, f, x)
        np.testing.assert_array_equal(run_on(device, lambda v: v + 1, x), x + 1)
        seen = []
        g = jax.jit(lambda x: (io_callback(lambda v: seen.append(1), None, x, ordered=True), x)[1])
        jax.block_until_ready(g(jax.device_put(x, device)))
        jax.effects_barrier()
        assert seen == [1], device


@pytest.mark.parametrize("n", [3, 600_000])  # run inline / on the device worker
def test_callback_calling_jax_on_pyrt(pyrt_device, cpu_device, n):
    """A callback may itself run JAX work on pyrt, on the device its program runs on (no
    deadlock with the device worker, even when that worker is busy with the program)."""
    where = []

    def f(x):
        def host(v):
            r = jnp.sin(jax.device_put(v, pyrt_device)) * 2
            where.append(r.devices())
            return np.asarray(r)

        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x) + 1

    x = np.linspace(-3, 3, n, dtype=np.float32)
    expected = np.sin(x) * 2 + 1
    busy = occupy(pyrt_device)  # f's program then runs on the device worker
    np.testing.assert_allclose(run_on(pyrt_device, f, x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run_on(cpu_device, f, x), expected, rtol=1e-5, atol=1e-6)
    assert where == [{pyrt_device}, {pyrt_device}]
    busy.block_until_ready()


def test_callback_using_work_queued_after_it_fails_cleanly(pyrt_device):
    """A callback cannot wait for work queued on its device after its own program: it gets an
    error naming the problem instead of hanging."""
    import threading

    later = {}

    def host(v):
        # Queued from another thread while this program runs: it runs after this program.
        t = threading.Thread(target=lambda: later.setdefault(
            "y", jax.jit(lambda a: a * 3)(jax.device_put(np.ones(200_000), pyrt_device))))
        t.start()
        t.join()
        return np.asarray(jax.jit(lambda a: a + 1)(later["y"]))

    f = jax.jit(lambda x: jax.pure_callback(host, jax.ShapeDtypeStruct((200_000,), x.dtype), x))
    occupy(pyrt_device)  # f's program then runs on the device worker, not on this thread
    with pytest.raises(Exception, match="work queued after the callback's program"):
        f(jax.device_put(np.ones(200_000), pyrt_device))
    np.testing.assert_array_equal(np.asarray(later["y"]), np.full(200_000, 3.0))


def test_callbacks_without_a_cpu_backend():
    """Under JAX_PLATFORMS=pyrt there is no CPU device for JAX's callback impls to put the
    operands on ("failed to find a local CPU device"); pyrt's default device takes its place,
    so callbacks work as they do under JAX_PLATFORMS=cpu."""
    r = run_subprocess("""
        import io, json, contextlib
        import jax, jax.numpy as jnp, numpy as np
        from jax.experimental import io_callback
        out = {"devices": [d.platform for d in jax.devices()]}
        seen = []
        def host(v):
            seen.append(type(v).__name__)
            return np.asarray(jnp.sin(v) * 2)  # JAX work inside the callback, on pyrt
        @jax.jit
        def f(x):
            jax.debug.print("sum={s}", s=x.sum())
            y = jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
            io_callback(lambda v: seen.append(float(v)), None, y.sum(), ordered=True)
            return y + 1
        x = np.linspace(-1, 1, 5, dtype=np.float32)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            y = f(x)
            jax.effects_barrier()
        out["printed"] = printed.getvalue()
        out["close"] = bool(np.allclose(np.asarray(y), np.sin(x) * 2 + 1, rtol=1e-6))
        out["seen"] = seen
        def boom(v):
            raise ValueError("boom without cpu")
        try:
            jax.jit(lambda v: jax.pure_callback(boom, jax.ShapeDtypeStruct(v.shape, v.dtype), v))(x)
            out["error"] = ""
        except Exception as e:
            out["error"] = str(e)
        print(json.dumps(out))
    """, JAX_PLATFORMS="pyrt")
    assert r["devices"] == ["pyrt"]
    assert r["printed"] == "sum=0.0\n" and r["close"]
    assert r["seen"][0] == "ArrayImpl" and abs(r["seen"][1]) < 1e-5
    assert "boom without cpu" in r["error"] and "host callback" in r["error"]


def test_checkify_check_in_jit(pyrt_device, cpu_device):
    """checkify's check primitive lowers to a callback raising the error (JAX has the rule for
    cpu/gpu only): with jax_experimental_unsafe_xla_runtime_errors a failing check raises at
    the call, as on CPU; debug_check is a no-op."""
    from jax.experimental import checkify

    def f(x):
        checkify.check(x > 0, "x must be positive, got {x}", x=x)
        checkify.debug_check(x > 5, "never raised")
        return x * 2

    jax.config.update("jax_experimental_unsafe_xla_runtime_errors", True)
    try:
        for device in (pyrt_device, cpu_device):
            assert float(run_on(device, f, np.float32(3))) == 6.0
            with pytest.raises(Exception, match="x must be positive, got -1"):
                jax.block_until_ready(jax.jit(f)(jax.device_put(np.float32(-1), device)))
    finally:
        jax.config.update("jax_experimental_unsafe_xla_runtime_errors", False)
