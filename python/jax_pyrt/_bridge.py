"""The functions the C++ layer calls (see pjrt_plugin/python_bridge.h). Keep this surface small."""

import collections
import hashlib
import threading

from .errors import InvalidProgramError, PyrtError, UnsupportedError
from .executable import Executable

_CACHE_SIZE = 256
_cache = collections.OrderedDict()  # hash of (artifact, options) -> Executable
_lock = threading.Lock()
compile_count = 0  # programs actually compiled (cache misses), for tests


def compile(code, fmt, options):
    """PJRT_Client_Compile: a StableHLO program -> Executable (cached by content)."""
    global compile_count
    if fmt != "mlir":
        raise UnsupportedError(f"pyrt compiles StableHLO programs (format 'mlir'), not '{fmt}'")
    key = hashlib.sha256(code + b"\0" + options).digest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    executable = _guard(lambda: Executable(code, options))
    with _lock:
        compile_count += 1
        _cache[key] = executable
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return executable


deserialize_count = 0  # executables loaded by PJRT_Executable_DeserializeAndLoad, for tests


def deserialize(data, override_options):
    """PJRT_Executable_DeserializeAndLoad: restores the prepared program without compiling, or
    (if it could not be stored or was made for another environment) compiles it again, which
    then counts in compile_count."""
    global compile_count, deserialize_count
    executable = _guard(lambda: Executable.deserialize(data, override_options))
    with _lock:
        deserialize_count += 1
        if executable.recompiled:
            compile_count += 1
    return executable


# What to do about a program pyrt cannot run, appended to every compile-time UnsupportedError.
UNSUPPORTED_FIX = ("To run it anyway, run this computation on the CPU backend (put its inputs "
                   "there: jax.device_put(x, jax.devices('cpu')[0])); pyrt's coverage is in "
                   "docs/ops.md")


def _guard(make):
    try:
        return make()
    except UnsupportedError as e:
        raise UnsupportedError(f"{e}. {UNSUPPORTED_FIX}") from e
    except PyrtError:
        raise
    except Exception as e:  # a bug of ours or an input we failed to anticipate: say which
        raise InvalidProgramError(f"pyrt could not compile the program: {type(e).__name__}: {e}") from e
