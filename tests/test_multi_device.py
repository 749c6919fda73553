"""Programs over several pyrt devices against XLA:CPU with as many devices, in one process per
family (multi_device_programs.py: the device count must be set before JAX makes its
backends): values and shardings, the partitioner's paths, failures, and no buffer left."""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import run_subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
FAMILIES = ["collectives", "pmap", "shard_map", "sharded_jit", "shardy", "arrays", "training",
            "failures"]


def run_family(family, devices):
    environment = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "multi_device_programs.py"),
                           family, str(devices)], capture_output=True, text=True, timeout=600,
                          env=environment)
    assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=[4, 8], ids=lambda n: f"{n}devices")
def devices(request):
    return request.param


@pytest.mark.parametrize("family", FAMILIES)
def test_family_matches_xla_cpu(family, devices):
    report = run_family(family, devices)
    assert report["cases"], "the family ran nothing"
    assert report["problems"] == [], json.dumps(report["problems"], indent=1)[:6000]
    assert report["leaked"] == [0] * devices, "buffers left on pyrt's devices"
    paths = report["paths"]
    if family in ("pmap", "shard_map", "training"):
        assert paths["global"] == 0 and paths["spmd"] > 0, paths
    if family == "pmap":  # the captured constant's program killed the helper, which restarted
        assert report["partitioner_deaths"] >= 1
    if family == "shardy":
        # max/argmax/all over a sharded dim, the padded reduction, the sharded gather, the
        # shard_map under a max, the unreduced values (their programs and the reshards): the
        # global path. cumsum (with resolved permutation factors Shardy is right), the
        # unsharded gather: spmd.
        assert paths["global"] >= 15 and paths["spmd"] >= 2, paths
    if family == "failures":
        failure = report["failure"]
        assert "stablehlo.all_reduce" in failure["message"], failure
        # Devices N/2 .. N-1 raise; the error names whichever failed first.
        failed = re.search(r"device (\d+) failed", failure["message"])
        assert failed and devices // 2 <= int(failed.group(1)) < devices, failure
        assert "bad shard" in failure["message"], failure
        assert failure["seconds"] < 30, "the others waited for the timeout"
        assert report["communicators_left"] == 0


def test_callbacks_run_on_the_calling_device():
    """Under JAX_PLATFORMS=pyrt a callback's JAX work runs on the device that calls back; on
    device 0 it would wait for device 0, itself waiting in the psum for this device."""
    r = run_subprocess("""
        import json, jax, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        mesh = Mesh(np.array(jax.devices()), ("x",))
        seen = []
        def callback(v):
            seen.append(sorted(d.id for d in v.devices()))
            return v * 2
        def body(u):
            u = jax.pure_callback(callback, jax.ShapeDtypeStruct(u.shape, u.dtype), u)
            return jax.lax.psum(u, "x")
        f = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"), out_specs=P()))
        out = f(jax.device_put(np.arange(8.0, dtype=np.float32), NamedSharding(mesh, P("x"))))
        print(json.dumps({"out": np.asarray(out).tolist(), "seen": sorted(seen)}))
    """, timeout=120, JAX_PLATFORMS="pyrt", PYRT_DEVICE_COUNT="4", PYRT_COLLECTIVE_TIMEOUT="20")
    assert r["out"] == [24.0, 32.0]  # 2 * (0 + 2 + 4 + 6), 2 * (1 + 3 + 5 + 7)
    assert r["seen"] == [[0], [1], [2], [3]]


def test_a_device_that_never_arrives_ends_the_wait(monkeypatch):
    from jax_pyrt.communicator import Communicator

    monkeypatch.setenv("PYRT_COLLECTIVE_TIMEOUT", "0.2")
    with pytest.raises(Exception, match="on device 3: the other devices of the group did not "
                                        "arrive within 0.2 s"):
        Communicator(2).exchange(("key",), ((0, 0), (0, 1)), 0, 1.0, device=3)
