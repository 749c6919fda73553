"""An Executable: a StableHLO program compiled for pyrt, plus the metadata PJRT reports.

The C++ layer reads the attributes below once, right after compiling, and calls `run` for every
execution; `serialize` / `deserialize` back PJRT_Executable_Serialize and the persistent cache.
"""

import hashlib
import struct
import sys
import traceback
import types
import weakref

import numpy as np
from jaxlib import _jax
from jaxlib.mlir import ir
from jaxlib.mlir._mlir_libs import _stablehlo
from jaxlib.mlir.dialects import sdy

from . import (__version__, analysis, compile_options, compiler, dtypes, partitioning,
               program_pickle, protobuf, tracing)
from .contexts import function_type, main_function, value_attributes
from .errors import InternalError, InvalidProgramError, PyrtError, UnsupportedError
from .ops.base import RunContext

_MAGIC = b"pyrt-executable\0"


def _memory_kinds(module):
    """([kind of each parameter], [kind of each result]) of @main: "pinned_host" where JAX
    annotated it (mhlo.memory_kind: memories_test, compute_on, offloading), else "device"."""
    main = main_function(module)

    def kinds(which):
        return ["pinned_host" if a is not None and ir.StringAttr(a).value == "pinned_host"
                else "device" for a in value_attributes(main, which, "mhlo.memory_kind")]

    return kinds("arg_attrs"), kinds("res_attrs")


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


def _untokenize_entry(module):
    """Gives the entry function tensor<0xi1> in place of !stablehlo.token parameters/results.

    With ordered effects (io_callback(ordered=True), jax.debug.print(ordered=True)) JAX threads
    runtime tokens through @main: it passes a bool[0] buffer per effect and keeps the returned
    buffer for the next call. The compiler accepts only arrays at the entry point, so @main is
    renamed to a private function and called from a new @main that takes and returns bool[0]
    arrays in the token positions and creates the tokens with after_all (tokens are None at run
    time; pyrt's in-order execution keeps the order). Owned by jax_integration/callbacks.py.
    Returns the positions of the token parameters and results: as on XLA:CPU, those buffers
    are PJRT tokens (jaxlib refuses to read one: "Cannot convert a token-shape buffer").
    """
    main = main_function(module)
    attrs = main.attributes
    fn_type = function_type(main)
    ins, outs = [str(t) for t in fn_type.inputs], [str(t) for t in fn_type.results]
    token, empty = "!stablehlo.token", "tensor<0xi1>"
    positions = ({i for i, t in enumerate(ins) if t == token},
                 {i for i, t in enumerate(outs) if t == token})
    if token not in ins + outs:
        return positions
    name = ir.StringAttr(attrs["sym_name"]).value
    inner = f"{name}_pyrt_with_tokens"
    attrs["sym_name"] = ir.StringAttr.get(inner)
    attrs["sym_visibility"] = ir.StringAttr.get("private")
    args = ["%tok" if t == token else f"%a{i}" for i, t in enumerate(ins)]
    call = f"func.call @{inner}({', '.join(args)}) : ({', '.join(ins)}) -> ({', '.join(outs)})"
    rets = ["%empty" if t == token else (f"%r#{i}" if len(outs) > 1 else "%r")
            for i, t in enumerate(outs)]
    params = ", ".join(f"%a{i}: {empty if t == token else t}" for i, t in enumerate(ins))
    results = ", ".join(empty if t == token else t for t in outs)
    lines = ['%tok = "stablehlo.after_all"() : () -> !stablehlo.token',
             f"%empty = stablehlo.constant dense<> : {empty}",
             (f"%r:{len(outs)} = " if len(outs) > 1 else "%r = " if outs else "") + call,
             f"return {', '.join(rets)} : {results}" if outs else "return"]
    text = (f"module {{\nfunc.func private @{inner}({', '.join(ins)}) -> ({', '.join(outs)})\n"
            f"func.func @{name}({params}) -> ({results}) {{\n" + "\n".join(lines) + "\n}\n}")
    parsed = ir.Module.parse(text, module.context)  # must outlive the detach below
    wrapper = list(parsed.body.operations)[1].operation
    for a in ("arg_attrs", "res_attrs"):
        if a in attrs:
            wrapper.attributes[a] = attrs[a]
    wrapper.detach_from_parent()
    module.body.append(wrapper)
    return positions


def _specs(types, tokens):
    """(PJRT_Buffer_Type, dims) of each entry parameter or result; tokens are PJRT tokens."""
    return [(dtypes.PJRT_TOKEN, ()) if i in tokens else (dtypes.PJRT_TYPE_BY_DTYPE[t.dtype], t.shape)
            for i, t in enumerate(types)]


def _root(array):
    """The object whose memory `array` views: the last base of its chain of NumPy views."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


def _exclusive(out):
    """True if `out` may become an output buffer's storage as is: its memory belongs to a NumPy
    array of out's size, referenced only through out's chain of views (not a constant of the
    program, an input, or a view into a larger block such as `x[:2]`, which would pin it)."""
    node = out
    while isinstance(node, np.ndarray) and node.base is not None:
        base = node.base
        if sys.getrefcount(base) > 3:  # held by node, by `base` and by getrefcount's argument
            return False
        node = base
    return (isinstance(node, np.ndarray) and node.flags.owndata and node.flags.writeable
            and node.nbytes == out.nbytes)


# The executables alive in this process, by fingerprint (PJRT_Executable_Fingerprint; what
# jax's compiled.runtime_executable().fingerprint gives): jax_pyrt.explain finds them here.
loaded = weakref.WeakValueDictionary()


class Executable:
    recompiled = False  # True if deserialize() had to run the compiler
    # Compile-time analyses (jax_pyrt.analysis); defaults for programs restored from older pickles.
    input_output_aliases = ()
    cost_analysis = {}
    argument_size_in_bytes = output_size_in_bytes = alias_size_in_bytes = 0

    def __init__(self, artifact, options, program=None):
        self.artifact = bytes(artifact)
        self.compile_options = bytes(options)
        opts = compile_options.parse(self.compile_options)
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

        # A program restored by deserialize() needs no compiler run, unless it was made for
        # another device grid.
        if program is None or not self._restore(program):
            self._compile()
        self.code_size_in_bytes = len(self.prepared.source)
        self.temp_size_in_bytes = 0  # NumPy temporaries are not device memory
        self.fingerprint = hashlib.sha256(
            _MAGIC + __version__.encode() + self.artifact + self.compile_options).hexdigest()
        loaded[self.fingerprint] = self

    def _compile(self):
        context = ir.Context()
        context.enable_multithreading(False)  # as contexts.new_context: no verifier threads
        module = load_module(self.artifact, context)
        with context, ir.Location.unknown():
            name = module.operation.attributes["sym_name"] if "sym_name" in module.operation.attributes else None
            self.name = ir.StringAttr(name).value if name is not None else "main"
            self.text = module.operation.get_asm(enable_debug_info=False)
            self.input_memory_kinds, self.output_memory_kinds = _memory_kinds(module)
            tokens = _untokenize_entry(module)  # see _untokenize_entry
            program = self._plan(module, tokens)
            if program.module is not module:  # what runs: Shardy's per-device program
                with program.context:
                    self.text = program.module.operation.get_asm(enable_debug_info=False)
            if self.path != "one device":
                self.text = partitioning.without_shardy_ops(self.text)
            with program.context, ir.Location.unknown():
                prepared = compiler.compile_module(program.module, self.num_replicas,
                                                   self.num_partitions)
            # Donation (docs/jax-integration.md): [(input, output)] whose input may be reused.
            self.input_output_aliases = analysis.aliases(module)
            self.cost_analysis = analysis.cost_analysis(module)
        self.prepared = prepared
        input_types, output_types = program.local_types(prepared)
        (self.argument_size_in_bytes, self.output_size_in_bytes,
         self.alias_size_in_bytes) = analysis.memory_sizes(
             input_types, output_types, self.input_output_aliases)
        self.input_specs = _specs(input_types, tokens[0])
        self.output_specs = _specs(output_types, tokens[1])
        # A program over several devices may wait for them (for other processes' among them).
        self.run_inline = prepared.cheap and len(self.device_ids) == 1
        # Programs that call host callbacks finish before Execute returns, as on XLA:CPU, so a
        # callback's exception raises at the user's call (runtime.cc).
        self.synchronous = prepared.synchronous

    def _plan(self, module, tokens):
        """What runs: the module itself on one device (or a per-device program JAX did not
        shard), Shardy's per-device program, or the global program (partitioning.py)."""
        devices = self.num_replicas * self.num_partitions
        self.path = "one device" if devices == 1 else "spmd"
        if devices == 1 or not partitioning.is_global(module):
            plan = partitioning.Plan(module, ir.Context.current)
            if self.num_partitions > 1:  # an unannotated program: replicated, as on XLA
                self.parameter_shardings, self.output_shardings = plan.replicated_shardings()
            return plan
        if self.num_replicas > 1:
            raise UnsupportedError(f"pyrt: a sharded program over {self.num_replicas} replicas "
                                   f"x {self.num_partitions} partitions (pyrt partitions "
                                   f"programs over partitions only)")
        plan = partitioning.plan(module, self.artifact, tokens, self.num_partitions, self.name)
        self.path = plan.path
        self.parameter_shardings, self.output_shardings = plan.shardings
        self.gather = plan.gather
        return plan

    parameter_shardings = output_shardings = ()  # serialized OpShardings (none on one device)
    gather = None  # a partitioning.GlobalRun when the program runs as one global program
    path = "one device"

    @property
    def source(self):
        """The generated Python program, for debugging."""
        return self.prepared.source

    _PROGRAM_FIELDS = ("name", "text", "input_specs", "output_specs", "run_inline",
                       "synchronous", "num_replicas", "num_partitions", "input_output_aliases",
                       "cost_analysis", "argument_size_in_bytes", "output_size_in_bytes",
                       "alias_size_in_bytes", "path", "parameter_shardings",
                       "output_shardings", "gather", "input_memory_kinds", "output_memory_kinds")

    def _program(self):
        """The prepared program (generated source, line origins, pickled kernel namespace), or
        b"" if some kernel cannot be pickled (then deserialize() recompiles)."""
        entry = self.prepared.entry
        ns = {k: v for k, v in entry.__globals__.items()
              if k != "__builtins__" and not (
                  isinstance(v, types.FunctionType) and v.__globals__ is entry.__globals__)}
        fields = {k: getattr(self, k) for k in self._PROGRAM_FIELDS}
        fields["source"], fields["origins"] = self.prepared.source, self.prepared.origins
        try:
            return program_pickle.environment() + b"\0" + program_pickle.dumps((fields, ns))
        except Exception:
            return b""

    def _restore(self, program):
        fields, ns = program
        if (set(fields) != set(self._PROGRAM_FIELDS) | {"source", "origins"}  # another build
                or (fields["num_replicas"], fields["num_partitions"]) != (self.num_replicas,
                                                                        self.num_partitions)):
            self.recompiled = True
            return False
        source, origins = fields.pop("source"), fields.pop("origins")
        for k, v in fields.items():
            setattr(self, k, v)
        filename = compiler.program_filename(self.name)
        exec(compile(source, filename, "exec"), ns)
        self.prepared = compiler.Prepared(source, ns["entry"], filename, origins, None, None,
                                          self.run_inline, self.synchronous)
        return True

    def run(self, views, context=None):
        """Runs the program on StorageViews of the inputs; returns flat uint8 arrays."""
        context = context or RunContext()
        try:
            with np.errstate(all="ignore"):  # overflow, NaN, x / 0: the spec defines the results
                entry = tracing.entry(self.prepared, self.name)
                if self.gather is not None:
                    return self.gather.run(entry, views, context)
                return entry(views, context)
        except Exception as e:
            raise self._failure(e) from e

    def _failure(self, error):
        """The error to report for `error`, raised while running: it names the op that failed
        and the user's line. pyrt's own errors keep their kind (they name what went wrong);
        anything else is a pyrt bug, reported as INTERNAL with its traceback."""
        origin, frame = None, error.__traceback__
        while frame is not None:  # the innermost line of the generated program
            if frame.tb_frame.f_code.co_filename == self.prepared.filename:
                origin = self.prepared.origin(frame.tb_lineno) or origin
            frame = frame.tb_next
        op, where = origin if origin is not None else ("the program", "")
        at = f" (at {where})" if where else ""
        if isinstance(error, PyrtError):
            return error if origin is None else type(error)(f"{op}{at}: {error}")
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return InternalError(f"pyrt: {op}{at} failed while running {self.name}: "
                             f"{type(error).__name__}: {error}. This is a bug in pyrt; the "
                             f"traceback:\n{trace}")

    def execute(self, views, donated=(), context=None):
        """`run`, for the C++ layer, which makes each output a buffer. Returns one entry per
        output: the index of a donated input whose memory now holds the output (the buffer takes
        over that input's storage), or a flat uint8 array nothing else references (it becomes
        the buffer's storage without a copy). As on XLA:CPU, every output is new memory unless
        it reuses a donated input: an output that is an input, a constant, a view into a larger
        block or the same array as another output is copied.

        `donated` are the indices of inputs whose writable storage nobody else holds (their
        views are writable): each output aliased to one of them (input_output_aliases) is
        written into its memory, one copy into existing memory, none when the program computed
        it there already."""
        outs = self.run(views, context)
        into = {}  # output -> the donated input whose memory receives it
        for i, o in self.input_output_aliases:
            if i in donated and memoryview(views[i]).nbytes == outs[o].nbytes:
                into[o] = i
        results, owners = list(outs), set()
        for o, out in enumerate(outs):  # before any donated memory is overwritten
            if o in into:
                continue
            if _exclusive(out) and id(_root(out)) not in owners:
                owners.add(id(_root(out)))
            else:
                results[o] = out.copy()
        for o, i in into.items():
            dst = np.frombuffer(views[i], np.uint8)
            if outs[o].nbytes and outs[o].ctypes.data != dst.ctypes.data:
                np.copyto(dst, outs[o])  # NumPy handles an overlap (e.g. a transpose)
            results[o] = i
        return results

    def serialize(self):
        parts = [__version__.encode(), self.artifact, self.compile_options, self._program()]
        return _MAGIC + b"".join(struct.pack("<Q", len(p)) + p for p in parts)

    @classmethod
    def deserialize(cls, data, override_options=b""):
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise InvalidProgramError("pyrt: these bytes are not a serialized pyrt executable")
        parts, i = [], len(_MAGIC)
        try:
            for _ in range(4):
                (n,) = struct.unpack_from("<Q", data, i)
                parts.append(data[i + 8:i + 8 + n])
                if len(parts[-1]) != n:
                    raise ValueError
                i += 8 + n
        except (struct.error, ValueError):
            raise InvalidProgramError("pyrt: the serialized executable is truncated") from None
        version, artifact, options, program = parts
        if version.decode(errors="replace") != __version__:
            raise InvalidProgramError(
                f"pyrt: executable was serialized by pyrt {version.decode(errors='replace')}, "
                f"this is pyrt {__version__}; recompile it")
        if program:
            env, _, pickled = program.partition(b"\0")
            if env == program_pickle.environment():
                try:
                    restored = program_pickle.loads(pickled)
                except Exception:
                    restored = None
                if restored is not None:
                    return cls(artifact, override_options or options, program=restored)
        executable = cls(artifact, override_options or options)  # the compiler must run again
        executable.recompiled = True
        return executable
