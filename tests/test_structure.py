"""The package's shape: imports run one way (dtypes/errors -> types -> ops -> compiler ->
executable -> _bridge; jax_integration on top), with no import circle, counting imports inside
functions too; and the runtime does not import jax."""

import ast
import pathlib

from conftest import run_subprocess

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "python" / "jax_pyrt"
RUNTIME = ("jax_pyrt.compiler", "jax_pyrt.ops", "jax_pyrt.executable", "jax_pyrt._bridge")


def module_name(path):
    parts = ("jax_pyrt",) + path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """The jax_pyrt modules `path` imports, anywhere in it (functions included)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("jax_pyrt"))
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("jax_pyrt"):
                continue
            for alias in node.names:  # `from . import ops` imports the module jax_pyrt.ops
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    found.discard(name)
    return found


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}


def graph():
    """{module: the jax_pyrt modules it imports}. (A package's __init__ importing its own
    modules, as ops/__init__ registers the handlers, is not a circle: its modules never import
    the package itself.)"""
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_circle():
    edges = graph()
    state, path = {}, []

    def visit(node):
        state[node] = "active"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in edges:
                continue
            if state.get(nxt) == "active":
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_runtime_never_imports_jax_integration():
    edges = graph()
    for name, imported in edges.items():
        if name.startswith(RUNTIME) or name.startswith(("jax_pyrt.types", "jax_pyrt.analysis")):
            assert not any(m.startswith("jax_pyrt.jax_integration") for m in imported), name


def test_importing_the_runtime_does_not_import_jax():
    r = run_subprocess("""
        import json, sys
        import jax_pyrt._bridge, jax_pyrt.compiler, jax_pyrt.ops, jax_pyrt.executable
        print(json.dumps(sorted(m for m in sys.modules if m == "jax" or m.startswith("jax."))))
    """)
    assert r == []
