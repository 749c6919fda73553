"""pyrt vs XLA:CPU across 2 processes on this machine (jax.distributed on 127.0.0.1), one
device per process: pyrt's collectives on MPI, XLA:CPU's on gloo.

    python benchmarks/multi_process.py [--quick]

Starts two processes per backend (this script with --worker); timing as in run.py, in process
0: median of rounds after a warm-up; ratio = pyrt / cpu.
"""

import argparse
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROCESSES = 2


def all_reduce(nbytes):
    def make(quick):
        import jax
        import numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        mesh = Mesh(np.array(jax.devices()), ("x",))
        f = jax.jit(jax.shard_map(lambda v: jax.lax.psum(v, "x"), mesh=mesh, in_specs=P("x"),
                                  out_specs=P("x")))
        host = np.ones(nbytes // 4 * len(jax.devices()), np.float32)
        x = jax.make_array_from_callback(host.shape, NamedSharding(mesh, P("x")),
                                         lambda index: host[index])
        return lambda: f(x).block_until_ready(), 20 if nbytes < 2**20 else 2
    return make


def mlp_step(quick):
    """The data-parallel MLP step of multi_device.py (batch 512, 784-512-512-10, SGD), with the
    batch split between the processes."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from run import mlp

    params, x, y, step = mlp(512)
    mesh = Mesh(np.array(jax.devices()), ("data",))

    def place(value, spec):  # device_put of host data would compare it across processes first
        return jax.make_array_from_callback(value.shape, NamedSharding(mesh, spec),
                                            lambda index: value[index])

    params = jax.tree.map(lambda p: place(p, P()), params)
    x, y = place(x, P("data")), place(y, P("data"))
    return lambda: jax.block_until_ready(step(params, x, y)), 3 if quick else 10


WORKLOADS = {
    "all_reduce 1 KiB, 2 processes": all_reduce(1024),
    "all_reduce 64 MiB, 2 processes": all_reduce(64 * 2**20),
    "DP MLP train step, 2 processes": mlp_step,
}


def worker(index, port, quick):
    import jax

    sys.path.insert(0, HERE)
    from run import timeit

    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                               num_processes=PROCESSES, process_id=index)
    for name, make in WORKLOADS.items():
        run, inner = make(quick)
        seconds = timeit(run, 3 if quick else 7, inner)
        if index == 0:
            print(f"{name}\t{seconds}", flush=True)
    os._exit(0)  # skip jax.distributed's shutdown handshake: the timing is done


def run_backend(platform, quick):
    """{workload: seconds} of two processes on `platform`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    env.update(JAX_PLATFORMS=platform, PYRT_DEVICE_COUNT="1", UCX_NET_DEVICES="lo")
    if platform == "cpu":
        env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(i), str(port)] +
                              (["--quick"] if quick else []), env=env, stdout=subprocess.PIPE,
                              text=True) for i in range(PROCESSES)]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    if any(proc.returncode for proc in procs):
        sys.exit(f"the {platform} processes failed:\n" + "\n".join(outputs))
    return {name: float(seconds) for name, seconds in
            (line.split("\t") for line in outputs[0].splitlines() if "\t" in line)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("INDEX", "PORT"))
    args = parser.parse_args()
    if args.worker:
        return worker(*args.worker, args.quick)
    cpu, pyrt = run_backend("cpu", args.quick), run_backend("pyrt", args.quick)
    print(f"{'workload':44s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s}")
    for name in WORKLOADS:
        print(f"{name:44s} {cpu[name] * 1e3:9.3f}ms {pyrt[name] * 1e3:9.3f}ms "
              f"{pyrt[name] / cpu[name]:6.2f}x")


if __name__ == "__main__":
    main()
