"""Which cases a run executes: all of them (the full sweep) or a deterministic sample."""

import collections
import zlib

from . import elements as el
from .specs import SPECS

# The sample takes, per op, up to PER_OP cases: first one for each of these element types (the
# case most likely to find something: edge-value pairs and vectors first), plus a narrow type
# chosen by the op's name (so that the sample rotates through them), then more by hash order.
PER_OP = 20
CORE_TYPES = ("f32", "f64", "bf16", "f16", "i32", "i8", "ui8", "ui64", "i64", "i1",
              "complex<f32>", "complex<f64>")


def all_cases(ops=None):
    cases = []
    for op, generators in SPECS.items():
        if ops and op.replace("stablehlo.", "") not in ops and op not in ops:
            continue
        for generate in generators:
            cases.extend(generate())
    return cases


def _hash(text):
    return zlib.crc32(text.encode())


def _priority(case):
    tail = case.name.rsplit("/", 1)[-1]
    return (0 if tail in ("pairs", "edges") else 1, _hash(case.name))


def sample(cases, per_op=PER_OP):
    by_op = collections.defaultdict(list)
    for c in cases:
        by_op[c.op].append(c)
    chosen = []
    for op, group in by_op.items():
        group = sorted(group, key=_priority)
        narrow = el.NARROW[_hash(op) % len(el.NARROW)]
        picked, seen = [], set()
        for t in CORE_TYPES + (narrow,):
            for c in group:
                if c.dtype == t and id(c) not in seen:
                    picked.append(c)
                    seen.add(id(c))
                    break
            if len(picked) >= per_op:
                break
        for c in sorted(group, key=lambda c: _hash(c.name)):
            if len(picked) >= per_op:
                break
            if id(c) not in seen:
                picked.append(c)
                seen.add(id(c))
        chosen.extend(picked)
    return chosen


def select(mode, ops=None):
    """mode: "full" or "sample"; ops: op names (with or without "stablehlo.") to restrict to."""
    cases = all_cases(ops)
    return cases if mode == "full" else sample(cases)
