"""Fusion of elementwise ops: a run of them computed block by block, on all cores.

One NumPy call per op makes a chain of elementwise ops over large arrays read and write every
intermediate through main memory, on one core. The compiler (compiler.py) finds *groups*:
runs of elementwise ops of one block over one large shape; small ops between them that read
none of the group's values stay where they stand (they run before the group). A group becomes
one kernel, `Fused`, which calls the same per-op kernels as before on blocks of
BLOCK_ELEMENTS, so a block's intermediates stay in cache, and spreads the blocks over the
shared thread pool (threads.py; NumPy's loops release the GIL). The per-op kernels are
elementwise, so each element gets exactly the value it got before; only the values used after
the group are ever whole arrays.
"""

import functools
import math
import os
import threading

import numpy as np
from jaxlib.mlir import ir

from .contexts import nested_operations
from .ops.base import Constant, InContext
from .threads import run_shares, threads
from .types import to_type

# Groups over fewer elements run op by op: their intermediates fit in the caches anyway, and
# the blocks and threads would not pay for themselves. Measured on benchmarks/run.py's chain
# (2 cores, median ms, op by op / fused): 128K elements 0.35 / 0.47, 256K 0.52 / 0.64, 512K
# 0.87 / 1.02, 1M 1.71 / 1.54, 2M 4.22 / 2.81; the MLP step (groups of 128K-400K elements):
# 6.1 / 7.0.
FUSE_ELEMENTS = 1 << 20
# Elements per block, measured on the 4M f32 chain of benchmarks/run.py (2 cores; op by op:
# 9.2-10.7 ms): 2^14: 11.4 ms on 1 thread, 5.8 ms on 2; 2^16: 8.2 / 4.8; 2^18: 7.8 / 5.3;
# 2^20: 8.6 / 6.6. Smaller blocks stay in cache but pay more per call and in GIL hand-offs.
BLOCK_ELEMENTS = 1 << 16

# The elementwise ops (ops/elementwise.py) that keep their operands' shape.
# bitcast_convert is left out: between widths it adds or drops a dimension.
_ELEMENTWISE = frozenset(
    "stablehlo." + name for name in """
    add subtract multiply divide remainder power maximum minimum and or xor not shift_left
    shift_right_arithmetic shift_right_logical popcnt count_leading_zeros negate abs sign ceil
    floor round_nearest_even round_nearest_afz sqrt rsqrt cbrt exponential
    exponential_minus_one log log_plus_one logistic sine cosine tan tanh is_finite complex real
    imag compare select clamp convert reduce_precision""".split())


def _shape(value):
    t = value.type
    if not isinstance(t, ir.RankedTensorType) or not t.has_static_shape:
        return None
    return tuple(t.shape)


def _is_large(value):
    """Whether `value` is a tensor of at least FUSE_ELEMENTS elements (worth a group)."""
    shape = _shape(value)
    return shape is not None and math.prod(shape) >= FUSE_ELEMENTS


def _member_shape(operation, kernel, fusible_call=False):
    """The shape of a fusible op's result, or None if the op cannot join a group."""
    if not fusible_call and (
            operation.name not in _ELEMENTWISE or len(operation.results) != 1
            or operation.regions or isinstance(kernel, (Constant, InContext))
            or not callable(kernel)):
        return None
    if not _is_large(operation.results[0]):
        return None
    shape = _shape(operation.results[0])
    if any(_shape(v) not in (shape, ()) for v in operation.operands):
        return None
    return shape


class Callee:
    """A private function a group may take in whole (fusible_callee): `steps` are (kernel,
    operand refs, result dtype, op name), a ref naming an argument (-1 - its index) or an
    earlier step (its index); `returned` is the ref of the function's result."""

    def __init__(self, steps, returned):
        self.steps = steps
        self.returned = returned


def may_take_call(operation):
    """Whether a group could take in this op as a call (worth looking at its function)."""
    return (operation.name == "func.call" and len(operation.results) == 1 and enabled()
            and _is_large(operation.results[0]))


def fusible_callee(function, kernel_of):
    """A Callee for `function` (a func.func) if its body is elementwise ops over its result's
    shape, scalar constants and broadcasts of scalars, and it returns one computed value;
    else None. `kernel_of(operation)` is the op's kernel, from its handler."""
    block = function.regions[0].blocks[0]
    operations = [o.operation for o in block.operations]
    if len(operations) > 64 or operations[-1].name != "func.return" or \
            len(operations[-1].operands) != 1:
        return None
    shape = _shape(operations[-1].operands[0])
    if shape is None:
        return None
    refs = {arg: -1 - k for k, arg in enumerate(block.arguments)}
    steps = []
    for operation in operations[:-1]:
        if len(operation.results) != 1 or operation.regions:
            return None
        result = operation.results[0]
        if operation.name == "stablehlo.broadcast_in_dim" and \
                _shape(operation.operands[0]) == () and _shape(result) == shape:
            refs[result] = refs.get(operation.operands[0])  # the scalar itself, per block
            if refs[result] is None:
                return None
            continue
        if operation.name != "stablehlo.constant" and operation.name not in _ELEMENTWISE:
            return None
        kernel = kernel_of(operation)
        if isinstance(kernel, Constant):
            value = np.asarray(kernel.value)
            if value.size == 0 or not (value == value.reshape(-1)[0]).all():
                return None  # only scalars and splats (as scalars) fit every block
            kernel = functools.partial(_constant, value.reshape(-1)[0].copy())
            operands = []
        elif (operation.name in _ELEMENTWISE and _shape(result) == shape and callable(kernel)
              and not isinstance(kernel, InContext)
              and all(_shape(v) in (shape, ()) for v in operation.operands)):
            operands = operation.operands
        else:
            return None
        if any(v not in refs for v in operands):
            return None
        steps.append((kernel, [refs[v] for v in operands], to_type(result.type).dtype,
                      operation.name[len("stablehlo."):]))
        refs[result] = len(steps) - 1
    returned = refs.get(operations[-1].operands[0])
    if returned is None or returned < 0:
        return None  # returns an argument: nothing to compute
    return Callee(steps, returned)


def _constant(value):
    return value


def enabled():
    """Whether programs compiled now fuse (PYRT_FUSION=0 turns it off, to rule fusion out)."""
    return os.environ.get("PYRT_FUSION", "1") not in ("0", "false", "False")


def _reads(operation):
    """The values an op reads, its regions' reads included."""
    yield from operation.operands
    for inner in nested_operations(operation):
        yield from inner.operands


def _can_wait(operation, kernel):
    """Whether an op may run before a group that spans it: a constant, a broadcast view or an
    op with small results. A large result would live through the group's call, and the
    group's inputs live until the call ends: the program's peak memory would grow."""
    if isinstance(kernel, Constant) or operation.name == "stablehlo.broadcast_in_dim":
        return True
    return all(_shape(r) is not None and not _is_large(r) for r in operation.results)


def groups(operations, kernels, callees=None):
    """[[op index, ...]] of the groups in one block's ops (in order, at least two each).
    `callees` ({op index: Callee}) are the calls a group may take in whole."""
    found, members, shape, inside = [], [], None, set()
    callees = callees or {}
    if not enabled():
        return found

    def close():
        nonlocal members, shape, inside
        if len(members) >= 2:
            found.append(members)
        members, shape, inside = [], None, set()

    for i, (operation, kernel) in enumerate(zip(operations, kernels)):
        member_shape = _member_shape(operation, kernel, i in callees)
        if member_shape is not None:
            if member_shape != shape:
                close()
            members.append(i)
            shape = member_shape
            inside.update(operation.results)
        elif members and _can_wait(operation, kernel) and \
                not any(v in inside for v in _reads(operation)):
            continue  # independent of the group: emitted where it stands, before the group
        else:
            close()
    close()
    return found


class Fused:
    """The kernel of a group: `steps` are (kernel, operand slots, result slot, result dtype)
    over one block's environment, whose first slots are the group's inputs; the results at
    `output_slots` are written into whole arrays of `shape`.

    The block loop is generated Python, one line per step, as the compiler writes programs.
    A step whose kernel is a bare ufunc writes into a buffer (or straight into the output
    array); buffers are shared by steps whose values are not live at once, and come from the
    running thread's scratch, which all groups share (_scratch), so the blocks allocate
    nothing."""

    def __init__(self, shape, steps, input_count, output_slots, output_dtypes, names,
                 reuse=None):
        self.shape = shape
        self.steps = steps
        self.input_count = input_count
        self.output_slots = output_slots
        self.output_dtypes = output_dtypes
        self.names = names  # the fused ops, for errors and program listings
        self.reuse = reuse or {}  # output index -> the input whose array it may overwrite
        self._prepare()

    def _prepare(self):
        self.blocks = _blocks(self.shape)
        self.buffer_dtypes, source, namespace = _block_loop(
            self.steps, self.input_count, self.output_slots)
        exec(compile(source, f"<pyrt fused {' '.join(self.names)}>", "exec"), namespace)
        self._loop = namespace["run"]
        self._local = threading.local()

    def __getstate__(self):  # the generated loop and the per-thread buffers are remade
        return {k: v for k, v in self.__dict__.items()
                if k in ("shape", "steps", "input_count", "output_slots", "output_dtypes",
                         "names", "reuse")}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._prepare()

    def __repr__(self):
        return f"Fused({' '.join(self.names)})"

    def __call__(self, *inputs):
        # A broadcast scalar (all strides 0) goes in as the scalar: NumPy's loops take their
        # fast path for a scalar operand, not for a stride-0 array.
        inputs = [x[(0,) * x.ndim] if np.ndim(x) and not any(x.strides) else x
                  for x in inputs]
        sliced = [bool(np.ndim(x)) for x in inputs]
        outputs = [self._output(n, dtype, inputs) for n, dtype in enumerate(self.output_dtypes)]
        count = min(threads(), len(self.blocks))
        share = -(-len(self.blocks) // count)
        chunks = [self.blocks[k:k + share] for k in range(0, len(self.blocks), share)]
        run_shares(lambda chunk: self._run(chunk, inputs, sliced, outputs), chunks)
        return tuple(outputs)

    def _output(self, n, dtype, inputs):
        """The array output `n` is written into: the input the compiler let it overwrite (no
        one else holds it, and each block reads it before writing it), else a new one."""
        if n in self.reuse:
            x = inputs[self.reuse[n]]
            if (isinstance(x, np.ndarray) and x.shape == self.shape and x.dtype == dtype
                    and x.flags.c_contiguous and x.flags.writeable):
                return x
        return np.empty(self.shape, dtype)

    def _run(self, blocks, inputs, sliced, outputs):
        views = getattr(self._local, "views", None)
        if views is None:  # this thread's buffers, as views for each block shape
            buffers = _scratch(self.buffer_dtypes, max(size for _, _, size in self.blocks))
            views = self._local.views = {
                shape: tuple(b[:size].reshape(shape) for b in buffers)
                for _, shape, size in self.blocks}
        self._loop([(key, views[shape]) for key, shape, _ in blocks], inputs, sliced, outputs)


_thread_scratch = threading.local()


def _scratch(dtypes, size):
    """Buffers of at least `size` elements, one per entry of `dtypes`, owned by this thread and
    shared by every group: a thread runs one group's blocks at a time, so the groups of a
    program need no buffers of their own (which would stay allocated as long as it lives)."""
    pool = getattr(_thread_scratch, "pool", None)
    if pool is None:
        pool = _thread_scratch.pool = {}  # dtype -> [buffer, ...]
    taken, buffers = {}, []
    for dtype in dtypes:
        k = taken[dtype] = taken.get(dtype, -1) + 1
        owned = pool.setdefault(dtype, [])
        if len(owned) <= k:
            owned.append(np.empty(size, dtype))
        elif owned[k].size < size:  # groups holding the smaller one keep it alive
            owned[k] = np.empty(size, dtype)
        buffers.append(owned[k])
    return buffers


def _block_loop(steps, input_count, output_slots):
    """(buffer dtypes, source, namespace) of `run(blocks, inputs, sliced, outputs)`, the loop
    over (index tuple, buffer views) blocks that runs `steps` on each.

    A bare ufunc step writes into a free buffer of its dtype (or into the output array). Any
    other kernel may return a view of its operands (a convert to the same type returns its
    operand), so its result holds its operands' buffers too; a buffer is free again once no
    live value holds it."""
    last_use = {}
    for k, (_, operands, _, _) in enumerate(steps):
        for j in operands:
            last_use[j] = k
    outputs = {slot: n for n, slot in enumerate(output_slots)}
    namespace, buffer_dtypes, body = {"np": np}, [], []
    free = {}     # dtype -> free buffer indices
    holds = {}    # value slot -> buffer indices its value may live in
    holders = {}  # buffer index -> how many live values hold it
    for k, (kernel, operands, result, dtype) in enumerate(steps):
        namespace[f"k{k}"] = kernel
        args = ", ".join(f"x{j}" for j in operands)
        if isinstance(kernel, np.ufunc) and kernel.nout == 1:
            if result in outputs:
                target = f"o{outputs[result]}[key]"
            else:
                spare = free.setdefault(np.dtype(dtype), [])
                if not spare:
                    buffer_dtypes.append(np.dtype(dtype))
                    spare.append(len(buffer_dtypes) - 1)
                holds[result] = {spare.pop()}
                target = f"b[{next(iter(holds[result]))}]"
            body.append(f"x{result} = k{k}({args}, out={target})")
        else:
            body.append(f"x{result} = k{k}({args})")
            if result in outputs:
                body.append(f"o{outputs[result]}[key] = x{result}")
            holds[result] = set().union(*(holds.get(j, set()) for j in operands))
        for buffer in holds.get(result, ()):
            holders[buffer] = holders.get(buffer, 0) + 1
        dead = [j for j in set(operands) if last_use[j] == k]
        if result not in last_use:
            dead.append(result)  # never read in the group (an output, or unused)
        for j in dead:
            for buffer in holds.pop(j, ()):
                holders[buffer] -= 1
                if not holders[buffer]:
                    free[buffer_dtypes[buffer]].append(buffer)
    lines = ["def run(blocks, inputs, sliced, outputs):"]
    lines += [f"    {', '.join(f'i{j}' for j in range(input_count))}, = inputs",
              f"    {', '.join(f's{j}' for j in range(input_count))}, = sliced",
              f"    {''.join(f'o{n}, ' for n in range(len(output_slots)))}= outputs",
              "    for key, b in blocks:"]
    lines += [f"        x{j} = i{j}[key] if s{j} else i{j}" for j in range(input_count)]
    lines += [f"        {line}" for line in body]
    return buffer_dtypes, "\n".join(lines) + "\n", namespace


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


def readers(operations):
    """{value: indices of the ops of `operations` that read it (in their regions too)}."""
    found = {}
    for j, operation in enumerate(operations):
        for v in _reads(operation):
            found.setdefault(v, []).append(j)
    return found


def fused_kernel(operations, kernels, members, fresh=frozenset(), callees=None,
                 read_by=None):
    """(Fused, input values, output values) for the group `members` (indices into a block's
    `operations`, which end with its terminator, and their `kernels`; `callees`: the members
    that are calls, as in groups; `read_by`: readers(operations), computed once per block).
    `fresh` are values no one else holds (results of ufuncs and of earlier groups): a result
    of the group is written into such an input when nothing reads the input after the group,
    as the op-by-op program writes ufunc results in place."""
    callees = callees or {}
    read_by = readers(operations) if read_by is None else read_by
    results = [operations[i].results[0] for i in members]
    inputs = []  # values from outside the group, in order of first use
    for i in members:
        inputs += [v for v in operations[i].operands if v not in inputs and v not in results]
    slots = {v: k for k, v in enumerate(inputs)}  # value -> its slot in a block
    steps, names = [], []  # (kernel, operand slots, result slot, dtype); the ops' names

    def step(kernel, operands, dtype, name):
        steps.append((kernel, operands, len(inputs) + len(steps), dtype))
        names.append(name)
        return steps[-1][2]

    for i in members:
        operation = operations[i]
        operand_slots = [slots[v] for v in operation.operands]
        if i in callees:  # the function's ops, on this call's operands
            local = []
            for kernel, refs, dtype, name in callees[i].steps:
                local.append(step(kernel, [operand_slots[-1 - r] if r < 0 else local[r]
                                           for r in refs], dtype, name))
            slots[operation.results[0]] = local[callees[i].returned]
        else:
            slots[operation.results[0]] = step(
                kernels[i], operand_slots, to_type(operation.results[0].type).dtype,
                operation.name[len("stablehlo."):])
    member_set = set(members)

    def outside(v):  # the ops outside the group that read v
        return [j for j in read_by.get(v, ()) if j not in member_set]

    outputs = [v for v in results if outside(v)]

    def overwritable(v):  # every reader outside the group is a ufunc that runs before it
        return v in fresh and all(j < members[-1] and _is_ufunc(kernels[j])
                                  for j in outside(v))

    reuse = {}  # output index -> input index whose array it overwrites
    for n, v in enumerate(outputs):
        writer = next(m for m, s in enumerate(steps) if s[2] == slots[v])
        for k, candidate in enumerate(inputs):
            last_read = max((m for m, s in enumerate(steps) if slots[candidate] in s[1]),
                            default=-1)
            if (k not in reuse.values() and candidate.type == v.type and overwritable(candidate)
                    and last_read <= writer):
                reuse[n] = k
                break
    kernel = Fused(_shape(results[0]), steps, len(inputs), [slots[v] for v in outputs],
                   [to_type(v.type).dtype for v in outputs], names, reuse)
    return kernel, inputs, outputs


def _is_ufunc(kernel):
    return isinstance(kernel, np.ufunc) and kernel.nout == 1
