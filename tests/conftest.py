"""Shared test helpers: run the same jitted program on pyrt and on JAX's CPU backend (the
oracle) and compare."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jax_pyrt import dtypes

jax.config.update("jax_enable_x64", True)  # test every dtype, not just the 32-bit ones


@pytest.fixture(scope="session")
def pyrt_device():
    return jax.devices("pyrt")[0]


@pytest.fixture(scope="session")
def cpu_device():
    return jax.devices("cpu")[0]


def run_on(device, fn, *args, **jit_kwargs):
    """jax.jit(fn) run on `device` with `args` placed there; returns NumPy results."""
    placed = [jax.device_put(a, device) for a in args]
    out = jax.jit(fn, **jit_kwargs)(*placed)
    for leaf in jax.tree_util.tree_leaves(out):
        assert leaf.devices() == {device}, f"result computed on {leaf.devices()}, not {device}"
    return jax.tree_util.tree_map(np.asarray, out)


def assert_same(actual, expected, rtol=None, atol=None, exact=None):
    """Compare result trees: bit-exact for integers and bools, NaN-aware tolerance for floats."""
    actual_leaves = jax.tree_util.tree_leaves(actual)
    expected_leaves = jax.tree_util.tree_leaves(expected)
    assert len(actual_leaves) == len(expected_leaves)
    for a, e in zip(actual_leaves, expected_leaves):
        a, e = np.asarray(a), np.asarray(e)
        assert a.dtype == e.dtype, f"dtype {a.dtype} != {e.dtype}"
        assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
        inexact = dtypes.is_float(e.dtype) or dtypes.is_complex(e.dtype)
        if exact or (exact is None and not inexact):
            np.testing.assert_array_equal(a, e)
        else:
            wide = np.complex128 if dtypes.is_complex(e.dtype) else np.float64
            np.testing.assert_allclose(a.astype(wide), e.astype(wide),
                                       rtol=1e-6 if rtol is None else rtol,
                                       atol=1e-6 if atol is None else atol, equal_nan=True)


@pytest.fixture
def check(pyrt_device, cpu_device):
    """check(fn, *args, rtol=, atol=, exact=): fn on pyrt equals fn on CPU."""

    def run(fn, *args, rtol=None, atol=None, exact=None, **jit_kwargs):
        expected = run_on(cpu_device, fn, *args, **jit_kwargs)
        actual = run_on(pyrt_device, fn, *args, **jit_kwargs)
        assert_same(actual, expected, rtol=rtol, atol=atol, exact=exact)
        return actual

    return run


def run_mlir(device, text, *args):
    """Compiles hand-written StableHLO text with `device`'s client and runs it on `args`."""
    from jax._src.lib import xla_client
    exe = device.client.compile_and_load(text, xla_client.DeviceList((device,)),
                                         xla_client.CompileOptions())
    placed = [jax.device_put(a, device) for a in args]
    outs = exe.execute_sharded(placed).disassemble_into_single_device_arrays()
    return [np.asarray(o[0]) for o in outs]


@pytest.fixture
def check_mlir(pyrt_device, cpu_device):
    """check_mlir(text, *args, rtol=, atol=, exact=): a StableHLO module on pyrt equals CPU."""

    def run(text, *args, **tolerances):
        expected = run_mlir(cpu_device, text, *args)
        actual = run_mlir(pyrt_device, text, *args)
        assert_same(actual, expected, **tolerances)
        return actual

    return run


def run_subprocess(code, timeout=120, **env):
    """Runs `code` in a fresh Python with extra environment (JAX_PLATFORMS only if given);
    returns its last stdout line as JSON."""
    environment = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    environment.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=environment)
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def tensor_type(shape, dtype):
    """The MLIR tensor type of `shape` and `dtype`, e.g. tensor<2x3xf32>."""
    return f"tensor<{''.join(f'{d}x' for d in shape)}{dtypes.MLIR_BY_DTYPE[np.dtype(dtype)]}>"


def random_values(shape, dtype, seed=0, *, int_bound=None, scale=1, true_fraction=0.5):
    """Random values of `dtype`: booleans true with probability `true_fraction`; integers uniform
    over the type's range, or over [-int_bound, int_bound] clipped to it; floats standard normal
    times `scale` (complex: plus an unscaled standard-normal imaginary part)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtypes.is_bool(dtype):
        return rng.random(shape) < true_fraction
    if dtypes.is_integer(dtype):
        info = np.iinfo(dtype)
        lo, hi = ((info.min, info.max) if int_bound is None
                  else (max(info.min, -int_bound), int_bound))
        return rng.integers(lo, hi, shape, dtype=dtype, endpoint=True)
    x = rng.standard_normal(shape) * scale
    if dtypes.is_complex(dtype):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def random_array(shape, dtype, seed=0):
    """random_values (floats times 10) with edge values first: INT_MIN, INT_MAX, 0 for integers;
    NaN, +-inf, -0.0 for floats."""
    dtype = np.dtype(dtype)
    flat = random_values(int(np.prod(shape, dtype=np.int64)), dtype, seed, scale=10)
    n = flat.size
    if dtypes.is_integer(dtype):
        info = np.iinfo(dtype)
        flat[:min(3, n)] = [info.min, info.max, 0][:min(3, n)]
    elif not dtypes.is_bool(dtype):
        flat[:min(4, n)] = np.array([np.nan, np.inf, -np.inf, -0.0]).astype(dtype)[:min(4, n)]
    return flat.reshape(shape)
