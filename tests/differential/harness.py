"""Runs cases on pyrt (in-process, through jax_pyrt.executable.Executable: no PJRT, and none of
the rewrites jaxlib applies before handing a program to a plugin) and on jaxlib's StableHLO
reference interpreter (in worker subprocesses, see interp_worker.py), and compares.

Outcomes per case (Result.status):
  match             every compared element agrees (possibly after documented exceptions)
  mismatch          pyrt and the oracle disagree: a pyrt bug unless the spec says otherwise
  pyrt_error        pyrt raised something other than UnsupportedError (a bug)
  pyrt_unsupported  pyrt refused the program with UnsupportedError (a gap, reported)
  no_handler        an op of the case has no handler in the registry yet (skipped)
  interp_cannot_run the interpreter aborted, failed or timed out (not a pyrt failure)
  interp_known      the op spec says the interpreter cannot run this case (not even tried)
  known_bug         a mismatch listed in specs.KNOWN_PYRT_BUGS (reported, not failed)
With xla_fallback, the cases the interpreter cannot run are compared with XLA:CPU instead
(Result.xla); a mismatch there makes the case a "mismatch".
"""

import collections
import dataclasses
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from . import elements

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interp_worker.py")
FAILING = ("mismatch", "pyrt_error")


def dense_literal(array, etype):
    """`dense<"0x..."> : tensor<...>`: the raw little-endian bytes, exact for every type."""
    array = np.asarray(array)  # (not ascontiguousarray: it makes 0-d arrays 1-d)
    return f'dense<"0x{array.tobytes().hex().upper()}"> : {elements.tensor(array.shape, etype)}'


# --------------------------------------------------------------------------------------------
# Comparison

@dataclasses.dataclass(frozen=True)
class Compare:
    """How to compare one output. kind:
      "exact": equal values; floats bit-exact (so -0.0 != +0.0) except that any NaN equals any
               NaN (the spec does not define NaN payloads or signs); complex per part.
      "ulp":   NaN matches NaN, infinities must match, finite values within `ulps` units in the
               last place of the element type (+0.0 and -0.0 are 0 apart) or within `atol`;
               complex parts may also differ by `ulps` ulps of the larger part (complex
               functions are accurate in norm, not per part).
      "close": NaN matches NaN, infinities must match, |a - b| <= atol + rtol * |b| (for results
               whose evaluation order is implementation-defined: float sums, dots, ffts).
    """
    kind: str = "exact"
    ulps: int = 0
    rtol: float = 0.0
    atol: float = 0.0

    def __str__(self):
        if self.kind == "ulp":
            return f"ulp<={self.ulps}" + (f", atol={self.atol:g}" if self.atol else "")
        if self.kind == "close":
            return f"close(rtol={self.rtol:g}, atol={self.atol:g})"
        return self.kind


EXACT = Compare()


def ulp(n, atol=0.0):
    return Compare("ulp", ulps=n, atol=atol)


def close(rtol, atol=0.0):
    return Compare("close", rtol=rtol, atol=atol)


def _ordered(x):
    """Float bits as integers that are consecutive for adjacent floats (-0.0 and +0.0 both 0)."""
    size = x.dtype.itemsize
    u = np.ascontiguousarray(x).view(f"u{size}").astype(np.uint64)
    name = elements_name(x.dtype)
    if name == "f8E8M0FNU":  # no sign bit
        return u.astype(np.int64)
    nbits = elements.bits(name)
    sign = (u >> np.uint64(nbits - 1)) & np.uint64(1)
    mag = (u & np.uint64((1 << (nbits - 1)) - 1)).astype(np.int64)
    return np.where(sign == 1, -mag, mag)


def elements_name(dt):
    from jax_pyrt import dtypes
    return dtypes.MLIR_BY_DTYPE[np.dtype(dt)]


def _float_equal(a, b, cmp, scale=None):
    """Elementwise agreement of two float arrays of the same dtype under `cmp`."""
    a_nan, b_nan = _isnan(a), _isnan(b)
    if cmp.kind == "exact":
        same = _bits(a) == _bits(b)
        return same | (a_nan & b_nan)
    wa, wb = _wide(a), _wide(b)
    ok = (a_nan & b_nan) | ((wa == wb) & ~a_nan)  # equal values, including infinities
    finite = np.isfinite(wa) & np.isfinite(wb)
    if cmp.kind == "ulp":
        with np.errstate(all="ignore"):
            dist = np.abs(_ordered(a) - _ordered(b))
        ok |= finite & (dist <= cmp.ulps)
        if cmp.atol:
            ok |= finite & (np.abs(wa - wb) <= cmp.atol)
        if scale is not None:  # complex: errors relative to the larger part
            eps = float(_eps(a.dtype))
            ok |= finite & (np.abs(wa - wb) <= cmp.ulps * eps * scale)
    else:
        with np.errstate(all="ignore"):
            ok |= finite & (np.abs(wa - wb) <= cmp.atol + cmp.rtol * np.abs(wb))
    return ok


def _eps(dt):
    import ml_dtypes
    return ml_dtypes.finfo(dt).eps


def _wide(x):
    return x.astype(np.float64)


def _isnan(x):
    with np.errstate(all="ignore"):
        return np.isnan(x.astype(np.float64))


def _bits(x):
    return np.ascontiguousarray(x).view(f"u{x.dtype.itemsize}")


def agree(actual, expected, cmp):
    """Boolean array: where `actual` (pyrt) agrees with `expected` (interpreter)."""
    dt = expected.dtype
    if dt.kind == "c":
        re_a, re_b, im_a, im_b = actual.real, expected.real, actual.imag, expected.imag
        if cmp.kind == "exact":
            return _float_equal(re_a, re_b, cmp) & _float_equal(im_a, im_b, cmp)
        scale = None
        if cmp.kind == "ulp":
            with np.errstate(all="ignore"):
                scale = np.maximum(np.abs(expected.real), np.abs(expected.imag)).astype(np.float64)
        # Approximate complex results: a value with an infinite or NaN part is only checked to
        # be non-finite on both sides (C99 Annex G's recovery of infinities and the spec's
        # formulas disagree on the other part, and the spec does not say).
        both_nonfinite = ~np.isfinite(actual) & ~np.isfinite(expected)
        return both_nonfinite | (_float_equal(re_a, re_b, cmp, scale)
                                 & _float_equal(im_a, im_b, cmp, scale))
    if elements_name(dt) in elements.FLOATS:
        return _float_equal(actual, expected, cmp)
    return actual == expected


# --------------------------------------------------------------------------------------------
# Cases and results

@dataclasses.dataclass
class Known:
    """A documented difference, where the spec leaves a result to the implementation and pyrt
    follows XLA:CPU while the interpreter does something else (or where the interpreter is
    known to be wrong). `mask` gives True where an element is not compared: with on="inputs" it
    is called as mask(*inputs), with on="results" as mask(inputs, pyrt_outputs,
    interpreter_outputs); it returns one boolean array (for every output) or a list with one per
    output (None: all compared). Differing elements it excludes are counted in the summary."""
    reason: str
    mask: object
    on: str = "inputs"


@dataclasses.dataclass
class Case:
    op: str                  # the op under test
    name: str                # unique: op/types/shape/attributes
    function: object         # mlir.Function
    inputs: list             # NumPy arrays, one per argument of @main
    compare: Compare = EXACT
    exceptions: tuple = ()
    interpreter: str = ""    # non-empty: the interpreter cannot run this (why)
    dtype: str = ""          # the element type the case is about (for sampling)
    bug: str = ""            # a known pyrt bug this case shows (reported, not failed)

    def texts(self):
        if not hasattr(self, "_texts"):
            text = self.function.module()
            interp_text, plan = self.function.module(export=True)
            self._texts = (text, interp_text, plan)
        return self._texts

    @property
    def ops(self):
        return self.function.all_ops()


@dataclasses.dataclass
class Result:
    case: Case
    status: str
    detail: str = ""
    pyrt: list = None
    reference: list = None
    excepted: dict = dataclasses.field(default_factory=dict)  # reason -> elements excluded
    probe: str = ""  # no_handler cases run with probe_interpreter: the interpreter's outcome
    xla: str = ""    # cases the interpreter cannot run, compared with XLA:CPU instead: the outcome


def _artifact(text):
    from jaxlib.mlir._mlir_libs import _stablehlo
    return _stablehlo.serialize_portable_artifact_str(text, _stablehlo.get_current_version())


def missing_handlers(case):
    from jax_pyrt import ops
    return sorted(o for o in case.ops if ops.lookup(o) is None and o != "func.call")


def run_pyrt(case):
    """(status, detail, outputs) of the case on pyrt's executor."""
    from jax_pyrt import dtypes
    from jax_pyrt.errors import UnsupportedError
    from jax_pyrt.executable import Executable
    text = case.texts()[0]
    try:
        exe = Executable(_artifact(text), b"")
    except UnsupportedError as e:
        return "pyrt_unsupported", str(e), None
    except Exception as e:
        return "pyrt_error", f"compile: {type(e).__name__}: {e}", None
    views = [np.ascontiguousarray(x).reshape(-1).view(np.uint8) for x in case.inputs]
    try:
        outs = exe.run(views)
    except UnsupportedError as e:
        return "pyrt_unsupported", str(e), None
    except Exception as e:
        return "pyrt_error", f"run: {type(e).__name__}: {e}", None
    arrays = []
    for out, (pjrt_type, shape) in zip(outs, exe.output_specs):
        dt = dtypes.DTYPE_BY_PJRT_TYPE[pjrt_type]
        arrays.append(np.frombuffer(np.asarray(out).tobytes(), dt).reshape(shape))
    return "ok", "", arrays


def _decode(record_arrays, plan, function):
    raw = [np.frombuffer(b, np.dtype(d)).reshape(s) for d, s, b in record_arrays]
    outs, i = [], 0
    for entry, value in zip(plan, function.results):
        if entry == "plain":
            outs.append(raw[i].astype(elements.dtype(value.etype)))
            i += 1
        elif entry == "complex":
            z = np.empty(value.shape, elements.dtype(value.etype))
            z.real, z.imag = raw[i], raw[i + 1]
            outs.append(z)
            i += 2
        elif entry[0] == "bits":  # unsigned integers holding the bit patterns
            dt = elements.dtype(entry[1])
            outs.append(raw[i].astype(f"u{dt.itemsize}").view(dt))
            i += 1
        else:
            outs.append(raw[i].astype(elements.dtype(entry[1])))
            i += 1
    return outs


# --------------------------------------------------------------------------------------------
# The reference interpreter, in subprocesses

class Interpreter:
    """Runs jobs [(key, artifact, [input attribute text])] in `workers` subprocesses, each
    working through its share in order. When a worker dies (the interpreter aborts on ops it does
    not implement), the first case without a result is the culprit: it runs once more alone in a
    fresh process to pin it (unless the abort message names one of its ops), is recorded as
    "crash", and the rest of the share continues in a new worker."""

    def __init__(self, workers=2, case_timeout=20.0, ops_of=None):
        self.workers = workers
        self.case_timeout = case_timeout
        self.ops_of = ops_of or {}
        # key -> ("ok", arrays) | ("error" | "crash" | "timeout", message)
        self.results = {}
        self.processes = 0
        self.crashes = 0
        self.tmp = tempfile.mkdtemp(prefix="pyrt-differential-")

    def _start(self, jobs, tag):
        cases = os.path.join(self.tmp, f"{tag}.cases")
        results = os.path.join(self.tmp, f"{tag}.results")
        errors = os.path.join(self.tmp, f"{tag}.stderr")
        with open(cases, "wb") as f:
            pickle.dump(jobs, f)
        open(results, "wb").close()
        env = dict(os.environ)
        env.pop("JAX_PLATFORMS", None)
        stderr = open(errors, "wb")
        proc = subprocess.Popen([sys.executable, WORKER, cases, results], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env)
        stderr.close()
        self.processes += 1
        return {"proc": proc, "jobs": jobs, "results": results, "errors": errors,
                "started": time.monotonic(), "done": 0, "offset": 0, "last": time.monotonic()}

    def _collect(self, w):
        """Reads new records of worker `w`; returns how many it has finished."""
        with open(w["results"], "rb") as f:
            f.seek(w["offset"])
            while True:
                pos = f.tell()
                try:
                    key, status, payload = pickle.load(f)
                except (EOFError, pickle.UnpicklingError):
                    f.seek(pos)
                    break
                self.results[key] = (status, payload)
                w["done"] += 1
                w["last"] = time.monotonic()
            w["offset"] = f.tell()
        return w["done"]

    def _stderr(self, w):
        try:
            with open(w["errors"], "rb") as f:
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-3:])[-500:]

    def run(self, jobs):
        try:
            return self._run(jobs)
        except BaseException as e:  # re-raised by run_cases in the calling thread
            self.failure = e
            raise
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    failure = None

    def _run(self, jobs):
        active = []
        counter = [0]

        def start(share, mode="batch", then=()):
            counter[0] += 1
            w = self._start(share, f"w{counter[0]}")
            w["mode"], w["then"] = mode, list(then)
            active.append(w)

        for i in range(self.workers):
            if jobs[i::self.workers]:
                start(jobs[i::self.workers])
        while active:
            time.sleep(0.005)
            for w in list(active):
                rc = w["proc"].poll()
                done = self._collect(w)
                if rc is None:
                    if time.monotonic() - w["last"] > self.case_timeout:
                        w["proc"].kill()
                        w["proc"].wait()
                        active.remove(w)
                        done = self._collect(w)
                        if done < len(w["jobs"]):
                            self.results[w["jobs"][done][0]] = (
                                "timeout", f"no result after {self.case_timeout:.0f} s")
                        rest = w["jobs"][done + 1:] + w["then"]
                        if rest:
                            start(rest)
                    continue
                active.remove(w)
                done = self._collect(w)
                if done >= len(w["jobs"]):
                    if w["then"]:
                        start(w["then"])
                    continue
                # The worker died while running jobs[done]: that case is the culprit.
                culprit = w["jobs"][done]
                rest = w["jobs"][done + 1:] + w["then"]
                message = self._stderr(w) or f"the interpreter process exited with {rc}"
                if w["mode"] == "confirm" or self._names_an_op(message, culprit[0]):
                    self.results[culprit[0]] = ("crash", message)
                    self.crashes += 1
                    if rest:
                        start(rest)
                else:  # pin it: the culprit alone in a fresh process, then the rest
                    start([culprit], mode="confirm", then=rest)
        return self.results

    def _names_an_op(self, message, key):
        ops = self.ops_of.get(key, ())
        return "LLVM ERROR" in message and any(o in message for o in ops)


# --------------------------------------------------------------------------------------------
# Running and comparing

def _show(x):
    x = np.asarray(x)
    if x.dtype.kind == "c":
        return f"{complex(x)!r}"
    name = elements_name(x.dtype)
    if name in elements.FLOATS:
        return f"{float(x)!r}[0x{int(_bits(x.reshape(1))[0]):0{2 * x.dtype.itemsize}x}]"
    if name == "i1":
        return str(bool(x))
    return str(int(x))


def compare_outputs(case, actual, expected, oracle="interpreter"):
    """(status, detail, excepted) for pyrt's `actual` outputs against the oracle's."""
    if len(actual) != len(expected):
        return "mismatch", f"{len(actual)} outputs, the {oracle} gave {len(expected)}", {}
    excepted = collections.Counter()
    masks = [[] for _ in actual]
    for exc in case.exceptions:
        with np.errstate(all="ignore"):
            if exc.on == "results":
                m = exc.mask(case.inputs, actual, expected)
            else:
                m = exc.mask(*case.inputs)
        m = list(m) if isinstance(m, (list, tuple)) else [m] * len(actual)
        for i, mi in enumerate(m):
            if mi is not None:
                masks[i].append((exc.reason, np.broadcast_to(mi, expected[i].shape)))
    problems = []
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a.dtype != e.dtype or a.shape != e.shape:
            problems.append(f"output {i}: pyrt gave {a.dtype}{list(a.shape)}, the {oracle} "
                            f"{e.dtype}{list(e.shape)}")
            continue
        cmp = case.compare[i] if isinstance(case.compare, (list, tuple)) else case.compare
        bad = ~agree(a, e, cmp)
        for reason, m in masks[i]:
            n = int(np.count_nonzero(bad & m))
            if n:
                excepted[reason] += n
            bad &= ~m
        if bad.any():
            where = np.argwhere(bad) if a.ndim else [()]
            lines = [f"output {i}: {int(np.count_nonzero(bad))} of {a.size} elements differ "
                     f"from the {oracle} ({cmp})"]
            elementwise = all(np.shape(x) == a.shape for x in case.inputs) and case.inputs
            for idx in where[:6]:
                idx = tuple(int(j) for j in idx)
                ins = ""
                if elementwise:
                    ins = " for inputs (" + ", ".join(_show(x[idx]) for x in case.inputs) + ")"
                lines.append(f"  at {list(idx)}{ins}: pyrt {_show(a[idx])}, "
                             f"{oracle} {_show(e[idx])}")
            problems.append("\n".join(lines))
    if problems:
        return "mismatch", "\n".join(problems), dict(excepted)
    return "match", "", dict(excepted)


class XlaCpu:
    """The fallback oracle: XLA:CPU through jax's CPU client, in-process."""

    def __init__(self):
        import jax
        from jax._src.lib import xla_client
        jax.config.update("jax_enable_x64", True)
        self.jax, self.xla_client = jax, xla_client
        self.device = jax.devices("cpu")[0]

    def run(self, case):
        jax, device = self.jax, self.device
        exe = device.client.compile_and_load(case.texts()[0], self.xla_client.DeviceList((device,)),
                                             self.xla_client.CompileOptions())
        placed = [jax.device_put(x, device) for x in case.inputs]
        outs = exe.execute_sharded(placed).disassemble_into_single_device_arrays()
        return [np.asarray(o[0]) for o in outs]


def compare_with_xla(case, actual, xla):
    """Result.xla for a case the interpreter cannot run: "match", "mismatch: ..." or
    "error: ..."."""
    try:
        expected = xla.run(case)
    except Exception as e:
        return f"error: {type(e).__name__}: {str(e)[:300]}"
    expected = [e.astype(a.dtype) if e.dtype != a.dtype and e.shape == a.shape else e
                for a, e in zip(actual, expected)]
    status, detail, _ = compare_outputs(case, actual, expected, oracle="XLA:CPU")
    return "match" if status == "match" else f"mismatch: {detail}"


def run_cases(cases, workers=2, probe_interpreter=False, xla_fallback=False):
    """Runs every case on both sides; returns (list of Result in case order, stats).
    probe_interpreter: run cases without a pyrt handler on the interpreter anyway (their Result
    detail then says whether it could run them). xla_fallback: compare the cases the
    interpreter cannot run with XLA:CPU instead (a mismatch there fails the case)."""
    results = [None] * len(cases)
    jobs, ops_of = [], {}
    for i, case in enumerate(cases):
        missing = missing_handlers(case)
        if missing:
            results[i] = Result(case, "no_handler", ", ".join(missing))
            if not (probe_interpreter and not case.interpreter):
                continue
        if case.interpreter:
            continue
        _, interp_text, _ = case.texts()
        etypes = [a.etype for a in case.function.args]
        try:
            artifact = _artifact(interp_text)
        except Exception as e:
            raise AssertionError(f"the harness built an invalid module for {case.name}: {e}\n"
                                 f"{interp_text}") from None
        inputs = []
        for x, t in zip(case.inputs, etypes):
            if elements.is_complex(t):
                part = elements.part_type(t)
                inputs += [dense_literal(x.real, part), dense_literal(x.imag, part)]
            else:
                inputs.append(dense_literal(x, t))
        jobs.append((i, artifact, inputs))
        ops_of[i] = case.ops
    interpreter = Interpreter(workers=workers, ops_of=ops_of)
    thread = threading.Thread(target=interpreter.run, args=(jobs,), daemon=True)
    thread.start()
    pyrt = {}
    for i, case in enumerate(cases):
        if results[i] is None:
            pyrt[i] = run_pyrt(case)
    thread.join()
    if interpreter.failure is not None:
        raise RuntimeError("the interpreter driver failed") from interpreter.failure
    xla = None
    for i, case in enumerate(cases):
        if results[i] is not None:
            if i in ops_of:  # probed
                kind, payload = interpreter.results.get(i, ("crash", "no result"))
                results[i].probe = kind if kind == "ok" else f"{kind}: {payload}"
            continue
        status, detail, actual = pyrt[i]
        if status != "ok":
            results[i] = Result(case, status, detail)
            continue
        if case.interpreter:
            results[i] = Result(case, "interp_known", case.interpreter, pyrt=actual)
        else:
            kind, payload = interpreter.results.get(i, ("crash", "no result"))
            if kind != "ok":
                results[i] = Result(case, "interp_cannot_run", f"{kind}: {payload}", pyrt=actual)
        if results[i] is not None:
            if xla_fallback:
                xla = xla if isinstance(xla, XlaCpu) else XlaCpu()
                results[i].xla = compare_with_xla(case, actual, xla)
                if results[i].xla.startswith("mismatch"):
                    status = "known_bug" if case.bug else "mismatch"
                    results[i] = Result(case, status, (f"{case.bug}\n" if case.bug else "")
                                        + results[i].xla[len("mismatch: "):], pyrt=actual,
                                        xla=results[i].xla)
            continue
        expected = _decode(payload, case.texts()[2], case.function)
        status, detail, excepted = compare_outputs(case, actual, expected)
        if status == "mismatch" and case.bug:
            status, detail = "known_bug", f"{case.bug}\n{detail}"
        results[i] = Result(case, status, detail, pyrt=actual, reference=expected,
                            excepted=excepted)
    stats = {"processes": interpreter.processes, "crashes": interpreter.crashes,
             "interpreted": len(jobs)}
    return results, stats


def reproducer(case):
    """A self-contained Python snippet running a case on pyrt (module text and inputs)."""
    text = case.texts()[0]
    lines = ["import ml_dtypes, numpy as np  # noqa",
             "from jaxlib.mlir._mlir_libs import _stablehlo",
             "from jax_pyrt.executable import Executable",
             "text = " + repr(text),
             "exe = Executable(_stablehlo.serialize_portable_artifact_str(text, "
             "_stablehlo.get_current_version()), b'')",
             "inputs = ["]
    for x in case.inputs:
        name = x.dtype.name
        dt = f"np.{name}" if hasattr(np, name) and name != "bool" else (
            "np.bool_" if name == "bool" else f"ml_dtypes.{name}")
        raw = np.ascontiguousarray(x).tobytes().hex()
        shape = tuple(x.shape)
        lines.append(f"    np.frombuffer(bytes.fromhex({raw!r}), {dt}).reshape({shape!r}),")
    lines.append("]")
    lines.append("outs = exe.run([np.ascontiguousarray(x).reshape(-1).view(np.uint8) "
                 "for x in inputs])")
    lines.append("from jax_pyrt import dtypes")
    lines.append("for out, (code, shape) in zip(outs, exe.output_specs):")
    lines.append("    print(out.view(dtypes.DTYPE_BY_PJRT_TYPE[code]).reshape(shape))")
    return "\n".join(lines)


def summarize(results, stats=None, elapsed=None):
    """A text summary: counts by status, skipped ops, interpreter limitations, pyrt gaps,
    documented exceptions and the failures."""
    by_status = collections.Counter(r.status for r in results)
    lines = [f"differential: {len(results)} cases: " + ", ".join(
        f"{n} {s}" for s, n in sorted(by_status.items(), key=lambda kv: -kv[1]))]
    if stats:
        lines.append(f"  interpreter: {stats['interpreted']} cases in {stats['processes']} "
                     f"worker processes, {stats['crashes']} aborts pinned")
    if elapsed is not None:
        lines.append(f"  time: {elapsed:.1f} s")
    skipped = collections.defaultdict(set)
    for r in results:
        if r.status == "no_handler":
            skipped[r.case.op].add(r.detail)
    if skipped:
        lines.append(f"  skipped, no handler yet ({len(skipped)} ops): " + "; ".join(
            op.replace("stablehlo.", "") + ("" if m == {op} else f" (needs {', '.join(sorted(m))})")
            for op, m in sorted(skipped.items())))
    fallback = collections.Counter(r.xla.split(":")[0] for r in results if r.xla)
    if fallback:
        lines.append("  compared with XLA:CPU instead (the interpreter cannot run them): "
                     + ", ".join(f"{n} {k}" for k, n in sorted(fallback.items())))
        errors = collections.defaultdict(collections.Counter)
        for r in results:
            if r.xla.startswith("error"):
                errors[r.case.op][r.xla[:160]] += 1
        for op, reasons in sorted(errors.items()):
            for reason, n in reasons.most_common(2):
                lines.append(f"    {op}: {n} cases: {reason}")
    for title, statuses in (("the interpreter cannot run", ("interp_cannot_run", "interp_known")),
                            ("pyrt refuses (UnsupportedError)", ("pyrt_unsupported",))):
        groups = collections.defaultdict(collections.Counter)
        for r in results:
            if r.status in statuses:
                groups[r.case.op][r.detail.split(" | ")[-1][:200]] += 1
        if groups:
            lines.append(f"  {title}:")
            for op, reasons in sorted(groups.items()):
                for reason, n in reasons.most_common(3):
                    lines.append(f"    {op}: {n} cases: {reason}")
    excepted = collections.Counter()
    for r in results:
        for reason, n in r.excepted.items():
            excepted[(r.case.op, reason)] += n
    if excepted:
        lines.append("  documented exceptions (differing elements not compared):")
        for (op, reason), n in sorted(excepted.items()):
            lines.append(f"    {op}: {n} elements: {reason}")
    bugs = collections.Counter(r.case.bug for r in results if r.status == "known_bug")
    if bugs:
        lines.append("  known pyrt bugs (specs.KNOWN_PYRT_BUGS):")
        for bug, n in sorted(bugs.items()):
            lines.append(f"    {n} cases: {bug}")
    failures = [r for r in results if r.status in FAILING]
    if failures:
        lines.append(f"  FAILURES ({len(failures)}):")
        for r in failures[:300]:
            lines.append(f"    {r.case.name}: {r.status}: " + r.detail.split("\n")[0][:200])
    return "\n".join(lines)
