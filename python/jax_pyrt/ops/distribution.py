"""Distribution and effects (spec: replica_id, partition_id, all_gather, all_reduce,
reduce_scatter, all_to_all, collective_permute, collective_broadcast, after_all, create_token,
infeed, outfeed, send, recv).

A program over several devices runs one instance per device (its replica and partition ids in
the run's RunContext); collectives meet through the run's Communicator. At compile time each
collective's process groups are worked out as the spec defines them (cross_replica,
cross_partition, cross_replica_and_partition, flattened_ids), and at run time each device finds
its group and its place in it, exchanges its operands with the other members and computes its
own result from all of them, in group order. On one device (no communicator) a group is that
device alone. Where XLA:CPU differs from the spec (all_gather over a replica x partition grid
orders replica-major, collective_broadcast is unimplemented), pyrt follows the spec.

Tokens are None at run time. Ops that move data to or from the host (infeed, outfeed, send,
recv) need a host transfer channel pyrt does not have: they are compile-time errors.
"""

import functools

import numpy as np
from jaxlib.mlir import ir

from ..errors import InvalidProgramError, UnsupportedError
from .base import Constant, InContext, op

def _id_array(op_, name):
    """A 2-D integer attribute (replica_groups, source_target_pairs) as a NumPy array, or None
    if it is absent."""
    attr = op_.attr(name)
    if attr is None:
        return None
    if not isinstance(attr, ir.DenseIntElementsAttr):
        raise op_.unsupported(f"{name} = {attr} (pyrt supports dense id lists)")
    shape = tuple(ir.RankedTensorType(attr.type).shape)
    if 0 in shape:
        return np.zeros(shape, np.int64)
    dense = ir.DenseIntElementsAttr(attr)
    if dense.is_splat:
        return np.full(shape, np.asarray(dense).reshape(-1)[0], np.int64)
    return np.asarray(dense).astype(np.int64).reshape(shape)


def _channel(op_):
    handle = op_.attr("channel_handle")
    if handle is None:
        return 0
    text = str(handle)  # #stablehlo.channel_handle<handle = 1, type = 1>
    return int(text.split("handle =")[1].split(",")[0])


def process_groups(op_, strategy):
    """The op's process groups, lists of (replica, partition), as the spec defines `strategy`
    (cross_replica, cross_partition, cross_replica_and_partition, flattened_ids) on its
    replica_groups. No groups means one group of everything the strategy spans."""
    replicas, partitions = op_.context.num_replicas, op_.context.num_partitions
    ids = _id_array(op_, "replica_groups")
    groups = [] if ids is None or ids.size == 0 else [
        [int(i) for i in row if i >= 0] for row in ids.reshape(ids.shape[0], -1)]  # -1 pads
    span = {"cross_replica": replicas, "cross_partition": partitions,
            "cross_replica_and_partition": replicas,
            "flattened_ids": replicas * partitions}[strategy]
    if not groups:
        groups = [list(range(span))]
    _check_ids(op_, "replica_groups", ids, [i for group in groups for i in group], span)
    if strategy == "cross_replica":
        return [[(r, p) for r in group] for group in groups for p in range(partitions)]
    if strategy == "cross_partition":
        return [[(r, p) for p in group] for group in groups for r in range(replicas)]
    if strategy == "cross_replica_and_partition":
        return [[(r, p) for p in range(partitions) for r in group] for group in groups]
    return [[divmod(i, partitions) for i in group] for group in groups]


def _check_ids(op_, name, attribute, ids, span):
    if any(not 0 <= i < span for i in ids):
        context = op_.context
        where = f" (at {op_.location})" if op_.location else ""
        raise InvalidProgramError(
            f"pyrt: invalid program: {op_.name}{where}: {name} {attribute.tolist()} names ids "
            f"outside [0, {span}); the program is compiled for {context.num_replicas} replicas "
            f"x {context.num_partitions} partitions")


def _reduction_strategy(op_):
    """all_gather, all_reduce, reduce_scatter: the strategy their attributes select."""
    channel = _channel(op_)
    global_ids = op_.has("use_global_device_ids") and bool(op_.value("use_global_device_ids"))
    if global_ids:
        if channel <= 0:
            raise op_.unsupported("use_global_device_ids without a positive channel_id")
        return "flattened_ids"
    return "cross_replica_and_partition" if channel > 0 else "cross_replica"


def _membership(groups):
    """{(replica, partition): (group as a tuple, index in it)}."""
    members = {}
    for group in groups:
        for index, process in enumerate(group):
            members[process] = (tuple(group), index)
    return members


class Collective:
    """What a collective kernel does at run time: find this device's group and exchange values
    with its members (the runtime's error names the op and the user's line)."""

    def __init__(self, op_, groups):
        # The same in every process of a job: the runs of one program in several processes
        # match their exchanges by it.
        self.id = next(op_.context.collective_ids)
        self.members = _membership(groups)

    def gather(self, ctx, value):
        """(everyone's value in group order, my index); None if this device is in no group."""
        found = self.members.get((ctx.replica, ctx.partition))
        if found is None:
            return None
        group, index = found
        if len(group) == 1:
            return [value], 0
        if ctx.communicator is None:
            raise UnsupportedError(f"the program was compiled for one device, but this "
                                   f"collective's group has {len(group)} processes; compile "
                                   f"it for that many devices (num_replicas, num_partitions)")
        count = ctx.counters.get(self.id, 0)
        ctx.counters[self.id] = count + 1
        values = ctx.communicator.exchange((self.id, group, count), group, index, value,
                                           ctx.device)
        return values, index


def _convert(values, types):
    return tuple(np.asarray(v).astype(t.dtype, copy=False) for v, t in zip(values, types))


def _zeros(types):
    out = []
    for t in types:
        z = np.zeros(t.shape, t.dtype)
        z.setflags(write=False)
        out.append(z)
    return tuple(out)


def _reducer(op_):
    """The all_reduce / reduce_scatter computation on whole arrays: (a, b) -> a `op` b."""
    from .windows import vectorised_region  # region bodies run on whole arrays there
    body = vectorised_region(op_, 0, "computation")
    return lambda a, b: body(a, b)[0]


# -- ids

@op("stablehlo.replica_id", cost="data")
def replica_id(op_):
    """Spec: replica_id. The replica id of the device running the program (ui32)."""
    dtype = op_.result.dtype
    return InContext(lambda ctx: np.array(ctx.replica, dtype))


@op("stablehlo.partition_id", cost="data")
def partition_id(op_):
    """Spec: partition_id. The partition id of the device running the program (ui32)."""
    dtype = op_.result.dtype
    return InContext(lambda ctx: np.array(ctx.partition, dtype))


# -- collectives

@op("stablehlo.all_reduce")
def all_reduce(op_):
    """Spec: all_reduce. The group's operands, converted to the computation's type, reduced
    in group order (((x0 . x1) . x2) ...), the computation applied to whole arrays. Any number
    of operands (each reduced on its own)."""
    collective = Collective(op_, process_groups(op_, _reduction_strategy(op_)))
    types = op_.result_types
    reduce = _reducer(op_)

    def kernel(ctx, regions, *xs):
        xs = _convert(xs, types)
        found = collective.gather(ctx, xs)
        if found is None:
            return xs
        values, _ = found
        return tuple(functools.reduce(reduce, [v[i] for v in values]) for i in range(len(xs)))

    return InContext(kernel)


@op("stablehlo.cross-replica-sum")
def cross_replica_sum(op_):
    """XLA: cross-replica-sum (not in the spec): an all_reduce with add over the replica
    groups."""
    collective = Collective(op_, process_groups(op_, "cross_replica"))
    dtype = op_.result.dtype

    def kernel(ctx, x):
        x = np.asarray(x).astype(dtype, copy=False)
        found = collective.gather(ctx, x)
        return x if found is None else functools.reduce(np.add, found[0])

    return InContext(kernel)


@op("stablehlo.reduce_scatter")
def reduce_scatter(op_):
    """Spec: reduce_scatter. The group's reduction (as all_reduce), split along
    scatter_dimension into one part per member; each member keeps its own part."""
    groups = process_groups(op_, _reduction_strategy(op_))
    collective = Collective(op_, groups)
    types = op_.result_types
    dim = op_.int("scatter_dimension")
    reduce = _reducer(op_)

    def kernel(ctx, regions, x):
        x = np.asarray(x).astype(types[0].dtype, copy=False)
        found = collective.gather(ctx, x)
        if found is None:
            return (x,)
        values, index = found
        total = functools.reduce(reduce, values)
        return (np.split(total, len(values), axis=dim)[index],)

    return InContext(kernel)


@op("stablehlo.all_gather", cost="data")
def all_gather(op_):
    """Spec: all_gather. Each operand of every member, concatenated along all_gather_dim in
    group order. Any number of operands."""
    collective = Collective(op_, process_groups(op_, _reduction_strategy(op_)))
    types = op_.result_types
    dim = op_.int("all_gather_dim")

    def kernel(ctx, *xs):
        xs = _convert(xs, types)
        found = collective.gather(ctx, xs)
        out = xs if found is None else tuple(
            np.concatenate([v[i] for v in found[0]], axis=dim) for i in range(len(xs)))
        return out[0] if len(types) == 1 else out

    return InContext(kernel)


@op("stablehlo.all_to_all", cost="data")
def all_to_all(op_):
    """Spec: all_to_all. Each member splits its operands along split_dimension into
    split_count parts and sends part j to member j; the parts received are concatenated
    along concat_dimension in group order. Any number of operands."""
    strategy = "cross_partition" if _channel(op_) > 0 else "cross_replica"
    collective = Collective(op_, process_groups(op_, strategy))
    split, concat = op_.int("split_dimension"), op_.int("concat_dimension")
    count = op_.int("split_count")
    types = op_.result_types

    def kernel(ctx, *xs):
        parts = tuple(np.split(np.asarray(x), count, axis=split) for x in xs)
        found = collective.gather(ctx, parts)
        if found is None:
            out = tuple(np.asarray(x) for x in xs)
        else:
            values, index = found
            out = tuple(np.concatenate([v[i][index] for v in values], axis=concat)
                        for i in range(len(xs)))
        return out[0] if len(types) == 1 else out

    return InContext(kernel)


@op("stablehlo.collective_permute", cost="data")
def collective_permute(op_):
    """Spec: collective_permute. Each (source, target) pair of source_target_pairs (replica ids
    without a channel, partition ids with one) sends the source's operand to the target; a
    process nothing is sent to gets zeros."""
    replicas, partitions = op_.context.num_replicas, op_.context.num_partitions
    pairs = _id_array(op_, "source_target_pairs")
    pairs = np.zeros((0, 2), np.int64) if pairs is None else pairs.reshape(-1, 2)
    _check_ids(op_, "source_target_pairs", pairs, pairs.reshape(-1).tolist(),
               partitions if _channel(op_) > 0 else replicas)
    if _channel(op_) > 0:
        links = [((r, int(s)), (r, int(t))) for s, t in pairs for r in range(replicas)]
    else:
        links = [((int(s), p), (int(t), p)) for s, t in pairs for p in range(partitions)]
    # Everyone meets in one group per copy of the grid the links stay in (all processes).
    everyone = [(r, p) for r in range(replicas) for p in range(partitions)]
    collective = Collective(op_, [everyone])
    source_of = {target: source for source, target in links}
    order = {process: i for i, process in enumerate(everyone)}
    (zeros,) = _zeros(op_.result_types)

    def kernel(ctx, x):
        me = (ctx.replica, ctx.partition)
        if len(everyone) == 1:
            return x if me in source_of else zeros
        values, _ = collective.gather(ctx, np.asarray(x))
        source = source_of.get(me)
        return zeros if source is None else values[order[source]]

    return InContext(kernel)


@op("stablehlo.collective_broadcast")
def collective_broadcast(op_):
    """Spec: collective_broadcast. Every member of a group gets the operand of the group's
    first member; a process in no group gets zeros. (XLA:CPU does not implement this op.)"""
    strategy = "cross_partition" if _channel(op_) > 0 else "cross_replica"
    collective = Collective(op_, process_groups(op_, strategy))
    (zeros,) = _zeros(op_.result_types)

    def kernel(ctx, x):
        found = collective.gather(ctx, np.asarray(x))
        return zeros if found is None else found[0][0]

    return InContext(kernel)


# -- tokens and host transfers

@op("stablehlo.after_all", cost="data")
def after_all(op_):
    """Spec: after_all. Tokens carry only ordering, which pyrt's in-order execution keeps: None."""
    return Constant(None)


@op("stablehlo.create_token", cost="data")
def create_token(op_):
    """XLA: create_token (not in the spec; as after_all with no inputs). None."""
    return Constant(None)


def _host_transfer(op_):
    where = f" (at {op_.location})" if op_.location else ""
    raise UnsupportedError(f"{op_.name} is not supported by pyrt: it needs a host transfer "
                           f"channel, which pyrt does not have{where}")


@op("stablehlo.infeed")
def infeed(op_):
    """Spec: infeed. Not supported: needs a host transfer channel (compile-time error)."""
    _host_transfer(op_)


@op("stablehlo.outfeed")
def outfeed(op_):
    """Spec: outfeed. Not supported: needs a host transfer channel (compile-time error)."""
    _host_transfer(op_)


@op("stablehlo.send")
def send(op_):
    """Spec: send. Not supported: needs a host transfer channel (compile-time error)."""
    _host_transfer(op_)


@op("stablehlo.recv")
def recv(op_):
    """Spec: recv. Not supported: needs a host transfer channel (compile-time error)."""
    _host_transfer(op_)
