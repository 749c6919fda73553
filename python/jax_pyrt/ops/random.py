"""Random numbers (spec: rng, rng_bit_generator).

rng_bit_generator is bit-exact with XLA: it follows XLA's RngBitGeneratorExpander and the
bit generators of xla/hlo/builder/lib/prng.cc, vectorised over the whole output in NumPy
uint32/uint64 arithmetic (wrapping, as the algorithms need):

* The state is a ui64 vector. Its first element is the key; THREE_FRY's counter is the second
  element (a 64-bit counter); PHILOX's counter is a 128-bit number, (low, high) = state[1:3] for
  a 3-element state and (state[1], state[0]) for a 2-element one. The new state is the key
  followed by the advanced counter (only its low word for a 2-element PHILOX state).
* DEFAULT is PHILOX, as on XLA:CPU.
* 32-bit outputs: Threefry-2x32 (20 rounds) makes two words per counter; XLA splits the output
  shape in halves along its first even dimension (else its largest) and interleaves the two
  words along it. Philox-4x32-10 makes four words per counter, interleaved in order.
* 64-bit outputs join two 32-bit words (first word low). Narrower outputs are 32-bit outputs
  truncated to their low bits. Signed and floating-point outputs are the same bits.
"""

import itertools
import sys

import numpy as np

from .. import dtypes
from .base import op

_U32 = np.dtype(np.uint32)
_U64 = np.dtype(np.uint64)
_MASK32 = 0xFFFFFFFF
_MASK64 = 2**64 - 1


# -- Threefry-2x32, 20 rounds -------------------------------------------------------------------

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))

# Both generators run over slices of this many counters at a time, so that the dozens of
# passes each round makes stay in cache (2-3x faster than whole-array passes for large outputs).
_CHUNK = 1 << 15
_PHILOX_CHUNK = 1 << 14


def threefry2x32(key0, key1, x0, x1):
    """Threefry-2x32 (20 rounds) of the counter words x0, x1 (uint32 arrays, overwritten with
    the result) under the key (key0, key1) (Python ints)."""
    ks = (key0, key1, 0x1BD11BDA ^ key0 ^ key1)
    tmp = np.empty(min(x0.shape[0], _CHUNK), _U32)
    for start in range(0, x0.shape[0], _CHUNK):
        a, b = x0[start:start + _CHUNK], x1[start:start + _CHUNK]
        t = tmp[:a.shape[0]]
        a += np.uint32(ks[0])
        b += np.uint32(ks[1])
        for block in range(5):
            for r in _ROTATIONS[block % 2]:
                a += b
                np.left_shift(b, np.uint32(r), out=t)
                b >>= np.uint32(32 - r)
                b |= t
                b ^= a
            a += np.uint32(ks[(block + 1) % 3])
            b += np.uint32((ks[(block + 2) % 3] + block + 1) & _MASK32)
    return x0, x1


def threefry2x32_call(key0, key1, x0, x1):
    """A kernel for JAX's private `@threefry2x32` function (scalar ui32 keys, two ui32 count
    arrays of one shape), which computes exactly `threefry2x32`: running it as one vectorised
    kernel instead of its ~100 elementwise ops is several times faster."""
    shape = np.shape(x0)
    a = np.array(x0, _U32).reshape(-1)
    b = np.array(x1, _U32).reshape(-1)
    threefry2x32(int(key0), int(key1), a, b)
    return a.reshape(shape), b.reshape(shape)


def _counters(counter, n):
    """(low, high) uint32 words of counter + [0, n) (64-bit, wrapping)."""
    words = np.arange(n, dtype=_U64)
    words += np.uint64(counter)
    return words.astype(_U32), (words >> np.uint64(32)).astype(_U32)


def _join_u64(low, high):
    out = high.astype(_U64)
    out <<= np.uint64(32)
    out |= low
    return out


def _halves(shape):
    """XLA's SplitShapeIntoHalves: (split dimension, half length) of a non-scalar shape."""
    split = next((i for i, d in enumerate(shape) if d % 2 == 0), None)
    if split is None:
        split = max(range(len(shape)), key=lambda i: (shape[i], -i))
    return split, -(-shape[split] // 2)


def _threefry_bits(key, counter, shape, bits):
    """(uint32 or uint64 bits of `shape`, new counter) from Threefry (XLA's layout)."""
    k0, k1 = key & _MASK32, key >> 32
    size = int(np.prod(shape, dtype=np.int64))
    if bits == 64:
        y0, y1 = threefry2x32(k0, k1, *_counters(counter, size))
        return _join_u64(y0, y1).reshape(shape), counter + size
    if not shape:  # a scalar: one counter, the first word
        return threefry2x32(k0, k1, *_counters(counter, 1))[0].reshape(()), counter + 1
    # 32 bits: one counter per pair of outputs along the split dimension.
    split, half = _halves(shape)
    pre = int(np.prod(shape[:split], dtype=np.int64))
    post = int(np.prod(shape[split + 1:], dtype=np.int64))
    n = pre * half * post
    y0, y1 = threefry2x32(k0, k1, *_counters(counter, n))
    out = np.empty((pre, half, 2, post), _U32)
    out[:, :, 0, :] = y0.reshape(pre, half, post)
    out[:, :, 1, :] = y1.reshape(pre, half, post)
    out = out.reshape(pre, 2 * half, post)
    if 2 * half != shape[split]:
        out = np.ascontiguousarray(out[:, :shape[split]])
    return out.reshape(shape), counter + n


# -- Philox-4x32, 10 rounds ---------------------------------------------------------------------

_PHILOX_M = np.array([[0xD2511F53], [0xCD9E8D57]], _U64)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
# The 32-bit halves of a uint64 in memory: (low, high).
_LO, _HI = (0, 1) if sys.byteorder == "little" else (1, 0)


def philox4x32(key0, key1, even, odd):
    """Philox-4x32-10 (10 rounds). The four counter words are held as uint32 arrays of shape
    (2, n): even = (c0, c2), odd = (c1, c3), so one multiply covers both products of a round;
    the 64-bit products' halves are read in place as uint32 views. Returns (even, odd) of the
    output words in the same form."""
    n = even.shape[1]
    products = (np.empty((2, n), _U64), np.empty((2, n), _U64))
    keys = np.array([[key0], [key1]], _U32)
    for r in range(10):
        p = products[r % 2]  # the previous round's low halves stay alive in the other one
        np.multiply(even, _PHILOX_M, out=p)  # (c0 * A, c2 * B), exact in 64 bits
        halves = p.view(_U32).reshape(2, n, 2)
        new_even = np.bitwise_xor(odd, halves[::-1, :, _HI])  # c1 ^ hi(c2 * B), c3 ^ hi(c0 * A)
        new_even ^= keys
        even, odd = new_even, halves[::-1, :, _LO]  # new (c1, c3) = (lo(c2 * B), lo(c0 * A))
        keys[0, 0] = (int(keys[0, 0]) + _PHILOX_W[0]) & _MASK32
        keys[1, 0] = (int(keys[1, 0]) + _PHILOX_W[1]) & _MASK32
    return even, odd


def _philox_bits(key, low, high, shape, bits):
    """(uint32 or uint64 bits of `shape`, new 128-bit counter (low, high)) from Philox: block i
    (counter + i, 128-bit) gives four 32-bit words, in order; 64-bit outputs join two words
    (first word low)."""
    size = int(np.prod(shape, dtype=np.int64))
    blocks = -(-size * (bits // 32) // 4)
    words = np.empty((blocks, 4), _U32)
    k0, k1 = key & _MASK32, key >> 32
    for start in range(0, blocks, _PHILOX_CHUNK):
        n = min(_PHILOX_CHUNK, blocks - start)
        lows = np.arange(start, start + n, dtype=_U64)
        lows += np.uint64(low)
        highs = np.where(lows < np.uint64(low), np.uint64((high + 1) & _MASK64), np.uint64(high))
        even = np.empty((2, n), _U32)
        odd = np.empty((2, n), _U32)
        even[0], even[1] = lows, highs  # low words (the casts truncate)
        odd[0], odd[1] = lows >> np.uint64(32), highs >> np.uint64(32)
        even, odd = philox4x32(k0, k1, even, odd)
        chunk = words[start:start + n]
        chunk[:, 0::2] = even.T
        chunk[:, 1::2] = odd.T
    if bits == 64:
        out = (words.view(_U64) if sys.byteorder == "little"
               else _join_u64(words[:, 0::2], words[:, 1::2]))
    else:
        out = words
    out = out.reshape(-1)[:size].reshape(shape)
    new_low = (low + blocks) & _MASK64
    return out, (new_low, (high + (new_low < low)) & _MASK64)


# -- the op -------------------------------------------------------------------------------------

def _finish(words, dtype):
    """The generator's words as the requested element type (XLA truncates to narrow types)."""
    if dtype in _SUB_BYTE:  # stored one per byte by ml_dtypes: keep the low bits only
        width = _SUB_BYTE[dtype]
        low = (words & np.uint32((1 << width) - 1)).astype(np.uint8)
        if dtypes.is_float(dtype):
            return low.view(dtype)
        low = low.astype(np.int16)
        if not dtypes.is_unsigned(dtype):
            low = (low ^ (1 << (width - 1))) - (1 << (width - 1))
        return low.astype(dtype)
    if dtype.itemsize < 4:
        return words.astype(np.dtype(f"u{dtype.itemsize}")).view(dtype)
    return words.view(dtype)


def _sub_byte_types():
    import ml_dtypes
    return {np.dtype(ml_dtypes.int4): 4, np.dtype(ml_dtypes.uint4): 4,
            np.dtype(ml_dtypes.int2): 2, np.dtype(ml_dtypes.uint2): 2,
            np.dtype(ml_dtypes.float4_e2m1fn): 4}


_SUB_BYTE = _sub_byte_types()
_ALGORITHMS = ("DEFAULT", "THREE_FRY", "PHILOX")


@op("stablehlo.rng_bit_generator", cost="data")
def rng_bit_generator(op_):
    """Spec: rng_bit_generator. Bit-exact with XLA:CPU for THREE_FRY (Threefry-2x32, 2-element
    state) and PHILOX (Philox-4x32-10, 2- or 3-element state); DEFAULT is PHILOX as on XLA:CPU.
    Outputs are the generator's bits; narrow types take the low bits of 32-bit words, as XLA
    does.

    dtypes: state ui64; output every 2/4/8/16/32/64-bit integer and float type."""
    algorithm = op_.enum("rng_algorithm", "DEFAULT")
    if algorithm not in _ALGORITHMS:
        raise op_.unsupported(f"algorithm {algorithm}")
    if algorithm == "DEFAULT":
        algorithm = "PHILOX"
    state_type = op_.operand_types[0]
    out_type = op_.result_types[1]
    dtype, shape = out_type.dtype, out_type.shape
    if state_type.rank != 1 or state_type.dtype != _U64:
        raise op_.unsupported(f"state {state_type} (must be a vector of ui64)")
    n_state = state_type.shape[0]
    if algorithm == "THREE_FRY" and n_state != 2:
        raise op_.unsupported(f"a THREE_FRY state of {n_state} elements (must be 2)")
    if algorithm == "PHILOX" and n_state not in (2, 3):
        raise op_.unsupported(f"a PHILOX state of {n_state} elements (must be 2 or 3)")
    if dtypes.is_bool(dtype) or dtypes.is_complex(dtype):
        raise op_.unsupported(f"output element type {dtype}")
    bits = 64 if dtype.itemsize == 8 else 32

    if algorithm == "THREE_FRY":
        def kernel(state):
            key, counter = (int(v) for v in state)
            out, counter = _threefry_bits(key, counter, shape, bits)
            new = np.array([key, counter & _MASK64], _U64)
            return new, _finish(out, dtype)
    else:
        def kernel(state):
            values = [int(v) for v in state]
            key = values[0]
            low, high = (values[1], values[2]) if n_state == 3 else (values[1], values[0])
            out, (low, high) = _philox_bits(key, low, high, shape, bits)
            new = np.array([key, low, high] if n_state == 3 else [key, low], _U64)
            return new, _finish(out, dtype)

    return kernel


# -- rng ----------------------------------------------------------------------------------------

_SEEDS = itertools.count(0x5EED)


@op("stablehlo.rng")
def rng(op_):
    """Spec: rng. Implementation-defined numbers from NumPy's PCG64: UNIFORM over [a, b)
    (narrow floats drawn in float32, rounded, kept below b), NORMAL with mean a and standard
    deviation b. Each rng op has its own generator, seeded deterministically at compile time,
    so successive runs of a program give fresh numbers (as on XLA:CPU) and a process reproduces
    its sequence.

    dtypes: UNIFORM: bool, integers, floats; NORMAL: floats."""
    distribution = op_.enum("rng_distribution")
    out = op_.result
    dtype, shape = out.dtype, out.shape
    generator = np.random.default_rng(next(_SEEDS))
    if distribution == "NORMAL":
        if not dtypes.is_float(dtype):
            raise op_.unsupported(f"a NORMAL distribution of {dtype}")
        draw = np.float64 if dtype == np.float64 else np.float32

        def kernel(a, b, _shape):
            x = generator.standard_normal(shape, dtype=draw)
            x *= draw(b)
            x += draw(a)
            return x.astype(dtype, copy=False)
        return kernel
    if distribution != "UNIFORM":
        raise op_.unsupported(f"distribution {distribution}")

    if dtypes.is_float(dtype):
        draw = np.float64 if dtype == np.float64 else np.float32

        def kernel(a, b, _shape):
            lo, hi = draw(a), draw(b)
            x = generator.random(shape, dtype=draw)
            x *= hi - lo
            x += lo
            x = x.astype(dtype, copy=False)
            # Rounding may reach b: take the largest value below it instead.
            top = np.nextafter(np.asarray(b, dtype), np.asarray(a, dtype))
            return np.minimum(x, top) if a < b else x
        return kernel
    if dtypes.is_integer(dtype) or dtypes.is_bool(dtype):
        wide = np.dtype(np.uint64) if dtypes.is_unsigned(dtype) else np.dtype(np.int64)

        def kernel(a, b, _shape):
            lo, hi = int(a), int(b)
            if hi <= lo:  # an empty range (undefined behaviour): give a
                return np.full(shape, a, dtype)
            x = generator.integers(lo, hi, shape, dtype=wide)
            return x.astype(dtype)
        return kernel
    raise op_.unsupported(f"element type {dtype}")
