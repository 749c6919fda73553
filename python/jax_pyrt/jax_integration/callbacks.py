"""Host callbacks (jax.debug.print, jax.debug.callback, jax.pure_callback, io_callback) on pyrt.

Why: JAX lowers every host callback through `callback.emit_python_callback`, which refuses any
platform outside {cpu, cuda, rocm, tpu} ("`EmitPythonCallback` not supported on pyrt backend"),
and `debug_callback` / `debug_print` have lowering rules for cpu/gpu/tpu only. The callables
themselves travel to XLA:CPU through jaxlib's ExecuteContext, which PJRT does not expose to a
plugin. Checked against jax 0.10.2.

What: `install(platform)` registers pyrt lowering rules for the four callback primitives. They
mirror JAX's own rules (same wrapped callables, same effects and tokens) but emit

    stablehlo.custom_call @pyrt_python_callback(token?, operands...)
        {backend_config = "<session>:<index>", has_side_effect = ...}

naming the wrapped callable in the runtime's table of this process (ops/host_callback.py, which
also implements the target).

Ordering: the runtime runs a program's ops in program order and a device's programs in
submission order (the worker is in-order, and a program runs inline only when the worker is
idle), so ordered callbacks keep their order within and across calls. Tokens are None at run
time. Programs with callbacks finish inside the call, as on XLA:CPU (`synchronous` in
executable.py), so a callback's exception raises at the user's call.
"""

import functools

import numpy as np

from ..ops import host_callback
from ..ops.host_callback import TARGET, register


def _describe(callback):
    """A readable name for a user callback, for error messages."""
    fn = getattr(callback, "callback_func", callback)  # jax's _FlatCallback
    for attr in ("func", "__wrapped__"):
        while hasattr(fn, attr) and not hasattr(fn, "__qualname__"):
            fn = getattr(fn, attr)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    module = getattr(fn, "__module__", None)
    return f"{module}.{name}" if module and module != "builtins" else name


def _have_cpu():
    from .backends import have_backend
    return have_backend("cpu")


def _impl_without_cpu(what, callback, args):
    """JAX's callback impls (pure_callback_impl, ...) with the default device (pyrt's, under
    JAX_PLATFORMS=pyrt) in the CPU device's place: they put the operands on a CPU device and run
    the callable with it as the default device, and refuse to run when there is none ("failed
    to find a local CPU device"). Only used then, so that switching JAX_PLATFORMS from cpu to
    pyrt changes nothing else. The device is the one whose program calls back (see
    host_callback.calling_device)."""
    import logging

    from jax._src import api, config, tree_util
    from jax._src import xla_bridge as xb

    calling = host_callback.calling_device()
    device = next((d for d in xb.local_devices() if d.id == calling), xb.local_devices()[0])
    args = api.device_put(args, device)
    with config.default_device(device):
        try:
            out = callback(*args)
            return () if out is None else tuple(tree_util.tree_map(np.asarray, out))
        except BaseException:
            logging.getLogger("jax._src.callback").exception(f"jax.{what} failed")
            raise


def _emit(ctx, callback, token, operands, result_avals, *, has_side_effect, description):
    """JAX's emit_python_callback for pyrt: returns (results, token)."""
    from jax._src import dtypes
    from jax._src.interpreters import mlir
    from jax._src.lib.mlir.dialects import hlo

    def wrapped(*args):  # the checks emit_python_callback makes on CPU
        out_vals = callback(*args)
        if len(out_vals) != len(result_avals):
            raise RuntimeError("Mismatched number of outputs from callback. "
                               f"Expected: {len(result_avals)}, Actual: {len(out_vals)}")
        out_vals = tuple(dtypes.canonicalize_value(np.asarray(a)) for a in out_vals)
        for i, (val, aval) in enumerate(zip(out_vals, result_avals)):
            if val.shape != aval.shape:
                raise RuntimeError(f"Incorrect output shape for return value #{i}: "
                                   f"Expected: {aval.shape}, Actual: {val.shape}")
            if val.dtype != aval.dtype:
                raise RuntimeError(f"Incorrect output dtype for return value #{i}: "
                                   f"Expected: {aval.dtype}, Actual: {val.dtype}")
        return out_vals

    config = register(wrapped, description)
    # Not ctx.module_context.add_host_callback(wrapped): that is for XLA:CPU's ExecuteContext,
    # and it would make JAX thread runtime tokens through every program with a pure_callback
    # (see docs/jax-integration.md). The persistent cache may store such programs, but the
    # random session in backend_config keeps another process from ever hitting them.
    result_types = [mlir.aval_to_ir_type(ctx.module_context, a) for a in result_avals]
    operands = list(operands)
    if token is not None:
        operands = [token, *operands]
        result_types = [hlo.TokenType.get(), *result_types]
    call = mlir.custom_call(TARGET, result_types=result_types, operands=operands,
                            backend_config=config, has_side_effect=has_side_effect,
                            api_version=1)
    results = list(call.results)
    if token is not None:
        token, *results = results
    return results, token


def _pure_callback_lowering(ctx, *args, callback, sharding, **params):
    from jax._src import callback as cb

    def _callback(*flat_args):
        if not _have_cpu():
            return _impl_without_cpu("pure_callback", callback, flat_args)
        return tuple(cb.pure_callback_impl(*flat_args, callback=callback, sharding=None,
                                           **params))

    results, _ = _emit(ctx, _callback, None, args, ctx.avals_out, has_side_effect=False,
                       description=_describe(callback))
    return results


def _io_callback_lowering(ctx, *args, callback, sharding, ordered, **params):
    from jax._src import callback as cb
    from jax._src.interpreters import mlir

    def _callback(*flat_args):
        if not _have_cpu():
            return _impl_without_cpu("io_callback", callback, flat_args)
        return tuple(cb.io_callback_impl(*flat_args, callback=callback, sharding=None,
                                         ordered=ordered, **params))

    token = ctx.tokens_in.get(cb._OrderedIOEffect) if ordered else None
    results, token = _emit(ctx, _callback, token, args, ctx.avals_out, has_side_effect=True,
                           description=_describe(callback))
    if ordered:
        ctx.set_tokens_out(ctx.tokens_in.update_tokens(mlir.TokenSet({cb._OrderedIOEffect: token})))
    return results


def _debug_callback_lowering(ctx, *args, effect, partitioned, callback, **params):
    from jax._src import debugging, effects
    from jax._src.interpreters import mlir

    def _callback(*flat_args):
        if not _have_cpu():
            _impl_without_cpu("debug.callback", callback, flat_args)
            return ()
        debugging.debug_callback_p.impl(*flat_args, effect=effect, partitioned=partitioned,
                                        callback=callback, **params)
        return ()

    description = params.pop("_pyrt_description", None) or _describe(callback)
    ordered = effects.ordered_effects.contains(effect)
    token = ctx.tokens_in.get(effect) if ordered else None
    results, token = _emit(ctx, _callback, token, args, ctx.avals_out, has_side_effect=True,
                           description=description)
    if ordered:
        ctx.set_tokens_out(ctx.tokens_in.update_tokens(mlir.TokenSet({effect: token})))
    return results


def _debug_print_lowering(ctx, *args, fmt, ordered, partitioned, in_tree, static_args,
                          np_printoptions, has_placeholders, logging_record):
    from functools import partial

    from jax._src import debugging

    callback = partial(debugging._format_print_callback, fmt, dict(np_printoptions),
                       has_placeholders, logging_record)
    callback = debugging._make_flat_callback(in_tree, callback, static_args)
    effect = debugging.ordered_debug_effect if ordered else debugging.debug_effect
    return _debug_callback_lowering(ctx, *args, effect=effect, partitioned=partitioned,
                                    callback=callback,
                                    _pyrt_description=f"jax.debug.print({fmt!r})")


def _check_lowering(ctx, *args, err_tree, debug):
    """checkify's `check` (jax.experimental.checkify.check, debug_check): JAX lowers it to a
    host callback raising the error on cpu/gpu only (its rule calls emit_python_callback);
    the same rule with pyrt's callbacks."""
    from jax._src import checkify, config

    if debug:
        return []  # a no-op unless discharged, as on CPU
    if not config.xla_runtime_errors.value:
        raise checkify.functionalization_error
    results, _ = _emit(ctx, functools.partial(checkify.python_err, err_tree), None, args,
                       ctx.avals_out, has_side_effect=True, description="checkify.check")
    return results


def install(platform):
    """Registers the pyrt lowering rules of the host-callback primitives (idempotent; does
    nothing when `platform` is not a registered JAX platform, e.g. in tests that stub out
    register_plugin)."""
    from jax._src import callback as cb
    from jax._src import debugging
    from jax._src import xla_bridge as xb
    from jax._src.interpreters import mlir

    if not xb.is_known_platform(platform):
        return
    from jax._src import checkify

    rules = {
        checkify.check_p: _check_lowering,
        cb.pure_callback_p: _pure_callback_lowering,
        cb.io_callback_p: _io_callback_lowering,
        debugging.debug_callback_p: _debug_callback_lowering,
        debugging.debug_print_p: _debug_print_lowering,
    }
    for prim, rule in rules.items():
        # Not cacheable: each lowering registers its own callable (as JAX does for TPU).
        mlir.register_lowering(prim, rule, platform=platform, cacheable=False)
