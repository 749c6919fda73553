"""The jax_plugins entry point and what JAX sees of a compiled executable."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_pyrt import plugin


@pytest.mark.parametrize("broken", ["jaxlib", "library"])
def test_initialize_refuses_to_register_when_pyrt_cannot_run(monkeypatch, broken):
    """A pyrt that cannot start must never break jax.devices() for CPU users: it warns and
    registers nothing."""
    from jax._src import xla_bridge

    registered = []
    monkeypatch.setattr(xla_bridge, "register_plugin", lambda *a, **k: registered.append(a))
    if broken == "jaxlib":
        import jaxlib
        monkeypatch.setattr(jaxlib, "__version__", "0.0.1")
    else:
        monkeypatch.setattr(plugin, "library_path", lambda: None)
    with pytest.warns(UserWarning, match="not registered"):
        plugin.initialize()
    assert registered == []


def test_initialize_registers_pyrt(monkeypatch):
    from jax._src import xla_bridge

    calls = []
    monkeypatch.setattr(xla_bridge, "register_plugin", lambda *a, **k: calls.append((a, k)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin.initialize()
    (args, kwargs), = calls
    assert args == ("pyrt",) and kwargs["priority"] < 0  # never the default by itself
    assert kwargs["options"]["device_count"] >= 1


def test_compiled_executable_introspection(pyrt_device):
    x = jax.device_put(np.ones((3, 3), np.float32), pyrt_device)
    compiled = jax.jit(lambda x: jnp.sin(x) @ x.T + 1).lower(x).compile()
    text = compiled.as_text()  # from PJRT_Executable_OptimizedProgram (our StableHLO text)
    assert "sine" in text and "dot" in text
    np.testing.assert_allclose(np.asarray(compiled(x)), np.sin(np.ones((3, 3))) @ np.ones((3, 3)) + 1,
                               rtol=1e-6)
    assert compiled.cost_analysis() is not None
