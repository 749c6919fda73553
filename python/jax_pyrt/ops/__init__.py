"""The op registry: one handler per StableHLO op, named after the op.

A handler takes a compile-time `jax_pyrt.compiler.Op` and returns a kernel, a plain callable over
NumPy arrays with every attribute already bound:

    @op("stablehlo.add")
    def add(op):
        '''Spec: add.'''
        return np.add

Kernels are called as `kernel(*operands)`, or `kernel(regions, *operands)` for ops with regions
(each region is a compiled Python function returning a tuple). A kernel returns the result for a
single-result op without regions, and a sequence of results otherwise. Kernels never modify their
operands. A handler may return `Constant(array)` for a value known at compile time.

Handlers live in modules grouped as the StableHLO spec groups ops; the op coverage table
(docs/ops.md) is generated from this registry by `python -m jax_pyrt.ops`.
"""

_HANDLERS = {}

# Region terminators: the compiler turns them into `return` statements.
TERMINATORS = frozenset({"stablehlo.return", "func.return"})


class Constant:
    """A kernel that is a fixed value: the compiler binds the array itself, with no call."""

    def __init__(self, value):
        self.value = value


def op(*names):
    """Registers the decorated handler for the given op names."""

    def register(handler):
        for name in names:
            if name in _HANDLERS:
                raise ValueError(f"two handlers for {name}")
            _HANDLERS[name] = handler
        return handler

    return register


def lookup(name):
    return _HANDLERS.get(name)


def registry():
    """{op name: handler}, for docs and tests."""
    return dict(sorted(_HANDLERS.items()))


# Importing a module registers its handlers.
from . import (  # noqa: E402,F401
    control_flow, convolution, custom_call, distribution, dynamic, elementwise, fft, indexing,
    lapack, linalg, normalization, quantization, random, reduction, shape, sharding, sort, windows)
