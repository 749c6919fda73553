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
