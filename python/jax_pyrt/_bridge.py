"""The one Python module the C++ layer calls (pjrt_plugin/python_bridge.cc): join the other
processes of a job, compile, deserialize, serialize and run, and profiler traces. Compile and
deserialize return a `Compiled` record, which the C++ layer reads once, field by field from one
table, so that metadata queries never need the GIL; `handle` in it is what serialize() and run()
take back.
"""

import collections
import dataclasses
import hashlib
import threading

from . import processes, tracing
from .communicator import runs as communicators
from .errors import InternalError, PyrtError, UnsupportedError
from .executable import Executable
from .ops.base import RunContext

_CACHE_SIZE = 256
_cache = collections.OrderedDict()  # hash of (artifact, options) -> Executable
_lock = threading.Lock()
compile_count = 0  # programs actually compiled (cache misses), for tests
deserialize_count = 0  # executables loaded by PJRT_Executable_DeserializeAndLoad, for tests


@dataclasses.dataclass(frozen=True)
class Compiled:
    """What the C++ layer needs of a compiled program (pjrt_plugin/python_bridge.h, Program)."""

    handle: Executable         # passed back to serialize() and run()
    name: str
    fingerprint: str
    text: str                  # the StableHLO program, for PJRT_Executable_OptimizedProgram
    compile_options: bytes     # serialized xla.CompileOptionsProto
    device_assignment: bytes   # serialized xla.DeviceAssignmentProto
    num_replicas: int
    num_partitions: int
    device_ids: tuple          # device of each (replica, partition), replica-major
    inputs: tuple              # ((PJRT_Buffer_Type, dims), ...) of the parameters
    outputs: tuple             # and of the results
    input_memory_kinds: tuple
    output_memory_kinds: tuple
    cost_analysis: tuple       # ((name, value), ...)
    input_output_aliases: tuple  # ((input, output), ...) the output may reuse the input
    argument_size_in_bytes: int
    output_size_in_bytes: int
    alias_size_in_bytes: int
    temp_size_in_bytes: int
    code_size_in_bytes: int
    run_inline: bool           # cheap enough to run on the caller's thread
    synchronous: bool          # must finish inside Execute (host callbacks)
    parameter_shardings: tuple  # serialized xla.OpSharding per parameter; () on one device
    output_shardings: tuple     # and per result

    @classmethod
    def of(cls, executable):
        fields = {f.name: getattr(executable, f.name) for f in dataclasses.fields(cls)
                  if f.name not in ("handle", "inputs", "outputs")}
        fields.update(
            device_ids=tuple(fields["device_ids"]),
            input_memory_kinds=tuple(fields["input_memory_kinds"]),
            output_memory_kinds=tuple(fields["output_memory_kinds"]),
            cost_analysis=tuple(fields["cost_analysis"].items()),
            input_output_aliases=tuple(tuple(p) for p in fields["input_output_aliases"]),
            run_inline=bool(fields["run_inline"]), synchronous=bool(fields["synchronous"]),
            parameter_shardings=tuple(fields["parameter_shardings"]),
            output_shardings=tuple(fields["output_shardings"]))
        return cls(handle=executable, inputs=tuple(executable.input_specs),
                   outputs=tuple(executable.output_specs), **fields)


def join_processes(index, count, local_devices, kv_get, kv_put):
    """PJRT_Client_Create with jax.distributed: this process joins the job (processes.join);
    returns every device of the job as (id, process index, local hardware id)."""
    return processes.join(index, count, local_devices, kv_get, kv_put)


def process_failed(index, why):
    """PJRT_Client_UpdateGlobalProcessInfo: jax.distributed reports process `index` gone or
    failed."""
    if processes.job is not None:
        processes.job.transport.process_failed(index, why)


def trace_start():
    """PLUGIN_Profiler start (jax.profiler): record programs and ops (tracing.py)."""
    tracing.start_trace()


def trace_stop():
    """PLUGIN_Profiler stop."""
    tracing.stop_trace()


def trace_collect():
    """PLUGIN_Profiler collect_data: the recorded events as a serialized XSpace."""
    return tracing.collect_trace()


def compile(code, fmt, options):
    """PJRT_Client_Compile: a StableHLO program -> Compiled (cached by content)."""
    global compile_count
    if fmt != "mlir":
        raise UnsupportedError(f"pyrt compiles StableHLO programs (format 'mlir'), not '{fmt}'")
    key = hashlib.sha256(code + b"\0" + options).digest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return Compiled.of(_cache[key])
    executable = _guard(lambda: Executable(code, options))
    with _lock:
        compile_count += 1
        _cache[key] = executable
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return Compiled.of(executable)


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
    return Compiled.of(executable)


def serialize(handle):
    """PJRT_Executable_Serialize: the bytes deserialize() takes."""
    return handle.serialize()


def run(handle, views, donated, device, replica, partition, run_id, devices):
    """One device's part of a run of a program (PJRT_LoadedExecutable_Execute): `views` are the
    inputs' StorageViews, `donated` the inputs whose memory the outputs may take; returns per
    output a donated input's index or a new flat uint8 array (Executable.execute). The
    `devices` device runs of run `run_id` in this process meet through one communicator (which
    also reaches the program's devices in other processes)."""
    if devices == 1 and (processes.job is None or len(handle.device_ids) == 1):
        return handle.execute(views, donated, RunContext(device, replica, partition))
    communicator = communicators.join(run_id, devices, handle)
    try:
        return handle.execute(views, donated,
                              RunContext(device, replica, partition, communicator))
    except BaseException as e:
        communicator.fail(device, e)  # the others must not wait for this device
        raise
    finally:
        communicators.leave(run_id)


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
    except Exception as e:  # a bug of ours, or an input we failed to anticipate
        raise InternalError(f"pyrt could not compile the program: {type(e).__name__}: {e} "
                            f"(a bug in pyrt)") from e
