"""Control flow (spec: while, if, case, call, return) and optimization_barrier."""

from .base import op


def _structural(op_):
    raise AssertionError(f"{op_.name} is handled by the compiler itself")


@op("func.return", "stablehlo.return", cost="data")
def return_(op_):
    """Region and function terminator; becomes a Python `return`.

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    return _structural(op_)


@op("func.call", cost="data")
def call(op_):
    """Calls a private func.func of the module; compiled once, called as a Python function.

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    return _structural(op_)


@op("stablehlo.composite", cost="data")
def composite(op_):
    """Spec: composite. Runs its decomposition function (a func.call to `decomposition`).

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    return _structural(op_)


@op("stablehlo.async_start", cost="data")
def async_start(op_):
    """Spec: async_start. Runs its region at once (pyrt runs a program's ops in order) and
    returns the results as the future's value.

    dtypes: all"""
    return lambda regions, *operands: (regions[0](*operands),)


@op("stablehlo.async_done", cost="data")
def async_done(op_):
    """Spec: async_done. The values of the future async_start returned.

    dtypes: all"""
    if len(op_.result_types) == 1:
        return lambda future: future[0]
    return lambda future: future


@op("stablehlo.while", cost="data")
def while_(op_):
    """Spec: while. A Python loop over the compiled cond and body regions (which may use values
    of the enclosing scope); zero iterations return the operands.

    dtypes: any values (tensors of all element types, tokens, tuples); the condition gives an i1."""

    def kernel(regions, *values):
        cond, body = regions
        while cond(*values)[0]:
            values = body(*values)
        return values

    return kernel


@op("stablehlo.if", cost="data")
def if_(op_):
    """Spec: if. Runs the true or the false branch region.

    dtypes: any values (tensors of all element types, tokens, tuples); i1 predicate."""

    def kernel(regions, pred):
        return regions[0]() if pred else regions[1]()

    return kernel


@op("stablehlo.case", cost="data")
def case(op_):
    """Spec: case. An out-of-range index (negative or too large) runs the last branch.

    dtypes: any values (tensors of all element types, tokens, tuples); i32 index."""

    def kernel(regions, index):
        i = int(index)
        return regions[i]() if 0 <= i < len(regions) else regions[-1]()

    return kernel


@op("stablehlo.optimization_barrier", cost="data")
def optimization_barrier(op_):
    """Spec: optimization_barrier. The identity (pyrt does not reorder ops).

    dtypes: any values (tensors of all element types, tokens, tuples)."""
    if len(op_.result_types) == 1:  # one result: the kernel returns it, not a 1-tuple
        return lambda operand: operand
    return lambda *operands: operands
