"""The type model of compiled programs: what a value is at compile time.

`to_type` maps an MLIR type to a `TensorType` (static shape, NumPy dtype, and the parameters of a
quantized element type), `TokenType`, `FutureType` or `TupleType`. At run time a tensor is a
NumPy array (a quantized tensor: its storage integers), a token None, a future or a tuple a
Python tuple.
"""

import math
import re

import ml_dtypes
import numpy as np
from jaxlib.mlir import ir

from . import dtypes
from .errors import UnsupportedError


class TensorType:
    """A ranked tensor type: static shape and NumPy dtype. For a quantized element type
    (`!quant.uniform<...>`), `dtype` is the storage dtype (a quantized tensor is its storage
    integers at run time) and `quant` holds the scales, zero points, axis and storage range
    (`Quantization`); `quant` is None otherwise. `mlir` is the type's MLIR text, for messages
    (text, not the MLIR object, which would keep its whole MLIR context alive with every kernel
    holding the type)."""

    __slots__ = ("shape", "dtype", "mlir", "quant")

    def __init__(self, shape, dtype, mlir=None, quant=None):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.mlir = mlir
        self.quant = quant

    @property
    def rank(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def with_rows(self, rows):
        """This type with `rows` along its first axis (a share of a kernel split by rows)."""
        return TensorType((rows,) + self.shape[1:], self.dtype, None, self.quant)

    def __repr__(self):
        element = self.quant if self.quant is not None else self.dtype
        return f"tensor<{'x'.join(map(str, self.shape))}{'x' if self.shape else ''}{element}>"


class TokenType:
    """`!stablehlo.token`: carries ordering only; its runtime value is None."""

    def __repr__(self):
        return "!stablehlo.token"


class FutureType:
    """`!stablehlo.future<...>` (async_start's result): at run time, the tuple of values."""

    def __repr__(self):
        return "!stablehlo.future"


class TupleType:
    def __init__(self, elements):
        self.elements = tuple(elements)

    def __repr__(self):
        return f"tuple<{', '.join(map(repr, self.elements))}>"


_TYPES = {}  # the text of an MLIR type -> our view of it (types repeat across a program)


def to_type(mlir_type):
    """Our view of an MLIR type."""
    text = str(mlir_type)
    known = _TYPES.get(text)
    if known is None:
        known = _to_type(mlir_type)
        if len(_TYPES) < 100_000:
            _TYPES[text] = known
    return known


def _to_type(mlir_type):
    if isinstance(mlir_type, ir.RankedTensorType):
        t = ir.RankedTensorType(mlir_type)
        if not t.has_static_shape:
            raise UnsupportedError(f"pyrt does not support dynamic shapes (got {mlir_type}): "
                                   f"it needs static shapes")
        name = str(t.element_type)
        shape = t.shape
        text = f"tensor<{''.join(f'{d}x' for d in shape)}{name}>"
        if name.startswith("!quant."):
            quant = quantized_type(name, shape)
            return TensorType(shape, quant.storage, text, quant)
        if name not in dtypes.DTYPE_BY_MLIR:
            raise UnsupportedError(f"pyrt does not support element type {name} ({text})")
        return TensorType(shape, dtypes.DTYPE_BY_MLIR[name], text)
    if isinstance(mlir_type, ir.TupleType):
        t = ir.TupleType(mlir_type)
        return TupleType(to_type(t.get_type(i)) for i in range(t.num_types))
    text = str(mlir_type)
    if text.endswith("token"):
        return TokenType()
    if text.startswith("!stablehlo.future"):
        return FutureType()
    raise UnsupportedError(f"pyrt does not support the type {text}")


# Quant dialect storage type name -> NumPy dtype.
_STORAGE = {
    "i2": np.dtype(ml_dtypes.int2), "u2": np.dtype(ml_dtypes.uint2),
    "i4": np.dtype(ml_dtypes.int4), "u4": np.dtype(ml_dtypes.uint4),
    "i8": np.dtype(np.int8), "u8": np.dtype(np.uint8),
    "i16": np.dtype(np.int16), "u16": np.dtype(np.uint16),
    "i32": np.dtype(np.int32), "u32": np.dtype(np.uint32),
}

_FLOAT = r"[-+]?(?:0x[0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf|nan)"
_UNIFORM = re.compile(
    r"^!quant\.uniform<(?P<storage>[iu]\d+)(?:<(?P<min>[-+]?\d+):(?P<max>[-+]?\d+)>)?"
    r":(?P<expressed>[A-Za-z0-9]+)(?::(?P<axis>\d+))?,\s*(?P<params>.*)>$", re.S)
_PARAM = re.compile(rf"^\s*(?P<scale>{_FLOAT})\s*(?::\s*(?P<zp>[-+]?\d+))?\s*$")


def _scale(token):
    if token.lstrip("+-").startswith("0x"):  # a double printed as its bit pattern
        return float(np.array(int(token, 16), np.uint64).view(np.float64))
    return float(token)


class Quantization:
    """The parameters of a uniform quantized element type.

    storage: NumPy dtype of the storage integers; storage_min/max: their allowed range;
    expressed: NumPy dtype of the real values; axis: the quantized dimension (None per-tensor);
    scales (float) / zero_points (int): tuples, one entry per-tensor or one per slice of `axis`.
    """

    __slots__ = ("text", "storage", "storage_min", "storage_max", "expressed", "axis", "scales",
                 "zero_points")

    def __init__(self, text, storage, storage_min, storage_max, expressed, axis, scales,
                 zero_points):
        self.text = text
        self.storage = storage
        self.storage_min = storage_min
        self.storage_max = storage_max
        self.expressed = expressed
        self.axis = axis
        self.scales = tuple(scales)
        self.zero_points = tuple(zero_points)

    def __repr__(self):
        return self.text

    def __eq__(self, other):
        return isinstance(other, Quantization) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def key(self):
        return (self.storage, self.storage_min, self.storage_max, self.expressed, self.axis,
                self.scales, self.zero_points)

    @property
    def compute(self):
        """Where the arithmetic happens: float64 for an f64 expressed type, else float32."""
        return np.dtype(np.float64 if self.expressed == np.float64 else np.float32)

    def broadcastable(self, values, rank, dtype):
        """`values` (scales or zero points) as an array that broadcasts against a tensor of
        `rank`: a scalar per-tensor, or laid along `axis` per-axis."""
        if self.axis is None:
            return np.asarray(values[0], dtype)
        shape = [1] * rank
        shape[self.axis] = len(values)
        return np.asarray(values, dtype).reshape(shape)


def quantized_type(text, shape):
    """Parses a quantized element type as MLIR prints it (for to_type)."""
    match = _UNIFORM.match(text.strip())
    if match is None:
        raise UnsupportedError(f"pyrt does not support the quantized element type {text} (it "
                               f"supports !quant.uniform per-tensor and per-axis types)")
    storage = _STORAGE.get(match["storage"])
    if storage is None:
        raise UnsupportedError(f"pyrt does not support the quantized storage type "
                               f"{match['storage']} ({text})")
    expressed = dtypes.DTYPE_BY_MLIR.get(match["expressed"])
    if expressed is None or not dtypes.is_float(expressed):
        raise UnsupportedError(f"pyrt does not support the quantized expressed type "
                               f"{match['expressed']} ({text})")
    lo, hi = storage_bounds(storage)
    if match["min"] is not None:
        lo, hi = int(match["min"]), int(match["max"])
    params = match["params"].strip()
    axis = None if match["axis"] is None else int(match["axis"])
    if axis is None:
        entries = [params]
    else:
        if not (params.startswith("{") and params.endswith("}")):
            raise UnsupportedError(f"pyrt could not read the quantized type {text}")
        entries = params[1:-1].split(",")
        if axis >= len(shape) or len(entries) != shape[axis]:
            raise UnsupportedError(f"pyrt: quantized type {text} does not fit shape {shape}")
    scales, zero_points = [], []
    for entry in entries:
        m = _PARAM.match(entry)
        if m is None:
            raise UnsupportedError(f"pyrt could not read the quantized type {text}")
        scales.append(_scale(m["scale"]))
        zero_points.append(int(m["zp"]) if m["zp"] is not None else 0)
    return Quantization(text, storage, lo, hi, expressed, axis, scales, zero_points)


def storage_bounds(dtype):
    info = np.iinfo(dtype) if dtype.kind in "iu" else ml_dtypes.iinfo(dtype)
    return int(info.min), int(info.max)


