"""Reading MLIR attributes into Python and NumPy values, at compile time only."""

import re

import numpy as np
from jaxlib.mlir import ir

from . import dtypes
from .errors import UnsupportedError

_NUMPY_NATIVE = {np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                       np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                       np.float64)}
_TOKEN = re.compile(r"\(|\)|true|false|[-+]?0x[0-9A-Fa-f]+|[-+]?(?:inf|nan)|"
                    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def dense_elements(attr, dtype, shape):
    """The value of a DenseElementsAttr as a NumPy array of `dtype` and `shape`."""
    shape = tuple(shape)
    if 0 in shape:
        return np.empty(shape, dtype)  # e.g. a splat constant of a zero-size tensor
    if dtype in _NUMPY_NATIVE:
        try:
            dense = ir.DenseElementsAttr(attr)
            if dense.is_splat:
                return np.full(shape, np.asarray(dense).reshape(-1)[0], dtype)
            return np.asarray(dense).astype(dtype, copy=False).reshape(shape)
        except (TypeError, ValueError):
            pass  # fall back to the printed form
    return dense_from_text(str(attr), dtype, shape)


def dense_from_text(text, dtype, shape):
    """Parses `dense<...> : tensor<...>` as MLIR prints it (decimal, hex bit patterns, complex
    pairs, or one hex blob of raw little-endian bytes)."""
    body = text[text.index("<") + 1: text.rindex(">", 0, text.rindex(":"))]
    count = int(np.prod(shape, dtype=np.int64))
    if body.startswith('"0x'):
        raw = bytes.fromhex(body[3:-1])
        flat = np.frombuffer(raw, dtype=dtype)
        return (np.full(shape, flat[0], dtype) if flat.size == 1 and count != 1
                else flat.reshape(shape).copy())
    tokens = [t for t in _TOKEN.findall(body) if t not in "()"]
    if dtypes.is_complex(dtype):
        part = np.dtype(np.float64) if dtype == np.complex128 else np.dtype(np.float32)
        parts = np.array([_scalar(t, part) for t in tokens], part)
        # The parts are assigned, not combined arithmetically: re + 1j * im would turn an
        # infinite imaginary part into NaN + inf j, a NaN one into NaN + NaN j and lose -0.0.
        values = np.empty(len(parts) // 2, dtype)
        values.real, values.imag = parts[0::2], parts[1::2]
    else:
        values = np.array([_scalar(t, dtype) for t in tokens], dtype=object)
        values = _to_dtype(values, dtype)
    if values.size == 1 and count != 1:
        return np.full(shape, values.reshape(-1)[0], dtype)
    if values.size != count:
        raise UnsupportedError(f"pyrt could not read a constant of {count} elements: {text[:200]}")
    return values.reshape(shape)


def _scalar(token, dtype):
    if token == "true":
        return True
    if token == "false":
        return False
    if token.lstrip("+-").startswith("0x") and dtypes.is_float(dtype):
        # A float printed as its bit pattern (NaN payloads, infinities, ...).
        bits = int(token, 16)
        return np.array(bits, dtype=f"u{dtype.itemsize}").view(dtype)[()]
    if dtypes.is_float(dtype):
        return float(token)
    return int(token, 0)


def _to_dtype(values, dtype):
    if dtypes.is_float(dtype):
        return np.array([float(v) for v in values], np.float64).astype(dtype)
    if dtype == np.bool_:
        return np.array([bool(v) for v in values], np.bool_)
    return np.array([int(v) for v in values], np.int64).astype(dtype)


def i64_array(attr):
    """DenseI64ArrayAttr / DenseIntElementsAttr / ArrayAttr of ints -> tuple of int."""
    for cls in (ir.DenseI64ArrayAttr, ir.DenseBoolArrayAttr):
        if isinstance(attr, cls):
            return tuple(cls(attr))
    if isinstance(attr, ir.DenseIntElementsAttr):
        return tuple(int(v) for v in np.asarray(ir.DenseIntElementsAttr(attr)).reshape(-1))
    if isinstance(attr, ir.ArrayAttr):
        return tuple(ir.IntegerAttr(a).value for a in ir.ArrayAttr(attr))
    raise UnsupportedError(f"pyrt expected an integer array attribute, got {attr}")


def enum_name(attr):
    """The keyword of a dialect enum attribute, e.g. `#stablehlo<comparison_direction LT>` -> LT."""
    text = str(attr)
    return text[text.rindex(" ") + 1: text.rindex(">")] if " " in text else text


def python_value(attr):
    """Best-effort plain Python value of a simple attribute."""
    if isinstance(attr, ir.BoolAttr):
        return ir.BoolAttr(attr).value
    if isinstance(attr, ir.IntegerAttr):
        return ir.IntegerAttr(attr).value
    if isinstance(attr, ir.FloatAttr):
        return ir.FloatAttr(attr).value
    if isinstance(attr, ir.StringAttr):
        return ir.StringAttr(attr).value
    if isinstance(attr, ir.FlatSymbolRefAttr):
        return ir.FlatSymbolRefAttr(attr).value
    if isinstance(attr, ir.ArrayAttr):
        return [python_value(a) for a in ir.ArrayAttr(attr)]
    return attr
