"""Prints the op coverage table (docs/ops.md) from the registry: python -m jax_pyrt.ops

The op list is the StableHLO specification as jaxlib ships it: every op class of the stablehlo
dialect (`jaxlib.mlir.dialects.stablehlo`, OPERATION_NAME "stablehlo.*"), minus the ops whose
dialect documentation says they are not in the specification: the deprecated "on its way out"
ops (#3: broadcast, create_token, cross-replica-sum, dot, einsum, torch_index_select,
unary_einsum) and the not yet specced "work in progress" ones (#8: real_dynamic_slice,
set_dimension_size). Those are listed in a second table, and ops of other dialects that pyrt
handles (func, sdy) in a third; neither counts towards the coverage line.

Each row shows the handler's module, its dtypes and its notes, all from the registry: the notes
are the handler's docstring, and the dtypes a paragraph of it starting with "dtypes:", e.g.

    @op("stablehlo.add")
    def add(op_):
        '''Spec: add. Integers wrap around; on i1 it is logical or.

        dtypes: all element types.'''

(the paragraph runs to the next blank line or the end; without one the column says "see
notes"). Ops without a handler show "not yet".
"""

import inspect
import re

from . import registry

_DTYPES = re.compile(r"^\s*dtypes\s*:\s*(.*?)(?:\n\s*\n|\Z)",
                     re.IGNORECASE | re.MULTILINE | re.DOTALL)
_DEPRECATED = "on its way out"
_NOT_YET_SPECCED = "not yet included in the StableHLO specification"


def dialect_ops():
    """{op name: "spec" | "deprecated" | "not yet specced"} for the stablehlo dialect's ops."""
    from jaxlib.mlir.dialects import stablehlo

    ops = {}
    for cls in vars(stablehlo).values():
        name = getattr(cls, "OPERATION_NAME", None)
        if not (inspect.isclass(cls) and isinstance(name, str) and name.startswith("stablehlo.")):
            continue
        doc = " ".join((cls.__doc__ or "").split())
        status = ("deprecated" if _DEPRECATED in doc else
                  "not yet specced" if _NOT_YET_SPECCED in doc else "spec")
        # A dialect module can hold several classes per op (e.g. a builder alias): any
        # documented one decides.
        if ops.get(name, "spec") == "spec":
            ops[name] = status
    return dict(sorted(ops.items()))


def spec_ops():
    """The ops of the StableHLO specification, sorted."""
    return [name for name, status in dialect_ops().items() if status == "spec"]


def versions():
    import jaxlib
    from jaxlib.mlir._mlir_libs import _stablehlo
    return _stablehlo.get_current_version(), jaxlib.__version__


def split_doc(doc):
    """(dtypes note or None, the rest of the docstring), both on one line."""
    doc = inspect.cleandoc(doc or "")
    match = _DTYPES.search(doc)
    dtypes = None
    if match:
        dtypes = " ".join(match.group(1).split())
        doc = doc[:match.start()] + "\n" + doc[match.end():]
    return dtypes, " ".join(doc.split())


def _cell(text):
    return text.replace("|", "\\|")


def _row(name, handlers, extra=()):
    handler = handlers.get(name)
    if handler is None:
        return f"| `{name}` | {''.join(f'{e} | ' for e in extra)}not yet | | |"
    dtypes, notes = split_doc(handler.__doc__)
    module = handler.__module__.rsplit(".", 1)[-1]
    return (f"| `{name}` | {''.join(f'{e} | ' for e in extra)}{module} | "
            f"{_cell(dtypes or 'see notes')} | {_cell(notes)} |")


def coverage_table():
    handlers = registry()
    dialect = dialect_ops()
    spec = [n for n, s in dialect.items() if s == "spec"]
    outside = [n for n, s in dialect.items() if s != "spec"]
    others = [n for n in handlers if n not in dialect]
    covered = sum(1 for n in spec if n in handlers)
    stablehlo_version, jaxlib_version = versions()
    percent = 100.0 * covered / len(spec)
    deprecated = [n for n in outside if dialect[n] == "deprecated"]
    unspecced = [n for n in outside if dialect[n] != "deprecated"]
    names = lambda ops: ", ".join(f"`{n.replace('stablehlo.', '')}`" for n in ops)

    rows = [
        "# pyrt op coverage", "",
        "Generated from the op registry by `python -m jax_pyrt.ops > docs/ops.md` (see "
        "`python/jax_pyrt/ops/__main__.py`).", "",
        f"**{covered} of {len(spec)} StableHLO ops ({percent:.1f} %)** have a handler.", "",
        f"The op list is the StableHLO specification as of StableHLO {stablehlo_version} (the "
        f"stablehlo dialect of jaxlib {jaxlib_version}), without the dialect's ops that its "
        f"documentation places outside the specification: deprecated ({names(deprecated)}) "
        f"and not yet specified ({names(unspecced)}); those are in the second table. "
        "Dtypes come from a `dtypes:` paragraph of the handler's docstring, notes from the rest "
        "of it. `tests/differential` checks the handlers against jaxlib's StableHLO reference "
        "interpreter (`PYRT_DIFFERENTIAL=full python -m pytest tests/differential` for the full "
        "sweep).", "",
        "## StableHLO specification", "",
        "| op | module | dtypes | notes |", "| --- | --- | --- | --- |"]
    rows += [_row(n, handlers) for n in spec]
    rows += ["", "## In the stablehlo dialect, outside the specification", "",
             "| op | status | module | dtypes | notes |", "| --- | --- | --- | --- | --- |"]
    rows += [_row(n, handlers, [dialect[n]]) for n in outside]
    rows += ["", "## Other dialects", "",
             "| op | module | dtypes | notes |", "| --- | --- | --- | --- |"]
    rows += [_row(n, handlers) for n in others]
    rows += ["", f"{covered} of {len(spec)} StableHLO ops ({percent:.1f} %).", ""]
    return "\n".join(rows)


if __name__ == "__main__":
    print(coverage_table())
