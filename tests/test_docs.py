"""Generated docs stay in step with the code they describe."""

import os
import pathlib
import re
import subprocess
import sys
import textwrap

from jax_pyrt.ops import registry
from jax_pyrt.ops.__main__ import coverage_table, dialect_ops, spec_ops, split_doc

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"

# StableHLO spec ops that have no handler yet. This set may only shrink: an op missing from it
# without a handler fails test_spec_ops_without_handlers_are_pending, and an op in it that has a
# handler fails it too (remove it here when its handler lands).
PENDING = set()  # spec ops without a handler yet; may only shrink (now empty: 100 %)


def test_op_coverage_table_is_current():
    assert (DOCS / "ops.md").read_text().strip() == coverage_table().strip(), (
        "docs/ops.md is stale: regenerate it with `python -m jax_pyrt.ops > docs/ops.md`")


def test_every_handler_documents_its_op():
    for name, handler in registry().items():
        assert handler.__doc__, f"the handler of {name} has no docstring"


def test_spec_ops_without_handlers_are_pending():
    missing = {name for name in spec_ops() if name not in registry()}
    print("StableHLO spec ops without a handler:", ", ".join(sorted(missing)) or "none")
    unexpected = sorted(missing - PENDING)
    assert not unexpected, f"spec ops without a handler, not in PENDING: {unexpected}"
    done = sorted(PENDING - missing)
    assert not done, f"these ops have a handler now: remove them from PENDING: {done}"


def test_spec_op_list():
    """The spec list comes from jaxlib's stablehlo dialect, minus the ops its documentation puts
    outside the spec (deprecated, or not yet specified)."""
    dialect = dialect_ops()
    outside = {name for name, status in dialect.items() if status != "spec"}
    assert outside == {
        "stablehlo.broadcast", "stablehlo.create_token", "stablehlo.cross-replica-sum",
        "stablehlo.dot", "stablehlo.einsum", "stablehlo.torch_index_select",
        "stablehlo.unary_einsum", "stablehlo.real_dynamic_slice", "stablehlo.set_dimension_size"}
    spec = spec_ops()
    assert len(spec) == len(dialect) - len(outside)
    for name in ("stablehlo.add", "stablehlo.dot_general", "stablehlo.composite",
                 "stablehlo.uniform_quantize", "stablehlo.async_start"):
        assert name in spec


def test_dtypes_note_is_parsed():
    doc = """Spec: add. Integers wrap around.

    dtypes: all element types;
    i1 is logical or.

    More notes."""
    dtypes, notes = split_doc(doc)
    assert dtypes == "all element types; i1 is logical or."
    assert notes == "Spec: add. Integers wrap around. More notes."
    assert split_doc("Spec: abs.") == (None, "Spec: abs.")


def python_blocks(doc):
    return re.findall(r"```python\n(.*?)```", (DOCS / doc).read_text(), re.S)


def run_example(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, JAX_PLATFORMS="pyrt"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_custom_call_example_runs_as_documented():
    # docs/extending.md's example, with the values its comments promise.
    out = run_example(python_blocks("extending.md")[0])
    assert out.split("\n")[:4] == ["[0.125 1.    8.   ]", "[[0.125 1.    8.   ]",
                                   " [0.125 1.    8.   ]]", "[0.75 3.   0.  ]"], out


def test_the_handler_example_replaces_tanh():
    out = run_example(python_blocks("extending.md")[1] + textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        x = np.linspace(-3, 3, 7, dtype=np.float32)
        print(np.array_equal(np.asarray(jax.jit(jnp.tanh)(x)),
                             np.tanh(x.astype(np.float64)).astype(np.float32)))
    """))
    assert out.strip().endswith("True"), out


def test_the_explain_example_runs():
    (example,) = [b for b in python_blocks("debugging.md") if "jax_pyrt.explain(" in b]
    out = run_example(example)
    assert "# stablehlo.dot_general (<string>:3)" in out and "def entry(views, ctx):" in out, out
