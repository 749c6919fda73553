"""An Executable: a StableHLO program compiled for pyrt, plus the metadata PJRT reports.

The C++ layer reads the attributes below once, right after compiling, and calls `run` for every
execution; `serialize` / `deserialize` back PJRT_Executable_Serialize and the persistent cache.
"""

import hashlib
import struct
import threading

import numpy as np
from jaxlib import _jax
from jaxlib.mlir import ir
from jaxlib.mlir._mlir_libs import _stablehlo
from jaxlib.mlir.dialects import sdy

from . import __version__, compiler, dtypes, protobuf
from .errors import ExecutionError, InvalidProgramError, PyrtError

_MAGIC = b"pyrt-executable\0"
_quiet = threading.local()


def load_module(code, context):
    """Parses a StableHLO portable artifact (VHLO bytecode), plain MLIR bytecode or MLIR text."""
    sdy.register_dialect(context)  # sharded programs carry sdy ops and attributes
    errors = []
    if code.startswith(b"ML\xefR"):
        try:
            return _stablehlo.deserialize_portable_artifact(context, code)
        except Exception as e:  # not VHLO: maybe plain bytecode
            errors.append(str(e))
    try:
        with context:
            return ir.Module.parse(code if code.startswith(b"ML\xefR") else code.decode(), context)
    except Exception as e:
        errors.append(str(e))
    raise InvalidProgramError("pyrt could not read the program (expected a StableHLO portable "
                              f"artifact or MLIR): {'; '.join(errors)[:500]}")


def parse_compile_options(options):
    if not options:
        return _jax.CompileOptions()
    try:
        # jaxlib's parser returns defaults on malformed bytes: validate the wire format first.
        for _ in protobuf.fields(options):
            pass
        return _jax.CompileOptions.ParseFromString(options)
    except Exception as e:
        raise InvalidProgramError(f"pyrt could not parse the compile options "
                                  f"(expected a serialized xla.CompileOptionsProto): {e}") from None


def _detach(out):
    """`out`, or a copy of it if it is a view into a larger block of memory (an argument, a
    constant or an intermediate). The C++ layer adopts each output array as the storage of its
    buffer, so without this a small view would keep the whole block alive: e.g. the 2-row result
    of `x[:2]` pinned all of a 4 MB argument after the caller deleted it. A view of a block of the
    same size (e.g. a reshaped argument) stays zero-copy."""
    root = out
    while isinstance(root, np.ndarray) and root.base is not None:
        root = root.base
    if root is out:
        return out
    try:
        size = root.nbytes if isinstance(root, np.ndarray) else memoryview(root).nbytes
    except TypeError:  # not a buffer we can size: keep the view
        return out
    return out.copy() if size > out.nbytes else out


class Executable:
    def __init__(self, artifact, options):
        self.artifact = bytes(artifact)
        self.compile_options = bytes(options)
        opts = parse_compile_options(self.compile_options)
        self.num_replicas = max(1, opts.num_replicas)
        self.num_partitions = max(1, opts.num_partitions)
        if opts.device_assignment is not None:
            self.device_assignment = opts.device_assignment.serialize()
            self.device_ids = protobuf.device_assignment_ids(self.device_assignment)
        else:
            n = self.num_replicas * self.num_partitions
            self.device_ids = list(range(n))
            self.device_assignment = _jax.DeviceAssignment.create(
                np.arange(n).reshape(self.num_replicas, self.num_partitions)).serialize()

        context = ir.Context()
        module = load_module(self.artifact, context)
        with context, ir.Location.unknown():
            name = module.operation.attributes["sym_name"] if "sym_name" in module.operation.attributes else None
            self.name = ir.StringAttr(name).value if name is not None else "main"
            self.text = module.operation.get_asm(enable_debug_info=False)
            prepared = compiler.compile_module(module, self.num_replicas, self.num_partitions)
        self.source = prepared.source  # the generated Python, for debugging
        self._entry = prepared.entry
        self.input_specs = [(dtypes.PJRT_TYPE_BY_DTYPE[t.dtype], t.shape) for t in prepared.input_types]
        self.output_specs = [(dtypes.PJRT_TYPE_BY_DTYPE[t.dtype], t.shape) for t in prepared.output_types]
        self.input_memory_kinds = ["device"] * len(self.input_specs)
        self.output_memory_kinds = ["device"] * len(self.output_specs)
        self.code_size_in_bytes = len(self.source)
        self.run_inline = prepared.cheap
        self.cost_analysis = {}
        self.fingerprint = hashlib.sha256(
            _MAGIC + __version__.encode() + self.artifact + self.compile_options).hexdigest()

    def run(self, views):
        """Runs the program on StorageViews of the inputs; returns flat uint8 arrays."""
        if not getattr(_quiet, "set", False):
            # Overflow, NaN and division results are defined by the spec: no NumPy warnings.
            np.seterr(all="ignore")
            _quiet.set = True
        try:
            return [_detach(out) for out in self._entry(views)]
        except PyrtError:
            raise
        except Exception as e:
            raise ExecutionError(f"pyrt: running {self.name} failed: {type(e).__name__}: {e}") from e

    def serialize(self):
        parts = [__version__.encode(), self.artifact, self.compile_options]
        return _MAGIC + b"".join(struct.pack("<Q", len(p)) + p for p in parts)

    @classmethod
    def deserialize(cls, data, override_options=b""):
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise InvalidProgramError("pyrt: these bytes are not a serialized pyrt executable")
        parts, i = [], len(_MAGIC)
        try:
            for _ in range(3):
                (n,) = struct.unpack_from("<Q", data, i)
                parts.append(data[i + 8:i + 8 + n])
                if len(parts[-1]) != n:
                    raise ValueError
                i += 8 + n
        except (struct.error, ValueError):
            raise InvalidProgramError("pyrt: the serialized executable is truncated") from None
        version, artifact, options = parts
        if version.decode(errors="replace") != __version__:
            raise InvalidProgramError(
                f"pyrt: executable was serialized by pyrt {version.decode(errors='replace')}, "
                f"this is pyrt {__version__}; recompile it")
        return cls(artifact, override_options or options)
