"""The partitioner process: runs Shardy, JAX's SPMD partitioner, on global programs.

    python -m jax_pyrt.partition_worker

Shardy's passes can kill the process that runs them (CHECK failures, a segfault on a gather over
a sharded dimension), so pyrt runs them here, in a process of their own that jax_pyrt.partitioning
starts and restarts. Requests and answers are pickles, each preceded by its length (8 bytes,
little-endian), on stdin and stdout:

    request:  (the global module: portable artifact or MLIR text, number of partitions,
               plain: whether to leave out sdy-resolve-permutation-factors)
    answer:   ("ok", MLIR text of the per-device module, why global or "",
               [argument sharding], [result sharding])   # each sharding: an sdy text or None
              ("error", message)

The per-device module has local shapes and StableHLO collectives with replica_groups (the
manual computations of shard_map and pmap inlined). `why global`, if not empty, says why pyrt
must run the global program instead: a program shape Shardy is known to mishandle, a known
miscompile the module shows (for example an add all_reduce after a max reduce), or a failure
of the passes after propagation. The shardings are propagated ones whenever propagation ran.
It imports only jaxlib and jax_pyrt.contexts.
"""

import pickle
import struct
import sys

from jax_pyrt import contexts
from jax_pyrt.contexts import nested_operations, new_context

# Shardy from JAX's lowering to per-device programs (docs/multi-device.md): sdy-insert-explicit-
# reshards needs enable-full-version (else a contracting-sharded dot crashes),
# sdy-resolve-permutation-factors avoids a crash on cumsum, sdy-import-func-calls handles
# sharded calls.
PROPAGATE = ("builtin.module(func.func(chlo-legalize-to-stablehlo), sdy-propagation-pipeline, "
             "sdy-close-shardings)")
RESHARD = ("builtin.module(func.func(sdy-insert-explicit-reshards{enable-full-version=true}), "
           "sdy-resolve-permutation-factors, func.func(sdy-reshard-to-collectives), "
           "func.func(sdy-pad-for-divisibility), sdy-import-func-calls, "
           "func.func(sdy-sink-data-flow-edges), symbol-dce)")
# sdy-resolve-permutation-factors itself aborts on some programs (a CHECK on pmap constants,
# histograms): they get a second try without it.
RESHARD_PLAIN = RESHARD.replace("sdy-resolve-permutation-factors, ", "")
TO_LOCAL = "builtin.module(sdy-convert-global-to-local, sdy-export-named-computations)"


def _read(stream):
    header = stream.read(8)
    if len(header) < 8:
        return None
    (size,) = struct.unpack("<Q", header)
    return pickle.loads(stream.read(size))


def _write(stream, obj):
    data = pickle.dumps(obj)
    stream.write(struct.pack("<Q", len(data)) + data)
    stream.flush()


def _body_op(operation):
    """The name of the single op a reduction body applies, or None."""
    ops = [o.operation for o in operation.regions[0].blocks[0].operations]
    return ops[0].name if len(ops) == 2 else None


def _count(module, name):
    return sum(op.name == name for op in nested_operations(module.operation))


def _suspect(module, user_permutes):
    """A known Shardy miscompile in the partitioned module, described, or ''. Shardy makes the
    all_reduce that finishes a reduction over a sharded dimension an add, whatever the
    reduction (max, min, product, and, argmax); and the collective_permutes it inserts to
    reshard can send to the wrong devices (seen moving an axis of 4 between dimensions of a
    2 x 4 mesh), so any beyond the program's own (`user_permutes`) are suspect too."""
    if _count(module, "stablehlo.collective_permute") > user_permutes:
        return "Shardy inserted a collective_permute to reshard"
    for op in nested_operations(module.operation):
        if op.name != "stablehlo.all_reduce":
            continue
        for operand in op.operands:
            owner = operand.owner
            owner = getattr(owner, "operation", owner)
            if getattr(owner, "name", "") != "stablehlo.reduce":
                continue
            reduce_body, all_reduce_body = _body_op(owner), _body_op(op)
            if len(owner.results) != 1 or reduce_body != all_reduce_body:
                return (f"an all_reduce applying {all_reduce_body} finishes a reduce applying "
                        f"{reduce_body or 'a composite body'}")
    return ""


def _devices_per_dim(sharding, meshes):
    """For each dimension of a TensorShardingAttr, over how many devices it is split."""
    from jaxlib.mlir.dialects import sdy

    names, sizes, _ = meshes.get(str(sharding.mesh_or_ref).lstrip("@"), ((), (), None))
    mesh = dict(zip(names, sizes))
    counts = []
    for dim_sharding in sharding.dimension_shardings:
        devices = 1
        for axis in sdy.DimensionShardingAttr(dim_sharding).axes:
            axis = sdy.AxisRefAttr(axis)
            info = axis.sub_axis_info
            devices *= sdy.SubAxisInfoAttr(info).size if info is not None else \
                mesh.get(axis.name, 1)
        counts.append(devices)
    return counts


def _value_shardings(op):
    """[(result, TensorShardingAttr)] of an op carrying sdy.sharding."""
    from jaxlib.mlir.dialects import sdy

    if "sdy.sharding" not in op.attributes:
        return []
    per_value = sdy.TensorShardingPerValueAttr(op.attributes["sdy.sharding"])
    return [(r, sdy.TensorShardingAttr(s)) for r, s in zip(op.results, per_value.shardings)]


def _argument_shardings(module):
    """[(argument, TensorShardingAttr)] of @main's arguments that carry an sdy.sharding."""
    from jaxlib.mlir.dialects import sdy

    main = contexts.main_function(module)
    return [(arg, sdy.TensorShardingAttr(a)) for arg, a in zip(
        main.regions[0].blocks[0].arguments,
        contexts.value_attributes(main, "arg_attrs", "sdy.sharding")) if a is not None]


def _indexes_sharded_dimension(module, ir):
    """'' unless a gather or scatter indexes (start_index_map, scattered_dims_to_operand_dims)
    a dimension of its operand that is sharded, described: Shardy's partitioned gather then
    clamps the indices with bounds from uninitialized memory (wrong values, or a crash)."""
    from jaxlib.mlir.dialects import stablehlo

    meshes = contexts.meshes(module)
    shardings = dict(_argument_shardings(module))
    for op in nested_operations(module.operation):
        shardings.update(_value_shardings(op))
    for op in nested_operations(module.operation):
        if op.name == "stablehlo.gather":
            dims = stablehlo.GatherDimensionNumbers(
                op.attributes["dimension_numbers"]).start_index_map
        elif op.name == "stablehlo.scatter":
            dims = stablehlo.ScatterDimensionNumbers(
                op.attributes["scatter_dimension_numbers"]).scattered_dims_to_operand_dims
        else:
            continue
        sharding = shardings.get(op.operands[0])
        if sharding is None:
            continue
        counts = _devices_per_dim(sharding, meshes)
        if any(counts[d] > 1 for d in dims if d < len(counts)):
            return f"a {op.name[len('stablehlo.'):]} indexing a sharded dimension"
    return ""


def _not_divisible(module, ir):
    """'' if every sharded dimension divides evenly among its devices, else a description (Shardy
    pads such values, and a reduction afterwards adds the padding in)."""
    meshes = contexts.meshes(module)

    def check(sharding, shape, where):
        for dim, devices in zip(shape, _devices_per_dim(sharding, meshes)):
            if devices > 1 and dim % devices:
                return f"{where}: a dimension of {dim} sharded over {devices} devices"
        return ""

    for arg, sharding in _argument_shardings(module):
        if isinstance(arg.type, ir.RankedTensorType):
            found = check(sharding, ir.RankedTensorType(arg.type).shape, "an argument")
            if found:
                return found
    for op in nested_operations(module.operation):
        for result, sharding in _value_shardings(op):
            if isinstance(result.type, ir.RankedTensorType):
                found = check(sharding, ir.RankedTensorType(result.type).shape, op.name)
                if found:
                    return found
    return ""


def _localize_loop_arguments(module, ir):
    """Gives while-loop region block arguments their local types, from the loop's shardings:
    Shardy's global-to-local conversion converts the loop's operands but not them."""
    meshes = contexts.meshes(module)
    for op in nested_operations(module.operation):
        if op.name != "stablehlo.while":
            continue
        shardings = dict(_value_shardings(op))
        for region in op.regions:
            for arg, result in zip(region.blocks[0].arguments, op.results):
                sharding = shardings.get(result)
                if sharding is None or not isinstance(arg.type, ir.RankedTensorType):
                    continue
                t = ir.RankedTensorType(arg.type)
                counts = _devices_per_dim(sharding, meshes)
                shape = [-(-n // c) for n, c in zip(t.shape, counts)]
                arg.set_type(ir.RankedTensorType.get(shape, t.element_type, t.encoding))


def partition(artifact, partitions, plain=False):
    from jaxlib.mlir import ir, passmanager
    from jaxlib.mlir._mlir_libs import _stablehlo

    context = new_context()
    with context, ir.Location.unknown():
        if artifact.startswith(b"ML\xefR"):
            module = _stablehlo.deserialize_portable_artifact(context, artifact)
        else:
            module = ir.Module.parse(artifact.decode(), context)
        passmanager.PassManager.parse(PROPAGATE).run(module.operation)
        # The bundled Shardy reduces unreduced values more than once (or not at all).
        unreduced = ("unreduced shardings" if "unreduced=" in
                     module.operation.get_asm(large_elements_limit=16) else "")
        main = contexts.main_function(module)
        arguments = contexts.sdy_shardings(main, "arg_attrs")
        results = contexts.sdy_shardings(main, "res_attrs")
        risky = (unreduced or _not_divisible(module, ir) or
                 _indexes_sharded_dimension(module, ir))
        if risky:  # pyrt runs the global program: no need to partition (or to risk a crash)
            return "", f"{risky}, which Shardy mishandles", arguments, results
        permutes = _count(module, "stablehlo.collective_permute")
        try:
            passmanager.PassManager.parse(RESHARD_PLAIN if plain else RESHARD).run(
                module.operation)
            _localize_loop_arguments(module, ir)
            passmanager.PassManager.parse(TO_LOCAL).run(module.operation)
        except Exception as e:  # e.g. a per-device dynamic_slice larger than its operand
            return "", f"Shardy failed to partition it: {type(e).__name__}: {e}", arguments, \
                results
        suspect = _suspect(module, permutes)
        if suspect:
            return "", f"Shardy's program shows a known miscompile: {suspect}", arguments, \
                results
        text = module.operation.get_asm(enable_debug_info=True)
    return text, "", arguments, results


def main():
    from jaxlib.mlir._mlir_libs import _stablehlo

    _stablehlo.register_stablehlo_passes()
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the answer stream
    while True:
        request = _read(stdin)
        if request is None:
            return
        try:
            answer = ("ok",) + partition(*request)
        except Exception as e:
            answer = ("error", f"{type(e).__name__}: {e}")
        _write(stdout, answer)


if __name__ == "__main__":
    main()
