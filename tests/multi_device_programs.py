"""Multi-device programs run on pyrt and on XLA:CPU in one process, compared value by value and
sharding by sharding. test_multi_device.py runs each family in a fresh process:

    python tests/multi_device_programs.py FAMILY DEVICES

with `PYRT_DEVICE_COUNT` and `jax_num_cpu_devices` both DEVICES (they must be set before JAX
makes its backends). It prints one JSON line: the cases run, the mismatches and errors, the
paths pyrt's partitioner chose (from its debug log), how often its helper process died (and was
restarted) and the buffers left on each pyrt device.
"""

import gc
import json
import logging
import os
import sys
import traceback

FAMILY, DEVICES = sys.argv[1], int(sys.argv[2])
os.environ["PYRT_DEVICE_COUNT"] = str(DEVICES)
os.environ.setdefault("PYRT_COLLECTIVE_TIMEOUT", "60")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

jax.config.update("jax_platforms", "pyrt,cpu")
jax.config.update("jax_num_cpu_devices", DEVICES)
N = DEVICES
report = {"cases": [], "problems": [], "paths": {"spmd": 0, "global": 0}}


class _PathCounter(logging.Handler):
    """Counts the partitioner's debug messages: which path each multi-device program took."""

    def emit(self, record):
        message = record.getMessage()
        if "as Shardy's per-device program" in message:
            report["paths"]["spmd"] += 1
        elif "runs as one global program" in message:
            report["paths"]["global"] += 1


_logger = logging.getLogger("jax_pyrt")
_logger.setLevel(logging.DEBUG)
_logger.addHandler(_PathCounter())


def _layout(array):
    """Which part of the global array each device id holds (None for a non-array leaf)."""
    if not isinstance(array, jax.Array):
        return None
    return sorted((d.id, str(index)) for d, index in
                  array.sharding.devices_indices_map(array.shape).items())


def _difference(got, want):
    """Where and how much two arrays differ, briefly."""
    differs = np.argwhere(np.asarray(got != want).reshape(got.shape))
    wide = np.complex128 if got.dtype.kind == "c" else np.float64
    error = np.abs(got.astype(wide) - want.astype(wide))
    return {"elements": len(differs), "first": differs[0].tolist() if len(differs) else None,
            "max_error": float(np.nanmax(error)) if error.size else 0.0,
            "got": got.reshape(-1)[:8].tolist(), "want": want.reshape(-1)[:8].tolist()}


def compare(name, make, rtol=0.0, atol=0.0):
    """make(devices) on pyrt and on CPU: the same values (exactly, unless a tolerance is given:
    float reductions in another order), the same layout of every result over device ids."""
    report["cases"].append(name)
    results = {}
    for platform in ("pyrt", "cpu"):
        try:
            results[platform] = make(jax.devices(platform))
        except Exception as e:  # noqa: BLE001 -- reported, the family goes on
            results[platform] = e
            if platform == "pyrt":
                traceback.print_exc()
    got, want = results["pyrt"], results["cpu"]
    if isinstance(got, Exception) or isinstance(want, Exception):
        report["problems"].append([name, "error", repr(got)[:800], repr(want)[:300]])
        return
    got_leaves, want_leaves = jax.tree.leaves(got), jax.tree.leaves(want)
    if len(got_leaves) != len(want_leaves):
        report["problems"].append([name, "structure", len(got_leaves), len(want_leaves)])
        return
    for i, (g, w) in enumerate(zip(got_leaves, want_leaves)):
        gv, wv = np.asarray(g), np.asarray(w)
        if gv.dtype != wv.dtype or gv.shape != wv.shape:
            report["problems"].append([name, f"result {i} type", f"{gv.dtype}{gv.shape}",
                                       f"{wv.dtype}{wv.shape}"])
        elif not (np.array_equal(gv, wv, equal_nan=gv.dtype.kind in "fc") if rtol == atol == 0
                  else np.allclose(gv, wv, rtol=rtol, atol=atol, equal_nan=True)):
            report["problems"].append([name, f"result {i} values", _difference(gv, wv)])
        if _layout(g) != _layout(w):
            report["problems"].append([name, f"result {i} sharding", _layout(g), _layout(w)])
    if isinstance(got_leaves[0], jax.Array) and \
            got_leaves[0].sharding.device_set - set(jax.devices("pyrt")):
        report["problems"].append([name, "not computed on pyrt"])


def expect(name, make, expected):
    """make(pyrt devices) against a NumPy oracle (the spec, where XLA:CPU has no answer)."""
    report["cases"].append(name)
    try:
        got = make(jax.devices("pyrt"))
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        report["problems"].append([name, "error", repr(e)[:800]])
        return
    for i, (g, w) in enumerate(zip(got, expected)):
        if not np.array_equal(np.asarray(g), np.asarray(w)):
            report["problems"].append([name, f"result {i}", np.asarray(g).tolist(),
                                       np.asarray(w).tolist()])


def mesh1(devices, name="x"):
    return Mesh(np.array(devices), (name,))


def mesh2(devices, names=("a", "b"), **kwargs):
    return Mesh(np.array(devices).reshape(2, N // 2), names, **kwargs)


X = np.arange(N * 8, dtype=np.float32).reshape(N, 8) - 3 * N
XI = np.arange(N * 8, dtype=np.int32).reshape(N, 8) * 7 % 23 - 11


# ------------------------------------------------------------------------------ collectives

def _region(op_name, element):
    return (f"({{\n    ^bb0(%a: tensor<{element}>, %b: tensor<{element}>):\n"
            f"      %m = {op_name} %a, %b : tensor<{element}>\n"
            f"      stablehlo.return %m : tensor<{element}>\n  }})")


def _run_module(devices, text, replicas, partitions, inputs):
    """Compiles `text` for a replicas x partitions grid of `devices` (device d runs replica
    d // partitions, partition d % partitions) and runs it on per-device inputs; returns, per
    output, the list of per-device NumPy results."""
    from jax._src.lib import xla_client

    options = xla_client.CompileOptions()
    options.num_replicas, options.num_partitions = replicas, partitions
    options.executable_build_options.use_spmd_partitioning = partitions > 1
    options.device_assignment = xla_client.DeviceAssignment.create(
        np.arange(replicas * partitions).reshape(replicas, partitions))
    devices = devices[:replicas * partitions]
    executable = devices[0].client.compile_and_load(
        text, xla_client.DeviceList(tuple(devices)), options)
    arguments = []
    for per_device in inputs:
        shards = [jax.device_put(x, d) for x, d in zip(per_device, devices)]
        shape = (len(devices) * shards[0].shape[0],) + shards[0].shape[1:]
        arguments.append(jax.make_array_from_single_device_arrays(
            shape, NamedSharding(mesh1(devices), P("x")), shards))
    outputs = executable.execute_sharded(arguments).disassemble_into_single_device_arrays()
    return [[np.asarray(o) for o in per_output] for per_output in outputs]


def _module(params, results, body, replicas, partitions):
    args = ", ".join(f"%{n}: {t}" for n, t in params)
    return (f"module @collectives attributes {{mhlo.num_replicas = {replicas} : i32, "
            f"mhlo.num_partitions = {partitions} : i32}} {{\n"
            f"  func.func public @main({args}) -> ({', '.join(results)}) {{\n{body}\n  }}\n}}")


def _groups(rows):
    rows = [list(r) for r in rows]
    return f"dense<{rows}> : tensor<{len(rows)}x{len(rows[0])}xi64>"


def family_collectives():
    t, ti, tb = "tensor<2x3xf32>", "tensor<2x3xi32>", "tensor<2x3xi1>"
    everyone = _groups([range(N)])
    halves = _groups([range(N // 2), range(N // 2, N)])
    pairs = _groups([range(i, i + 2) for i in range(0, N, 2)])
    reversed_all = _groups([reversed(range(N))])
    chain = [[i, i + 1] for i in range(N - 2)]  # device N-1 sends nothing, device 0 gets zeros
    chain_text = f"dense<{chain}> : tensor<{len(chain)}x2xi64>"
    body = f"""
    %sum = "stablehlo.all_reduce"(%x) <{{replica_groups = {everyone}}}> {_region('stablehlo.add', 'f32')} : ({t}) -> {t}
    %max = "stablehlo.all_reduce"(%x) <{{replica_groups = {halves}}}> {_region('stablehlo.maximum', 'f32')} : ({t}) -> {t}
    %prod = "stablehlo.all_reduce"(%i) <{{replica_groups = {pairs}}}> {_region('stablehlo.multiply', 'i32')} : ({ti}) -> {ti}
    %min = "stablehlo.all_reduce"(%i) <{{replica_groups = {everyone}}}> {_region('stablehlo.minimum', 'i32')} : ({ti}) -> {ti}
    %or = "stablehlo.all_reduce"(%p) <{{replica_groups = {halves}}}> {_region('stablehlo.or', 'i1')} : ({tb}) -> {tb}
    %and = "stablehlo.all_reduce"(%p) <{{replica_groups = {everyone}}}> {_region('stablehlo.and', 'i1')} : ({tb}) -> {tb}
    %twice = stablehlo.multiply %x, %x : {t}
    %two:2 = "stablehlo.all_reduce"(%x, %twice) <{{replica_groups = {halves}}}> {_region('stablehlo.add', 'f32')} : ({t}, {t}) -> ({t}, {t})
    %gather = "stablehlo.all_gather"(%x) <{{all_gather_dim = 1 : i64, replica_groups = {reversed_all}}}> : ({t}) -> tensor<2x{3 * N}xf32>
    %permute = "stablehlo.collective_permute"(%i) <{{source_target_pairs = {chain_text}}}> : ({ti}) -> {ti}
    %scatter = "stablehlo.reduce_scatter"(%i) <{{replica_groups = {pairs}, scatter_dimension = 0 : i64}}> {_region('stablehlo.add', 'i32')} : ({ti}) -> tensor<1x3xi32>
    %a2a = "stablehlo.all_to_all"(%x) <{{concat_dimension = 1 : i64, replica_groups = {pairs}, split_count = 2 : i64, split_dimension = 0 : i64}}> : ({t}) -> tensor<1x6xf32>
    %rid = stablehlo.replica_id : tensor<ui32>
    return %sum, %max, %prod, %min, %or, %and, %two#0, %two#1, %gather, %permute, %scatter, %a2a, %rid : {t}, {t}, {ti}, {ti}, {tb}, {tb}, {t}, {t}, tensor<2x{3 * N}xf32>, {ti}, tensor<1x3xi32>, tensor<1x6xf32>, tensor<ui32>"""
    results = [t, t, ti, ti, tb, tb, t, t, f"tensor<2x{3 * N}xf32>", ti, "tensor<1x3xi32>",
               "tensor<1x6xf32>", "tensor<ui32>"]
    text = _module([("x", t), ("i", ti), ("p", tb)], results, body, N, 1)
    rng = np.random.default_rng(0)
    inputs = [[rng.standard_normal((2, 3)).astype(np.float32) for _ in range(N)],
              [rng.integers(-5, 6, (2, 3)).astype(np.int32) for _ in range(N)],
              [rng.random((2, 3)) < 0.4 for _ in range(N)]]
    compare("cross_replica: every reduction, gather, permute, scatter, all_to_all",
            lambda d: _run_module(d, text, N, 1, inputs))

    # A reduction body other than the usual ones (XLA:CPU refuses them): applied in group
    # order, ((x0 - x1) - x2) - ..., as docs/ops.md says.
    body = f"""
    %sub = "stablehlo.all_reduce"(%i) <{{replica_groups = {everyone}}}> {_region('stablehlo.subtract', 'i32')} : ({ti}) -> {ti}
    return %sub : {ti}"""
    text = _module([("i", ti)], [ti], body, N, 1)
    difference = inputs[1][0]
    for x in inputs[1][1:]:
        difference = difference - x
    expect("all_reduce with another body (spec)",
           lambda d: _run_module(d, text, N, 1, [inputs[1]]), [[difference] * N])

    # A variadic all_to_all: each operand as on its own, per spec (XLA:CPU sends each operand
    # whole to one member instead, ignoring split_dimension).
    body = f"""
    %r:2 = "stablehlo.all_to_all"(%x, %i) <{{concat_dimension = 1 : i64, replica_groups = {pairs}, split_count = 2 : i64, split_dimension = 0 : i64}}> : ({t}, {ti}) -> (tensor<1x6xf32>, tensor<1x6xi32>)
    return %r#0, %r#1 : tensor<1x6xf32>, tensor<1x6xi32>"""
    text = _module([("x", t), ("i", ti)], ["tensor<1x6xf32>", "tensor<1x6xi32>"], body, N, 1)

    def exchanged(values):  # member j of each pair gets row j of both, side by side
        return [np.concatenate([values[d - d % 2][d % 2:d % 2 + 1],
                                values[d - d % 2 + 1][d % 2:d % 2 + 1]], axis=1)
                for d in range(N)]
    expect("variadic all_to_all (spec)", lambda d: _run_module(d, text, N, 1, inputs[:2]),
           [exchanged(inputs[0]), exchanged(inputs[1])])

    # Over partitions: cross_partition (all_to_all, collective_permute with a channel) and
    # flattened ids.
    cp, tp = "#stablehlo.channel_handle<handle = 1, type = 1>", "tensor<2xi32>"
    body = f"""
    %cross = "stablehlo.all_to_all"(%i) <{{channel_handle = {cp}, concat_dimension = 0 : i64, replica_groups = {pairs}, split_count = 2 : i64, split_dimension = 0 : i64}}> : ({tp}) -> {tp}
    %flat = "stablehlo.all_reduce"(%i) <{{channel_handle = {cp}, replica_groups = {pairs}, use_global_device_ids}}> {_region('stablehlo.maximum', 'i32')} : ({tp}) -> {tp}
    %gather = "stablehlo.all_gather"(%i) <{{all_gather_dim = 0 : i64, channel_handle = {cp}, replica_groups = {everyone}, use_global_device_ids}}> : ({tp}) -> tensor<{2 * N}xi32>
    %permute = "stablehlo.collective_permute"(%i) <{{channel_handle = {cp}, source_target_pairs = dense<[[0, {N - 1}], [{N - 1}, 0]]> : tensor<2x2xi64>}}> : ({tp}) -> {tp}
    return %cross, %flat, %gather, %permute : {tp}, {tp}, tensor<{2 * N}xi32>, {tp}"""
    text = _module([("i", tp)], [tp, tp, f"tensor<{2 * N}xi32>", tp], body, 1, N)
    inputs = [[np.array([d * 3 - 5, 7 - d], np.int32) for d in range(N)]]
    compare("cross_partition and flattened ids", lambda d: _run_module(d, text, 1, N, inputs))

    # A 2 x N/2 grid of replicas x partitions: cross_replica_and_partition.
    body = f"""
    %both = "stablehlo.all_reduce"(%i) <{{channel_handle = {cp}, replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>}}> {_region('stablehlo.add', 'i32')} : ({tp}) -> {tp}
    %rep = "stablehlo.all_reduce"(%i) <{{replica_groups = dense<[[0, 1]]> : tensor<1x2xi64>}}> {_region('stablehlo.add', 'i32')} : ({tp}) -> {tp}
    return %both, %rep : {tp}, {tp}"""
    text = _module([("i", tp)], [tp, tp], body, 2, N // 2)
    compare("cross_replica_and_partition on a 2 x N/2 grid",
            lambda d: _run_module(d, text, 2, N // 2, inputs))

    # The ids (XLA:CPU refuses partition_id outside a manual computation): the spec.
    body = """
    %rid = stablehlo.replica_id : tensor<ui32>
    %pid = stablehlo.partition_id : tensor<ui32>
    return %rid, %pid : tensor<ui32>, tensor<ui32>"""
    text = _module([("i", tp)], ["tensor<ui32>", "tensor<ui32>"], body, 2, N // 2)
    expect("replica_id and partition_id (spec)", lambda d: _run_module(d, text, 2, N // 2, inputs),
           [[d // (N // 2) for d in range(N)], [d % (N // 2) for d in range(N)]])

    # collective_broadcast (XLA:CPU does not implement it): the spec is the oracle.
    body = f"""
    %r = "stablehlo.collective_broadcast"(%i) <{{replica_groups = dense<[[1, 0]]> : tensor<1x2xi64>}}> : ({tp}) -> {tp}
    return %r : {tp}"""
    text = _module([("i", tp)], [tp], body, N, 1)
    expected = [[inputs[0][1], inputs[0][1]] + [np.zeros(2, np.int32)] * (N - 2)]
    expect("collective_broadcast (spec)", lambda d: _run_module(d, text, N, 1, inputs),
           expected)

    # all_gather over a replica x partition grid in group order, as the spec says (XLA:CPU
    # orders by device instead; docs/multi-device.md).
    body = f"""
    %g = "stablehlo.all_gather"(%i) <{{all_gather_dim = 0 : i64, channel_handle = {cp}, replica_groups = dense<[[1, 0]]> : tensor<1x2xi64>}}> : ({tp}) -> tensor<{2 * N}xi32>
    return %g : tensor<{2 * N}xi32>"""
    text = _module([("i", tp)], [f"tensor<{2 * N}xi32>"], body, 2, N // 2)
    # The group of replicas [1, 0] with every partition: (1, 0), (0, 0), (1, 1), (0, 1), ...
    order = [r * (N // 2) + p for p in range(N // 2) for r in (1, 0)]
    expected = [np.concatenate([inputs[0][d] for d in order])] * N
    expect("all_gather over replicas x partitions (spec order)",
           lambda d: _run_module(d, text, 2, N // 2, inputs), [expected])


# ------------------------------------------------------------------------------ pmap

def family_pmap():
    perm = [(i, (i + 1) % N) for i in range(N)]

    def pmapped(fn, *args, **kwargs):
        return lambda d: jax.pmap(fn, axis_name="i", devices=d, **kwargs)(*args)

    compare("pmap psum", pmapped(lambda v: jax.lax.psum(v, "i"), XI))
    compare("pmap pmean", pmapped(lambda v: jax.lax.pmean(v, "i"), X), rtol=1e-6)
    compare("pmap pmax pmin", pmapped(lambda v: (jax.lax.pmax(v, "i"), jax.lax.pmin(v, "i")), X))
    compare("pmap all_gather", pmapped(lambda v: jax.lax.all_gather(v, "i"), X))
    compare("pmap all_gather tiled", pmapped(lambda v: jax.lax.all_gather(v, "i", tiled=True), XI))
    compare("pmap ppermute", pmapped(lambda v: jax.lax.ppermute(v, "i", perm), X))
    compare("pmap partial ppermute", pmapped(lambda v: jax.lax.ppermute(v, "i", perm[:2]), XI))
    compare("pmap all_to_all",
            pmapped(lambda v: jax.lax.all_to_all(v.reshape(N, -1), "i", 0, 0), X))
    compare("pmap psum_scatter",
            pmapped(lambda v: jax.lax.psum_scatter(jnp.tile(v, N), "i", tiled=True), XI))
    compare("pmap axis_index", pmapped(lambda v: v * jax.lax.axis_index("i"), XI))
    compare("pmap in_axes out_axes", pmapped(lambda v, s: jax.lax.psum(v * s, "i"), X.T, 2.0,
                                             in_axes=(1, None), out_axes=1))
    compare("pmap grad of psum", pmapped(
        jax.grad(lambda v: jax.lax.psum(jnp.sum(jnp.sin(v) ** 2), "i")), X), rtol=1e-6)
    compare("pmap axis groups", pmapped(
        lambda v: jax.lax.psum(v, "i", axis_index_groups=[list(range(0, N, 2)),
                                                          list(range(1, N, 2))]), XI))

    def captured_constant(d):  # its partitioning kills the helper (a Shardy CHECK): retried
        const = jnp.arange(16, dtype=np.int32)
        return jax.pmap(lambda x: x + const[15], devices=d)(np.arange(N, dtype=np.int32))
    compare("pmap of a captured constant", captured_constant)
    compare("pmap over some devices", lambda d: jax.pmap(
        lambda v: jax.lax.psum(v, "i"), axis_name="i", devices=d[1:3])(XI[:2]))

    def chained(d):  # a pmap's output feeds the next: sharded arrays stay on their devices
        first = jax.pmap(lambda v: v * 2, devices=d)(X)
        return jax.pmap(lambda v: jax.lax.psum(v, "i"), axis_name="i", devices=d)(first)
    compare("pmap chained", chained)


# ------------------------------------------------------------------------------ shard_map

def family_shard_map():
    def run(fn, in_specs, out_specs, x=X, two=False):
        def make(d):
            mesh = mesh2(d) if two else mesh1(d)
            f = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs))
            return f(jax.device_put(x, NamedSharding(mesh, in_specs)))
        return make

    compare("shard_map psum", run(lambda v: jax.lax.psum(v.sum(0, keepdims=True), "x"),
                                  P("x"), P()), rtol=1e-6)
    compare("shard_map all_gather", run(lambda v: jax.lax.all_gather(v, "x", tiled=True),
                                        P("x"), P("x")))
    compare("shard_map ppermute", run(
        lambda v: jax.lax.ppermute(v, "x", [(i, (i + 3) % N) for i in range(N)]), P("x"),
        P("x")))
    compare("shard_map psum_scatter", run(
        lambda v: jax.lax.psum_scatter(v, "x", scatter_dimension=1, tiled=True), P("x"),
        P(None, "x"), x=XI))
    compare("shard_map all_to_all", run(
        lambda v: jax.lax.all_to_all(v, "x", 1, 1, tiled=True), P("x"), P("x"), x=XI))
    compare("shard_map gather in the body", run(
        lambda v: v[:, jnp.array([5, 0, 0])] * 2, P("x"), P("x"), x=XI))
    compare("shard_map axis_index", run(
        lambda v: v + jax.lax.axis_index("x"), P("x"), P("x"), x=XI))
    compare("shard_map 2-D mesh, one axis", run(
        lambda v: jax.lax.psum(v, "a"), P("a", "b"), P(None, "b"), x=XI, two=True))
    compare("shard_map 2-D mesh, both axes", run(
        lambda v: jax.lax.pmax(v, ("a", "b")), P("a", "b"), P(), x=X, two=True))

    def nested(d):  # manual over "a" only, automatic over "b"
        mesh = mesh2(d)
        inner = jax.shard_map(lambda u: jax.lax.psum(u, "a") * 2, mesh=mesh,
                              in_specs=P("a"), out_specs=P(), axis_names={"a"})
        return jax.jit(lambda v: inner(v) + 1)(jax.device_put(XI, NamedSharding(mesh,
                                                                                 P("a", "b"))))
    compare("shard_map in auto axes", nested)

    def grad(d):
        mesh = mesh1(d)
        f = jax.shard_map(lambda v: jax.lax.psum(jnp.sum(v ** 3), "x"), mesh=mesh,
                          in_specs=P("x"), out_specs=P())
        return jax.jit(jax.grad(f))(jax.device_put(X / 10, NamedSharding(mesh, P("x"))))
    compare("shard_map grad", grad, rtol=1e-6)


# ------------------------------------------------------------------------------ sharded jit

def family_sharded_jit():
    A = np.arange(64.0, dtype=np.float32).reshape(8, 8) / 7 - 4

    def on(mesh_of, spec, fn, x=A, **jit_kwargs):
        def make(d):
            mesh = mesh_of(d)
            return jax.jit(fn(mesh), **jit_kwargs)(jax.device_put(x, NamedSharding(mesh, spec)))
        return make

    compare("elementwise on a 2-D mesh", on(mesh2, P("a", "b"), lambda m: lambda a: a * 2 + 1))
    compare("matmul on a 2-D mesh", on(mesh2, P("a", "b"), lambda m: lambda a: a @ a.T + 1),
            rtol=1e-6)
    compare("contracting-sharded dot", on(mesh1, P(None, "x"), lambda m: lambda a: a @ a.T),
            rtol=1e-6)
    compare("sum over a sharded dim", on(mesh1, P("x"), lambda m: lambda a: a.sum(0)),
            rtol=1e-6, atol=1e-5)
    compare("unspecified out_shardings", on(mesh1, P("x"), lambda m: lambda a: (a.T, a[1:])))

    for spec in (P(None, "x"), P(), P("x")):
        compare(f"out_shardings {spec}", lambda d, spec=spec: jax.jit(
            lambda a: a * 2, out_shardings=NamedSharding(mesh1(d), spec))(
                jax.device_put(A, NamedSharding(mesh1(d), P("x")))))
    compare("with_sharding_constraint", on(mesh1, P("x"), lambda m: lambda a: (
        jax.lax.with_sharding_constraint(a * 3, NamedSharding(m, P(None, "x"))).sum(0))),
        rtol=1e-6, atol=1e-5)

    def explicit(d):
        mesh = jax.make_mesh((2, N // 2), ("a", "b"), devices=d,
                             axis_types=(AxisType.Explicit,) * 2)
        with jax.set_mesh(mesh):
            a = jax.device_put(A, P("a", "b"))
            return jax.jit(lambda a: jax.sharding.reshard(a * 3, P("b", None)))(a)
    compare("reshard (explicit axes)", explicit)
    compare("reshape into sub-axes", on(
        mesh1, P("x"), lambda m: lambda a: a.reshape(4, 4, 16) * 2,
        x=np.arange(256.0, dtype=np.float32).reshape(16, 16)))
    # sin: pyrt's is 1 ulp off XLA:CPU's at some arguments, on one device too (docs/ops.md).
    compare("compiled text of a sharded program", lambda d: np.array(["HloModule" in jax.jit(
        lambda a: jax.lax.with_sharding_constraint(a @ a.T, NamedSharding(mesh1(d), P(None, "x")))
    ).lower(jax.device_put(A, NamedSharding(mesh1(d), P("x")))).compile().as_text()]))
    def placed(d):  # compute_on2 marks its results with custom_call @annotate_device_placement
        from jax.experimental.compute_on import compute_on2

        mesh = jax.make_mesh((N,), ("x",), devices=d, axis_types=(AxisType.Explicit,))
        with jax.set_mesh(mesh):
            body = compute_on2(compute_type="tpu_sparsecore",
                               out_memory_spaces=jax.memory.Space.Device)(
                lambda w: jax.reshard(w, P("x")) * 2)
            return jax.jit(body)(jax.device_put(A, P()))
    compare("a memory placement annotation in a sharded program", placed)
    compare("replicated input", on(mesh1, P(), lambda m: lambda a: jnp.sin(a) * 2), rtol=1e-6)
    # XLA:CPU contracts a * b + 1 into a fused multiply-add in its sharded program (not on one
    # device, where pyrt matches it bit for bit): 1 ulp apart at some elements.
    compare("mixed: sharded and replicated arguments", lambda d: jax.jit(
        lambda a, b: a * b + 1)(jax.device_put(A, NamedSharding(mesh1(d), P("x"))),
                                jax.device_put(A[0], NamedSharding(mesh1(d), P()))), rtol=1e-6)


# ------------------------------------------------------------------------------ Shardy's defects

def family_shardy():
    """Programs Shardy's bundled partitioner gets wrong or dies on (multi-device-notes.md):
    pyrt must give XLA:CPU's values all the same."""
    A = np.arange(64.0, dtype=np.float32).reshape(8, 8) * 3 % 17 - 8

    def on(fn, spec=P("x"), x=A):
        return lambda d: jax.jit(fn)(jax.device_put(x, NamedSharding(mesh1(d), spec)))

    compare("max, min, prod over a sharded dim", on(lambda a: (a.max(0), a.min(0), a.prod(0))))
    compare("argmax over a sharded dim", on(lambda a: (jnp.argmax(a, 0), jnp.argmin(a, 0))))
    compare("all/any over a sharded dim", on(lambda a: ((a > 0).all(0), (a > 7).any(0))))
    compare("padded value reduced", on(lambda a: jnp.concatenate([a[0], a[0, :3]]).sum(),
                                       spec=P("x")))
    compare("cumsum along a sharded dim", on(lambda a: jnp.cumsum(a, 0)), rtol=1e-6)
    compare("gather on a sharded dim", on(lambda a: a[jnp.array([3, 0, 7, 7])]))
    compare("random.normal with a constraint", lambda d: jax.jit(lambda k: (
        jax.lax.with_sharding_constraint(jax.random.normal(jax.random.wrap_key_data(k), (8, 8)),
                                         NamedSharding(mesh1(d), P("x")))))(
        jax.device_put(jax.random.key_data(jax.random.key(0)), NamedSharding(mesh1(d), P()))),
        rtol=1e-6)
    compare("while loop", on(lambda a: jax.lax.fori_loop(0, 3, lambda i, v: v * 2 + i, a)))

    def manual_in_global(d):  # the max makes it global; the shard_map body runs per device
        mesh = mesh1(d)
        body = jax.shard_map(lambda u: u * jax.lax.axis_index("x") + jax.lax.psum(u, "x"),
                             mesh=mesh, in_specs=P("x"), out_specs=P("x"))
        return jax.jit(lambda a: (body(a).max(0), body(a)))(
            jax.device_put(A, NamedSharding(mesh, P("x"))))
    compare("shard_map in a program run on global arrays", manual_in_global)

    def unreduced(d):  # Shardy reduces an unreduced value twice
        mesh = jax.make_mesh((2, N // 2), ("x", "y"), devices=d,
                             axis_types=(AxisType.Explicit,) * 2)
        with jax.set_mesh(mesh):
            a = jax.device_put(np.arange(4 * N, dtype=np.int32).reshape(4, N // 2, 2),
                               P("x", "y", None))
            out = jax.jit(lambda a: jax.lax.reduce_sum(
                a, axes=(0, 1), out_sharding=P(None, unreduced={"x"})))(a)
            return jax.sharding.reshard(out, P(None))
    compare("unreduced result, then resharded", unreduced)

    # Shardy's later passes fail on these; the global path keeps the propagated shardings.
    def dynamic_slice(d):  # the per-device dynamic_slice would be larger than its operand
        mesh = Mesh(np.array(d[:8]).reshape(2, 2, 2), ("x", "y", "z")) if N >= 8 else mesh2(d)
        spec = P("x", "y", "z") if N >= 8 else P("a", "b")
        a = jax.device_put(np.arange(32.0, dtype=np.float32).reshape(4, 4, 2),
                           NamedSharding(mesh, spec))
        return jax.jit(lambda a, i: a[i] * 2)(a, jnp.array(0))
    compare("dynamic_slice on a sharded array", dynamic_slice)

    def changed_abstract_mesh(d):  # a constraint over another mesh of the same devices
        mesh = jax.make_mesh((2, 2), ("x", "y"), devices=d[:4],
                             axis_types=(AxisType.Auto,) * 2)
        with jax.set_mesh(mesh):
            def f(x):
                other = mesh.abstract_mesh.update(axis_sizes=(4, 1), axis_names=("a", "b"))
                with jax.sharding.use_abstract_mesh(other):
                    return jax.lax.with_sharding_constraint(jnp.abs(x), P(("a", "b"))) * 2
            return jax.jit(f)(jax.device_put(np.arange(16.0, dtype=np.float32).reshape(8, 2),
                                             P("x", "y")))
    compare("a constraint over a changed abstract mesh", changed_abstract_mesh)

    def shards(array):  # what each device holds: unreduced parts are not a global value
        return [np.asarray(s.data) for s in sorted(array.addressable_shards,
                                                   key=lambda s: s.device.id)]

    def explicit_mesh(d, shape=(N,), names=("x",)):
        return jax.make_mesh(shape, names, devices=d, axis_types=(AxisType.Explicit,) * len(shape))

    def matmul_unreduced(d):  # each device keeps its own partial product, as in XLA
        mesh = explicit_mesh(d, (2, N // 2), ("x", "y"))
        a = np.arange(2.0 * N, dtype=np.float32).reshape(2, N)
        b = np.arange(2.0 * N, dtype=np.float32).reshape(N, 2)
        with jax.set_mesh(mesh):
            f = jax.jit(jax.shard_map(lambda a, b: a @ b, in_specs=(P("x", "y"), P("y", None)),
                                      out_specs=P("x", None, unreduced={"y"})))
            out = f(jax.device_put(a, P("x", "y")), jax.device_put(b, P("y", None)))
            return shards(out), jax.sharding.reshard(out, P("x", None))
    compare("shard_map with an unreduced result", matmul_unreduced)

    def unreduced_operand(d):  # parts made by one program, summed by the next one's body
        mesh = explicit_mesh(d)
        with jax.set_mesh(mesh):
            parts = jax.jit(jax.shard_map(lambda v: v * 3, in_specs=P("x"),
                                          out_specs=P(unreduced={"x"})))(
                jax.device_put(np.arange(2 * N, dtype=np.int32), P("x")))
            total = jax.jit(jax.shard_map(lambda v: jax.lax.psum(v, "x") + v, in_specs=P(
                unreduced={"x"}), out_specs=P("x"), check_vma=False))(parts)
            # check_vma=False: each device returns its own part as its "replica", kept as is
            own = jax.jit(jax.shard_map(lambda v: v, in_specs=P(unreduced={"x"}),
                                        out_specs=P(), check_vma=False))(parts)
            return shards(parts), total, shards(own)
    compare("shard_map taking an unreduced operand", unreduced_operand)

    compare("sharded func.call results", on(jax.jit(lambda a: jax.jit(jnp.sin)(a) * 2)),
            rtol=1e-6)  # sin: 1 ulp, as on one device
    compare("gather on an unsharded dim", on(lambda a: a[:, jnp.array([3, 0, 7, 7])]))


# ------------------------------------------------------------------------------ arrays

def family_arrays():
    A = np.arange(64.0, dtype=np.float32).reshape(8, 8)

    def put(d):
        arrays = [jax.device_put(A, NamedSharding(mesh2(d), P("a", "b"))),
                  jax.device_put(A, NamedSharding(mesh1(d), P(None, "x"))),
                  jax.device_put(A, NamedSharding(mesh1(d), P()))]
        return [[np.asarray(s.data) for s in x.addressable_shards] for x in arrays] + arrays
    compare("sharded device_put: every shard", put)

    def from_callback(d):
        sharding = NamedSharding(mesh2(d), P("a", "b"))
        array = jax.make_array_from_callback((8, 8), sharding, lambda index: A[index])
        return jax.jit(lambda a: a.sum(1))(array)
    compare("make_array_from_callback", from_callback, rtol=1e-6)

    def from_single(d):
        parts = [jax.device_put(A[i * 8 // N:(i + 1) * 8 // N], dev) for i, dev in enumerate(d)]
        array = jax.make_array_from_single_device_arrays(
            (8, 8), NamedSharding(mesh1(d), P("x")), parts)
        return jax.jit(lambda a: a.T @ a)(array)
    compare("make_array_from_single_device_arrays", from_single, rtol=1e-6)

    def donate(d):
        a = jax.device_put(A, NamedSharding(mesh1(d), P("x")))
        r = jax.jit(lambda a: a + 1, donate_argnums=0)(a)
        if not a.is_deleted():
            raise AssertionError("the donated sharded array is still alive")
        return r
    compare("donation of a sharded array", donate)

    def copies(d):
        a = jax.device_put(A, d[0])
        b = jax.device_put(a, d[N - 1])
        c = jax.device_put(b, NamedSharding(mesh1(d), P(None, "x")))
        e = jax.device_put(c, NamedSharding(mesh1(d), P("x")))
        return jax.jit(lambda u: u * 2)(b), c, e, jax.device_put(e, d[1])
    compare("device-to-device copies and resharding", copies)

    def assignment(d):
        mesh = mesh2(d)
        compiled = jax.jit(lambda a: a * 2).lower(
            jax.device_put(A, NamedSharding(mesh, P("a", "b")))).compile()
        ids = [dev.id for dev in compiled.runtime_executable().local_devices()]
        return np.array(ids), np.array([dev.id for dev in compiled.input_shardings[0][0]
                                        ._device_assignment])
    compare("device assignment", assignment)


# ------------------------------------------------------------------------------ training

def family_training():
    import flax.linen as nn
    import optax

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(1)(nn.relu(nn.Dense(32)(x)))

    rng = np.random.RandomState(0)
    data, target = rng.randn(64, 16).astype(np.float32), rng.randn(64, 1).astype(np.float32)

    def data_parallel(d):
        mesh, model, optimizer = mesh1(d, "data"), MLP(), optax.adam(1e-2)
        with jax.default_device(d[0]):
            params = model.init(jax.random.PRNGKey(0), data[:1])
        params = jax.device_put(params, NamedSharding(mesh, P()))
        state = optimizer.init(params)

        @jax.jit
        def step(params, state, x, y):
            loss, grads = jax.value_and_grad(
                lambda p: ((model.apply(p, x) - y) ** 2).mean())(params)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state, loss

        x = jax.device_put(data, NamedSharding(mesh, P("data")))
        y = jax.device_put(target, NamedSharding(mesh, P("data")))
        losses = []
        for _ in range(20):
            params, state, loss = step(params, state, x, y)
            losses.append(loss)
        return params, losses
    compare("data parallel: flax MLP + adam, 20 steps", data_parallel, rtol=1e-5, atol=1e-6)

    def model_parallel(d):
        mesh, optimizer = mesh2(d, ("data", "model")), optax.sgd(0.1)
        r = np.random.RandomState(1)
        params = (jax.device_put(r.randn(16, 32).astype(np.float32) * .1,
                                 NamedSharding(mesh, P(None, "model"))),
                  jax.device_put(r.randn(32, 1).astype(np.float32) * .1,
                                 NamedSharding(mesh, P("model", None))))
        x = jax.device_put(data, NamedSharding(mesh, P("data")))
        y = jax.device_put(target, NamedSharding(mesh, P("data")))
        state = optimizer.init(params)

        @jax.jit
        def step(params, state):
            def loss(p):
                return ((jnp.tanh(x @ p[0]) @ p[1] - y) ** 2).mean()
            value, grads = jax.value_and_grad(loss)(params)
            updates, state = optimizer.update(grads, state)
            return optax.apply_updates(params, updates), state, value

        losses = []
        for _ in range(20):
            params, state, value = step(params, state)
            losses.append(value)
        return params, losses
    compare("model parallel: sharded weights + sgd, 20 steps", model_parallel, rtol=1e-5,
            atol=1e-6)


# ------------------------------------------------------------------------------ failures

def family_failures():
    """A device whose program fails: the others stop at their collective with an error naming
    it and the failed device, quickly (not after the timeout); the next run works."""
    import time

    def callback(v):
        if v[0, 0] >= 8 * (N // 2):
            raise ValueError("bad shard")
        return v * 2

    def make(d):
        mesh = mesh1(d)

        def body(u):
            u = jax.pure_callback(callback, jax.ShapeDtypeStruct(u.shape, u.dtype), u)
            return jax.lax.psum(u, "x")
        return jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("x"), out_specs=P()))

    devices = jax.devices("pyrt")
    f = make(devices)
    x = jax.device_put(np.arange(N * 8.0, dtype=np.float32).reshape(N, 8),
                       NamedSharding(mesh1(devices), P("x")))
    start = time.monotonic()
    report["cases"].append("failure propagation")
    try:
        f(x).block_until_ready()
        report["problems"].append(["failure propagation", "no error"])
    except Exception as e:  # noqa: BLE001
        message = str(e)
        report["failure"] = {"message": message[:1000], "seconds": time.monotonic() - start}
    compare("the run after a failed run", lambda d: make(d)(
        jax.device_put(np.arange(N * 8.0, dtype=np.float32).reshape(N, 8) % 8,
                       NamedSharding(mesh1(d), P("x")))))
    from jax_pyrt import communicator
    report["communicators_left"] = len(communicator.runs)


# ------------------------------------------------------------------------------ main

def live_buffers():
    import jax_pyrt
    return [jax_pyrt.memory_stats(d)["live_arrays"] for d in jax.devices("pyrt")]


if __name__ == "__main__":
    before = live_buffers()
    globals()[f"family_{FAMILY}"]()
    jax.clear_caches()
    gc.collect()
    report["leaked"] = [n - b for n, b in zip(live_buffers(), before)]
    from jax_pyrt.partitioning import partitioner
    report["partitioner_deaths"] = partitioner.crashes
    print(json.dumps(report))
