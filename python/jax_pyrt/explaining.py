"""jax_pyrt.explain: the Python program pyrt runs for a jitted function, each line of it marked
with the StableHLO op it runs and the user's line that op comes from."""

from .executable import loaded


def explain(fn, *args, **kwargs):
    """The generated program of `fn` (a jax.jit-ed function) compiled for `args` on pyrt, as
    text: every line that runs an op ends with `# <op> (<user's file:line>)`. Put the
    arguments on a pyrt device first (or run with JAX_PLATFORMS=pyrt)."""
    compiled = fn.lower(*args, **kwargs).compile()
    fingerprint = compiled.runtime_executable().fingerprint
    if isinstance(fingerprint, bytes):
        fingerprint = fingerprint.decode()
    executable = loaded.get(fingerprint)
    if executable is None:
        raise ValueError("jax_pyrt.explain: this function was not compiled by pyrt here; put "
                         "its arguments on a pyrt device (jax.device_put(x, "
                         "jax.devices('pyrt')[0])) or set JAX_PLATFORMS=pyrt")
    return annotated(executable.prepared)


def annotated(prepared):
    """`prepared`'s source with its ops and user lines as end-of-line comments."""
    lines = prepared.source.splitlines()
    width = max((len(line) for line in lines), default=0) + 2
    out = []
    for number, line in enumerate(lines, 1):
        origin = prepared.origin(number)
        if origin is None:
            out.append(line)
        else:
            op, where = origin
            out.append(f"{line:{width}s}# {op}" + (f" ({where})" if where else ""))
    return "\n".join(out) + "\n"
