"""Sharding annotations and manual computations (Shardy `sdy` dialect).

Annotations do not move data within a device. A manual computation (a shard_map or pmap
body) is met here only in a program that runs as one global program
(docs/multi-device.md): its body then runs once per device, each on a thread of its own with
that device's part of the operands, and its collectives meet as a run's devices do.
"""

import threading

import numpy as np
from jaxlib.mlir.dialects import sdy

from ..communicator import Communicator
from ..errors import ExecutionError
from ..contexts import meshes
from ..partitioning import DeviceParts, assemble, hlo_sharding
from .base import InContext, RunContext, op


@op("sdy.sharding_constraint", "sdy.reshard", cost="data")
def sharding_constraint(op_):
    """Shardy: sharding_constraint / reshard. The identity within one device."""
    return lambda x: x


@op("sdy.manual_computation", cost="data")
def manual_computation(op_):
    """Shardy: manual_computation (shard_map, pmap) in a program run on global arrays. The
    body runs on each of the program's devices (one thread each, partition_id the device's
    logical id), on its part of each operand under in_shardings; the results are put
    together under out_shardings (the parts of an unreduced one add up), and each device's
    own parts are kept for the run (partitioning.DeviceParts)."""
    devices = op_.context.num_replicas * op_.context.num_partitions
    if op_.context.num_replicas > 1:
        raise op_.unsupported("replicas (pyrt runs manual computations over partitions)")
    table = meshes(op_.context.module)
    context = op_.operation.context

    def shardings(name, types):
        values = sdy.TensorShardingPerValueAttr(op_.attr(name)).shardings
        return [hlo_sharding(str(s), table, len(t.shape), context)
                for s, t in zip(values, types)]

    ins = shardings("in_shardings", op_.operand_types)
    outs = shardings("out_shardings", op_.result_types)
    out_types = op_.result_types
    local_in = [tuple(a.type.shape) for a in op_.operation.regions[0].blocks[0].arguments]

    def kernel(ctx, regions, *operands):
        (body,) = regions
        kept = ctx.device_parts or DeviceParts()
        parts = [kept.split(s, np.asarray(x), devices) for s, x in zip(ins, operands)]
        communicator = Communicator(devices)
        results, errors = [None] * devices, [None] * devices

        def run(device):
            try:
                local = [np.asarray(p[device]).reshape(shape)
                         for p, shape in zip(parts, local_in)]
                results[device] = body(RunContext(ctx.device, 0, device, communicator), *local)
            except BaseException as e:  # the others must not wait for this device
                errors[device] = e
                communicator.fail(device, e)

        threads = [threading.Thread(target=run, args=(d,), daemon=True) for d in range(devices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        failed = next((e for e in errors if e is not None), None)
        if failed is not None:
            if isinstance(failed, ExecutionError):
                raise failed
            raise ExecutionError(f"{type(failed).__name__}: {failed}") from failed
        out = []
        for i, (sharding, t) in enumerate(zip(outs, out_types)):
            pieces = {d: results[d][i] for d in range(devices)}
            out.append(assemble(sharding, t.shape, t.dtype, pieces, devices))
            kept.keep(out[-1], sharding, pieces)
        return tuple(out)  # (an op with regions returns a sequence)

    return InContext(kernel, regions_take_context=True)
