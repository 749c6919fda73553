"""Prints the op coverage table (docs/ops.md) from the registry: python -m jax_pyrt.ops"""

import inspect

from . import registry


def coverage_table():
    rows = ["# pyrt op coverage", "",
            "Generated from the op registry by `python -m jax_pyrt.ops > docs/ops.md`.", "",
            "| op | module | notes |", "| --- | --- | --- |"]
    for name, handler in registry().items():
        doc = inspect.getdoc(handler) or ""
        rows.append(f"| `{name}` | {handler.__module__.rsplit('.', 1)[-1]} | "
                    f"{' '.join(doc.split())} |")
    rows.append("")
    rows.append(f"{len(registry())} ops.")
    return "\n".join(rows)


if __name__ == "__main__":
    print(coverage_table())
