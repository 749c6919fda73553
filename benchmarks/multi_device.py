"""pyrt vs XLA:CPU on multi-device workloads, with the same devices on each, in one process.

    python benchmarks/multi_device.py [--quick]

Both backends get 8 devices (PYRT_DEVICE_COUNT, jax_num_cpu_devices: set here, before JAX
makes its backends). Timing as in run.py: median of rounds after a warm-up; ratio = pyrt / cpu.
The last line compares pyrt's data-parallel step on 2 devices with the same step on 1.
"""

import argparse
import os
import statistics
import sys
import time

os.environ["PYRT_DEVICE_COUNT"] = "8"

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

jax.config.update("jax_platforms", "pyrt,cpu")
jax.config.update("jax_num_cpu_devices", 8)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import mlp, timeit  # noqa: E402


def psum_scalar(devices, quick):
    """One collective round: a psum of one f32 over 8 devices."""
    f = jax.pmap(lambda x: jax.lax.psum(x, "i"), axis_name="i", devices=devices[:8])
    x = f(np.arange(8, dtype=np.float32))  # placed on the devices as pmap wants it
    return lambda: f(x).block_until_ready(), 20 if quick else 200


def all_gather_64mib(devices, quick):
    """all_gather over 4 devices of 16 MiB each: 64 MiB gathered on every device."""
    mesh = Mesh(np.array(devices[:4]), ("x",))
    f = jax.jit(jax.shard_map(lambda v: jax.lax.all_gather(v, "x", tiled=True), mesh=mesh,
                              in_specs=P("x"), out_specs=P("x")))
    x = jax.device_put(np.ones((4 * 4 * 2**20,), np.float32), NamedSharding(mesh, P("x")))
    return lambda: f(x).block_until_ready(), 2 if quick else 5


def mlp_step(count):
    """A data-parallel MLP train step (batch 512, 784-512-512-10, SGD) over `count` devices."""
    def make(devices, quick):
        params, x, y, step = mlp(512)
        mesh = Mesh(np.array(devices[:count]), ("data",))
        params = jax.device_put(params, NamedSharding(mesh, P()))
        x, y = jax.device_put((x, y), NamedSharding(mesh, P("data")))
        return lambda: jax.block_until_ready(step(params, x, y)), 3 if quick else 10
    return make


WORKLOADS = {
    "psum of a f32 scalar, 8 devices": psum_scalar,
    "all_gather 64 MiB, 4 devices": all_gather_64mib,
    "DP MLP train step, 2 devices": mlp_step(2),
    "DP MLP train step, 1 device": mlp_step(1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    print(f"{'workload':44s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s}")
    times = {}
    for name, make in WORKLOADS.items():
        for backend in ("cpu", "pyrt"):
            run, inner = make(jax.devices(backend), args.quick)
            times[name, backend] = timeit(run, rounds, inner)
        cpu, pyrt = times[name, "cpu"], times[name, "pyrt"]
        print(f"{name:44s} {cpu * 1e3:9.3f}ms {pyrt * 1e3:9.3f}ms {pyrt / cpu:6.2f}x",
              flush=True)
    one, two = (times[f"DP MLP train step, {n}", "pyrt"] for n in ("1 device", "2 devices"))
    print(f"pyrt: the DP step on 2 devices takes {two / one:.2f}x its time on 1 device")


if __name__ == "__main__":
    main()
