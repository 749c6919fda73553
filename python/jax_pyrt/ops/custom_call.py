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

import numpy as np
from jaxlib.mlir import ir

from ..attributes import python_value
from ..errors import ExecutionError
from .base import op

_TARGETS = {}
_USER_TARGETS = set()  # added by register_custom_call


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
    """{target name: handler} of pyrt's own targets, for docs and tests."""
    return {name: _TARGETS[name] for name in sorted(_TARGETS) if name not in _USER_TARGETS}


@op("stablehlo.custom_call", cost="data")
def custom_call(op_):
    """Spec: custom_call. Dispatched on call_target_name to a registry of targets (see
    ops/custom_call.py); an unregistered target is a compile-time UNIMPLEMENTED error naming
    it."""
    name = op_.value("call_target_name")
    handler = _TARGETS.get(name)
    if handler is None:
        raise op_.unsupported(f"call target {name!r} (pyrt implements the custom_call targets "
                              f"{', '.join(sorted(_TARGETS))}; jax_pyrt.register_custom_call "
                              "adds one written in Python)")
    return handler(op_)


_DOC = custom_call.__doc__


def _document():
    """Lists the registered targets in custom_call's docstring (and so in docs/ops.md)."""
    custom_call.__doc__ = f"{_DOC} Targets: {', '.join(targets())}."


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


# -- targets users add from Python (jax_pyrt.register_custom_call; docs/extending.md)

def register_custom_call(name, fn):
    """Makes the Python function `fn` the custom call target `name` on pyrt, so that
    `jax.ffi.ffi_call(name, result_shape_dtypes, ...)(*args, **attributes)` runs it under jit:
    it is called as `fn(*operands, **attributes)` with NumPy arrays and the call's attributes
    (Python ints, floats, bools, strings, NumPy arrays), and returns one array, or a tuple with
    one per result, of the declared shapes (converted to the declared dtypes). An exception it
    raises fails the call at the user's line, as a host callback's does. Registering `name`
    again replaces the earlier function; pyrt's own targets cannot be replaced."""
    if not callable(fn):
        raise TypeError(f"register_custom_call: {fn!r} is not callable")
    if name in _TARGETS and name not in _USER_TARGETS:
        raise ValueError(f"register_custom_call: {name!r} is one of pyrt's own custom call "
                         "targets")
    _USER_TARGETS.add(name)
    _TARGETS[name] = lambda op_: _python_target(op_, name, fn)


def _python_target(op_, name, fn):
    config = op_.attr("mhlo.backend_config")
    attributes = {} if config is None else {
        named.name: _attribute(named.attr) for named in ir.DictAttr(config)}
    results = op_.result_types
    describe = f"custom call {name!r} ({getattr(fn, '__qualname__', fn)})"
    op_.context.synchronous = True  # its errors raise at the user's call, as callbacks' do

    def kernel(*operands):
        try:
            out = fn(*operands, **attributes)
        except Exception as e:
            raise ExecutionError(f"{describe} raised {type(e).__name__}: {e}") from e
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != len(results):
            raise ExecutionError(f"{describe} returned {len(outs)} values for "
                                 f"{len(results)} results")
        arrays = []
        for i, (value, t) in enumerate(zip(outs, results)):
            value = np.asarray(value)
            if value.shape != tuple(t.shape):
                raise ExecutionError(f"{describe}: result {i} has shape {value.shape}, but "
                                     f"the call declares {tuple(t.shape)}")
            arrays.append(value.astype(t.dtype, copy=False))
        return arrays[0] if len(arrays) == 1 else tuple(arrays)

    return kernel


def _attribute(attr):
    """An ffi_call attribute as a Python value (dense arrays as NumPy arrays)."""
    if isinstance(attr, ir.DenseElementsAttr):
        return np.array(ir.DenseElementsAttr(attr))
    return python_value(attr)
