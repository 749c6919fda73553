"""MLIR contexts for JAX programs, and walking their modules (jaxlib only: the partitioner
process imports this)."""


def new_context():
    """An MLIR context that knows every dialect a JAX program may hold (func, stablehlo, chlo,
    sdy, ...), made as JAX makes its own."""
    from jaxlib.mlir import ir
    from jaxlib.mlir._mlir_libs import _jax_mlir_ext
    from jaxlib.mlir.dialects import chlo, sdy, stablehlo

    registry = ir.DialectRegistry()
    _jax_mlir_ext.register_dialects(registry)
    context = ir.Context()
    # As JAX's own contexts: a pass that fails verification on a worker thread reports through
    # Python's diagnostic handler, which waits for the GIL the pass manager's caller holds.
    context.enable_multithreading(False)
    context.append_dialect_registry(registry)
    context.load_all_available_dialects()
    for dialect in (sdy, chlo, stablehlo):
        dialect.register_dialect(context)
    return context


def nested_operations(operation):
    """Every op inside `operation`'s regions, at any depth, outermost first."""
    for region in operation.regions:
        for block in region.blocks:
            for inner in block.operations:
                yield inner.operation
                yield from nested_operations(inner.operation)


def main_function(module):
    """The entry point's func.func operation: @main, or the module's only public function."""
    from jaxlib.mlir import ir

    from .errors import InvalidProgramError

    public = []
    for op in module.body.operations:
        op = op.operation
        if op.name != "func.func":
            continue
        if ir.StringAttr(op.attributes["sym_name"]).value == "main":
            return op
        if "sym_visibility" not in op.attributes or \
                ir.StringAttr(op.attributes["sym_visibility"]).value == "public":
            public.append(op)
    if len(public) == 1:
        return public[0]
    raise InvalidProgramError("pyrt: the program has no @main function")


def function_type(function):
    from jaxlib.mlir import ir

    return ir.FunctionType(ir.TypeAttr(function.attributes["function_type"]).value)


def value_attributes(function, which, name):
    """The attribute `name` of each argument (`which` = "arg_attrs") or result ("res_attrs")
    of a function, None where it has none."""
    from jaxlib.mlir import ir

    if which not in function.attributes:
        kind = function_type(function)
        return [None] * len(kind.inputs if which == "arg_attrs" else kind.results)
    return [ir.DictAttr(d)[name] if name in ir.DictAttr(d) else None
            for d in ir.ArrayAttr(function.attributes[which])]


def sdy_shardings(function, which):
    """The sdy.sharding of each argument (`which` = "arg_attrs") or result ("res_attrs") of a
    function, as text, None where there is none."""
    return [None if a is None else str(a) for a in value_attributes(function, which,
                                                                      "sdy.sharding")]


def meshes(module):
    """{mesh name: (axis names, axis sizes, device ids or None)} of the module's sdy.mesh ops."""
    from jaxlib.mlir import ir
    from jaxlib.mlir.dialects import sdy

    found = {}
    for op in module.body.operations:
        if op.operation.name != "sdy.mesh":
            continue
        mesh = sdy.MeshAttr(op.operation.attributes["mesh"])
        axes = [sdy.MeshAxisAttr(a) for a in mesh.axes]
        name = ir.StringAttr(op.operation.attributes["sym_name"]).value
        found[name] = ([a.name for a in axes], [a.size for a in axes],
                       list(mesh.device_ids) or None)
    return found
