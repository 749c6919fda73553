"""The handler API: what a handler sees of an op (`Op`), the compile context it may consult
(`CompileContext`), the registry of handlers (`op`, `lookup`) and the kernel forms a handler
may return (a callable, `Constant`, `InContext`).

A handler takes an `Op` and returns a kernel, a plain callable over NumPy arrays with every
attribute already bound:

    @op("stablehlo.add")
    def add(op_):
        '''Spec: add.'''
        return np.add

Kernels are called as `kernel(*operands)`, or `kernel(regions, *operands)` for ops with regions
(each region is a compiled Python function returning a tuple). A kernel returns the result for a
single-result op without regions, and a sequence of results otherwise. Kernels never modify their
operands. A handler may return `Constant(value)` for a value known at compile time, or
`InContext(kernel)` for a kernel that needs the run's `RunContext` (which device it runs on:
replica_id, partition_id, collectives), called as `kernel(context, [regions,] *operands)`.
"""

import itertools
import re

import numpy as np
from jaxlib.mlir import ir

from .. import attributes, dtypes
from ..errors import UnsupportedError
from ..types import to_type

# Region terminators: the compiler turns them into `return` statements.
TERMINATORS = frozenset({"stablehlo.return", "func.return", "sdy.return"})

_HANDLERS = {}
_COSTS = {}


def op(*names, cost="flops", replace=False):
    """Registers the decorated handler for the given op names. `cost` is how cost analysis
    (jax_pyrt.analysis) counts the op: "flops" (one per result element), "transcendental"
    (one transcendental per result element), "data" (moves or names data, no arithmetic), or
    a function (operation, operand types, result types) -> flops. `replace=True` lets a user's
    handler take the place of pyrt's for programs compiled from then on (docs/extending.md)."""

    def register(handler):
        for name in names:
            if name in _HANDLERS and not replace:
                raise ValueError(f"two handlers for {name} (replace=True replaces pyrt's)")
            _HANDLERS[name] = handler
            _COSTS[name] = cost
        return handler

    return register


def lookup(name):
    return _HANDLERS.get(name)


def cost_of(name):
    """How cost analysis counts op `name` (see `op`); None for ops without a handler."""
    return _COSTS.get(name)


def registry():
    """{op name: handler}, for docs and tests."""
    return dict(sorted(_HANDLERS.items()))


class Constant:
    """A kernel that is a fixed value: the compiler binds the value itself, with no call."""

    def __init__(self, value):
        self.value = value


class InContext:
    """A kernel called as `kernel(context, *operands)` with the run's RunContext. If
    `regions_take_context`, its regions are called with a RunContext first too (the kernel
    chooses it: a manual computation runs its body as each device)."""

    def __init__(self, kernel, regions_take_context=False):
        self.kernel = kernel
        self.regions_take_context = regions_take_context


class RunContext:
    """Which device runs one run of a program: its id (as jax.Device.id), its replica and
    partition ids, the communicator its collectives meet through (None when the program
    runs on one device), and, in a run on global arrays, the devices' own parts of its values
    (partitioning.DeviceParts)."""

    __slots__ = ("device", "replica", "partition", "communicator", "counters", "device_parts")

    def __init__(self, device=0, replica=0, partition=0, communicator=None):
        self.device = device
        self.replica = replica
        self.partition = partition
        self.communicator = communicator
        self.counters = {}  # collective -> how often this device has run it in this run
        self.device_parts = None


_LOCATION = re.compile(r'"([^"]+)":(\d+)')


def source_location(operation):
    """The innermost `file:line` of an op's location, or '' if it has none."""
    match = _LOCATION.search(str(operation.location))
    if not match:
        return ""
    path, line = match.groups()
    return f"{path.rsplit('/', 1)[-1]}:{line}"


class CompileContext:
    """What the compilation of one program knows beyond a single op: the module's functions,
    the device grid it is compiled for, the call site of the function being compiled (for ops
    without a location of their own), and whether the program must finish inside Execute."""

    def __init__(self, module, num_replicas=1, num_partitions=1):
        self.module = module
        # The device grid: the larger of what the compile options and the module attributes
        # JAX sets (mhlo.num_replicas/num_partitions) say, so that a program meant for several
        # devices is never taken for a one-device one.
        attrs = module.operation.attributes
        grid = {"num_replicas": num_replicas, "num_partitions": num_partitions}
        for name, value in grid.items():
            key = f"mhlo.{name}"
            grid[name] = max(int(value), ir.IntegerAttr(attrs[key]).value if key in attrs else 1)
        self.num_replicas, self.num_partitions = grid["num_replicas"], grid["num_partitions"]
        self.functions = {}
        for operation in module.body.operations:
            if operation.operation.name == "func.func":
                name = ir.StringAttr(operation.operation.attributes["sym_name"]).value
                self.functions[name] = operation
        self.call_site = ""
        self.collective_ids = itertools.count()  # in program order (distribution.Collective)
        self._locations = {}  # operation -> source_location (printing a location is slow)
        # Set by handlers of ops that call back into Python on the host (host callbacks): such
        # programs finish inside Execute, as on XLA:CPU, so their errors raise at the call.
        self.synchronous = False

    def where(self, operation):
        """An op's user-facing `file:line`: its own, else that of the call that reached it (ops
        in JAX's private functions, e.g. inside jnp.fft.fft, carry no file of their own)."""
        location = self._locations.get(operation)
        if location is None:
            location = self._locations[operation] = source_location(operation)
        return location or self.call_site


class Op:
    """What a handler sees of one op at compile time."""

    def __init__(self, operation, context):
        self.operation = operation
        self.name = operation.name
        self.context = context
        self.location = context.where(operation)
        try:
            self.operand_types = [to_type(v.type) for v in operation.operands]
            self.result_types = [to_type(r.type) for r in operation.results]
        except UnsupportedError as e:  # name the op and the user's line
            where = f" at {self.location}" if self.location else ""
            raise UnsupportedError(f"{self.name}{where}: {e}") from None
        self.regions = list(operation.regions)

    def quantized(self):
        """Whether an operand or result has a quantized element type."""
        return any(getattr(t, "quant", None) is not None
                   for t in self.operand_types + self.result_types)

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
