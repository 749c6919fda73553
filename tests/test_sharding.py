"""Sharding annotations in single-device programs: the `sdy` ops JAX emits run as identities."""

import jax
import numpy as np
from jax.sharding import SingleDeviceSharding


def test_with_sharding_constraint(pyrt_device):
    def f(x):
        return jax.lax.with_sharding_constraint(x * 2, SingleDeviceSharding(pyrt_device)) + 1

    x = np.arange(6.0, dtype=np.float32)
    assert "sdy.sharding_constraint" in jax.jit(f).lower(jax.device_put(x, pyrt_device)).as_text()
    actual = jax.jit(f)(jax.device_put(x, pyrt_device))
    np.testing.assert_array_equal(np.asarray(actual), x * 2 + 1)
