"""Distribution and effects (spec: replica_id, partition_id, all_gather, all_reduce,
reduce_scatter, all_to_all, collective_permute, collective_broadcast, after_all, create_token,
infeed, outfeed, send, recv).

pyrt runs single-device programs: one process, id 0, in a grid of one replica and one partition.
Collectives are implemented for that case, following the spec's semantics for process groups of
one (all_reduce of one operand is that operand converted to the result type, collective_permute
delivers zeros to a process nothing is sent to, ...). A program for more than one device
(module attributes mhlo.num_replicas * mhlo.num_partitions > 1, or replica groups naming other
processes) is a compile-time UnsupportedError. Tokens are None at run time. Ops that move data
to or from the host (infeed, outfeed, send, recv) need a host transfer channel pyrt does not
have: they are compile-time errors.
"""

import numpy as np
from jaxlib.mlir import ir

from .. import dtypes
from ..errors import UnsupportedError
from .base import Constant, InContext, op


def _where(op_):
    return f" at {op_.location}" if op_.location else ""


def _single_device(op_):
    """Raises unless the program runs on one device."""
    replicas, partitions = op_.context.num_replicas, op_.context.num_partitions
    if replicas * partitions > 1:
        raise UnsupportedError(
            f"{op_.name}{_where(op_)}: multi-device collectives are not supported yet (the "
            f"program has {replicas} replicas x {partitions} partitions; pyrt runs collectives "
            f"on one device only)")


def _id_array(op_, name):
    """A 2-D integer attribute (replica_groups, source_target_pairs) as a NumPy array, or None
    if it is absent or not a dense array (e.g. mesh-axes replica groups)."""
    attr = op_.attr(name)
    if attr is None or not isinstance(attr, ir.DenseIntElementsAttr):
        return None
    shape = tuple(ir.RankedTensorType(attr.type).shape)
    if 0 in shape:
        return np.zeros(shape, np.int64)
    dense = ir.DenseIntElementsAttr(attr)
    if dense.is_splat:
        return np.full(shape, np.asarray(dense).reshape(-1)[0], np.int64)
    return np.asarray(dense).astype(np.int64).reshape(shape)


def _in_group(op_):
    """True if process 0 is in one of the op's replica groups (all of which must be groups of
    process 0 alone); an empty replica_groups means one group of all processes."""
    _single_device(op_)
    groups = _id_array(op_, "replica_groups")
    if groups is None or groups.size == 0:
        return True
    ids = groups[groups >= 0]  # -1 pads ragged groups
    others = sorted(set(ids.tolist()) - {0})
    if others:
        raise UnsupportedError(
            f"{op_.name}{_where(op_)}: multi-device collectives are not supported yet "
            f"(replica_groups name processes {others}, but the program runs on one device)")
    return bool((ids == 0).any())


def _convert(values, types):
    return tuple(np.asarray(v).astype(t.dtype, copy=False) for v, t in zip(values, types))


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


# -- collectives (process groups of one)

def _check_group(op_, what):
    if not _in_group(op_):
        raise UnsupportedError(f"{op_.name}{_where(op_)}: process 0 is in none of the "
                               f"replica_groups, so the {what} is undefined")


@op("stablehlo.all_reduce")
def all_reduce(op_):
    """Spec: all_reduce. Single device only: over a group of one the reduction schedule is the
    operand itself, so each result is its operand (converted to the result element type); the
    reduction body is not applied. Any number of operands."""
    _check_group(op_, "result")
    types = op_.result_types
    return lambda regions, *xs: _convert(xs, types)


@op("stablehlo.cross-replica-sum")
def cross_replica_sum(op_):
    """XLA: cross-replica-sum (not in the spec). Single device only: a sum over a group of one
    is the operand."""
    _check_group(op_, "result")
    dtype = op_.result.dtype
    return lambda x: np.asarray(x).astype(dtype, copy=False)


@op("stablehlo.reduce_scatter")
def reduce_scatter(op_):
    """Spec: reduce_scatter. Single device only: over a group of one the result is the operand
    (converted to the result element type), scattered into one piece."""
    _check_group(op_, "result")
    types = op_.result_types
    return lambda regions, *xs: _convert(xs, types)


@op("stablehlo.all_gather", cost="data")
def all_gather(op_):
    """Spec: all_gather. Single device only: gathering from a group of one is the operand. Any
    number of operands."""
    _check_group(op_, "result")
    types = op_.result_types
    if len(types) == 1:
        dtype = types[0].dtype
        return lambda x: np.asarray(x).astype(dtype, copy=False)
    return lambda *xs: _convert(xs, types)


@op("stablehlo.all_to_all", cost="data")
def all_to_all(op_):
    """Spec: all_to_all. Single device only: split_count must be 1, and the result is the
    operand. Any number of operands."""
    _check_group(op_, "result")
    split_count = op_.int("split_count", 1)
    if split_count != 1:
        raise UnsupportedError(f"{op_.name}{_where(op_)}: multi-device collectives are not "
                               f"supported yet (split_count is {split_count})")
    types = op_.result_types
    if len(types) == 1:
        return lambda x: x
    return lambda *xs: tuple(xs)


@op("stablehlo.collective_permute", cost="data")
def collective_permute(op_):
    """Spec: collective_permute. Single device only: source_target_pairs may only name process
    0; the result is the operand if a pair (0, 0) sends it to itself, else zeros (a process
    nothing is sent to receives zeros, per spec)."""
    _single_device(op_)
    pairs = _id_array(op_, "source_target_pairs")
    pairs = np.zeros((0, 2), np.int64) if pairs is None else pairs
    others = sorted(set(pairs.reshape(-1).tolist()) - {0})
    if others:
        raise UnsupportedError(
            f"{op_.name}{_where(op_)}: multi-device collectives are not supported yet "
            f"(source_target_pairs name processes {others}, but the program runs on one device)")
    out = op_.result
    if pairs.size:
        return lambda x: x
    zeros = np.zeros(out.shape, out.dtype)
    zeros.setflags(write=False)
    return lambda x: zeros


@op("stablehlo.collective_broadcast")
def collective_broadcast(op_):
    """Spec: collective_broadcast. Single device only: in a group of one the result is the
    operand; a process in no group gets zeros, per spec."""
    out = op_.result
    if _in_group(op_):
        return lambda x: x
    zeros = np.zeros(out.shape, out.dtype)
    zeros.setflags(write=False)
    return lambda x: zeros


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
