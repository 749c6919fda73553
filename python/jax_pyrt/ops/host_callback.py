"""Host callbacks, the runtime half: a table of this process's Python callables and the
`custom_call @pyrt_python_callback` target that calls them (the lowering half, which JAX needs,
is jax_integration/callbacks.py).

A call names its callable in `backend_config = "<session>:<index>"`: <index> keys the wrapped
callable in `_CALLBACKS`, and <session> is random per process, so that a program lowered in
another process (a deserialized executable, a persistent-cache entry) is refused at compile
time instead of calling whatever has the same index here. Entries live as long as the process
(JAX does not cache callback lowerings: each jit lowering adds one; each holds only the user's
callable).
"""

import itertools
import secrets
import threading

import numpy as np

from ..errors import ExecutionError
from ..types import TokenType
from .base import InContext
from .custom_call import target

TARGET = "pyrt_python_callback"
_SESSION = secrets.token_hex(8)
_CALLBACKS = {}  # index -> (wrapped callable, description)
_counter = itertools.count()
_lock = threading.Lock()
_calling = threading.local()  # .device: the id of the device whose program calls back


def calling_device():
    """The id of the device whose program is calling a host callback on this thread (None
    outside a callback). A callback that runs JAX work must run it there: that device's
    worker is this thread, so the work runs inline, while another device's worker may be
    waiting in a collective for this one."""
    return getattr(_calling, "device", None)


def register(fn, description):
    """Keeps `fn` for the process lifetime; returns the backend_config naming it."""
    with _lock:
        index = next(_counter)
        _CALLBACKS[index] = (fn, description)
    return f"{_SESSION}:{index}"


@target(TARGET)
def pyrt_python_callback(op_):
    """Host callbacks (jax.debug.print, jax.debug.callback, jax.pure_callback, io_callback) as
    pyrt's lowering rules emit them (jax_integration/callbacks.py): calls a Python callable of
    this process on NumPy copies of the operands; tokens are None. The program then finishes
    inside Execute (a synchronous program), as on XLA:CPU."""
    config = op_.attr("backend_config")
    text = config.value if config is not None and hasattr(config, "value") else ""
    session, _, index = text.partition(":")
    if session != _SESSION or not index.isdigit() or int(index) not in _CALLBACKS:
        raise op_.unsupported(
            f"host callback {text!r}: it was lowered in another process (host callbacks "
            f"refer to Python functions of the process that traced them)")
    fn, description = _CALLBACKS[int(index)]
    op_.context.synchronous = True
    where = f" at {op_.location}" if op_.location else ""
    # None for a token, else the declared shape.
    in_shapes = [None if isinstance(t, TokenType) else tuple(t.shape) for t in op_.operand_types]
    out_specs = [None if isinstance(t, TokenType) else (t.shape, t.dtype)
                 for t in op_.result_types]
    arrays = [s for s in out_specs if s is not None]
    n_results = len(out_specs)

    def kernel(ctx, *operands):
        # Copies: operands may be views of device memory the callback must not keep.
        args = [np.array(x) for x, shape in zip(operands, in_shapes) if shape is not None]
        outer, _calling.device = calling_device(), ctx.device
        try:
            values = fn(*args)
        except Exception as e:
            raise ExecutionError(f"pyrt: host callback {description}{where} raised "
                                 f"{type(e).__name__}: {e}") from e
        finally:
            _calling.device = outer
        values = list(values) if values is not None else []
        if len(values) != len(arrays):
            raise ExecutionError(f"pyrt: host callback {description}{where} returned "
                                 f"{len(values)} values, expected {len(arrays)}")
        it = iter(values)
        out = []
        for spec in out_specs:
            if spec is None:
                out.append(None)
                continue
            shape, dtype = spec
            v = np.asarray(next(it))
            if v.shape != tuple(shape):
                raise ExecutionError(f"pyrt: host callback {description}{where} returned "
                                     f"shape {v.shape}, expected {tuple(shape)}")
            out.append(np.asarray(v, dtype=dtype))  # (ascontiguousarray would make 0-d 1-d)
        if n_results == 1:
            return out[0]
        return tuple(out) if n_results else None

    return InContext(kernel)
