"""Differential tests: pyrt's executor against jaxlib's StableHLO reference interpreter.

For every op (specs.py, specs_more.py) x element type x shapes and attributes, the harness builds
a StableHLO module, runs it on pyrt in-process (jax_pyrt.executable.Executable: no PJRT) and on
`jaxlib.mlir._mlir_libs._stablehlo.eval_module` in worker subprocesses (the interpreter aborts
the process on ops it does not implement; the harness pins the culprit and carries on), and
compares: bit-exact where the spec is exact, NaN-aware with ULP tolerances for transcendental
functions, with the documented exceptions of each op spec.

Runs:
    python -m pytest tests/differential                            # a deterministic sample
    PYRT_DIFFERENTIAL=full python -m pytest tests/differential     # the full sweep
    PYRT_DIFFERENTIAL_OPS=add,sort python -m pytest tests/differential   # only these ops
    PYRT_DIFFERENTIAL_WORKERS=1 ...                                # interpreter processes (2)
    PYRT_DIFFERENTIAL_XLA=0 ...                                    # no XLA:CPU fallback

The default sample (about 20 cases per op, every core element type once) takes ~10 s; the full
sweep (~9,000 cases) about a minute and a half on 2 cores. The run's summary (counts, ops skipped
for lack of a handler, what the interpreter cannot run, pyrt's UnsupportedErrors, documented
exceptions, known bugs, failures) is printed at the end of the pytest session. A failing op
reports its mismatching elements and a self-contained reproducer.

Cases whose ops have no handler yet are skipped. Cases the interpreter cannot run (it aborts,
fails or is known to be wrong for them: see the summary) count as "interpreter cannot run", not
as pyrt failures; they are compared with XLA:CPU instead (in-process, through jax's CPU client),
where a mismatch does fail. Mismatches listed in specs.KNOWN_PYRT_BUGS are
reported, not failed; in the full sweep, an entry that no longer shows fails
test_known_bugs_still_present, so that fixed bugs leave the list.
"""

import collections
import os
import re
import time

import numpy as np
import pytest

from . import harness, selection, specs
from .harness import EXACT, Case, Interpreter, Known, agree, ulp
from .mlir import Function

MODE = os.environ.get("PYRT_DIFFERENTIAL") or "sample"
assert MODE in ("sample", "full"), f"PYRT_DIFFERENTIAL={MODE!r}: use full (or sample)"
OPS = [o for o in os.environ.get("PYRT_DIFFERENTIAL_OPS", "").split(",") if o]
WORKERS = int(os.environ.get("PYRT_DIFFERENTIAL_WORKERS", "2"))
XLA_FALLBACK = os.environ.get("PYRT_DIFFERENTIAL_XLA", "1") != "0"
SUMMARY = []  # printed by conftest.pytest_terminal_summary


@pytest.fixture(scope="session")
def differential():
    """Runs the selected cases once per session; {op: [Result]}."""
    start = time.monotonic()
    cases = selection.select(MODE, OPS)
    results, stats = harness.run_cases(cases, workers=WORKERS, xla_fallback=XLA_FALLBACK)
    elapsed = time.monotonic() - start
    SUMMARY.append(f"[{MODE}] " + harness.summarize(results, stats, elapsed))
    by_op = collections.defaultdict(list)
    for r in results:
        by_op[r.case.op].append(r)
    return by_op


def _selected_ops():
    return sorted(op for op in specs.SPECS
                  if not OPS or op in OPS or op.replace("stablehlo.", "") in OPS)


@pytest.mark.parametrize("op", _selected_ops())
def test_op(differential, op):
    results = differential.get(op, [])
    if not results:
        pytest.skip(f"no case of {op} in this selection")
    if all(r.status == "no_handler" for r in results):
        pytest.skip(f"{op}: no handler yet ({results[0].detail})")
    failures = [r for r in results if r.status in harness.FAILING]
    if failures:
        lines = [f"{len(failures)} of {len(results)} cases of {op} fail:"]
        for r in failures[:5]:
            lines.append(f"--- {r.case.name}: {r.status}\n{r.detail}")
        lines.append(f"--- reproducer of {failures[0].case.name} (pyrt side):\n"
                     + harness.reproducer(failures[0].case))
        pytest.fail("\n".join(lines), pytrace=False)
    compared = [r for r in results if r.status in ("match", "known_bug") or r.xla == "match"]
    if not compared:
        reasons = collections.Counter(r.status for r in results)
        pytest.skip(f"{op}: nothing compared ({dict(reasons)})")


def test_known_bugs_still_present(differential):
    """Every KNOWN_PYRT_BUGS entry still shows in the full sweep (else: fixed, remove it)."""
    if MODE != "full" or OPS:
        pytest.skip("checked in the full sweep only")
    shown = {r.case.bug for rs in differential.values() for r in rs if r.status == "known_bug"}
    stale = [text for _, text in specs.KNOWN_PYRT_BUGS if text not in shown]
    assert not stale, "fixed? remove these entries from specs.KNOWN_PYRT_BUGS:\n" + "\n".join(stale)


def test_known_bug_patterns_match_cases():
    names = [c.name for c in selection.all_cases()]
    for pattern, text in specs.KNOWN_PYRT_BUGS:
        assert any(re.match(pattern, n) for n in names), f"no case matches {pattern!r}"


# --------------------------------------------------------------------------------------------
# The harness itself

def test_comparisons():
    f32 = np.float32
    nan, inf = f32(np.nan), f32(np.inf)
    a = np.array([nan, 1.0, -0.0, inf, 1.0], f32)
    e = np.array([-nan, 1.0, 0.0, inf, np.nextafter(f32(1), f32(2))], f32)
    assert agree(a, e, EXACT).tolist() == [True, True, False, True, False]
    assert agree(a, e, ulp(1)).tolist() == [True] * 5
    assert not agree(np.array([inf], f32), np.array([-inf], f32), ulp(100))[0]
    z = np.array([complex(inf, nan), complex(1, 1)], np.complex64)
    w = np.array([complex(nan, nan), complex(1, 1.0000001)], np.complex64)
    assert agree(z, w, ulp(2)).tolist() == [True, True]
    assert agree(z, w, EXACT).tolist() == [False, False]
    bf16 = np.array([1.0, 2.0], "bfloat16")
    assert agree(bf16, bf16, EXACT).all()


def _add_case(name, etype, x, y):
    f = Function([(x.shape, etype), (y.shape, etype)])
    f.returns(f.op("stablehlo.add", f.args, [(x.shape, etype)]))
    return Case(op="stablehlo.add", name=name, function=f, inputs=[x, y])


def test_mismatch_detected_and_exceptions_apply():
    x = np.array([1, 2, 3], np.int32)
    case = _add_case("self-test", "i32", x, x)
    actual, expected = [np.array([2, 4, 7], np.int32)], [np.array([2, 4, 6], np.int32)]
    status, detail, _ = harness.compare_outputs(case, actual, expected)
    assert status == "mismatch" and "1 of 3" in detail
    case.exceptions = (Known("the last one", lambda a, b: np.arange(3) == 2),)
    status, _, excepted = harness.compare_outputs(case, actual, expected)
    assert status == "match" and excepted == {"the last one": 1}


def test_round_trip_of_every_element_type():
    """Inputs reach the interpreter and results come back bit-exactly, for every type (an
    identity program: the decode path of narrow and complex types is what is tested)."""
    cases = []
    for t in specs.el.ALL:
        x = specs.el.fill(t, (9,), np.random.default_rng(0))
        f = Function([((9,), t)])
        f.returns(f.op("stablehlo.optimization_barrier", f.args, [((9,), t)]))
        cases.append(Case(op="stablehlo.optimization_barrier", name=f"identity/{t}", function=f,
                          inputs=[x]))
    results, _ = harness.run_cases(cases, workers=1)
    for r in results:
        assert r.status == "match", (r.case.name, r.status, r.detail)
        assert r.reference[0].dtype == r.case.inputs[0].dtype


def test_interpreter_crash_is_pinned():
    """A case that aborts the interpreter (rng_bit_generator) in the middle of a batch: it is
    recorded as a crash, and the cases after it still run."""
    from jaxlib.mlir._mlir_libs import _stablehlo
    jobs = []
    for i in range(4):
        f = Function([((2,), "ui64")])
        if i == 1:
            out = f.op("stablehlo.rng_bit_generator", f.args, [((2,), "ui64"), ((3,), "ui32")],
                       {"rng_algorithm": "#stablehlo<rng_algorithm THREE_FRY>"})
            f.returns(out[1])
        else:
            f.returns(f.op("stablehlo.not", f.args, [((2,), "ui64")]))
        art = _stablehlo.serialize_portable_artifact_str(f.module(),
                                                         _stablehlo.get_current_version())
        jobs.append((i, art, [harness.dense_literal(np.array([i, 7], np.uint64), "ui64")]))
    interp = Interpreter(workers=1)
    results = interp.run(jobs)
    assert results[1][0] == "crash" and "rng_bit_generator" in results[1][1]
    for i in (0, 2, 3):
        assert results[i][0] == "ok"
        got = np.frombuffer(results[i][1][0][2], np.uint64)
        assert got.tolist() == (~np.array([i, 7], np.uint64)).tolist()
    assert interp.processes == 3  # the batch, a confirmation run of the culprit, the rest
