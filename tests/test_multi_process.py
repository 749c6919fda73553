"""pyrt over several processes (jax.distributed, collectives on MPI), on 127.0.0.1: every
result of multi_process_programs.py equals that of one pyrt process holding all the devices,
and matches XLA:CPU with as many devices; a process that dies makes the others fail in
bounded time, with no buffer left."""

import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "multi_process_programs.py")
pytest.importorskip("mpi4py", reason="the multi-process tests need pip install '.[mpi]'")
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
# Results whose float rounding differs between pyrt's matmul (NumPy/BLAS) and XLA:CPU's.
ROUNDED = {"jit_matmul": 1e-6, "training": 1e-4}


def environment(platform, devices, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    # UCX_NET_DEVICES: MPI on the loopback interface only.
    env.update(JAX_PLATFORMS=platform, PYRT_DEVICE_COUNT=str(devices), UCX_NET_DEVICES="lo",
               **extra)
    if platform == "cpu":
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_processes(out, mode, count, devices, timeout=240, **extra):
    """Starts `count` processes on their own (jax.distributed.initialize with an address), with
    `extra` environment; returns their (exit code, output)."""
    port = free_port()
    env = environment("pyrt", devices, PYRT_PROCESS_TIMEOUT="20", **extra)
    procs = [subprocess.Popen([sys.executable, PROGRAMS, str(out), mode, str(count), str(i),
                               str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(count)]
    results = []
    for proc in procs:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("a process of the job hung")
        results.append((proc.returncode, output))
    return results


def run_single(out, platform, devices):
    proc = subprocess.run([sys.executable, PROGRAMS, str(out), "single"], capture_output=True,
                          text=True, timeout=300, env=environment(platform, devices))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return dict(np.load(out))


@pytest.fixture(scope="module")
def oracles(tmp_path_factory):
    """{total devices: (one pyrt process's results, XLA:CPU's)}, made on first use."""
    made = {}

    def get(total):
        if total not in made:
            where = tmp_path_factory.mktemp(f"single{total}")
            made[total] = (run_single(where / "pyrt.npz", "pyrt", total),
                           run_single(where / "cpu.npz", "cpu", total))
        return made[total]

    return get


def check(results, oracles, total):
    single, cpu = oracles(total)
    assert sorted(results) == sorted(single)
    for name, value in results.items():
        np.testing.assert_array_equal(value, single[name], err_msg=name)
        if name in ROUNDED:
            np.testing.assert_allclose(value, cpu[name], rtol=ROUNDED[name], atol=ROUNDED[name],
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(value, cpu[name], err_msg=name)


@pytest.mark.parametrize("count,devices", [(2, 2), (4, 1)], ids=["2x2", "4x1"])
def test_processes_started_on_their_own(tmp_path, oracles, count, devices):
    out = tmp_path / "result.npz"
    for code, output in start_processes(out, "ports", count, devices):
        assert code == 0, output[-4000:]
    check(dict(np.load(out)), oracles, count * devices)


@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec")
@pytest.mark.parametrize("count,devices", [(2, 2), (4, 1)], ids=["2x2", "4x1"])
def test_processes_started_by_mpiexec(tmp_path, oracles, count, devices):
    out = tmp_path / "result.npz"
    proc = subprocess.run([MPIEXEC, "-n", str(count), sys.executable, PROGRAMS, str(out),
                           "mpirun"], capture_output=True, text=True, timeout=300,
                          env=environment("pyrt", devices, PYRT_PROCESS_TIMEOUT="20"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    check(dict(np.load(out)), oracles, count * devices)


def failed_after(output):
    """Seconds a process waited before its run failed (multi_process_programs.fails)."""
    assert "FAILED after" in output and "live arrays [0]" in output, output[-4000:]
    return float(output.split("FAILED after ")[1].split(" s")[0])


def test_a_process_that_dies_fails_the_others(tmp_path):
    results = start_processes(tmp_path / "unused.npz", "dies", 3, 1, timeout=120)
    assert results[1][0] == 17, results[1][1][-2000:]
    for code, output in (results[0], results[2]):
        assert code == 0 and "process 1" in output, output[-4000:]
        assert failed_after(output) < 30, output[-2000:]  # PYRT_PROCESS_TIMEOUT is 20


def test_a_process_that_raises_fails_the_others_at_once(tmp_path):
    results = start_processes(tmp_path / "unused.npz", "raises", 3, 1, timeout=120)
    for index, (code, output) in enumerate(results):
        assert code == 0, output[-4000:]
        assert "process 1 refuses" in output, output[-4000:]
        assert failed_after(output) < 10, output[-2000:]  # told, not timed out
        if index != 1:
            assert "process 1 failed" in output, output[-4000:]


def test_without_mpi_the_error_says_what_to_install(tmp_path):
    (tmp_path / "mpi4py").mkdir()
    (tmp_path / "mpi4py" / "__init__.py").write_text("raise ImportError('no MPI here')\n")
    results = start_processes(tmp_path / "x.npz", "ports", 2, 1, timeout=120,
                              PYTHONPATH=os.pathsep.join(
                                  [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    for code, output in results:
        assert code != 0, output[-3000:]
        assert "mpi4py is not installed" in output, output[-3000:]
        assert "pip install 'jax-pyrt[mpi]'" in output, output[-3000:]
