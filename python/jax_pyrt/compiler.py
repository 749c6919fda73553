"""StableHLO -> a prepared Python program.

Compilation walks the MLIR module once. Every op is handed to its handler (jax_pyrt.ops), which
reads the op's types and attributes and returns a *kernel*: a plain Python callable over NumPy
arrays with everything static already bound (ops/base.py). The compiler then writes Python
source that calls the kernels in program order, one local variable per SSA value (deleted after
its last use), one nested `def` per region, and `exec`s it. Running the program never touches
MLIR.

Every generated function takes the run's context first (`ctx`, an ops.base.RunContext: which
device runs the program), so that kernels of replica_id, partition_id and collectives can see
it. The source is registered with linecache under the program's own file name, and
`Prepared.origin(line)` tells which op (and which line of the user's code) a line of it runs,
so a failure at run time names them.
"""

import itertools
import linecache
import math
import re
import weakref

import numpy as np
from jaxlib.mlir import ir

from . import dtypes, fusion, ops
from .contexts import function_type, main_function, nested_operations
from .errors import InvalidProgramError, UnsupportedError
from .ops.base import CompileContext, Constant, InContext, Op
from .types import TensorType, to_type


class Compiler:
    """Turns a module into Python source plus the namespace of kernels it calls."""

    def __init__(self, module, num_replicas=1, num_partitions=1):
        self.context = CompileContext(module, num_replicas, num_partitions)
        self.namespace = {"np": np}
        self.lines = []  # (source line, (op name, user location) or None)
        self.emitted = {}  # function symbol -> python name
        self._counter = 0
        self.elements = 0  # elements produced by all ops: a rough cost estimate
        self.has_loops = False
        self._callees = {}  # function symbol -> fusion.Callee or None

    def fresh(self, prefix):
        self._counter += 1
        return f"{prefix}{self._counter}"

    def bind(self, obj, prefix="k"):
        name = self.fresh(prefix)
        self.namespace[name] = obj
        return name

    def function(self, symbol, call_site=""):
        """The Python name of a compiled func.func, compiling it (and its callees) on first use."""
        if symbol in self.emitted:
            return self.emitted[symbol]
        context = self.context
        if symbol not in context.functions:
            raise InvalidProgramError(f"pyrt: the program calls @{symbol}, which it does not define")
        saved, context.call_site = context.call_site, call_site or context.call_site
        name = "f_" + re.sub(r"\W", "_", symbol) + f"_{len(self.emitted)}"
        self.emitted[symbol] = name
        block = context.functions[symbol].regions[0].blocks[0]
        try:
            lines = self.block(block, name, indent="", params=["ctx"])
        finally:
            context.call_site = saved
        self.lines.extend(lines)
        self.lines.append(("", None))
        return name

    def block(self, block, name, indent, params=()):
        """Source of `def name(<params>, <block args>): ...` returning the terminator's operands
        as a tuple."""
        values = {}
        params = list(params)
        for arg in block.arguments:
            params.append(self.fresh("a"))
            values[arg] = params[-1]
        operations = [o.operation for o in block.operations]
        terminator = next((i for i, o in enumerate(operations) if o.name in ops.TERMINATORS),
                          len(operations))
        body_ops = operations[:terminator]
        kernels = [self.kernel(o) for o in body_ops]
        in_place = self._in_place_plan(operations, kernels)
        lines = [(f"{indent}def {name}({', '.join(params)}):", None)]
        body = indent + "    "
        dies_after = self._dies_after(block, operations[:terminator + 1])
        # Groups of fused elementwise ops run as one call at their last op; the small ops
        # between their ops that read nothing of the group stay where they are.
        callees = {i: c for i, o in enumerate(body_ops) if fusion.may_take_call(o)
                   for c in [self.fusible_callee(o)] if c is not None}
        fused = {members[-1]: members for members in fusion.groups(body_ops, kernels, callees)}
        read_by = fusion.readers(operations) if fused else None
        members = {i for group in fused.values() for i in group}
        # Arrays no one else holds, which a group may overwrite with its results.
        fresh = {o.results[0] for o, k in zip(body_ops, kernels) if _is_ufunc(k)}
        before_call = {i for group in fused.values() for i in range(group[0], group[-1])}
        dead = []  # names to delete; inside a group, only after its call
        for i, (operation, kernel) in enumerate(zip(body_ops, kernels)):
            if i in fused:
                lines.extend(self.group(operations, kernels, fused[i], values, body, fresh,
                                        callees, read_by))
            elif i not in members:
                lines.extend(self.operation(operation, kernel, values, body, in_place.get(i)))
            dead += [values[v] for v in dies_after.get(i, ()) if v in values]
            if dead and i not in before_call:
                lines.append((f"{body}del {', '.join(dead)}", None))
                dead = []
        returned = ([self._lookup(values, v) for v in operations[terminator].operands]
                    if terminator < len(operations) else [])
        lines.append((f"{body}return ({''.join(r + ', ' for r in returned)})", None))
        return lines

    def fusible_callee(self, call):
        """fusion.Callee of the function `call` calls, if a group may take it in whole."""
        symbol = ir.FlatSymbolRefAttr(call.attributes["callee"]).value
        if symbol not in self._callees:
            function = self.context.functions.get(symbol)
            self._callees[symbol] = None if function is None else fusion.fusible_callee(
                function.operation, self._handler_kernel)
        return self._callees[symbol]

    def kernel(self, operation):
        """The kernel of one op, from its handler (None for func.call, which the compiler emits)."""
        for r in operation.results:
            if isinstance(r.type, ir.RankedTensorType):
                self.elements += math.prod(ir.RankedTensorType(r.type).shape)
        self.has_loops |= operation.name == "stablehlo.while"
        if operation.name in _CALLS:
            return None
        return self._handler_kernel(operation)

    def _handler_kernel(self, operation):
        handler = ops.lookup(operation.name)
        where = self.context.where(operation)
        if handler is None:
            raise UnsupportedError(f"pyrt does not support {operation.name} yet"
                                   + (f" (at {where})" if where else ""))
        op_ = Op(operation, self.context)
        if op_.quantized():
            ops.quantization.check_op(op_)  # no silent integer arithmetic on quantized tensors
        return handler(op_)

    @staticmethod
    def _dies_after(block, operations):
        """{op index: values of this block whose last use is that op (or that it defines and
        nothing uses)}. The generated code deletes them there, so that NumPy frees each
        intermediate as soon as it is dead, as XLA's buffer assignment reuses memory; without
        it every intermediate of a function lived until the function returned. A use inside an
        op's regions counts as a use by that op; the terminator's operands never die."""
        defined = {v: None for v in block.arguments}  # value -> the op defining it
        last_use = {}
        for i, operation in enumerate(operations):
            defined.update((r, i) for r in operation.results)
            for v in operation.operands:
                last_use[v] = i
            for inner in nested_operations(operation):
                for v in inner.operands:
                    last_use[v] = i
        returned = len(operations) - 1 if operations and \
            operations[-1].name in ops.TERMINATORS else None
        dies_after = {}
        for v, definition in defined.items():
            i = last_use.get(v, definition)  # never used: dies where it is defined
            if i is not None and i != returned:
                dies_after.setdefault(i, []).append(v)
        return dies_after

    @staticmethod
    def _in_place_plan(operations, kernels):
        """{op index: operand index} for ufunc ops that may write their result into an operand.

        An operand qualifies when a ufunc produced it (so it is a fresh array nobody else holds),
        every use of it is by a ufunc (so no view of it exists), this op is its last use, and it
        has the result's type. Reusing it saves an allocation and a pass over fresh memory, the
        way XLA's buffer assignment does.
        """
        fresh, escapes, last_use = set(), set(), {}
        for i, operation in enumerate(operations):
            kernel = kernels[i] if i < len(kernels) else None
            is_ufunc = _is_ufunc(kernel)
            for v in operation.operands:
                last_use[v] = i
                if not is_ufunc:
                    escapes.add(v)
            for inner in nested_operations(operation):
                escapes.update(inner.operands)  # captured by a region
            if is_ufunc:
                r = operation.results[0]
                if isinstance(r.type, ir.RankedTensorType) and _elements(r.type) >= IN_PLACE_ELEMENTS:
                    fresh.add(r)
        plan = {}
        for i, kernel in enumerate(kernels):
            if not _is_ufunc(kernel):
                continue
            result = operations[i].results[0]
            for j, v in enumerate(operations[i].operands):
                if v in fresh and v not in escapes and last_use[v] == i and v.type == result.type:
                    plan[i] = j
                    break
        return plan

    def group(self, operations, kernels, members, values, indent, fresh, callees, read_by):
        """The line running a group of fused elementwise ops (fusion.py) as one call."""
        kernel, inputs, outputs = fusion.fused_kernel(operations, kernels, members, fresh,
                                                      callees, read_by)
        fresh.update(outputs)
        first = operations[members[0]]
        origin = (f"{len(members)} fused ops ({first.name}, ...)", self.context.where(first))
        call = f"{self.bind(kernel, 'g')}({', '.join(self._lookup(values, v) for v in inputs)})"
        if not outputs:  # nothing reads the group's results
            return []
        results = [self.fresh("v") for _ in outputs]
        values.update(zip(outputs, results))
        return [(f"{indent}{''.join(r + ', ' for r in results)}= {call}", origin)]

    def _lookup(self, values, value):
        if value in values:
            return values[value]
        # Defined in an enclosing block: Python closures see the enclosing name.
        for scope in self._scopes:
            if value in scope:
                return scope[value]
        raise InvalidProgramError("pyrt: a value is used outside the scope that defines it")

    _scopes = ()

    def operation(self, operation, kernel, values, indent, out=None):
        """The lines running one op, each (text, origin): origin (op name, user location) on
        the line that calls the op's kernel."""
        origin = (operation.name, self.context.where(operation))
        lines = []
        operands = [self._lookup(values, v) for v in operation.operands]
        results = [self.fresh("v") for _ in operation.results]
        for r, n in zip(operation.results, results):
            values[r] = n
        target = ", ".join(results)

        if operation.name in _CALLS:
            symbol = ir.FlatSymbolRefAttr(operation.attributes[_CALLS[operation.name]]).value
            callee = self.function(symbol, call_site=self.context.where(operation))
            call = f"{callee}({', '.join(['ctx'] + operands)})"
            lines.append((f"{indent}{target}, = {call}" if results else f"{indent}{call}", origin))
            return lines
        if isinstance(kernel, Constant):
            lines.append((f"{indent}{target} = {self.bind(kernel.value, 'c')}", origin))
            return lines
        args = list(operands)
        if operation.regions:
            saved = self._scopes
            self._scopes = (values,) + saved
            region_names = []
            params = ["ctx"] if getattr(kernel, "regions_take_context", False) else []
            for region in operation.regions:
                region_name = self.fresh("r")
                lines.extend(self.block(region.blocks[0], region_name, indent, params))
                region_names.append(region_name)
            self._scopes = saved
            args.insert(0, f"({''.join(r + ', ' for r in region_names)})")
        if isinstance(kernel, InContext):  # kernel(ctx, [regions,] *operands)
            kernel = kernel.kernel
            args.insert(0, "ctx")
        k = self.bind(kernel)
        if out is not None:
            args.append(f"out={operands[out]}")
        call = f"{k}({', '.join(args)})"
        if not results:
            lines.append((f"{indent}{call}", origin))
        elif len(results) == 1 and not operation.regions:
            lines.append((f"{indent}{target} = {call}", origin))
        else:
            lines.append((f"{indent}{target}, = {call}", origin))
        return lines


def _is_ufunc(kernel):
    return isinstance(kernel, np.ufunc) and kernel.nout == 1


# Ops the compiler emits as Python calls of another func.func: op name -> callee attribute.
# A composite runs its decomposition.
_CALLS = {"func.call": "callee", "stablehlo.composite": "decomposition"}

# Ufunc results at least this large are reused in place at their last use (see _in_place_plan).
IN_PLACE_ELEMENTS = 1 << 12


def _elements(tensor_type):
    return math.prod(tensor_type.shape)


# Programs without loops producing at most this many elements in all run on the caller's thread
# when the device is idle: a hand-off to the device worker would cost more than the work. The
# hand-off costs 40-80 us; benchmarks/run.py's chain (7 ops) measured, worker / inline: 16K
# elements 0.133 / 0.048 ms, 64K 0.200 / 0.116 ms; at 256K (1.8M produced) the work dominates.
CHEAP_ELEMENTS = 1 << 20

_program_numbers = itertools.count()


class Prepared:
    """A compiled program: `entry(views, ctx)` runs it on StorageViews and returns output bytes.
    `filename` is the name its source is registered under in linecache (while the Prepared
    lives); `origin(line)` is the (op name, user location) a line of the source runs, or None."""

    def __init__(self, source, entry, filename, origins, input_types, output_types, cheap,
                 synchronous):
        self.source = source
        self.entry = entry
        self.filename = filename
        self.origins = origins  # {1-based line: (op name, user location)}
        self.input_types = input_types
        self.output_types = output_types
        self.cheap = cheap
        self.synchronous = synchronous
        register_source(self, filename, source)

    def origin(self, line):
        return self.origins.get(line)


def register_source(owner, filename, source):
    """Makes `source` the text of `filename` for tracebacks (linecache) while `owner` lives."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    weakref.finalize(owner, linecache.cache.pop, filename, None)


def program_filename(name):
    """A file name for the generated source of program `name`, unique in this process."""
    return f"<pyrt program {name} #{next(_program_numbers)}>"


def _as_bytes(value, dtype):
    """A result as flat C-contiguous uint8, the form the C++ layer adopts without a copy."""
    array = np.asarray(value)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def compile_module(module, num_replicas=1, num_partitions=1):
    compiler = Compiler(module, num_replicas, num_partitions)
    main = main_function(module)
    symbol = ir.StringAttr(main.attributes["sym_name"]).value
    fn_type = function_type(main)
    input_types = [to_type(t) for t in fn_type.inputs]
    output_types = [to_type(t) for t in fn_type.results]
    for t in input_types + output_types:
        if not isinstance(t, TensorType):
            raise UnsupportedError(f"pyrt: entry point parameters and results must be arrays, got {t}")
        if t.dtype not in dtypes.PJRT_TYPE_BY_DTYPE:
            raise UnsupportedError(
                f"pyrt: an entry point parameter or result is {t}, which PJRT cannot transfer "
                f"(the C API has no buffer type for {dtypes.MLIR_BY_DTYPE[t.dtype]}); convert "
                f"it to another type inside the program")
    if any(t.quant is not None for t in output_types):
        # jaxlib derives output shapes from the program text and aborts on quantized types.
        raise UnsupportedError("pyrt cannot return quantized arrays from the entry function: "
                               "return their stablehlo.uniform_dequantize or their storage "
                               "integers (stablehlo.bitcast_convert) instead")
    main_name = compiler.function(symbol)

    # The entry adapter: StorageViews in, flat uint8 arrays out.
    ns = compiler.namespace
    ns["_frombuffer"] = np.frombuffer
    ns["_as_bytes"] = _as_bytes
    lines = [("def entry(views, ctx):", None)]
    args = ["ctx"]
    for i, t in enumerate(input_types):
        dt = compiler.bind(t.dtype, "dt")
        lines.append((f"    i{i} = _frombuffer(views[{i}], {dt}).reshape({t.shape!r})", None))
        args.append(f"i{i}")
    lines.append((f"    results = {main_name}({', '.join(args)})", None))
    outs = [f"_as_bytes(results[{i}], {compiler.bind(t.dtype, 'dt')})"
            for i, t in enumerate(output_types)]
    lines.append((f"    return [{', '.join(outs)}]", None))
    all_lines = compiler.lines + lines
    source = "\n".join(text for text, _ in all_lines) + "\n"
    origins = {i + 1: origin for i, (_, origin) in enumerate(all_lines) if origin is not None}
    filename = program_filename(symbol)
    exec(compile(source, filename, "exec"), ns)
    cheap = not compiler.has_loops and compiler.elements <= CHEAP_ELEMENTS
    return Prepared(source, ns["entry"], filename, origins, input_types, output_types, cheap,
                    compiler.context.synchronous)
