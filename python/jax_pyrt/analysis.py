"""Compile-time analyses of a StableHLO module: buffer donation aliases, cost analysis and
memory sizes. The Executable exposes their results; the C++ layer only reports them
(PJRT_Executable_GetCostAnalysis, PJRT_Executable_GetCompiledMemoryStats) and honours the aliases
in Execute. See docs/jax-integration.md ("Donation")."""

from jaxlib.mlir import ir

from . import ops
from .contexts import function_type, main_function, nested_operations
from .types import TensorType, to_type


def _tensor(t):
    try:
        t = to_type(t)
    except Exception:
        return None
    return t if isinstance(t, TensorType) else None


def _bytes(types):
    return sum(t.size * t.dtype.itemsize for t in types if t is not None)


def aliases(module):
    """[(input index, output index)] from @main's `tf.aliasing_output` argument attributes (what
    jax emits for donate_argnums on platforms in mlir._platforms_with_donation); arguments marked
    only `jax.buffer_donor` take the first unaliased output of the same type."""
    main = main_function(module)
    attrs = main.attributes
    if "arg_attrs" not in attrs:
        return []
    fn_type = function_type(main)
    outputs = [str(t) for t in fn_type.results]
    pairs, donors = [], []
    for i, d in enumerate(ir.ArrayAttr(attrs["arg_attrs"])):
        d = ir.DictAttr(d)
        if "tf.aliasing_output" in d:
            pairs.append((i, ir.IntegerAttr(d["tf.aliasing_output"]).value))
        elif "jax.buffer_donor" in d and ir.BoolAttr(d["jax.buffer_donor"]).value:
            donors.append(i)
    taken = {o for _, o in pairs}
    for i in donors:
        t = str(fn_type.inputs[i])
        for o, out in enumerate(outputs):
            if o not in taken and out == t:
                pairs.append((i, o))
                taken.add(o)
                break
    return sorted(pairs)


def cost_analysis(module):
    """{"flops", "transcendentals", "bytes accessed"} summed over every op of the module, each op
    counted once (loop and call bodies are not multiplied), as XLA's HloCostAnalysis counts:
    each op as its handler's registration declares (ops.base.op's `cost`: one flop or
    transcendental per result element, none for data movement, or the op's own count, e.g.
    2*M*N*K for dot_general); bytes accessed = operand bytes + result bytes of every arithmetic
    or data op."""
    flops = transcendentals = accessed = 0
    for op in nested_operations(module.operation):
        cost = ops.cost_of(op.name)
        if cost is None:  # func.*, sdy.*, ...: no work of their own
            continue
        operands = [_tensor(v.type) for v in op.operands]
        results = [_tensor(r.type) for r in op.results]
        if op.name not in _NO_BYTES:
            accessed += _bytes(operands) + _bytes(results)
        out = results[0].size if results and results[0] is not None else 0
        if cost == "transcendental":
            transcendentals += out
        elif cost == "flops":
            flops += out
        elif callable(cost):
            flops += cost(op, operands, results)
    costs = {"flops": float(flops), "transcendentals": float(transcendentals),
             "bytes accessed": float(accessed)}
    return {k: v for k, v in costs.items() if v}  # XLA:CPU leaves out zero counts too


# Ops whose operands and results XLA does not count as accessed bytes.
_NO_BYTES = frozenset({"stablehlo.return", "func.return", "func.call", "stablehlo.constant",
                       "stablehlo.while", "stablehlo.if", "stablehlo.case",
                       "sdy.sharding_constraint", "sdy.reshard"})


def memory_sizes(input_types, output_types, pairs):
    """(argument, output, alias) sizes in bytes, as PJRT_Executable_GetCompiledMemoryStats."""
    arg = _bytes(input_types)
    out = _bytes(output_types)
    if len(output_types) > 1:
        out += 8 * len(output_types)  # as XLA:CPU, which counts the output tuple's pointer table
    alias = sum(input_types[i].size * input_types[i].dtype.itemsize for i, _ in pairs)
    return arg, out, alias
