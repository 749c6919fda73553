"""The README demo: devices are listed and a jitted function runs on pyrt's runtime."""

import jax
import jax.numpy as jnp
import numpy as np

from jax_pyrt import _bridge


def test_pyrt_devices_are_listed_beside_cpu():
    devices = jax.devices("pyrt")
    assert devices and all(d.platform == "pyrt" for d in devices)
    assert repr(devices[0]) == "PyrtDevice(id=0)"
    assert jax.devices("cpu")  # the CPU backend keeps working


def test_demo_matches_cpu(check):
    x = np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3)
    compiled_before = _bridge.compile_count
    check(lambda x: jnp.sin(x) @ x.T + 1, x, rtol=1e-5)
    assert _bridge.compile_count > compiled_before  # pyrt's compiler ran, not XLA's
