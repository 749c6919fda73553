"""rng_bit_generator (bit-exact with XLA:CPU for every algorithm, state size and output type),
JAX's random numbers (rbg, unsafe_rbg and the default threefry) against the CPU backend, and
the statistics of stablehlo.rng (whose numbers are implementation-defined)."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from jax import lax

from conftest import assert_same, run_mlir, run_on
from jax_pyrt import dtypes

ALGORITHMS = {"DEFAULT": lax.RandomAlgorithm.RNG_DEFAULT,
              "THREE_FRY": lax.RandomAlgorithm.RNG_THREE_FRY,
              "PHILOX": lax.RandomAlgorithm.RNG_PHILOX}
# Shapes that exercise XLA's layouts: scalars, odd and even split dimensions, several Philox
# blocks, size-1 dimensions, zero-size outputs and more counters than one chunk of work.
SHAPES = [(), (3,), (4,), (3, 5), (5, 1, 3), (2, 3, 4), (0, 4), (70001,)]
STATES = [[0, 0], [1, 2], [2**64 - 1, 2**64 - 3], [0x0123456789ABCDEF, 2**63 + 5]]


def _tensor(shape, element):
    return f"tensor<{''.join(f'{d}x' for d in shape)}{element}>"


def rbg_module(algorithm, state_size, outputs):
    """A module applying rng_bit_generator once per (shape, element type) in `outputs`, each
    call taking the state the previous one returned; it returns the last state and every
    output."""
    state = _tensor((state_size,), "ui64")
    lines, results, types = [], [], []
    current = "%s"
    for i, (shape, element) in enumerate(outputs):
        out = _tensor(shape, element)
        lines.append(f"  %s{i}, %o{i} = stablehlo.rng_bit_generator {current}, algorithm = "
                     f"{algorithm} : ({state}) -> ({state}, {out})")
        current = f"%s{i}"
        results.append(f"%o{i}")
        types.append(out)
    body = "\n".join(lines)
    return f"""
func.func @main(%s: {state}) -> ({state}, {', '.join(types)}) {{
{body}
  return {current}, {', '.join(results)} : {state}, {', '.join(types)}
}}"""


def compile_on(device, text):
    from jax._src.lib import xla_client
    exe = device.client.compile_and_load(text, xla_client.DeviceList((device,)),
                                         xla_client.CompileOptions())

    def run(*args):
        placed = [jax.device_put(a, device) for a in args]
        outs = exe.execute_sharded(placed).disassemble_into_single_device_arrays()
        return [np.asarray(o[0]) for o in outs]
    return run


def assert_same_bits(actual, expected, declared):
    """The new states and the output bits must be identical. (XLA:CPU hands signed and float
    outputs back with the unsigned type of the same width, so the comparison is of bits; pyrt
    returns the declared type.)"""
    np.testing.assert_array_equal(actual[0], expected[0])
    for out, ref, dtype in zip(actual[1:], expected[1:], declared):
        assert out.dtype == dtype and out.shape == ref.shape
        if dtype in SUB_BYTE:  # one element per byte; compare the low bits
            mask = (1 << SUB_BYTE[dtype]) - 1
            bits = out.view(np.uint8) if dtypes.is_float(dtype) else out.astype(np.int64)
            np.testing.assert_array_equal(bits & mask, ref.astype(np.int64) & mask)
        else:
            unsigned = np.dtype(f"u{dtype.itemsize}")
            np.testing.assert_array_equal(out.view(unsigned), ref.view(unsigned))


def check_rbg(pyrt_device, cpu_device, algorithm, state_size, outputs, states):
    text = rbg_module(algorithm, state_size, outputs)
    on_pyrt, on_cpu = compile_on(pyrt_device, text), compile_on(cpu_device, text)
    declared = [dtypes.DTYPE_BY_MLIR[element] for _, element in outputs]
    for state in states:
        state = np.array(state, np.uint64)
        assert_same_bits(on_pyrt(state), on_cpu(state), declared)


SUB_BYTE = {np.dtype(ml_dtypes.int4): 4, np.dtype(ml_dtypes.uint4): 4,
            np.dtype(ml_dtypes.int2): 2, np.dtype(ml_dtypes.uint2): 2,
            np.dtype(ml_dtypes.float4_e2m1fn): 4}


@pytest.mark.parametrize("algorithm, state_size",
                         [("THREE_FRY", 2), ("PHILOX", 2), ("PHILOX", 3), ("DEFAULT", 2),
                          ("DEFAULT", 3)])
def test_rng_bit_generator_shapes(pyrt_device, cpu_device, algorithm, state_size):
    states = [s + [s[0] ^ 7] * (state_size - 2) for s in STATES]
    states.append([5, 2**64 - 2, 2**64 - 1][:state_size])  # a 128-bit carry mid-output
    if algorithm == "DEFAULT":  # PHILOX on XLA:CPU
        outputs = [((3, 5), "ui32"), ((7,), "ui64")]
    else:
        outputs = [(shape, "ui32") for shape in SHAPES]
        outputs += [(shape, "ui64") for shape in [(), (3,), (3, 5), (70001,)]]
    check_rbg(pyrt_device, cpu_device, algorithm, state_size, outputs, states)


ELEMENTS = ["ui8", "i8", "ui16", "i16", "i32", "i64", "f16", "bf16", "f32", "f64", "f8E4M3FN",
            "f8E5M2", "f8E8M0FNU", "f4E2M1FN", "i4", "ui4", "i2"]


@pytest.mark.parametrize("algorithm, state_size", [("THREE_FRY", 2), ("PHILOX", 2), ("PHILOX", 3)])
def test_rng_bit_generator_element_types(pyrt_device, cpu_device, algorithm, state_size):
    outputs = [((3, 5), element) for element in ELEMENTS] + [((), "i16"), ((), "f64")]
    states = [s + [2**64 - 1] * (state_size - 2) for s in STATES]
    check_rbg(pyrt_device, cpu_device, algorithm, state_size, outputs, states)


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_lax_rng_bit_generator(check, algorithm, dtype):
    key = np.array([1, 2, 0xFFFFFFFF, 0xFFFFFFFE], np.uint32)

    def chain(k):
        outs = []
        for shape in [(4, 9), (5,), (2, 3), ()]:
            k, bits = lax.rng_bit_generator(k, shape, dtype, algorithm=ALGORITHMS[algorithm])
            outs.append(bits)
        return k, outs
    check(chain, key)


def test_rng_bit_generator_unsupported_state(pyrt_device):
    with pytest.raises(Exception, match="THREE_FRY state of 3"):
        run_mlir(pyrt_device, rbg_module("THREE_FRY", 3, [((2,), "ui32")]),
                 np.zeros(3, np.uint64))


# -- jax.random -----------------------------------------------------------------------------

def _samplers():
    return {
        "uniform_f32": lambda k: jax.random.uniform(k, (7, 5), jnp.float32),
        "uniform_f64": lambda k: jax.random.uniform(k, (3, 4), jnp.float64, -2.0, 3.0),
        "uniform_f16": lambda k: jax.random.uniform(k, (6,), jnp.float16),
        "uniform_bf16": lambda k: jax.random.uniform(k, (6,), jnp.bfloat16),
        "normal_f32": lambda k: jax.random.normal(k, (5, 3), jnp.float32),
        "normal_f64": lambda k: jax.random.normal(k, (9,), jnp.float64),
        "randint_i32": lambda k: jax.random.randint(k, (4, 3), -5, 100),
        "randint_i64": lambda k: jax.random.randint(k, (11,), -2**40, 2**40, jnp.int64),
        "bits_u8": lambda k: jax.random.bits(k, (9,), jnp.uint8),
        "bits_u16": lambda k: jax.random.bits(k, (2, 5), jnp.uint16),
        "bits_u32": lambda k: jax.random.bits(k, (3, 3), jnp.uint32),
        "bits_u64": lambda k: jax.random.bits(k, (7,), jnp.uint64),
        "split": lambda k: jax.random.key_data(jax.random.split(k, 3)),
        "fold_in": lambda k: jax.random.bits(jax.random.fold_in(k, 17), (4,)),
        "bernoulli": lambda k: jax.random.bernoulli(k, 0.3, (10,)),
        "permutation": lambda k: jax.random.permutation(k, 12),
        "scalar": lambda k: jax.random.uniform(k, ()),
    }


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg", "threefry2x32"])
def test_jax_random(pyrt_device, cpu_device, impl):
    samplers = _samplers()
    with jax.default_device(cpu_device):
        data = np.asarray(jax.random.key_data(jax.random.key(1234, impl=impl)))

    def sample_all(d):  # every sampler in one program, each from its own key
        keys = jax.random.wrap_key_data(d, impl=impl)
        return {name: f(jax.random.fold_in(keys, i)) if name != "split" else f(keys)
                for i, (name, f) in enumerate(samplers.items())}

    text = jax.jit(sample_all).lower(data).as_text()
    assert ("rng_bit_generator" in text) == (impl != "threefry2x32")
    expected = run_on(cpu_device, sample_all, data)
    actual = run_on(pyrt_device, sample_all, data)
    for name in samplers:
        # Integers are compared bit for bit; floats go through the same float ops, but XLA may
        # fuse a + x * (b - a) into one FMA and its erf_inv differs in the last place.
        rtol = {"f16": 1e-3, "bf16": 1e-2, "f32": 1e-6}.get(name.rsplit("_", 1)[-1], 1e-12)
        assert_same(actual[name], expected[name], rtol=rtol, atol=0)


def test_threefry2x32_kernel_matches_jax(cpu_device):
    # random.threefry2x32_call computes JAX's @threefry2x32 function (for a compiler fast path).
    from jax._src.random import threefry2x32 as jax_threefry
    from jax_pyrt.ops import random as pyrt_random
    key = np.array([0x12345678, 0x9ABCDEF0], np.uint32)
    x = np.random.default_rng(0).integers(0, 2**32, (2, 70001), dtype=np.uint32)
    with jax.default_device(cpu_device):
        expected = np.asarray(jax.jit(jax_threefry.threefry_2x32)(key, x.reshape(-1)))
    a, b = pyrt_random.threefry2x32_call(key[0], key[1], x[0], x[1])
    np.testing.assert_array_equal(np.concatenate([a, b]), expected)


# -- stablehlo.rng --------------------------------------------------------------------------

def rng_module(distribution, shape, element):
    out = _tensor(shape, element)
    scalar = _tensor((), element)
    dims = ", ".join(map(str, shape))
    return f"""
func.func @main(%a: {scalar}, %b: {scalar}) -> {out} {{
  %s = stablehlo.constant dense<[{dims}]> : tensor<{len(shape)}xi64>
  %0 = stablehlo.rng %a, %b, %s, distribution = {distribution} : ({scalar}, {scalar}, tensor<{len(shape)}xi64>) -> {out}
  return %0 : {out}
}}"""


@pytest.mark.parametrize("element, a, b", [
    ("f32", 2.0, 5.0), ("f64", -1.0, 1.0), ("f16", 0.0, 1.0), ("bf16", 0.0, 1.0),
    ("f8E4M3FN", 0.0, 1.0), ("i32", -3, 7), ("ui8", 250, 256 - 1), ("i64", -2**40, 2**40),
    ("ui64", 0, 2**64 - 1), ("i8", -128, 127),
])
def test_rng_uniform(pyrt_device, element, a, b):
    dtype = dtypes.DTYPE_BY_MLIR[element]
    text = rng_module("UNIFORM", (200, 100), element)
    args = (np.array(a, dtype), np.array(b, dtype))
    x, = run_mlir(pyrt_device, text, *args)
    assert x.dtype == dtype and x.shape == (200, 100)
    wide = x.astype(np.float64) if dtypes.is_float(dtype) else x.astype(object)
    assert wide.min() >= a and wide.max() < b
    lo, hi = float(a), float(b)
    values = x.astype(np.float64)
    if hi - lo > 1e3 or dtypes.is_integer(dtype):
        # Integers: uniform over {a, ..., b - 1}.
        mean = (lo + hi - 1) / 2
        spread = (hi - lo) / np.sqrt(12)
    else:
        mean, spread = (lo + hi) / 2, (hi - lo) / np.sqrt(12)
    assert abs(values.mean() - mean) < 0.02 * (hi - lo) + 0.01
    assert abs(values.std() - spread) < 0.05 * spread + 0.01
    y, = run_mlir(pyrt_device, text, *args)
    assert not np.array_equal(x, y), "each run should draw fresh numbers"


def test_rng_uniform_bool_and_degenerate(pyrt_device):
    x, = run_mlir(pyrt_device, rng_module("UNIFORM", (50,), "i1"),
                  np.array(False), np.array(True))
    assert x.dtype == np.bool_ and not x.any()  # [false, true) holds only false
    x, = run_mlir(pyrt_device, rng_module("UNIFORM", (3, 0), "f32"),
                  np.float32(0), np.float32(1))
    assert x.shape == (3, 0)


@pytest.mark.parametrize("element", ["f32", "f64", "f16", "bf16"])
def test_rng_normal(pyrt_device, element):
    dtype = dtypes.DTYPE_BY_MLIR[element]
    x, = run_mlir(pyrt_device, rng_module("NORMAL", (400, 100), element),
                  np.array(3.0, dtype), np.array(2.0, dtype))
    assert x.dtype == dtype
    values = x.astype(np.float64)
    assert abs(values.mean() - 3.0) < 0.05
    assert abs(values.std() - 2.0) < 0.05
    # Roughly Gaussian tails: about 4.6% beyond two standard deviations.
    assert 0.035 < np.mean(np.abs(values - 3.0) > 4.0) < 0.06
