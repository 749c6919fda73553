"""Seeing inside pyrt and extending it from Python (docs/debugging.md, docs/extending.md):
op_profile, the NaN/Inf check, explain, Python custom calls and replaced op handlers. Values
are checked against XLA:CPU (or NumPy, for a Python custom call CPU cannot run)."""

import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_pyrt
from jax_pyrt import fusion
from conftest import run_on


def line_of(fn, text):
    """The line number of the first source line of `fn` containing `text`."""
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def mlp(x, w1, w2):
    h = jnp.tanh(x @ w1)
    return jnp.sum(jax.nn.softmax(h @ w2))


def mlp_args(device):
    rng = np.random.default_rng(0)
    return [jax.device_put(rng.standard_normal(s, dtype=np.float32), device)
            for s in ((8, 16), (16, 32), (32, 4))]


def test_op_profile_counts_the_programs_ops(pyrt_device):
    args = mlp_args(pyrt_device)
    f = jax.jit(mlp)
    f(*args).block_until_ready()  # compiled outside the block
    with jax_pyrt.op_profile() as profile:
        for _ in range(3):
            f(*args).block_until_ready()
    ops = {}
    for op, where, calls, seconds, size in profile.rows():
        ops[op] = ops.get(op, 0) + calls
        assert seconds >= 0 and size >= 0
    # Every kernel call of the program's main function, three times each (from the program
    # pyrt generated; region bodies a handler evaluates itself, as reduce's, count under it).
    program = jax_pyrt.explain(f, *args)
    expected = {}
    for op in re.findall(r"^    \S.*= [kg]\d+\(.*# (stablehlo\.\w+)", program, re.M):
        expected[op] = expected.get(op, 0) + 3
    assert expected and ops == expected
    assert "stablehlo.dot_general" in profile.table()
    # Outside the block nothing is recorded.
    f(*args).block_until_ready()
    assert sum(r[2] for r in profile.rows()) == sum(expected.values())


@pytest.mark.parametrize("n,written", [(64, "out="), (512, "fused ops")])
def test_watching_a_train_step_keeps_its_values(pyrt_device, cpu_device, monkeypatch, n,
                                                written):
    # Watched kernels take the calls the program makes: ufuncs run in place (`out=` an operand
    # that dies there, from 4K elements) and fused groups (here from 64K elements); observers
    # see operands as they were before the call.
    monkeypatch.setattr(fusion, "FUSE_ELEMENTS", 1 << 16)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, 128), dtype=np.float32) / 16
    x = rng.standard_normal((n, n), dtype=np.float32)

    def step(w, x):
        g = jax.grad(lambda w: jnp.mean(jnp.tanh(x @ w) ** 2))(w)
        return w - 0.1 * g

    expected = run_on(cpu_device, step, w, x)
    assert written in jax_pyrt.explain(jax.jit(step), *jax.device_put((w, x), pyrt_device))
    with jax_pyrt.op_profile() as profile, jax_pyrt.check_nans():
        got = run_on(pyrt_device, step, w, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert any(op == "stablehlo.dot_general" for op, *_ in profile.rows())


def straight(x):
    y = x * 2.0
    z = jnp.log(y - 2.0)  # NaN for x < 1, -inf at 1
    return z + 1.0


def in_scan(x):
    def body(carry, v):
        carry = carry + jnp.sqrt(v - 5.0)  # NaN once v < 5
        return carry, carry
    return jax.lax.scan(body, 0.0, x)[1]


def in_cond(x):
    return jax.lax.cond(x[0] > 0, lambda v: jnp.arcsin(v * 3.0), lambda v: v, x)


@pytest.mark.parametrize("fn,text,op,jax_blames", [
    (straight, "jnp.log", "stablehlo.log", "log"),
    (in_scan, "jnp.sqrt", "stablehlo.sqrt", "scan"),
    (in_cond, "jnp.arcsin", "chlo.asin|stablehlo", "cond"),
], ids=["straight", "scan", "cond"])
def test_nan_check_names_the_op_and_line(pyrt_device, cpu_device, fn, text, op, jax_blames):
    x = np.array([6.0, 1.0, 0.5], np.float32)
    # The oracle: XLA:CPU computes a NaN or Inf from these finite inputs. JAX's own
    # jax_debug_nans / jax_debug_infs, which re-run the function primitive by primitive, blame
    # the same op in straight code, but only the whole scan or cond around one.
    assert not np.isfinite(run_on(cpu_device, fn, x)).all()
    with jax.debug_nans(True), jax.debug_infs(True):
        with pytest.raises(FloatingPointError, match=f"encountered in {jax_blames}"):
            run_on(cpu_device, fn, x)
    with jax_pyrt.check_nans():
        with pytest.raises(Exception) as failure:
            run_on(pyrt_device, fn, x)
    message = str(failure.value)
    assert "NaN/Inf check" in message, message
    assert f"test_debugging.py:{line_of(fn, text)}" in message, message
    assert re.search(op, message), message
    assert re.search(r"line \d+ of the generated program", message)
    # Without the check the same program runs and gives XLA:CPU's values.
    np.testing.assert_array_equal(run_on(pyrt_device, fn, x), run_on(cpu_device, fn, x))


def test_nan_check_passes_nans_that_came_in(pyrt_device):
    with jax_pyrt.check_nans():
        out = run_on(pyrt_device, lambda v: v * 2.0, np.array([np.nan, 1.0], np.float32))
    assert np.isnan(out[0]) and out[1] == 2.0


def test_explain_matches_the_program_that_runs(pyrt_device):
    args = mlp_args(pyrt_device)
    f = jax.jit(mlp)
    text = jax_pyrt.explain(f, *args)
    compile(text, "<explain>", "exec")  # valid Python: the annotations are comments
    line = line_of(mlp, "x @ w1")
    assert re.search(rf"# stablehlo\.dot_general \(test_debugging\.py:{line}\)", text), text
    # The text is the source of the program pyrt runs for f, run it through its namespace.
    executable = jax_pyrt.executable.loaded[f.lower(*args).compile().runtime_executable()
                                            .fingerprint.decode()]
    assert re.sub(r" +# .*", "", text) == executable.prepared.source
    namespace = dict(executable.prepared.entry.__globals__)
    exec(compile(text, "<explain>", "exec"), namespace)
    views = [np.ascontiguousarray(np.asarray(a)).view(np.uint8).reshape(-1) for a in args]
    out = namespace["entry"](views, jax_pyrt.ops.base.RunContext())
    np.testing.assert_array_equal(out[0].view(np.float32), np.asarray(f(*args)).reshape(-1))


def test_explain_refuses_a_function_compiled_elsewhere(cpu_device):
    x = jax.device_put(np.ones(3, np.float32), cpu_device)
    with pytest.raises(ValueError, match="not compiled by pyrt"):
        jax_pyrt.explain(jax.jit(jnp.sin), x)


def scale_and_shift(x, *, scale, shift, mask):
    return (x * scale + shift) * mask


jax_pyrt.register_custom_call("test_scale_and_shift", scale_and_shift)


def ffi_scale(x):
    call = jax.ffi.ffi_call("test_scale_and_shift", jax.ShapeDtypeStruct(x.shape, x.dtype),
                            vmap_method="broadcast_all")
    return call(x, scale=np.float32(2.5), shift=3, mask=np.array([1, 0, 1, 1], np.float32))


def test_python_custom_call_under_jit_and_vmap(pyrt_device):
    x = np.arange(4, dtype=np.float32)
    expected = (x * 2.5 + 3) * np.array([1, 0, 1, 1], np.float32)
    np.testing.assert_array_equal(run_on(pyrt_device, ffi_scale, x), expected)
    batch = np.stack([x, x + 1])
    np.testing.assert_array_equal(run_on(pyrt_device, jax.vmap(ffi_scale), batch),
                                  np.stack([expected, (x + 1) * 2.5 * [1, 0, 1, 1] +
                                            [3, 0, 3, 3]]).astype(np.float32))


def test_python_custom_call_under_grad_with_custom_vjp(pyrt_device, cpu_device):
    jax_pyrt.register_custom_call("test_cube", lambda x: x ** 3)

    @jax.custom_vjp
    def cube(x):
        return jax.ffi.ffi_call("test_cube", jax.ShapeDtypeStruct(x.shape, x.dtype))(x)

    cube.defvjp(lambda x: (cube(x), x), lambda x, g: (3 * x * x * g,))
    x = np.array([0.5, -2.0, 3.0], np.float32)
    grad = run_on(pyrt_device, jax.grad(lambda v: jnp.sum(cube(v))), x)
    np.testing.assert_allclose(grad, run_on(cpu_device, jax.grad(lambda v: jnp.sum(v ** 3)), x))


def test_a_raising_custom_call_raises_at_the_call(pyrt_device):
    def refuse(x):
        raise RuntimeError("not today")

    jax_pyrt.register_custom_call("test_refuse", refuse)
    f = jax.jit(lambda x: jax.ffi.ffi_call("test_refuse",
                                           jax.ShapeDtypeStruct(x.shape, x.dtype))(x) + 1)
    with pytest.raises(Exception, match=r"custom call 'test_refuse' .*raised RuntimeError: "
                                        r"not today"):
        f(jax.device_put(np.ones(2, np.float32), pyrt_device))  # not at a later readback


def test_pyrt_targets_cannot_be_replaced():
    with pytest.raises(ValueError, match="pyrt's own"):
        jax_pyrt.register_custom_call("Sharding", lambda x: x)


def test_a_replaced_op_handler_runs(pyrt_device, cpu_device):
    from jax_pyrt.ops import base

    pyrts = base.lookup("stablehlo.cbrt")
    calls = []

    def cbrt(op_):
        calls.append(op_.name)
        return np.cbrt

    try:
        base.op("stablehlo.cbrt", replace=True)(cbrt)
        x = np.array([8.0, -27.0, 2.0], np.float32)
        np.testing.assert_allclose(run_on(pyrt_device, jnp.cbrt, x),
                                   run_on(cpu_device, jnp.cbrt, x), rtol=1e-6)
        assert calls == ["stablehlo.cbrt"]
    finally:
        base.op("stablehlo.cbrt", replace=True)(pyrts)


def train_step(x, w1, w2):
    grads = jax.grad(mlp, argnums=(1, 2))(x, w1, w2)
    return w1 - 0.1 * grads[0], w2 - 0.1 * grads[1]


def test_profiler_trace_holds_pyrt_device_planes_with_the_ops(pyrt_device, tmp_path):
    args = mlp_args(pyrt_device)
    f = jax.jit(train_step)
    jax.block_until_ready(f(*args))
    with jax.profiler.trace(str(tmp_path)):
        for _ in range(2):
            jax.block_until_ready(f(*args))
    (path,) = tmp_path.glob("plugins/profile/*/*.xplane.pb")
    plane = jax.profiler.ProfileData.from_file(str(path)).find_plane_with_name(
        f"/device:CUSTOM:{pyrt_device.id}")
    assert plane is not None
    lines = {line.name: list(line.events) for line in plane.lines}
    assert [e.name for e in lines["XLA Modules"]] == ["jit_train_step"] * 2
    # The ops: the program's kernel calls, twice each (as op_profile counts them), each inside
    # its program's run, with the user's line.
    with jax_pyrt.op_profile() as profile:
        for _ in range(2):
            jax.block_until_ready(f(*args))
    counted = {}
    for event in lines["XLA Ops"]:
        counted[event.name] = counted.get(event.name, 0) + 1
    expected = {}
    for op, _, calls, _, _ in profile.rows():
        expected[op] = expected.get(op, 0) + calls
    assert counted == expected
    runs = [(e.start_ns, e.end_ns) for e in lines["XLA Modules"]]
    for event in lines["XLA Ops"]:
        assert any(start <= event.start_ns <= event.end_ns <= end for start, end in runs)
        stats = dict(event.stats)
        assert stats["source"].startswith("test_debugging.py:"), stats
        assert re.fullmatch(r"(\w+\[[\d, ]*\](, )?)+", stats["shapes"]), stats
    assert "stablehlo.dot_general" in counted and "float32[16, 32]" in {
        dict(e.stats)["shapes"] for e in lines["XLA Ops"]}
    # No trace, nothing recorded: pyrt watches nothing outside a trace.
    assert not jax_pyrt.tracing._observers


def test_pyrt_check_nans_checks_the_whole_process():
    from conftest import run_subprocess

    message = run_subprocess("""
        import json, jax, jax.numpy as jnp
        try:
            jax.jit(lambda x: jnp.log(x - 2.0))(jnp.ones(3)).block_until_ready()
            print(json.dumps("no error"))
        except Exception as e:
            print(json.dumps(str(e)))
    """, JAX_PLATFORMS="pyrt", PYRT_CHECK_NANS="1")
    assert "NaN/Inf check found NaN in the result of stablehlo.log" in message, message
