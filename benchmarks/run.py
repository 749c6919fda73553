"""pyrt vs XLA:CPU on the same workloads, in one process, printed as time ratios.

    python benchmarks/run.py            # all workloads
    python benchmarks/run.py --quick    # fewer repeats (CI smoke)
    python benchmarks/run.py matmul     # workloads whose name contains "matmul"

Each workload is timed on the `cpu` and `pyrt` backends with identical inputs; the number is
the median of several timed rounds after a warm-up (compilation excluded). Ratio = pyrt / cpu.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

WORKLOADS = {}


def workload(name):
    def register(fn):
        WORKLOADS[name] = fn
        return fn
    return register


def timeit(run, rounds, inner):
    run()  # warm-up: compile, allocate
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(inner):
            run()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


@workload("tiny dispatch (x + 1, f32 scalar)")
def tiny_dispatch(device, quick):
    f = jax.jit(lambda x: x + 1)
    x = jax.device_put(np.float32(1), device)
    return lambda: f(x).block_until_ready(), 200 if quick else 2000


@workload("device_put + readback, 64 MiB f32")
def round_trip(device, quick):
    host = np.random.default_rng(0).random(16 * 2**20, dtype=np.float32)
    return lambda: np.asarray(jax.device_put(host, device)), 3 if quick else 10


@workload("matmul 1024x1024 f32")
def matmul(device, quick):
    rng = np.random.default_rng(0)
    a, b = (jax.device_put(rng.random((1024, 1024), dtype=np.float32), device) for _ in range(2))
    f = jax.jit(lambda a, b: a @ b)
    return lambda: f(a, b).block_until_ready(), 3 if quick else 10


@workload("elementwise chain, 4M f32")
def elementwise_chain(device, quick):
    x = jax.device_put(np.random.default_rng(0).random(4 * 2**20, dtype=np.float32), device)
    f = jax.jit(lambda x: jnp.tanh(x * 2.0 + 1.0) * x - jnp.exp(-x))
    return lambda: f(x).block_until_ready(), 3 if quick else 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("filter", nargs="?", default="")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    devices = {"cpu": jax.devices("cpu")[0], "pyrt": jax.devices("pyrt")[0]}
    print(f"{'workload':40s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s}")
    for name, make in WORKLOADS.items():
        if args.filter not in name:
            continue
        times = {}
        for backend, device in devices.items():
            run, inner = make(device, args.quick)
            times[backend] = timeit(run, rounds, inner)
        ratio = times["pyrt"] / times["cpu"]
        print(f"{name:40s} {times['cpu'] * 1e3:9.3f}ms {times['pyrt'] * 1e3:9.3f}ms {ratio:6.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
