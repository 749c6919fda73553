"""Compile-time analyses of a StableHLO module: buffer donation aliases, cost analysis and
memory sizes. The Executable exposes their results; the C++ layer only reports them
(PJRT_Executable_GetCostAnalysis, PJRT_Executable_GetCompiledMemoryStats) and honours the aliases
in Execute. See docs/jax-integration.md ("Donation")."""

from jaxlib.mlir import ir
from jaxlib.mlir.dialects import stablehlo

from .compiler import TensorType, entry_function, nested_operations, to_type

# As XLA's HloCostAnalysis: these elementwise ops count as transcendentals, not flops.
TRANSCENDENTAL = {
    "cosine", "sine", "tan", "exponential", "exponential_minus_one", "log", "log_plus_one",
    "logistic", "power", "rsqrt", "sqrt", "cbrt", "tanh", "atan2", "erf",
}
# Ops that move or name data without arithmetic: bytes, but no flops.
DATA_MOVEMENT = {
    "constant", "reshape", "broadcast_in_dim", "broadcast", "transpose", "slice", "dynamic_slice",
    "dynamic_update_slice", "concatenate", "pad", "gather", "scatter", "reverse", "iota",
    "bitcast_convert", "get_tuple_element", "tuple", "optimization_barrier", "copy",
    "collective_permute", "all_gather", "all_to_all", "get_dimension_size", "return",
    "custom_call", "while", "if", "case", "after_all", "create_token", "partition_id",
    "replica_id", "sort", "rng_bit_generator",
}


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
    main = entry_function(module)
    attrs = main.operation.attributes
    if "arg_attrs" not in attrs:
        return []
    fn_type = ir.FunctionType(ir.TypeAttr(attrs["function_type"]).value)
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
    elementwise ops 1 flop per result element, dot_general 2*M*N*K (times batch), convolution
    2 * output elements * kernel elements per output feature, reductions one flop per input
    element; bytes accessed = operand bytes + result bytes of every arithmetic or data op."""
    flops = transcendentals = accessed = 0
    for op in nested_operations(module.operation):
        name = op.name
        if not name.startswith("stablehlo.") and name not in ("chlo.erf",):
            continue
        short = name.split(".", 1)[1]
        operands = [_tensor(v.type) for v in op.operands]
        results = [_tensor(r.type) for r in op.results]
        if short not in ("return", "constant", "while", "if", "case"):
            accessed += _bytes(operands) + _bytes(results)
        out = results[0].size if results and results[0] is not None else 0
        if short in DATA_MOVEMENT:
            continue
        if short in TRANSCENDENTAL:
            transcendentals += out
        elif short == "dot_general":
            dims = op.attributes["dot_dimension_numbers"]
            contracting = stablehlo.DotDimensionNumbers(dims).lhs_contracting_dimensions
            k = 1
            for d in contracting:
                k *= operands[0].shape[d]
            flops += 2 * out * k
        elif short == "convolution":
            rhs = operands[1]
            # kernel elements per output feature: all of the kernel / its output-feature count
            dn = stablehlo.ConvDimensionNumbers(op.attributes["dimension_numbers"])
            out_features = max(1, rhs.shape[dn.kernel_output_feature_dimension])
            flops += 2 * out * (rhs.size // out_features)
        elif short in ("reduce", "reduce_window", "select_and_scatter"):
            flops += sum(t.size for t in operands[: len(operands) // 2] if t is not None)
        else:
            flops += out
    costs = {"flops": float(flops), "transcendentals": float(transcendentals),
             "bytes accessed": float(accessed)}
    return {k: v for k, v in costs.items() if v}  # XLA:CPU leaves out zero counts too


def memory_sizes(input_types, output_types, pairs):
    """(argument, output, alias) sizes in bytes, as PJRT_Executable_GetCompiledMemoryStats."""
    arg = _bytes(input_types)
    out = _bytes(output_types)
    if len(output_types) > 1:
        out += 8 * len(output_types)  # as XLA:CPU, which counts the output tuple's pointer table
    alias = sum(input_types[i].size * input_types[i].dtype.itemsize for i, _ in pairs)
    return arg, out, alias
