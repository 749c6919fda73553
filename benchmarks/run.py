"""pyrt vs XLA:CPU on the same workloads, in one process, printed as time ratios.

    python benchmarks/run.py            # all workloads
    python benchmarks/run.py --quick    # fewer repeats (CI smoke)
    python benchmarks/run.py matmul     # workloads whose name contains "matmul"
    python benchmarks/run.py --sweeps --plot docs/benchmark-sweeps.png   # the sweeps

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


def chain(x):
    return jnp.tanh(x * 2.0 + 1.0) * x - jnp.exp(-x)


@workload("elementwise chain, 4M f32")
def elementwise_chain(device, quick):
    x = jax.device_put(np.random.default_rng(0).random(4 * 2**20, dtype=np.float32), device)
    f = jax.jit(chain)
    return lambda: f(x).block_until_ready(), 3 if quick else 10


@workload("conv2d 16x64x64x32 (NHWC), 3x3 -> 64, f32")
def conv2d(device, quick):
    rng = np.random.default_rng(0)
    x = jax.device_put(rng.random((16, 64, 64, 32), dtype=np.float32), device)
    w = jax.device_put(rng.random((3, 3, 32, 64), dtype=np.float32), device)
    f = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return lambda: f(x, w).block_until_ready(), 2 if quick else 5


@workload("sort 1M f32")
def sort(device, quick):
    x = jax.device_put(np.random.default_rng(0).random(2**20, dtype=np.float32), device)
    f = jax.jit(jnp.sort)
    return lambda: f(x).block_until_ready(), 2 if quick else 5


@workload("scatter-add 1M updates into 1M f32")
def scatter_add(device, quick):
    rng = np.random.default_rng(0)
    x = jax.device_put(np.zeros(2**20, np.float32), device)
    idx = jax.device_put(rng.integers(0, 2**20, 2**20, dtype=np.int32), device)
    upd = jax.device_put(rng.random(2**20, dtype=np.float32), device)
    f = jax.jit(lambda x, i, u: x.at[i].add(u))
    return lambda: f(x, idx, upd).block_until_ready(), 2 if quick else 5


@workload("rfft 2^20 f32")
def rfft(device, quick):
    x = jax.device_put(np.random.default_rng(0).random(2**20, dtype=np.float32), device)
    f = jax.jit(jnp.fft.rfft)
    return lambda: f(x).block_until_ready(), 2 if quick else 5


@workload("max pool 2x2/2 on 16x64x64x32 f32")
def max_pool(device, quick):
    x = jax.device_put(np.random.default_rng(0).random((16, 64, 64, 32), dtype=np.float32), device)
    f = jax.jit(lambda x: jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1),
                                                (1, 2, 2, 1), "VALID"))
    return lambda: f(x).block_until_ready(), 2 if quick else 5


def mlp(batch):
    """A 784-512-512-10 MLP: (parameters, a batch of inputs and labels, its jitted SGD step)."""
    rng = np.random.default_rng(0)
    sizes = [784, 512, 512, 10]
    params = [(rng.standard_normal((m, n), dtype=np.float32) / np.sqrt(m), np.zeros(n, np.float32))
              for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)

    def loss(params, x, y):
        for w, b in params[:-1]:
            x = jax.nn.relu(x @ w + b)
        logits = x @ params[-1][0] + params[-1][1]
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1).mean()

    @jax.jit
    def step(params, x, y):
        grads = jax.grad(loss)(params, x, y)
        return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)

    return params, x, y, step


@workload("MLP train step (batch 256, 784-512-512-10, SGD), f32")
def mlp_train_step(device, quick):
    params, x, y, step = mlp(256)
    params, x, y = jax.device_put((params, x, y), device)
    return lambda: jax.block_until_ready(step(params, x, y)), 3 if quick else 10


@workload("transformer block forward (8x128x256, 4 heads), f32")
def transformer_forward(device, quick):
    rng = np.random.default_rng(0)
    B, T, D, H = 8, 128, 256, 4
    n = lambda *s: rng.standard_normal(s, dtype=np.float32) / np.float32(np.sqrt(s[0]))
    p = {"w_qkv": n(D, 3 * D), "w_o": n(D, D), "w_1": n(D, 4 * D), "w_2": n(4 * D, D),
         "g1": np.ones(D, np.float32), "g2": np.ones(D, np.float32)}
    x = rng.standard_normal((B, T, D), dtype=np.float32)

    def norm(x, g):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5) * g

    @jax.jit
    def block(p, x):
        q, k, v = jnp.split(norm(x, p["g1"]) @ p["w_qkv"], 3, axis=-1)
        heads = lambda t: t.reshape(B, T, H, D // H).transpose(0, 2, 1, 3)
        s = heads(q) @ heads(k).transpose(0, 1, 3, 2) / np.float32(np.sqrt(D // H))
        s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -1e9)
        a = (jax.nn.softmax(s, axis=-1) @ heads(v)).transpose(0, 2, 1, 3).reshape(B, T, D)
        x = x + a @ p["w_o"]
        return x + jax.nn.gelu(norm(x, p["g2"]) @ p["w_1"]) @ p["w_2"]

    p, x = jax.device_put((p, x), device)
    return lambda: block(p, x).block_until_ready(), 3 if quick else 10


@workload("layer norm + GELU, 4096x1024 f32")
def layer_norm_gelu(device, quick):
    rng = np.random.default_rng(0)
    x, g, b = (jax.device_put(a, device) for a in (
        rng.standard_normal((4096, 1024), dtype=np.float32),
        rng.standard_normal(1024, dtype=np.float32), rng.standard_normal(1024, dtype=np.float32)))

    @jax.jit
    def f(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return jax.nn.gelu((x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b)

    return lambda: f(x, g, b).block_until_ready(), 3 if quick else 10


@workload("softmax over 65536, 64 rows f32")
def softmax(device, quick):
    x = jax.device_put(np.random.default_rng(0).standard_normal((64, 65536), dtype=np.float32),
                       device)
    f = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    return lambda: f(x).block_until_ready(), 3 if quick else 10


@workload("Adam update, 10M f32 parameters")
def adam(device, quick):
    rng = np.random.default_rng(0)
    p, g = (jax.device_put(rng.standard_normal(10 * 2**20, dtype=np.float32), device)
            for _ in range(2))
    m, v = (jax.device_put(np.zeros(10 * 2**20, np.float32), device) for _ in range(2))

    @jax.jit
    def update(p, g, m, v, t):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = 1e-3 * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        return p - step, m, v

    t = jax.device_put(np.float32(3), device)
    return lambda: jax.block_until_ready(update(p, g, m, v, t)), 2 if quick else 5


def program_of(ops):
    """A program of about `ops` StableHLO ops (dot, add, tanh, multiply: 7 ops a layer)."""
    def f(x, w):
        for i in range(max(1, ops // 7)):
            x = jnp.tanh(x @ w + i) * 0.5
        return x
    return f


def compile_ops(ops):
    """Times compiling (not tracing or lowering) a program of `ops` ops: each round compiles
    a new variant, so that neither backend's caches answer."""
    def make(device, quick):
        x, w = (jax.device_put(np.eye(8, dtype=np.float32), device) for _ in range(2))
        rounds = 3 if quick else 7
        variants = [jax.jit(lambda x, w, k=k: program_of(ops)(x, w) + k).lower(x, w)
                    for k in range(rounds + 1)]
        return lambda: variants.pop().compile(), 1
    return make


workload("compile a 400-op program")(compile_ops(400))


def copy_bandwidth():
    """Bytes per second NumPy copies on this machine (read + write), on 64 MiB."""
    a = np.ones(16 * 2**20, np.float32)
    b = np.empty_like(a)
    return 2 * a.nbytes / timeit(lambda: np.copyto(b, a), 5, 3)


def size_sweep(devices, quick):
    """The elementwise chain from 1K to 16M elements, with the memory-bandwidth floor: the
    bytes it must move (read x, write the result) at the measured copy bandwidth."""
    bandwidth = copy_bandwidth()
    print(f"\nelementwise chain by size (copy bandwidth {bandwidth / 1e9:.1f} GB/s)")
    print(f"{'elements':>10s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s} {'floor':>11s}")
    rows = []
    for exponent in range(10, 25, 4 if quick else 2):
        n = 2**exponent
        x = np.random.default_rng(0).random(n, dtype=np.float32)
        times = {}
        for backend, device in devices.items():
            xd, f = jax.device_put(x, device), jax.jit(chain)
            times[backend] = timeit(lambda: f(xd).block_until_ready(), 3 if quick else 7,
                                    max(1, 2**20 // n))
        floor = 2 * x.nbytes / bandwidth
        rows.append((n, times["cpu"], times["pyrt"], floor))
        print(f"{n:10d} {times['cpu'] * 1e3:9.3f}ms {times['pyrt'] * 1e3:9.3f}ms "
              f"{times['pyrt'] / times['cpu']:6.2f}x {floor * 1e3:9.3f}ms", flush=True)
    return rows


def compile_sweep(devices, quick):
    """Compile time against program size: it should grow linearly."""
    print("\ncompile time by program size")
    print(f"{'ops':>10s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s}")
    rows = []
    for ops in ((100, 1000) if quick else (100, 1000, 10000)):
        times = {}
        for backend, device in devices.items():
            run, _ = compile_ops(ops)(device, True)
            times[backend] = timeit(run, 3, 1)
        rows.append((ops, times["cpu"], times["pyrt"]))
        print(f"{ops:10d} {times['cpu'] * 1e3:9.1f}ms {times['pyrt'] * 1e3:9.1f}ms "
              f"{times['pyrt'] / times['cpu']:6.2f}x", flush=True)
    return rows


def plot(sizes, compiles, path):
    """Both sweeps side by side, as a PNG (matplotlib: a benchmark-only dependency)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    n = [r[0] for r in sizes]
    left.loglog(n, [r[1] * 1e3 for r in sizes], "o-", label="XLA:CPU")
    left.loglog(n, [r[2] * 1e3 for r in sizes], "o-", label="pyrt")
    left.loglog(n, [r[3] * 1e3 for r in sizes], "k--", label="memory-bandwidth floor")
    left.set(title="elementwise chain", xlabel="elements", ylabel="ms")
    ops = [r[0] for r in compiles]
    right.loglog(ops, [r[1] * 1e3 for r in compiles], "o-", label="XLA:CPU")
    right.loglog(ops, [r[2] * 1e3 for r in compiles], "o-", label="pyrt")
    right.set(title="compile time", xlabel="StableHLO ops", ylabel="ms")
    for axes in (left, right):
        axes.legend()
        axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"\nplotted to {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("filter", nargs="?", default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sweeps", action="store_true",
                        help="also sweep the elementwise chain's size and the program size")
    parser.add_argument("--plot", metavar="PNG", help="plot the sweeps (needs matplotlib)")
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    devices = {"cpu": jax.devices("cpu")[0], "pyrt": jax.devices("pyrt")[0]}
    print(f"{'workload':44s} {'cpu':>11s} {'pyrt':>11s} {'ratio':>7s}")
    failed = []
    for name, make in WORKLOADS.items():
        if args.filter not in name:
            continue
        times = {}
        try:
            for backend, device in devices.items():
                run, inner = make(device, args.quick)
                times[backend] = timeit(run, rounds, inner)
        except jax.errors.JaxRuntimeError as e:  # an op pyrt does not support yet
            failed.append(name)
            print(f"{name:44s} failed: {str(e).splitlines()[0][:80]}", flush=True)
            continue
        ratio = times["pyrt"] / times["cpu"]
        print(f"{name:44s} {times['cpu'] * 1e3:9.3f}ms {times['pyrt'] * 1e3:9.3f}ms {ratio:6.2f}x",
              flush=True)
    if args.sweeps or args.plot:
        sizes, compiles = size_sweep(devices, args.quick), compile_sweep(devices, args.quick)
        if args.plot:
            plot(sizes, compiles, args.plot)
    if failed:
        raise SystemExit(f"{len(failed)} workload(s) failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
