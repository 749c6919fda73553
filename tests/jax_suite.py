"""Runs JAX's own test suite on pyrt and on XLA:CPU, side by side, and writes docs/conformance.md.

    python tests/jax_suite.py PATH_TO_JAX_CHECKOUT [FILE ...]
                              [--set default|wider|multi-device|multi-process]
                              [-n WORKERS] [--results DIR]

PATH_TO_JAX_CHECKOUT is a checkout of github.com/jax-ml/jax at the tag of the installed jax
(jax-v0.10.2): its `tests/` directory, `conftest.py` and `pyproject.toml` (pytest's settings).
Each chosen test file runs twice with pytest-xdist, under `JAX_PLATFORMS=pyrt,cpu` (pyrt is the
device under test, CPU stays available as JAX's tests expect) and under `JAX_PLATFORMS=cpu`.
The runner then compares the two per test and writes, per file, passed / failed / skipped on
both, the tests skipped only on pyrt (JAX's platform allow-lists), and every test that fails on
pyrt but not on CPU, with its reason from KNOWN or GAPS below or marked as unexplained.

The multi-device set runs with 8 devices on both platforms. The multi-process set runs the
files of JAX's `tests/multiprocess/` with JAX's own launcher instead of pytest
(`python tests/multiprocess/X_test.py --num_processes=4`, jax/_src/test_multiprocess.py): it
starts 4 processes that join through `jax.distributed.initialize` on localhost, 2 devices each,
and each runs the file with absltest. The runner reads every process's per-test lines from the
launcher's logs (kept in DIR/logs/PLATFORM/FILE/); a test passes only if it passed in every
process. It writes the same JUnit reports as the pytest sets. pyrt needs MPI there:
`pip install mpi4py "mpich==4.3.2"`. `--from DIR` (repeatable, one per set) renders the
document from the JUnit reports of earlier runs kept in DIR.
Needs JAX's test requirements: `pip install ".[jax-tests]"`.
"""

import argparse
import collections
import datetime
import fnmatch
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(HERE, os.pardir, "docs", "conformance.md")

# The files the conformance table covers (globs under tests/ of the JAX checkout).
DEFAULT_SET = [
    "lax_test.py", "lax_numpy*_test.py", "lax_control_flow_test.py", "random_test.py",
    "random_lax_test.py", "fft_test.py", "lax_vmap_test.py", "lax_vmap_op_test.py",
    "lax_autodiff_test.py", "linalg_test.py", "api_test.py",
]
WIDER_SET = [
    "nn_test.py", "lax_scipy*_test.py", "scipy_*_test.py", "image_test.py", "batching_test.py",
    "dtypes_test.py", "x64_context_test.py", "checkify_test.py", "debug_nans_test.py",
    "debugging_primitives_test.py", "python_callback_test.py", "custom_linear_solve_test.py",
    "custom_root_test.py", "ode_test.py", "export_test.py", "compilation_cache_test.py",
    "mutable_array_test.py",
]

# JAX's multi-device tests, run with 8 devices on each platform (they ask for 8 CPU devices).
MULTI_DEVICE_SET = [
    "pmap_test.py", "shard_map_test.py", "pjit_test.py", "array_test.py",
    "multi_device_test.py", "memories_test.py",
]
# JAX's multi-process tests (tests/multiprocess/), each launched as 4 processes of 2 devices:
# Bazel runs them with 4 processes (jax_multiprocess_test), and their meshes need 8 devices.
MULTI_PROCESS_SET = [
    f"multiprocess/{name}_test.py" for name in (
        "all_reduce", "all_gather", "all_to_all", "axis_index", "pjit", "pmap", "array",
        "device_id", "key_value_store", "host_callback", "wait_barrier", "multihost_utils")
]
PROCESSES = 4
SETS = {"default": (DEFAULT_SET, 1), "wider": (WIDER_SET, 1),
        "multi-device": (MULTI_DEVICE_SET, 8), "multi-process": (MULTI_PROCESS_SET, 2)}

PLATFORMS = {"pyrt": "pyrt,cpu", "cpu": "cpu"}

# Tests that fail on pyrt but pass on XLA:CPU for a reason that is not a pyrt bug: fnmatch
# pattern over "file::Class::test" -> reason. Every entry is explained in docs/conformance.md.
KNOWN = {
    "lax_control_flow_test.py::LaxControlFlowTest::testScanGrad_jit_scan=False_jit_f=False_"
    "impl=unroll0":
        "a second-order finite-difference check in float32 whose step is below the noise: "
        "it compares 0.0016 with 0.0068 at rtol 0.5; pyrt's first and second derivatives "
        "match XLA:CPU's (tests/test_control_flow.py), the numeric estimate does not",
    "linalg_test.py::ScipyLinalgTest::testLuSolveBroadcast*":
        "JAX skips it on XLA:CPU ('Test fails on CPU sometimes'): it compares with SciPy on "
        "random, sometimes ill-conditioned systems; with the skip removed XLA:CPU and pyrt "
        "pass and fail the same cases, and give the same values on every case of the test",
    "shard_map_test.py::ShardMapTest::test_check_rep_false_grads":
        "a float32 finite-difference check of a sum near 2000 (1.6% off at rtol 1%): pyrt's "
        "value and VJP equal XLA:CPU's exactly (checked), the numeric estimate does not",
    "pjit_test.py::ShardingInTypesTest::test_reduce_max_*":
        "asserts that XLA's optimized HLO holds an all-reduce; pyrt runs a max over a sharded "
        "dimension as one global program (Shardy finishes it with an add all_reduce), with "
        "XLA:CPU's values (docs/multi-device.md)",
    "pjit_test.py::ShardingInTypesTest::test_*minibatch_*unreduced_*":
        "counts the collectives in XLA's optimized HLO; pyrt runs programs with unreduced "
        "values as one global program, with XLA:CPU's values (docs/multi-device.md)",
    **{f"pjit_test.py::ShardingInTypesTest::{name}":
        "checks each device's part of an unreduced array that a non-manual op computed, which "
        "is XLA's choice; pyrt's global path keeps the whole value on one device of each group "
        "and zeros on the others: the same sum, and the same values once resharded "
        "(docs/multi-device.md)"
       for name in ("test_bincount", "test_segment_sum", "test_segment_max", "test_segment_prod",
                    "test_identity_jit_out_unreduced", "test_reduce_sum_scalar_unreduced",
                    "test_reduced_reshard_unreduced_bwd", "test_unreduced_einsum_basic")},
    "compilation_cache_test.py::CompilationCache*Test::*":
        "a JAX test bug on platforms other than tpu/gpu/cpu: CompilationCacheTest's setUp "
        "installs its in-memory cache and then skips, so tearDown never restores it and "
        "JAX's harness reports the changed cache object (for that test and the next)",
    "export_test.py::JaxExportTest::test_*multi_platform*":
        "the test exports for a fixed list of platforms (cpu, tpu, cuda, rocm) and calls the "
        "export on the default device, pyrt, which is not among them",
    "multi_device_test.py::MultiDeviceTest::test_lax_full_like_efficient":
        "JAX skips it on XLA:CPU (no memory stats there); it sizes an array from "
        "bytes_reservable_limit, which pyrt does not report (device memory is host memory)",
    "multiprocess/array_test.py::CrossHostTransferTest::*":
        "JAX skips these on XLA:CPU, which has no cross-host transfers (device_put from one "
        "process's devices to another's) either: test_cross_host_transfer_cpu_error expects "
        "XLA:CPU's ValueError, which pyrt raises too",
}

# Tests that fail on pyrt because pyrt does not do something yet (a gap, never a wrong value):
# pattern -> what is missing. Rendered apart from KNOWN; each is work left. None is known now.
GAPS = {}


def test_files(checkout, patterns):
    files = []
    tests = os.path.join(checkout, "tests")
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.join(tests, pattern)))
        if not matches:
            sys.exit(f"jax_suite: no test file matches {pattern!r} under {checkout}/tests")
        files += [os.path.relpath(m, tests) for m in matches
                  if os.path.relpath(m, tests) not in files]
    return files


def run_pytest(checkout, files, platform, workers, devices, report):
    env = dict(os.environ, JAX_PLATFORMS=PLATFORMS[platform], PYRT_DEVICE_COUNT=str(devices),
               JAX_NUM_CPU_DEVICES=str(devices))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "-o", "junit_family=xunit1", f"--junitxml={report}", "--tb=line",
               "-n", str(workers)] + [f"tests/{f}" for f in files]
    start = time.time()
    log = report[:-len(".xml")] + ".log"
    with open(log, "w") as out:
        subprocess.run(command, cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT)
    return time.time() - start


def read_report(report):
    """{test id: (outcome, message)} from a JUnit report; outcome is passed/failed/skipped."""
    results = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        # The class names its module (tests.pjit_test.PJitTest); "file" can name the module
        # of a decorator (jax/_src/test_util.py) instead.
        module, _, cls = case.get("classname", "").rpartition(".")
        path = module.replace(".", "/") + ".py" if module else case.get("file", "")
        path = path[len("tests/"):] if path.startswith("tests/") else os.path.basename(path)
        test_id = f"{path}::{cls}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", child.get("message") or (child.text or "")
                break
            if child.tag == "skipped":
                outcome, message = "skipped", child.get("message") or ""
        if test_id in results and results[test_id][0] == "failed":
            continue  # a teardown error after a pass still counts as a failure
        results[test_id] = (outcome, message)
    return results


def run_launcher(checkout, file, platform, devices, logs, limit, heartbeat):
    """Runs one multi-process test file with JAX's launcher, its logs in `logs`; returns
    ({test id: (outcome, message)}, seconds)."""
    os.makedirs(logs, exist_ok=True)
    env = dict(os.environ, JAX_PLATFORMS=PLATFORMS[platform], PYRT_DEVICE_COUNT=str(devices),
               JAX_NUM_CPU_DEVICES=str(devices), TEST_UNDECLARED_OUTPUTS_DIR=logs,
               PYTHONWARNINGS="error",  # as Bazel runs JAX's tests (jax_multiplatform_test)
               UCX_NET_DEVICES="lo")  # MPICH's UCX between the processes: loopback only
    # The launcher starts its workers with /proc/self/exe, the interpreter outside this venv,
    # so mpi4py does not look for MPICH's wheel (libmpi.so.12) in the venv's lib/.
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (os.path.join(sys.prefix, "lib"), env.get("LD_LIBRARY_PATH")) if p)
    command = ["timeout", "-k", "30", str(limit), sys.executable, f"tests/{file}",
               f"--num_processes={PROCESSES}", f"--heartbeat_timeout={heartbeat}"]
    start = time.time()
    with open(os.path.join(logs, "launcher.log"), "w") as out:
        # A session of its own, so that whatever the launcher left running can be ended.
        launcher = subprocess.Popen(command, cwd=checkout, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        returncode = launcher.wait()
    try:
        os.killpg(launcher.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    seconds = time.time() - start
    note = f"timed out after {limit} s" if returncode == 124 else None
    return read_worker_logs(logs, file, note), seconds


_STATUS = re.compile(r"^\[\s*(RUN|OK|FAILED|SKIPPED)\s*\] (\w+)\.(\w+)(.*)$")
_BLOCK = re.compile(r"^={70}\n(?:ERROR|FAIL): (\w+)(.*?)\n-{70}\n(.*?)(?=^={70}$|^-{70}$|\Z)",
                    re.MULTILINE | re.DOTALL)  # header, maybe a description line, traceback
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Failure)\b")


def _worker_results(stderr):
    """{Class::test: (outcome, message)} from one process's absltest output."""
    results = {}
    for line in stderr.splitlines():
        match = _STATUS.match(line)
        if not match:
            continue
        status, cls, name, rest = match.groups()
        test = f"{cls}::{name}"
        if status == "RUN":
            results[test] = ("failed", "started but reported no result (crashed, timed out, "
                                       "or a subtest failed)")
        elif status == "OK":
            results[test] = ("passed", "")
        elif status == "SKIPPED":
            results[test] = ("skipped", rest.split(" - ", 1)[1] if " - " in rest else "")
        else:
            results[test] = ("failed", "")
    for method, header, body in _BLOCK.findall(stderr):
        cls = re.search(r"__main__\.(\w+)", header)
        test = f"{cls.group(1) if cls else '?'}::{method}"
        lines = body.rstrip().splitlines()
        at = max((i for i, l in enumerate(lines) if _EXCEPTION.match(l)), default=len(lines) - 1)
        end = next((i for i in range(at + 1, len(lines)) if lines[i].startswith("-----")),
                   len(lines))  # JAX's note on the frames it filtered out
        if test in results and results[test][0] == "failed":
            results[test] = ("failed", results[test][1] or "\n".join(lines[at:end]))
    return results


def read_worker_logs(logs, file, note=None):
    """Merges the processes' results: a test passes only if it passed in every process; it
    fails if it failed in one or did not finish in one."""
    per_process, unfinished = [], []
    for i in range(PROCESSES):
        path = os.path.join(logs, f"jax_{i}_stderr.log")
        stderr = open(path, errors="replace").read() if os.path.exists(path) else ""
        per_process.append(_worker_results(stderr))
        if not re.search(r"^Ran \d+ tests? in ", stderr, re.MULTILINE):
            unfinished.append(i)
    results = {}
    for test in sorted(set().union(*per_process)):
        outcomes = [(i, r.get(test, ("failed", "never started (the process ended before)")))
                    for i, r in enumerate(per_process)]
        failed = [(i, m) for i, (o, m) in outcomes if o == "failed"]
        if failed:
            results[test] = ("failed", "; ".join(f"process {i}: {m}" for i, m in failed[:1]))
        elif any(o == "skipped" for _, (o, _) in outcomes):
            results[test] = ("skipped", next(m for _, (o, m) in outcomes if o == "skipped"))
        else:
            results[test] = ("passed", "")
    if unfinished:  # one row for the file, so that a crash or a timeout shows in the table
        results["<launch>::all_processes_finished"] = (
            "failed", note or f"process(es) {unfinished} ended without absltest's summary "
                              "(crashed or killed); see their logs")
    return {f"{file}::{test}": outcome for test, outcome in results.items()}


def write_report(results, report):
    """Writes {test id: (outcome, message)} as a JUnit report that read_report reads back."""
    suite = ElementTree.Element("testsuite", name="jax_suite")
    for test_id, (outcome, message) in sorted(results.items()):
        path, cls, name = test_id.split("::")
        case = ElementTree.SubElement(
            suite, "testcase", name=name,
            classname="tests." + path[:-len(".py")].replace("/", ".") + "." + cls)
        if outcome != "passed":
            child = ElementTree.SubElement(case, "failure" if outcome == "failed" else "skipped",
                                           message=_short(message, 2000))
            child.text = message
    ElementTree.ElementTree(suite).write(report, encoding="unicode")


def known_reason(test_id):
    for table, label in ((KNOWN, "not pyrt's"), (GAPS, "pyrt gap")):
        for pattern, reason in table.items():
            if fnmatch.fnmatch(test_id, pattern):
                return f"{label}: {reason}"
    return None


def summarize(results):
    """Per file: outcome counts on each platform, pyrt-only skips and pyrt-only failures."""
    files = collections.defaultdict(lambda: {
        "pyrt": collections.Counter(), "cpu": collections.Counter(),
        "platform_skips": [], "regressions": [], "both_fail": [], "cpu_skips": []})
    for test_id in sorted(set(results["pyrt"]) | set(results["cpu"])):
        entry = files[test_id.split("::", 1)[0]]
        pyrt = results["pyrt"].get(test_id, ("missing", ""))
        cpu = results["cpu"].get(test_id, ("missing", ""))
        entry["pyrt"][pyrt[0]] += 1
        entry["cpu"][cpu[0]] += 1
        if pyrt[0] == "skipped" and cpu[0] != "skipped":
            entry["platform_skips"].append((test_id, pyrt[1]))
        if pyrt[0] == "failed" and cpu[0] == "failed":
            entry["both_fail"].append((test_id, pyrt[1]))
        elif pyrt[0] == "failed" and cpu[0] == "skipped":
            entry["cpu_skips"].append((test_id, pyrt[1]))
        elif pyrt[0] == "failed":
            entry["regressions"].append((test_id, pyrt[1]))
    return dict(sorted(files.items()))


def _short(message, limit=160):
    message = re.sub(r"\s+", " ", message).strip()
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _skip_reason_class(message):
    """A skip message without its test-specific parts, to group pyrt-only skips."""
    message = re.sub(r"test\w+ not supported", "<test> not supported", message)
    return _short(re.sub(r"\d+", "N", message), 120)


def render_table(summary):
    lines = [
        "| file | pyrt passed | pyrt failed | pyrt skipped | CPU passed | CPU failed | CPU skipped "
        "| pyrt-only skips | regressions |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    total = collections.Counter()
    for name, entry in summary.items():
        row = [entry["pyrt"]["passed"], entry["pyrt"]["failed"], entry["pyrt"]["skipped"],
               entry["cpu"]["passed"], entry["cpu"]["failed"], entry["cpu"]["skipped"],
               len(entry["platform_skips"]), len(entry["regressions"])]
        for key, value in enumerate(row):
            total[key] += value
        lines.append(f"| {name} | " + " | ".join(map(str, row)) + " |")
    lines.append("| **total** | " + " | ".join(f"**{total[k]}**" for k in range(8)) + " |")
    return lines


def render_failures(summary):
    regressions = [(t, m) for e in summary.values() for t, m in e["regressions"]]
    lines = ["", "Failures on pyrt that XLA:CPU passes:", ""]
    for test_id, message in regressions:
        reason = known_reason(test_id)
        lines.append(f"- `{test_id}`: " + (reason if reason else
                                            f"**unexplained** ({_short(message)})"))
    if not regressions:
        lines.append("None.")
    both = [(t, m) for e in summary.values() for t, m in e["both_fail"]]
    lines += ["", "Failures XLA:CPU has too (not pyrt's):", ""]
    lines += [f"- `{t}`: {_short(m)}" for t, m in both] or ["None."]
    skipped = [(t, m) for e in summary.values() for t, m in e["cpu_skips"]]
    lines += ["", "Failures on pyrt in tests JAX skips on XLA:CPU (not run there):", ""]
    lines += [f"- `{t}`: {known_reason(t) or _short(m)}" for t, m in skipped] or ["None."]
    unexplained = sum(known_reason(t) is None for t, _ in regressions)
    return lines, unexplained


# What the document says about a set besides its table.
NOTES = {
    "multi-process": [
        "Each file of JAX's `tests/multiprocess/` ran with JAX's own launcher",
        f"(`python tests/multiprocess/X_test.py --num_processes={PROCESSES}`,",
        "jax/_src/test_multiprocess.py), not pytest: it starts the processes, which join through",
        "`jax.distributed.initialize` on localhost, and each runs the file with absltest. A test",
        "passes only if it passed in every process. pyrt's processes run their collectives over",
        "MPI (MPICH 4.3 through mpi4py); XLA:CPU's over Gloo. Both ran with `PYTHONWARNINGS=error`",
        "(as Bazel runs them) and a heartbeat timeout of 30 s (`--heartbeat-timeout`) instead of",
        "the launcher's 5 s, which takes a process starved of CPU for dead on 2 cores.",
        "`<launch>::all_processes_finished` fails when a process crashed or the file timed out.",
    ],
}


def _scope(run):
    """'8 devices', or '4 processes of 2 devices' for a multi-process run."""
    devices = f"{run['devices']} device{'s' if run['devices'] > 1 else ''}"
    return f"{run['processes']} processes of {devices}" if run.get("processes") else devices


def render(sections, jax_tag, date):
    """sections: [(set name, run.json, summary, durations)] -> (markdown, unexplained)."""
    lines = [
        "# Conformance: JAX's own test suite on pyrt",
        "",
        f"Generated by `python tests/jax_suite.py` on {date}, with JAX's tests at tag `{jax_tag}`",
        "against the installed jax and jaxlib 0.10.2. Each file ran under `JAX_PLATFORMS=pyrt,cpu`",
        "(pyrt is the device under test) and under `JAX_PLATFORMS=cpu` (XLA:CPU), with",
        "JAX's default settings (`JAX_NUM_GENERATED_CASES=10`, x64 off) and the same number of",
        "devices on both (`PYRT_DEVICE_COUNT`, `JAX_NUM_CPU_DEVICES`).",
        "",
        "**pyrt-only skips** are tests JAX skips on any platform it does not know (its tests",
        "allow-list `cpu`/`gpu`/`tpu`); **regressions** fail on pyrt and pass on XLA:CPU.",
    ]
    unexplained = 0
    skips = collections.Counter()
    for name, run, summary, durations in sections:
        lines += ["", f"## The {name} set ({_scope(run)})", ""]
        lines += NOTES.get(name, []) + ([""] if name in NOTES else [])
        lines += ["Wall time: " + ", ".join(f"{p} {d / 60:.1f} min"
                                            for p, d in durations.items()) + ".", ""]
        lines += render_table(summary)
        failures, count = render_failures(summary)
        lines += failures
        unexplained += count
        skips.update(_skip_reason_class(m) for e in summary.values()
                     for _, m in e["platform_skips"])
    lines += ["", "## Tests skipped only on pyrt", "",
              "JAX decides these skips by platform name, before running anything on pyrt.",
              "", "| skip reason | tests |", "| --- | ---: |"]
    for reason, count in skips.most_common():
        lines.append(f"| {reason.replace('|', '/')} | {count} |")
    return "\n".join(lines) + "\n", unexplained


def run_set(args):
    """Runs the chosen files on each platform; returns the results directory."""
    names, devices = SETS[args.set]
    files = test_files(args.checkout, args.files or names)
    os.makedirs(args.results, exist_ok=True)
    durations = {}
    run = {"set": args.set, "devices": devices, "durations": durations}
    for platform in args.platforms.split(","):
        report = os.path.join(args.results, f"{platform}.xml")
        if args.set != "multi-process":
            durations[platform] = run_pytest(args.checkout, files, platform, args.workers,
                                             devices, report)
        else:  # JAX's launcher, one file at a time
            run["processes"] = PROCESSES
            results, durations[platform] = {}, 0.0
            for file in files:
                logs = os.path.join(args.results, "logs", platform, file[:-len(".py")])
                found, seconds = run_launcher(args.checkout, file, platform, devices, logs,
                                              args.timeout, args.heartbeat_timeout)
                results.update(found)
                durations[platform] += seconds
                counts = collections.Counter(outcome for outcome, _ in found.values())
                print(f"jax_suite: {platform} {file}: {dict(counts)} in {seconds:.0f} s",
                      flush=True)
            write_report(results, report)
        print(f"jax_suite: {platform} ran {len(files)} files in "
              f"{durations[platform] / 60:.1f} min", flush=True)
    with open(os.path.join(args.results, "run.json"), "w") as f:
        json.dump(run, f)
    return args.results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", help="checkout of github.com/jax-ml/jax at the installed tag")
    parser.add_argument("files", nargs="*", help="test files (globs) under tests/")
    parser.add_argument("--set", choices=sorted(SETS), default="default")
    parser.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers")
    parser.add_argument("--platforms", default="pyrt,cpu", help="which runs to make")
    parser.add_argument("--timeout", type=int, default=1200,
                        help="multi-process set: seconds a file may run on one platform")
    parser.add_argument("--heartbeat-timeout", type=int, default=30,
                        help="multi-process set: jax.distributed's heartbeat timeout (the "
                             "launcher's 5 s takes a process starved of CPU for dead)")
    parser.add_argument("--results", default="jax_suite_results", help="keep reports here")
    parser.add_argument("--from", dest="previous", action="append",
                        help="only render the reports kept in DIR (repeat for several sets)")
    parser.add_argument("--write", nargs="?", const=DOC, help="write the markdown table here")
    parser.add_argument("--tag", default="jax-v0.10.2")
    args = parser.parse_args()

    sections = []
    for directory in args.previous or [run_set(args)]:
        with open(os.path.join(directory, "run.json")) as f:
            run = json.load(f)
        missing = [p for p in PLATFORMS if not os.path.exists(os.path.join(directory, f"{p}.xml"))]
        if missing:  # --platforms ran only some: nothing to put side by side
            print(f"jax_suite: reports in {directory}; no {' or '.join(missing)} run to compare "
                  "with, so no table")
            return 0
        results = {p: read_report(os.path.join(directory, f"{p}.xml")) for p in PLATFORMS}
        sections.append((run["set"], run, summarize(results), run["durations"]))
    markdown, unexplained = render(sections, args.tag, datetime.date.today().isoformat())
    if args.write:
        with open(args.write, "w") as f:
            f.write(markdown)
    print(markdown)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
