"""Watching programs run, op by op: per-op timing (`op_profile`), the first op that makes a NaN
or Inf (`check_nans`, PYRT_CHECK_NANS=1), and the events a profiler trace collects.

A compiled program's source calls its kernels by global names (k7, g10, ...). While some
observer is active, a program runs a second copy of its source, executed over a namespace whose
kernels are wrapped: each call reports the op it runs (name, the user's line, the line of the
generated source), its time and its outputs to the observers. With no observer, programs run
their plain source, so watching costs nothing unless it is on (one check per run).
"""

import contextlib
import os
import re
import threading
import time

import numpy as np

from .errors import ExecutionError

_lock = threading.Lock()
_observers = ()  # the active observers; replaced, never mutated, so runs read it without a lock
_KERNEL_CALL = re.compile(r"= ([kg]\d+)\(")


def entry(prepared):
    """The entry `prepared` runs now: its plain one, or its watched copy while observed."""
    if not _observers:
        return prepared.entry
    watched = getattr(prepared, "_watched_entry", None)
    if watched is None:
        watched = prepared._watched_entry = _watch(prepared)
    return watched


def _watch(prepared):
    """`prepared`'s entry, run over wrapped kernels."""
    plain = prepared.entry.__globals__
    namespace = dict(plain)
    lines = prepared.source.splitlines()
    for line, (op, where) in prepared.origins.items():
        match = _KERNEL_CALL.search(lines[line - 1])
        if match:
            name = match.group(1)
            namespace[name] = _Watched(plain[name], op, where, prepared.filename, line)
    exec(compile(prepared.source, prepared.filename, "exec"), namespace)
    return _entered(namespace["entry"], prepared)


def _entered(run, prepared):
    def watched_entry(views, ctx):
        observers = _observers
        start = time.perf_counter_ns()
        try:
            return run(views, ctx)
        finally:
            end = time.perf_counter_ns()
            for observer in observers:
                observer.program(prepared, ctx, start, end)
    return watched_entry


class _Watched:
    """A kernel that tells the observers about each call."""

    __slots__ = ("kernel", "op", "where", "filename", "line")

    def __init__(self, kernel, op, where, filename, line):
        self.kernel, self.op, self.where = kernel, op, where
        self.filename, self.line = filename, line

    def __call__(self, *args):
        observers = _observers
        start = time.perf_counter_ns()
        out = self.kernel(*args)
        end = time.perf_counter_ns()
        for observer in observers:
            observer.op(self, args, out, start, end)
        return out


@contextlib.contextmanager
def observing(observer):
    """Makes `observer` see every program run and op until the block ends."""
    global _observers
    with _lock:
        _observers = _observers + (observer,)
    try:
        yield observer
    finally:
        with _lock:
            _observers = tuple(o for o in _observers if o is not observer)


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

    def program(self, prepared, ctx, start_ns, end_ns):
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


if os.environ.get("PYRT_CHECK_NANS", "0") not in ("", "0", "false", "False"):
    _observers = (NanCheck(),)
