"""Fusion of elementwise ops: a run of them computed block by block, on all cores.

One NumPy call per op makes a chain of elementwise ops read and write every intermediate
through main memory. The compiler (compiler.py) finds *groups*: runs of consecutive
elementwise ops of one block over one large shape, with only constants and broadcast views of
values from outside the run in between. A group becomes one kernel, `Fused`, which calls the
same per-op kernels as before on blocks of a few tens of KiB, so each block's intermediates
stay in cache, and spreads the blocks over the shared thread pool (NumPy's loops release the
GIL). The per-op kernels are elementwise, so each element gets exactly the value it got
before; only the values used after the group are ever whole arrays.
"""

import concurrent.futures
import os

import numpy as np
from jaxlib.mlir import ir

from .contexts import nested_operations
from .ops.base import Constant, InContext
from .types import to_type

# Groups over fewer elements run op by op as before: the blocks would not pay for themselves.
FUSE_ELEMENTS = 1 << 16
# Elements per block, measured: smaller blocks stay in cache but cost more in per-call overhead
# and in threads contending for the GIL (4M f32 chain, 2 cores: 2^14: 14.9 ms, 2^16: 7.0 ms,
# 2^18: 4.9 ms, 2^20: 14.8 ms; op by op: 9.2 ms).
BLOCK_ELEMENTS = 1 << 18

# The elementwise ops (ops/elementwise.py) that keep their operands' shape.
# bitcast_convert is left out: between widths it adds or drops a dimension.
_ELEMENTWISE = frozenset(
    "stablehlo." + name for name in """
    add subtract multiply divide remainder power maximum minimum and or xor not shift_left
    shift_right_arithmetic shift_right_logical popcnt count_leading_zeros negate abs sign ceil
    floor round_nearest_even round_nearest_afz sqrt rsqrt cbrt exponential
    exponential_minus_one log log_plus_one logistic sine cosine tan tanh is_finite complex real
    imag compare select clamp convert reduce_precision""".split())


def threads():
    """How many threads large kernels use (PYRT_THREADS, default: every core)."""
    count = os.environ.get("PYRT_THREADS", "")
    return max(1, int(count)) if count.isdigit() else os.cpu_count() or 1


_pool = None


def pool():
    """The thread pool every device shares (so N devices do not oversubscribe the cores)."""
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(threads() - 1 or 1,
                                                      thread_name_prefix="pyrt-block")
    return _pool


def _shape(value):
    t = value.type
    if not isinstance(t, ir.RankedTensorType) or not t.has_static_shape:
        return None
    return tuple(t.shape)


def _member_shape(operation, kernel):
    """The shape of a fusible op's result, or None if the op cannot join a group."""
    if (operation.name not in _ELEMENTWISE or len(operation.results) != 1 or operation.regions
            or isinstance(kernel, (Constant, InContext)) or not callable(kernel)):
        return None
    shape = _shape(operation.results[0])
    if shape is None or int(np.prod(shape, dtype=np.int64)) < FUSE_ELEMENTS:
        return None
    if any(_shape(v) not in (shape, ()) for v in operation.operands):
        return None
    return shape


def enabled():
    """Whether programs compiled now fuse (PYRT_FUSION=0 turns it off, to rule fusion out)."""
    return os.environ.get("PYRT_FUSION", "1") not in ("0", "false", "False")


def groups(operations, kernels):
    """[[op index, ...]] of the groups in one block's ops (in order, at least two each)."""
    found, members, shape, inside = [], [], None, set()
    if not enabled():
        return found

    def close():
        nonlocal members, shape, inside
        if len(members) >= 2:
            found.append(members)
        members, shape, inside = [], None, set()

    for i, (operation, kernel) in enumerate(zip(operations, kernels)):
        member_shape = _member_shape(operation, kernel)
        if member_shape is not None:
            if member_shape != shape:
                close()
            members.append(i)
            shape = member_shape
            inside.update(operation.results)
        elif members and (isinstance(kernel, Constant) or (
                operation.name == "stablehlo.broadcast_in_dim" and
                not any(v in inside for v in operation.operands))):
            continue  # a binding or a view of an outside value: emitted where it stands
        else:
            close()
    close()
    return found


class Fused:
    """The kernel of a group: `steps` are (kernel, operand slots, result slot, result dtype)
    over one block's environment, whose first slots are the group's inputs; the results at
    `output_slots` are written into whole arrays of `shape`. A step whose kernel is a bare
    ufunc writes into a buffer of its thread kept across blocks (or straight into the output
    array), so the blocks allocate nothing."""

    def __init__(self, shape, steps, input_count, output_slots, output_dtypes, names):
        self.shape = shape
        self.steps = [(kernel, operands, result, dtype,
                       isinstance(kernel, np.ufunc) and kernel.nout == 1)
                      for kernel, operands, result, dtype in steps]
        self.input_count = input_count
        self.output_slots = output_slots
        self.output_dtypes = output_dtypes
        self.names = names  # the fused ops, for errors and program listings
        self.blocks = _blocks(shape)

    def __repr__(self):
        return f"Fused({' '.join(self.names)})"

    def __call__(self, *inputs):
        # A broadcast scalar (all strides 0) goes in as the scalar: NumPy's loops take their
        # fast path for a scalar operand, not for a stride-0 array.
        inputs = [x[(0,) * x.ndim] if np.ndim(x) and not any(x.strides) else x
                  for x in inputs]
        outputs = [np.empty(self.shape, dtype) for dtype in self.output_dtypes]
        count = min(threads(), len(self.blocks))
        if count == 1:
            self._run(self.blocks, inputs, outputs)
            return tuple(outputs)
        share = -(-len(self.blocks) // count)
        chunks = [self.blocks[k:k + share] for k in range(0, len(self.blocks), share)]
        futures = [pool().submit(self._run, chunk, inputs, outputs) for chunk in chunks[1:]]
        try:
            self._run(chunks[0], inputs, outputs)
        finally:
            for future in futures:
                future.result()  # waits without the GIL; raises the first failure
        return tuple(outputs)

    def _run(self, blocks, inputs, outputs):
        with np.errstate(all="ignore"):  # per thread: overflow, NaN, x / 0 are defined results
            self._run_blocks(blocks, inputs, outputs)

    def _run_blocks(self, blocks, inputs, outputs):
        environment = [None] * (self.input_count + len(self.steps))
        written = dict(zip(self.output_slots, outputs))  # slot -> the output array it fills
        largest = max(size for _, _, size in blocks)
        buffers = {result: np.empty(largest, dtype)
                   for _, _, result, dtype, ufunc in self.steps if ufunc and result not in written}
        copied = [(slot, out) for slot, out in written.items()
                  if not self.steps[slot - self.input_count][4]]
        for key, shape, size in blocks:
            for k, x in enumerate(inputs):
                environment[k] = x[key] if np.ndim(x) else x
            for kernel, operands, result, _, ufunc in self.steps:
                args = [environment[j] for j in operands]
                if ufunc:
                    out = written[result][key] if result in written else \
                        buffers[result][:size].reshape(shape)
                    environment[result] = kernel(*args, out=out)
                else:
                    environment[result] = kernel(*args)
            for slot, out in copied:
                out[key] = environment[slot]


def _blocks(shape):
    """(index tuple, shape, size) of contiguous blocks of about BLOCK_ELEMENTS covering
    `shape`: whole trailing dimensions, a range of one axis, single indices before it."""
    axis = 0
    while axis < len(shape) and int(np.prod(shape[axis + 1:], dtype=np.int64)) > BLOCK_ELEMENTS:
        axis += 1
    if axis == len(shape):
        return [((), shape, int(np.prod(shape, dtype=np.int64)))]
    inner = shape[axis + 1:]
    step = max(1, BLOCK_ELEMENTS // int(np.prod(inner, dtype=np.int64)))
    blocks = []
    for outer in np.ndindex(*shape[:axis]):
        for start in range(0, shape[axis], step):
            rows = min(step, shape[axis] - start)
            block_shape = (rows,) + tuple(inner)
            blocks.append((outer + (slice(start, start + rows),), block_shape,
                           int(np.prod(block_shape, dtype=np.int64))))
    return blocks


def fused_kernel(operations, kernels, members):
    """(Fused, input values, output values) for the group `members` (indices into a block's
    `operations`, which end with its terminator, and their `kernels`)."""
    results = [operations[i].results[0] for i in members]
    inputs = []  # values from outside the group, in order of first use
    for i in members:
        inputs += [v for v in operations[i].operands if v not in inputs and v not in results]
    slots = {v: k for k, v in enumerate(inputs + results)}  # value -> its slot in a block
    member_set = set(members)
    used_after = set()  # values some op outside the group (or its regions) reads
    for j, operation in enumerate(operations):
        if j not in member_set:
            used_after.update(operation.operands)
            for inner in nested_operations(operation):
                used_after.update(inner.operands)
    outputs = [v for v in results if v in used_after]
    steps = [(kernels[i], [slots[v] for v in operations[i].operands],
              slots[operations[i].results[0]], to_type(operations[i].results[0].type).dtype)
             for i in members]
    kernel = Fused(_shape(operations[members[0]].results[0]), steps, len(inputs),
                   [slots[v] for v in outputs], [to_type(v.type).dtype for v in outputs],
                   [operations[i].name[len("stablehlo."):] for i in members])
    return kernel, inputs, outputs
