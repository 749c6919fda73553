"""One process of a multi-process run (tests/test_multi_process.py), or the single process that
holds all of its devices: runs the same programs either way and, in process 0, writes every
result as a whole array (gathered from all processes) to an .npz file.

    python multi_process_programs.py OUT.npz single          # one process, all devices
    python multi_process_programs.py OUT.npz ports N ID PORT  # process ID of N, started alone
    mpiexec -n N python multi_process_programs.py OUT.npz mpirun
    python multi_process_programs.py OUT.npz dies N ID PORT   # process 1 dies before a psum
    python multi_process_programs.py OUT.npz raises N ID PORT # process 1's part raises

The platform and the device count per process come from JAX_PLATFORMS and PYRT_DEVICE_COUNT
(or XLA_FLAGS for the CPU backend).
"""

import functools
import os
import sys
import time

import numpy as np


def connect(mode, args):
    import jax

    if mode in ("ports", "dies", "raises"):
        count, index, port = map(int, args)
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}",
                                   num_processes=count, process_id=index,
                                   initialization_timeout=60)
    elif mode == "mpirun":
        jax.distributed.initialize(cluster_detection_method="mpi4py")


def programs():
    """{name: global result as a NumPy array}."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import io_callback, multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    devices = jax.devices()
    n = len(devices)
    mesh = Mesh(np.array(devices), ("x",))
    rows = NamedSharding(mesh, P("x"))
    host = (np.arange(n * 4 * 6, dtype=np.float32).reshape(n * 4, 6) * 0.37 - 3).astype(np.float32)
    x = jax.make_array_from_callback(host.shape, rows, lambda index: host[index])
    whole = functools.partial(multihost_utils.process_allgather, tiled=True)
    out = {}

    def collective(name, body, out_specs=P("x")):
        f = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"), out_specs=out_specs))
        out[name] = whole(f(x))

    collective("psum", lambda a: jax.lax.psum(a, "x"))
    collective("pmax", lambda a: jax.lax.pmax(a, "x"))
    collective("pmean", lambda a: jax.lax.pmean(a, "x"))
    collective("all_gather", lambda a: jax.lax.all_gather(a, "x", tiled=True))
    collective("psum_scatter", lambda a: jax.lax.psum_scatter(
        jnp.tile(a, (n, 1)), "x", scatter_dimension=0, tiled=True))
    collective("all_to_all", lambda a: jax.lax.all_to_all(a, "x", 0, 0, tiled=True))
    collective("ppermute", lambda a: jax.lax.ppermute(
        a, "x", [(i, (i + 1) % n) for i in range(n)]))
    collective("axis_index", lambda a: a + jax.lax.axis_index("x").astype(a.dtype))

    # Sharded jit: XLA-style partitioning of ordinary programs over global arrays.
    w = jnp.asarray(np.linspace(-1, 1, 6 * 5, dtype=np.float32).reshape(6, 5))
    out["jit_matmul"] = whole(jax.jit(lambda a, b: jnp.tanh(a @ b))(x, w))
    out["jit_sum"] = np.asarray(jax.jit(lambda a: jnp.sum(a * a, axis=0))(x))
    out["jit_reshard"] = whole(jax.jit(lambda a: a.T * 2, out_shardings=NamedSharding(
        mesh, P(None, "x")))(x))

    # pmap: each process maps over its own devices; psum spans all of them.
    local = np.array([[d.id, 2 * d.id, 1] for d in jax.local_devices()], np.float32)
    mapped = jax.pmap(lambda v: jax.lax.psum(v, "i") + v, axis_name="i")(local)
    out["pmap"] = whole(np.asarray(mapped))

    # multihost_utils and process-local data (what differs per process is the same in one
    # process holding all devices).
    mine = np.array([d.id for d in jax.local_devices()], np.int32)
    out["process_allgather"] = multihost_utils.process_allgather(mine, tiled=True)
    out["broadcast_one_to_all"] = multihost_utils.broadcast_one_to_all(
        np.array([100 + 5 * jax.process_index()], np.int32))
    multihost_utils.sync_global_devices("pyrt multi-process test")
    local_rows = host.reshape(jax.process_count(), -1, 6)[jax.process_index()]
    made = jax.make_array_from_process_local_data(rows, local_rows)
    out["from_process_local_data"] = np.asarray(jax.jit(lambda a: jnp.sum(a, axis=0))(made))
    back = multihost_utils.global_array_to_host_local_array(x, mesh, P("x"))
    out["host_local_roundtrip"] = whole(multihost_utils.host_local_array_to_global_array(
        back, mesh, P("x")))
    out["training"] = training(mesh, rows, host)

    # A host callback in a sharded jit runs once, on device 0 (process 0), with the whole array.
    seen = []

    def collect(v):
        seen.append(np.asarray(v))
        return v

    jax.block_until_ready(jax.jit(lambda a: io_callback(
        collect, jax.ShapeDtypeStruct(a.shape, a.dtype), a) * 2)(x))
    out["io_callback_seen"] = np.stack(seen) if jax.process_index() == 0 else None

    # A program on the last process's devices only: the others have nothing to run.
    last = [d for d in devices if d.process_index == jax.process_count() - 1]
    small = Mesh(np.array(last), ("x",))
    eight = np.arange(8, dtype=np.float32)
    y = jax.make_array_from_callback((8,), NamedSharding(small, P("x")),
                                     lambda index: eight[index], dtype=np.float32)
    total = jax.jit(lambda a: jnp.sum(a * 2), out_shardings=NamedSharding(small, P()))(y)
    mine = np.asarray(total.addressable_data(0)) if total.addressable_shards else np.float32(0)
    out["no_local_devices"] = multihost_utils.broadcast_one_to_all(
        mine, is_source=jax.process_index() == jax.process_count() - 1)
    return out


def training(mesh, rows, host):
    """Three data-parallel steps of a flax MLP with optax's Adam: losses, then the parameters."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import NamedSharding, PartitionSpec as P

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, v):
            return nn.Dense(1)(nn.relu(nn.Dense(16)(v)))

    model, optimizer = MLP(), optax.adam(1e-2)
    params = model.init(jax.random.key(0), jnp.zeros((1, 6)))
    state = optimizer.init(params)
    batch = jax.make_array_from_callback(host.shape, rows, lambda index: host[index])
    labels = jax.make_array_from_callback((host.shape[0], 1), rows,
                                          lambda index: host[index][:, :1] * 0.5)

    @functools.partial(jax.jit, out_shardings=(NamedSharding(mesh, P()),) * 3)
    def step(params, state, v, y):
        loss, grads = jax.value_and_grad(
            lambda p: jnp.mean((model.apply(p, v) - y) ** 2))(params)
        updates, state = optimizer.update(grads, state)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(3):
        params, state, loss = step(params, state, batch, labels)
        losses.append(np.asarray(loss))
    leaves = [np.asarray(leaf).ravel() for leaf in jax.tree.leaves(params)]
    return np.concatenate([np.array(losses).ravel()] + leaves)


def fails(mode):
    """After a psum that works, process 1 dies (`dies`) or its part of the next one raises
    (`raises`): the others must fail, not hang, and keep no buffer."""
    import jax
    from jax.sharding import Mesh, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()), ("x",))
    x = jax.device_put(np.ones((len(jax.devices()), 2), np.float32),
                       jax.sharding.NamedSharding(mesh, P("x")))

    def check(a):
        if jax.process_index() == 1:
            raise ValueError("process 1 refuses")
        return a

    def body(a):
        if mode == "raises":
            a = jax.pure_callback(check, jax.ShapeDtypeStruct(a.shape, a.dtype), a)
        return jax.lax.psum(a, "x")

    f = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"), out_specs=P("x")))
    if mode == "dies":
        f(x).block_until_ready()  # all processes there: the job works
        if jax.process_index() == 1:
            os._exit(17)
    start = time.monotonic()
    try:
        f(x).block_until_ready()
    except Exception as e:  # noqa: BLE001 - the error is the result
        seconds = time.monotonic() - start
        del x
        # The device's worker lets go of the run's inputs just after the error is out.
        for _ in range(50):
            live = [d.memory_stats()["pool_bytes"] for d in jax.local_devices()]
            if not any(live):
                break
            time.sleep(0.1)
        print(f"FAILED after {seconds:.1f} s, live arrays {live}: {e}", flush=True)
        leave(mode, 0)
    print("NO ERROR", flush=True)
    leave(mode, 1)


def leave(mode, code):
    """Exits without jax.distributed's shutdown, which would wait for a dead process; process
    0, which serves jax.distributed, last (the others end when it does)."""
    import jax
    from jax._src import distributed

    if mode == "raises":  # everyone is alive: they leave together
        distributed.global_state.client.wait_at_barrier("leave", 60_000)
    if jax.process_index() == 0:
        time.sleep(5)
    os._exit(code)


def main():
    path, mode, *args = sys.argv[1:]
    connect(mode, args)
    if mode in ("dies", "raises"):
        fails(mode)
    import jax

    results = programs()
    if jax.process_index() == 0:
        np.savez(path, **results)
    print("done", flush=True)


if __name__ == "__main__":
    main()
