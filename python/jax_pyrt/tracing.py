"""Watching programs run, op by op: per-op timing (`op_profile`), the first op that makes a NaN
or Inf (`check_nans`, PYRT_CHECK_NANS=1), and the events of a profiler trace (`start_trace`:
jax.profiler reaches it through the PJRT profiler extension, pjrt_plugin/profiler_api.cc).

A compiled program's source calls its kernels by global names (k7, g10, ...). While some
observer is active, a program runs a second copy of its source, executed over a namespace whose
kernels are wrapped: each call reports the op it runs (name, the user's line, the line of the
generated source), its time and its outputs to the observers. With no observer, programs run
their plain source, so watching costs nothing unless it is on (one check per run).
"""

import contextlib
import re
import threading
import time

import numpy as np

from . import settings, xspace
from .errors import ExecutionError

_lock = threading.Lock()
_observers = ()  # the active observers; replaced, never mutated, so runs read it without a lock
_KERNEL_CALL = re.compile(r"= ([kg]\d+)\(")
_running = threading.local()  # .device: the device this thread runs a watched program for


def entry(prepared, name=""):
    """The entry `prepared` (program `name`) runs now: its plain one, or its watched copy while
    observed."""
    if not _observers:
        return prepared.entry
    watched = getattr(prepared, "_watched_entry", None)
    if watched is None:
        watched = prepared._watched_entry = _watch(prepared, name)
    return watched


def _watch(prepared, name):
    """`prepared`'s entry, run over wrapped kernels."""
    plain = prepared.entry.__globals__
    namespace = dict(plain)
    lines = prepared.source.splitlines()
    for line, (op, where) in prepared.origins.items():
        match = _KERNEL_CALL.search(lines[line - 1])
        if match:
            kernel = match.group(1)
            namespace[kernel] = _Watched(plain[kernel], op, where, prepared.filename, line)
    exec(compile(prepared.source, prepared.filename, "exec"), namespace)
    run = namespace["entry"]

    def watched_entry(views, ctx):
        observers = _observers
        _running.device = ctx.device
        start = time.perf_counter_ns()
        try:
            return run(views, ctx)
        finally:
            end = time.perf_counter_ns()
            for observer in observers:
                observer.program(name, ctx.device, start, end)
    return watched_entry


class _Watched:
    """A kernel that tells the observers about each call."""

    __slots__ = ("kernel", "op", "where", "filename", "line")

    def __init__(self, kernel, op, where, filename, line):
        self.kernel, self.op, self.where = kernel, op, where
        self.filename, self.line = filename, line

    def __call__(self, *args, out=None):
        # A ufunc the program runs in place (`out=` one of its operands) runs into a new array
        # here, copied over afterwards: observers see the operands as they were.
        observers = _observers
        start = time.perf_counter_ns()
        result = self.kernel(*args)
        end = time.perf_counter_ns()
        for observer in observers:
            observer.op(self, args, result, start, end)
        if out is None:
            return result
        np.copyto(out, result)
        return out


def _add(observer):
    global _observers
    with _lock:
        _observers = _observers + (observer,)


def _remove(observer):
    global _observers
    with _lock:
        _observers = tuple(o for o in _observers if o is not observer)


@contextlib.contextmanager
def observing(observer):
    """Makes `observer` see every program run and op until the block ends."""
    _add(observer)
    try:
        yield observer
    finally:
        _remove(observer)


def _arrays(value):
    """The NumPy arrays in a kernel's arguments or result (nested tuples and lists)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, np.generic):
        yield np.asarray(value)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _arrays(v)


class Observer:
    """Sees each run of a program (`program`) and each op it runs (`op`); both may be called
    from several device threads at once."""

    def program(self, name, device, start_ns, end_ns):
        pass

    def op(self, kernel, args, out, start_ns, end_ns):
        pass


class OpProfile(Observer):
    """Time, calls and output bytes per op (and user line), over the runs it saw."""

    def __init__(self):
        self._lock = threading.Lock()
        self.ops = {}  # (op, where) -> [calls, nanoseconds, bytes]

    def op(self, kernel, args, out, start_ns, end_ns):
        size = sum(a.nbytes for a in _arrays(out))
        with self._lock:
            entry = self.ops.setdefault((kernel.op, kernel.where), [0, 0, 0])
            entry[0] += 1
            entry[1] += end_ns - start_ns
            entry[2] += size

    def rows(self):
        """[(op, where, calls, seconds, bytes)], the most time first."""
        with self._lock:
            items = list(self.ops.items())
        return sorted(((op, where, calls, ns / 1e9, size)
                       for (op, where), (calls, ns, size) in items), key=lambda r: -r[3])

    def table(self, limit=None):
        """The rows as a text table."""
        rows = self.rows()[:limit]
        total = sum(r[3] for r in rows) or 1.0
        head = f"{'op':44s} {'where':28s} {'calls':>7s} {'ms':>10s} {'%':>6s} {'MiB':>9s}"
        lines = [head, "-" * len(head)]
        for op, where, calls, seconds, size in rows:
            lines.append(f"{op[:44]:44s} {where[:28]:28s} {calls:7d} {seconds * 1e3:10.3f} "
                         f"{100 * seconds / total:6.1f} {size / 2**20:9.2f}")
        return "\n".join(lines)


class NanCheck(Observer):
    """Fails at the first op whose floating outputs hold a NaN or an Inf although its floating
    inputs held none."""

    def op(self, kernel, args, out, start_ns, end_ns):
        bad = [a for a in _arrays(out) if _inexact(a) and not np.isfinite(a).all()]
        if not bad or any(_inexact(a) and not np.isfinite(a).all() for a in _arrays(args)):
            return
        values = bad[0]
        what = "NaN" if np.isnan(values).any() else "Inf"
        raise ExecutionError(
            f"pyrt: the NaN/Inf check found {what} in the result of {kernel.op}, whose inputs "
            f"were finite (line {kernel.line} of the generated program {kernel.filename}; "
            "jax_pyrt.explain shows it)")


def _inexact(array):
    """Floating or complex, ml_dtypes' floats included (their kind is 'V')."""
    kind = array.dtype.kind
    return kind in "fc" or (kind == "V" and array.dtype.name.startswith(("bfloat", "float")))


class Trace(Observer):
    """The program runs and ops of a profiler trace, per device."""

    def __init__(self):
        self._lock = threading.Lock()
        self.events = []  # (device, line, name, start ns, end ns, stats)
        self._epoch = time.time_ns() - time.perf_counter_ns()  # the trace wants wall-clock ns

    def program(self, name, device, start_ns, end_ns):
        with self._lock:
            self.events.append((device, "XLA Modules", name or "program",
                                start_ns + self._epoch, end_ns + self._epoch, {}))

    def op(self, kernel, args, out, start_ns, end_ns):
        results = list(_arrays(out))
        stats = {"source": kernel.where, "program line": kernel.line,
                 "shapes": ", ".join(f"{a.dtype}{list(a.shape)}" for a in results),
                 "bytes": sum(a.nbytes for a in results)}
        with self._lock:
            self.events.append((getattr(_running, "device", 0), "XLA Ops", kernel.op,
                                start_ns + self._epoch, end_ns + self._epoch, stats))

    def xspace(self):
        """The events as a serialized XSpace: a plane per device, named /device:CUSTOM:<id>
        (the device planes trace viewers show are GPU, TPU and CUSTOM ones), with the lines
        "XLA Modules" and "XLA Ops"."""
        planes = {}
        with self._lock:
            events = list(self.events)
        for device, line, name, start, end, stats in events:
            if device not in planes:
                planes[device] = xspace.Plane(len(planes) + 1, f"/device:CUSTOM:{device}")
                planes[device].line("XLA Modules")  # first row
            planes[device].line(line).append((name, start, end, stats))
        return xspace.encode(planes[d] for d in sorted(planes))


_trace = None  # the profiler trace under way


def start_trace():
    """PLUGIN_Profiler start (jax.profiler.start_trace): records every program and op from now."""
    global _trace
    if _trace is None:
        _trace = Trace()
        _add(_trace)


def stop_trace():
    """PLUGIN_Profiler stop: records no more (the events stay for collect_trace)."""
    if _trace is not None:
        _remove(_trace)


def collect_trace():
    """PLUGIN_Profiler collect_data: the events recorded since start_trace, as a serialized
    XSpace; the trace ends."""
    global _trace
    trace, _trace = _trace, None
    if trace is None:
        return b""
    _remove(trace)
    return trace.xspace()


@contextlib.contextmanager
def op_profile():
    """`with jax_pyrt.op_profile() as p: ...`, then `print(p.table())`: the ops of the pyrt
    programs that ran in the block, by total time. Wait for the results inside the block
    (block_until_ready): runs still going when it ends are not counted."""
    with observing(OpProfile()) as profile:
        yield profile


@contextlib.contextmanager
def check_nans():
    """Inside the block, a pyrt program fails at the first op that makes a NaN or an Inf from
    finite inputs, naming it, the user's line and the generated line (PYRT_CHECK_NANS=1 does
    this for the whole process)."""
    with observing(NanCheck()):
        yield


if settings.flag("PYRT_CHECK_NANS"):
    _observers = (NanCheck(),)
