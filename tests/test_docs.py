"""Generated docs stay in step with the code they describe."""

import pathlib

from jax_pyrt.ops.__main__ import coverage_table

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def test_op_coverage_table_is_current():
    assert (DOCS / "ops.md").read_text().strip() == coverage_table().strip(), (
        "docs/ops.md is stale: regenerate it with `python -m jax_pyrt.ops > docs/ops.md`")


def test_every_handler_documents_its_op():
    from jax_pyrt.ops import registry

    for name, handler in registry().items():
        assert handler.__doc__, f"the handler of {name} has no docstring"
