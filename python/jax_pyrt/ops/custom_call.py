"""Custom calls (spec: custom_call): dispatched through a registry of call targets.

`stablehlo.custom_call @name(...)` runs the handler registered for its `call_target_name`. A
target handler has exactly the contract of an op handler (see ops/base.py): it receives the
compile-time `ops.base.Op` (so `op_.attr("backend_config")`, `op_.value("api_version")`,
`op_.operand_types`, `op_.result_types`, ... are all available) and returns a kernel called as
`kernel(*operands)`, returning the result, or a sequence of results when the call has several.
A custom call whose target has no handler is a compile-time UnsupportedError (PJRT
UNIMPLEMENTED) naming the target and the user's line.

Adding a target (e.g. the LAPACK kernels jnp.linalg lowers to on CPU) is one decorated function,
in this module or any other op module:

    from .custom_call import target

    @target("lapack_sgeqrf_ffi", "lapack_dgeqrf_ffi")
    def geqrf(op_):
        '''QR factorisation (LAPACK geqrf) ...'''
        ...
        return kernel

The targets registered here are the ones JAX emits for single-device programs on a generic
platform: sharding annotations and memory placement, all the identity on one device.
"""

from .base import op

_TARGETS = {}


def target(*names):
    """Registers the decorated handler for the given custom_call target names."""

    def register(handler):
        for name in names:
            if name in _TARGETS:
                raise ValueError(f"two handlers for custom_call target {name}")
            _TARGETS[name] = handler
        _document()
        return handler

    return register


def targets():
    """{target name: handler}, for docs and tests."""
    return dict(sorted(_TARGETS.items()))


@op("stablehlo.custom_call", cost="data")
def custom_call(op_):
    """Spec: custom_call. Dispatched on call_target_name to a registry of targets (see
    ops/custom_call.py); an unregistered target is a compile-time UNIMPLEMENTED error naming
    it."""
    name = op_.value("call_target_name")
    handler = _TARGETS.get(name)
    if handler is None:
        raise op_.unsupported(f"call target {name!r} (pyrt implements the custom_call targets "
                              f"{', '.join(sorted(_TARGETS))})")
    return handler(op_)


_DOC = custom_call.__doc__


def _document():
    """Lists the registered targets in custom_call's docstring (and so in docs/ops.md)."""
    custom_call.__doc__ = f"{_DOC} Targets: {', '.join(sorted(_TARGETS))}."


def _types(types):
    return ", ".join(str(t.mlir) if getattr(t, "mlir", None) is not None else repr(t)
                     for t in types)


def _identity(op_, what, any_devices=False):
    """Kernel of a target that is the identity on one device (on every device, if
    `any_devices`): operands are returned as the results, which must have the same types. A
    GSPMD annotation in a program over several devices needs XLA's SPMD partitioner (pyrt
    partitions with Shardy, docs/multi-device.md)."""
    partitions = op_.context.num_partitions
    if partitions > 1 and not any_devices:
        raise op_.unsupported(f"{what} in a program partitioned over {partitions} devices: pyrt "
                              f"runs SPMD-partitioned programs on one device only")
    operands, results = op_.operand_types, op_.result_types
    same = len(operands) == len(results) and all(
        getattr(a, "shape", None) == getattr(b, "shape", None)
        and getattr(a, "dtype", None) == getattr(b, "dtype", None)
        for a, b in zip(operands, results))
    if not same:
        raise op_.unsupported(f"{what} from ({_types(operands)}) to ({_types(results)}): on one "
                              f"device it must keep its operands' types")
    if len(results) == 1:
        return lambda x: x
    return lambda *xs: xs


@target("Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape")
def sharding(op_):
    """GSPMD sharding annotations (jax_use_shardy_partitioner=False): the identity on one
    device, where the full shape is the shard shape."""
    return _identity(op_, f"custom_call @{op_.value('call_target_name')}")


@target("annotate_device_placement")
def annotate_device_placement(op_):
    """Memory-kind annotation (e.g. pinned_host): pyrt has one memory, so the identity, on
    any number of devices."""
    return _identity(op_, "custom_call @annotate_device_placement", any_devices=True)


@target("xla.sdy.FuncResultSharding", "xla.sdy.GlobalToLocalShape", "xla.sdy.LocalToGlobalShape")
def sdy_round_trip(op_):
    """Shardy annotations as exported programs carry them (round-tripped through
    custom_calls): the identity on one device."""
    return _identity(op_, f"custom_call @{op_.value('call_target_name')}")


@target("dce_sink")
def dce_sink(op_):
    """jax.lax.dce_sink(x, prevent_mlir_dce=True): a side-effecting call with no results that
    only keeps `x` from being dead-code eliminated; nothing to do at run time (as XLA:CPU's
    handler)."""
    if op_.result_types:
        raise op_.unsupported("results (dce_sink has none)")
    return lambda *operands: ()
