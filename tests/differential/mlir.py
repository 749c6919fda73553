"""A small builder of StableHLO modules in MLIR's generic op syntax.

    f = Function([((3,), "f32"), ((3,), "f32")])
    x, y = f.args
    f.returns(f.op("stablehlo.add", [x, y], [x.type_of()]))
    text = f.module()                 # what pyrt runs
    text, plan = f.module(export=True)  # what the reference interpreter runs: complex
                                        # arguments split into parts, narrow results converted

Values carry their shape and element type; `op` returns one Value per result (or the Value itself
for single-result ops). Regions are built with `Region`, whose block arguments are Values too.
"""

from . import elements


class Value:
    __slots__ = ("name", "shape", "etype")

    def __init__(self, name, shape, etype):
        self.name, self.shape, self.etype = name, tuple(shape), etype

    @property
    def type(self):
        return elements.tensor(self.shape, self.etype)

    def like(self, shape=None, etype=None):
        """A result type (shape, element type) derived from this value's."""
        return (self.shape if shape is None else tuple(shape), etype or self.etype)

    def __repr__(self):
        return f"{self.name}: {self.type}"


class Raw:
    """A value of a type given as text (a tuple, a token, a quantized tensor...)."""
    __slots__ = ("name", "type")

    def __init__(self, name, type_):
        self.name, self.type = name, type_


def _type(t):
    if isinstance(t, str):  # a type given as text, e.g. "!stablehlo.token"
        return t
    shape, etype = t
    return elements.tensor(shape, etype)


class _Body:
    def __init__(self, counter, indent):
        self._counter = counter
        self.lines = []
        self.indent = indent
        self.ops = set()

    def _fresh(self):
        self._counter[0] += 1
        return f"%v{self._counter[0]}"

    def op(self, name, operands, results, attrs=None, regions=()):
        """Appends `name` applied to `operands` with result types `results` ((shape, etype)
        pairs); attrs: {name: MLIR attribute text}; regions: Region objects."""
        self.ops.add(name)
        for r in regions:
            self.ops |= r.ops
        base = self._fresh()
        n = len(results)
        target = "" if n == 0 else (f"{base} = " if n == 1 else f"{base}:{n} = ")
        attr_text = ""
        if attrs:
            attr_text = " {" + ", ".join(f"{k} = {v}" for k, v in attrs.items()) + "}"
        region_text = ""
        if regions:
            region_text = " (" + ", ".join(r.text(self.indent) for r in regions) + ")"
        in_types = ", ".join(o.type for o in operands)
        out_types = ", ".join(_type(t) for t in results)
        self.lines.append(
            f"{self.indent}{target}\"{name}\"({', '.join(o.name for o in operands)}){region_text}"
            f"{attr_text} : ({in_types}) -> ({out_types})")
        values = []
        for i, t in enumerate(results):
            name = base if n == 1 else f"{base}#{i}"
            values.append(Raw(name, t) if isinstance(t, str) else Value(name, *t))
        return values[0] if n == 1 else values

    def constant(self, array, etype):
        """A stablehlo.constant holding `array` (hex literal: exact for every type)."""
        from .harness import dense_literal  # noqa: avoid a cycle at import time
        return self.op("stablehlo.constant", [], [(array.shape, etype)],
                       {"value": dense_literal(array, etype)})


class Region(_Body):
    """One block with arguments: `Region(parent, [(shape, etype), ...])`, then `op(...)` and
    `returns(...)`. Values of enclosing scopes may be used inside."""

    def __init__(self, parent, arg_types, terminator="stablehlo.return"):
        super().__init__(parent._counter, parent.indent + "    ")
        self.args = []
        for t in arg_types:
            self.args.append(Value(self._fresh(), *t))
        self.terminator = terminator
        self.ops.add(terminator)
        self._returned = None

    def returns(self, *values):
        self._returned = list(values)
        return self

    def text(self, indent):
        head = ""
        if self.args:
            head = f"{indent}  ^bb0({', '.join(f'{a.name}: {a.type}' for a in self.args)}):\n"
        ret = self._returned
        body = "\n".join(self.lines)
        types = ", ".join(v.type for v in ret)
        return (f"{{\n{head}{body}{chr(10) if body else ''}{self.indent}\"{self.terminator}\""
                f"({', '.join(v.name for v in ret)}) : ({types}) -> ()\n{indent}}}")


class Function(_Body):
    """func.func @main over arguments of the given (shape, etype) types."""

    def __init__(self, arg_types, name="main", counter=None, private=False):
        super().__init__(counter or [0], "    ")
        self.name = name
        self.private = private
        self.args = [Value(f"%arg{i}", *t) for i, t in enumerate(arg_types)]
        self.results = None
        self.extra = []  # other functions of the module (Function objects)

    def returns(self, *values):
        self.results = list(values)
        return self

    def function(self, arg_types, name):
        """A private function of the same module (for func.call)."""
        f = Function(arg_types, name=name, counter=self._counter, private=True)
        self.extra.append(f)
        return f

    def _text(self, results, lines, split_complex=False):
        params = ", ".join(f"{a.name}: {a.type}" for a in self.args)
        if split_complex:
            # The interpreter's bindings cannot take complex arguments: take the parts instead.
            params, head = [], []
            for a in self.args:
                if elements.is_complex(a.etype):
                    part = elements.tensor(a.shape, elements.part_type(a.etype))
                    params += [f"{a.name}_re: {part}", f"{a.name}_im: {part}"]
                    head.append(f"    {a.name} = \"stablehlo.complex\"({a.name}_re, {a.name}_im) : "
                                f"({part}, {part}) -> ({a.type})")
                else:
                    params.append(f"{a.name}: {a.type}")
            params = ", ".join(params)
            lines = head + lines
        outs = ", ".join(v.type for v in results)
        visibility = "private " if self.private else ""
        ret = (f"    \"func.return\"({', '.join(v.name for v in results)}) : ({outs}) -> ()")
        return "\n".join([f"  func.func {visibility}@{self.name}({params}) -> ({outs}) {{"]
                         + ["  " + line for line in lines] + ["  " + ret, "  }"])

    def all_ops(self):
        ops = set(self.ops) | {"func.return"}
        for f in self.extra:
            ops |= f.all_ops()
        return ops

    def module(self, export=False):
        """The module text; with export=True also the plan to decode the exported results: one
        entry per result, "plain", ("convert" | "bits", etype) or "complex" (two values)."""
        lines = list(self.lines)
        results = list(self.results)
        plan = []
        if export:
            exported = []
            for v in results:
                if v.etype in elements.EXPORT_AS:
                    how, *steps = elements.EXPORT_AS[v.etype]
                    current = v
                    for i, to in enumerate(steps):
                        op_name = "bitcast_convert" if how == "bits" and i == 0 else "convert"
                        name = self._fresh()
                        lines.append(f"    {name} = \"stablehlo.{op_name}\"({current.name}) : "
                                     f"({current.type}) -> ({elements.tensor(v.shape, to)})")
                        current = Value(name, v.shape, to)
                    exported.append(current)
                    plan.append((how, v.etype))
                elif elements.is_complex(v.etype):
                    part = elements.part_type(v.etype)
                    for op_name in ("stablehlo.real", "stablehlo.imag"):
                        name = self._fresh()
                        lines.append(f"    {name} = \"{op_name}\"({v.name}) : ({v.type}) -> "
                                     f"({elements.tensor(v.shape, part)})")
                        exported.append(Value(name, v.shape, part))
                    plan.append("complex")
                else:
                    exported.append(v)
                    plan.append("plain")
            results = exported
        funcs = ([self._text(results, lines, split_complex=export)]
                 + [f._text(f.results, f.lines) for f in self.extra])
        text = "module {\n" + "\n".join(funcs) + "\n}\n"
        return (text, plan) if export else text


# --------------------------------------------------------------------------------------------
# Attribute text

def i64_array(values):
    return f"array<i64{': ' if values else ''}{', '.join(str(int(v)) for v in values)}>"


def bool_array(values):
    return f"array<i1{': ' if values else ''}{', '.join('true' if v else 'false' for v in values)}>"


def dense_i64(values, shape=None):
    import numpy as np
    a = np.asarray(values, np.int64)
    shape = a.shape if shape is None else shape
    body = str(a.tolist()).replace(" ", "")
    return f"dense<{body}> : {elements.tensor(shape, 'i64')}"


def i64(v):
    return f"{int(v)} : i64"


def i32(v):
    return f"{int(v)} : i32"


def enum(kind, value):
    return f"#stablehlo<{kind} {value}>"
