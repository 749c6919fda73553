"""StableHLO -> a prepared Python program.

Compilation walks the MLIR module once. Every op is handed to its handler (jax_pyrt.ops), which
reads the op's types and attributes and returns a *kernel*: a plain Python callable over NumPy
arrays with everything static already bound. The compiler then writes Python source that calls
the kernels in program order, one local variable per SSA value, one nested `def` per region, and
`exec`s it. Running the program never touches MLIR.

Kernel calling convention (see ops/__init__.py): `kernel(*operands)`, or
`kernel(regions, *operands)` for ops with regions; it returns the result for single-result ops
without regions, and a sequence of results otherwise.
"""

import re

import numpy as np
from jaxlib.mlir import ir

from . import attributes, dtypes, ops
from .errors import InvalidProgramError, UnsupportedError
from .jax_integration import callbacks

_LOCATION = re.compile(r'"([^"]+)":(\d+)')


def source_location(op):
    """The innermost `file:line` of an op's location, or '' if it has none."""
    match = _LOCATION.search(str(op.location))
    if not match:
        return ""
    path, line = match.groups()
    return f"{path.rsplit('/', 1)[-1]}:{line}"


class TensorType:
    """A ranked tensor type: static shape and NumPy dtype. For a quantized element type
    (`!quant.uniform<...>`), `dtype` is the storage dtype (a quantized tensor is its storage
    integers at run time) and `quant` holds the scales, zero points, axis and storage range
    (ops.quantization.Quantization); `quant` is None otherwise."""

    __slots__ = ("shape", "dtype", "mlir", "quant")

    def __init__(self, shape, dtype, mlir=None, quant=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.mlir = mlir
        self.quant = quant

    @property
    def rank(self):
        return len(self.shape)

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def __repr__(self):
        element = self.quant if self.quant is not None else self.dtype
        return f"tensor<{'x'.join(map(str, self.shape))}{'x' if self.shape else ''}{element}>"


class TokenType:
    """`!stablehlo.token`: carries ordering only; its runtime value is None."""

    def __repr__(self):
        return "!stablehlo.token"


class FutureType:
    """`!stablehlo.future<...>` (async_start's result): at run time, the tuple of values."""

    def __repr__(self):
        return "!stablehlo.future"


class TupleType:
    def __init__(self, elements):
        self.elements = tuple(elements)

    def __repr__(self):
        return f"tuple<{', '.join(map(repr, self.elements))}>"


def to_type(mlir_type):
    """Our view of an MLIR type."""
    if isinstance(mlir_type, ir.RankedTensorType):
        t = ir.RankedTensorType(mlir_type)
        if not t.has_static_shape:
            raise UnsupportedError(f"pyrt does not support dynamic shapes (got {mlir_type}): "
                                   f"it needs static shapes")
        name = str(t.element_type)
        if name.startswith("!quant."):
            quant = ops.quantization.quantized_type(name, t.shape)
            return TensorType(t.shape, quant.storage, mlir_type, quant)
        if name not in dtypes.DTYPE_BY_MLIR:
            raise UnsupportedError(f"pyrt does not support element type {name} ({mlir_type})")
        return TensorType(t.shape, dtypes.DTYPE_BY_MLIR[name], mlir_type)
    if isinstance(mlir_type, ir.TupleType):
        t = ir.TupleType(mlir_type)
        return TupleType(to_type(t.get_type(i)) for i in range(t.num_types))
    text = str(mlir_type)
    if text.endswith("token"):
        return TokenType()
    if text.startswith("!stablehlo.future"):
        return FutureType()
    raise UnsupportedError(f"pyrt does not support the type {text}")


class Op:
    """What a handler sees of one op at compile time."""

    def __init__(self, operation, compiler):
        self.operation = operation
        self.name = operation.name
        self.compiler = compiler
        self.location = compiler.where(operation)
        try:
            self.operand_types = [to_type(v.type) for v in operation.operands]
            self.result_types = [to_type(r.type) for r in operation.results]
        except UnsupportedError as e:  # name the op and the user's line
            where = f" at {self.location}" if self.location else ""
            raise UnsupportedError(f"{self.name}{where}: {e}") from None
        if any(getattr(t, "quant", None) is not None
               for t in self.operand_types + self.result_types):
            ops.quantization.check_op(self)  # no silent integer arithmetic on quantized tensors
        self.regions = list(operation.regions)

    # -- attributes
    def has(self, name):
        return name in self.operation.attributes

    def attr(self, name, default=None):
        attrs = self.operation.attributes
        return attrs[name] if name in attrs else default

    def ints(self, name, default=None):
        a = self.attr(name)
        return default if a is None else attributes.i64_array(a)

    def int(self, name, default=None):
        a = self.attr(name)
        return default if a is None else ir.IntegerAttr(a).value

    def enum(self, name, default=None):
        a = self.attr(name)
        return default if a is None else attributes.enum_name(a)

    def value(self, name, default=None):
        a = self.attr(name)
        return default if a is None else attributes.python_value(a)

    def dense(self, name, dtype, shape):
        """The value of a DenseElementsAttr as a NumPy array."""
        dtype = np.dtype(dtype)
        if dtypes.is_complex(dtype):
            # The MLIR bindings cannot hand out complex DenseElementsAttrs (reading one raises),
            # so read the attribute from the op's printed form.
            text = str(self.operation)
            text = text[text.index(f"{name} = ") + len(name) + 3:] if f"{name} = " in text else text
            return attributes.dense_from_text(text[text.index("dense<"):], dtype, shape)
        return attributes.dense_elements(self.attr(name), dtype, shape)

    # -- shorthands
    @property
    def result(self):
        return self.result_types[0]

    def unsupported(self, what):
        where = f" (at {self.location})" if self.location else ""
        return UnsupportedError(f"pyrt does not support {self.name} with {what}{where}")


class Compiler:
    """Turns a module into Python source plus the namespace of kernels it calls."""

    def __init__(self, module, num_replicas=1, num_partitions=1):
        self.module = module
        # From the compile options: handlers of collectives need the device grid.
        self.num_replicas = num_replicas
        self.num_partitions = num_partitions
        self.functions = {}
        for op in module.body.operations:
            if op.operation.name == "func.func":
                self.functions[ir.StringAttr(op.operation.attributes["sym_name"]).value] = op
        self.namespace = {"np": np}
        self.lines = []
        self.emitted = {}  # function symbol -> python name
        self._counter = 0
        self.call_site = ""  # location of the func.call being compiled, for ops without their own
        self.elements = 0  # elements produced by all ops: a rough cost estimate
        self.has_loops = False
        self.calls_host = False  # calls host callbacks (jax_integration/callbacks.py)

    def fresh(self, prefix):
        self._counter += 1
        return f"{prefix}{self._counter}"

    def bind(self, obj, prefix="k"):
        name = self.fresh(prefix)
        self.namespace[name] = obj
        return name

    def where(self, operation):
        """An op's user-facing `file:line`: its own, else that of the call that reached it (ops in
        JAX's private functions, e.g. inside jnp.fft.fft, carry no file of their own)."""
        return source_location(operation) or self.call_site

    def function(self, symbol, call_site=""):
        """The Python name of a compiled func.func, compiling it (and its callees) on first use."""
        if symbol in self.emitted:
            return self.emitted[symbol]
        saved, self.call_site = self.call_site, call_site or self.call_site
        if symbol not in self.functions:
            raise InvalidProgramError(f"pyrt: the program calls @{symbol}, which it does not define")
        name = "f_" + re.sub(r"\W", "_", symbol) + f"_{len(self.emitted)}"
        self.emitted[symbol] = name
        func = self.functions[symbol]
        block = func.regions[0].blocks[0]
        try:
            lines = self.block(block, name, indent="")
        finally:
            self.call_site = saved
        self.lines.extend(lines)
        self.lines.append("")
        return name

    def block(self, block, name, indent):
        """Source of `def name(<block args>): ...` returning the terminator's operands as a tuple."""
        values = {}
        params = []
        for arg in block.arguments:
            params.append(self.fresh("a"))
            values[arg] = params[-1]
        operations = [o.operation for o in block.operations]
        terminator = next((i for i, o in enumerate(operations) if o.name in ops.TERMINATORS),
                          len(operations))
        body_ops = operations[:terminator]
        kernels = [self.kernel(o) for o in body_ops]
        in_place = self._in_place_plan(operations, kernels)
        lines = [f"{indent}def {name}({', '.join(params)}):"]
        body = indent + "    "
        dies_after = self._dies_after(block, operations[:terminator + 1])
        for i, (operation, kernel) in enumerate(zip(body_ops, kernels)):
            lines.extend(self.operation(operation, kernel, values, body, in_place.get(i)))
            dead = [values[v] for v in dies_after.get(i, ())]
            if dead:
                lines.append(f"{body}del {', '.join(dead)}")
        returned = ([self._lookup(values, v) for v in operations[terminator].operands]
                    if terminator < len(operations) else [])
        lines.append(f"{body}return ({''.join(r + ', ' for r in returned)})")
        return lines

    def kernel(self, operation):
        """The kernel of one op, from its handler (None for func.call, which the compiler emits)."""
        for r in operation.results:
            if isinstance(r.type, ir.RankedTensorType):
                self.elements += int(np.prod(r.type.shape, dtype=np.int64))
        self.has_loops |= operation.name == "stablehlo.while"
        self.calls_host |= (operation.name == "stablehlo.custom_call" and
                            ir.StringAttr(operation.attributes["call_target_name"]).value
                            == callbacks.TARGET)
        if operation.name in _CALLS:
            return None
        handler = ops.lookup(operation.name)
        if handler is None:
            where = f" (at {self.where(operation)})" if self.where(operation) else ""
            raise UnsupportedError(f"pyrt does not support {operation.name} yet{where}")
        return handler(Op(operation, self))

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
            is_ufunc = isinstance(kernel, np.ufunc) and kernel.nout == 1
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
            if not (isinstance(kernel, np.ufunc) and kernel.nout == 1):
                continue
            result = operations[i].results[0]
            for j, v in enumerate(operations[i].operands):
                if v in fresh and v not in escapes and last_use[v] == i and v.type == result.type:
                    plan[i] = j
                    break
        return plan

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
        lines = []
        operands = [self._lookup(values, v) for v in operation.operands]
        results = [self.fresh("v") for _ in operation.results]
        for r, n in zip(operation.results, results):
            values[r] = n
        target = ", ".join(results)

        if operation.name in _CALLS:
            symbol = ir.FlatSymbolRefAttr(operation.attributes[_CALLS[operation.name]]).value
            callee = self.function(symbol, call_site=self.where(operation))
            call = f"{callee}({', '.join(operands)})"
            lines.append(f"{indent}{target}{',' if results else ''} = {call}" if results
                         else f"{indent}{call}")
            return lines
        if isinstance(kernel, ops.Constant):
            lines.append(f"{indent}{target} = {self.bind(kernel.value, 'c')}")
            return lines
        k = self.bind(kernel)
        args = list(operands)
        if operation.regions:
            saved = self._scopes
            self._scopes = (values,) + saved
            region_names = []
            for region in operation.regions:
                region_name = self.fresh("r")
                lines.extend(self.block(region.blocks[0], region_name, indent))
                region_names.append(region_name)
            self._scopes = saved
            args.insert(0, f"({''.join(r + ', ' for r in region_names)})")
        if out is not None:
            args.append(f"out={operands[out]}")
        call = f"{k}({', '.join(args)})"
        if not results:
            lines.append(f"{indent}{call}")
        elif len(results) == 1 and not operation.regions:
            lines.append(f"{indent}{target} = {call}")
        else:
            lines.append(f"{indent}{target}, = {call}")
        return lines


# Ops the compiler emits as Python calls of another func.func: op name -> callee attribute.
# A composite runs its decomposition.
_CALLS = {"func.call": "callee", "stablehlo.composite": "decomposition"}

# Ufunc results at least this large are reused in place at their last use (see _in_place_plan).
IN_PLACE_ELEMENTS = 1 << 12


def _elements(tensor_type):
    return int(np.prod(tensor_type.shape, dtype=np.int64))


def nested_operations(operation):
    """Every op inside `operation`'s regions, at any depth."""
    for region in operation.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield inner.operation
                yield from nested_operations(inner.operation)


def entry_function(module):
    """The public entry point: @main, or the module's only public function."""
    public = []
    for op in module.body.operations:
        if op.operation.name != "func.func":
            continue
        name = ir.StringAttr(op.operation.attributes["sym_name"]).value
        visibility = op.operation.attributes["sym_visibility"] if "sym_visibility" in op.operation.attributes else None
        if name == "main":
            return op
        if visibility is None or ir.StringAttr(visibility).value == "public":
            public.append(op)
    if len(public) == 1:
        return public[0]
    raise InvalidProgramError("pyrt: the program has no @main function")


# Programs without loops producing at most this many elements in all run on the caller's thread
# when the device is idle: a hand-off to the device worker would cost more than the work.
CHEAP_ELEMENTS = 1 << 16


class Prepared:
    """A compiled program: `entry(views)` runs it on StorageViews and returns output bytes."""

    def __init__(self, source, entry, input_types, output_types, cheap, calls_host):
        self.source = source
        self.entry = entry
        self.input_types = input_types
        self.output_types = output_types
        self.cheap = cheap
        self.calls_host = calls_host


def _as_bytes(value, dtype):
    """A result as flat C-contiguous uint8, the form the C++ layer adopts without a copy."""
    array = np.asarray(value)
    if array.dtype != dtype:
        array = array.astype(dtype)
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def compile_module(module, num_replicas=1, num_partitions=1):
    compiler = Compiler(module, num_replicas, num_partitions)
    main = entry_function(module)
    symbol = ir.StringAttr(main.operation.attributes["sym_name"]).value
    fn_type = ir.FunctionType(ir.TypeAttr(main.operation.attributes["function_type"]).value)
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
    lines = ["def entry(views):"]
    args = []
    for i, t in enumerate(input_types):
        dt = compiler.bind(t.dtype, "dt")
        lines.append(f"    i{i} = _frombuffer(views[{i}], {dt}).reshape({t.shape!r})")
        args.append(f"i{i}")
    lines.append(f"    results = {main_name}({', '.join(args)})")
    outs = [f"_as_bytes(results[{i}], {compiler.bind(t.dtype, 'dt')})"
            for i, t in enumerate(output_types)]
    lines.append(f"    return [{', '.join(outs)}]")
    source = "\n".join(compiler.lines + lines) + "\n"
    code = compile(source, f"<pyrt program {symbol}>", "exec")
    exec(code, ns)
    cheap = not compiler.has_loops and compiler.elements <= CHEAP_ELEMENTS
    return Prepared(source, ns["entry"], input_types, output_types, cheap, compiler.calls_host)
