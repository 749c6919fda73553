"""Element types: StableHLO type names, NumPy dtypes (ml_dtypes for the narrow floats and ints)
and PJRT_Buffer_Type codes, in one table."""

import ml_dtypes
import numpy as np

# (MLIR element type, NumPy dtype, PJRT_Buffer_Type code)
_TABLE = [
    ("i1", np.dtype(np.bool_), 1),
    ("i8", np.dtype(np.int8), 2),
    ("i16", np.dtype(np.int16), 3),
    ("i32", np.dtype(np.int32), 4),
    ("i64", np.dtype(np.int64), 5),
    ("ui8", np.dtype(np.uint8), 6),
    ("ui16", np.dtype(np.uint16), 7),
    ("ui32", np.dtype(np.uint32), 8),
    ("ui64", np.dtype(np.uint64), 9),
    ("f16", np.dtype(np.float16), 10),
    ("f32", np.dtype(np.float32), 11),
    ("f64", np.dtype(np.float64), 12),
    ("bf16", np.dtype(ml_dtypes.bfloat16), 13),
    ("complex<f32>", np.dtype(np.complex64), 14),
    ("complex<f64>", np.dtype(np.complex128), 15),
    ("f8E5M2", np.dtype(ml_dtypes.float8_e5m2), 16),
    ("f8E4M3FN", np.dtype(ml_dtypes.float8_e4m3fn), 17),
    ("f8E4M3B11FNUZ", np.dtype(ml_dtypes.float8_e4m3b11fnuz), 18),
    ("f8E5M2FNUZ", np.dtype(ml_dtypes.float8_e5m2fnuz), 19),
    ("f8E4M3FNUZ", np.dtype(ml_dtypes.float8_e4m3fnuz), 20),
    ("i4", np.dtype(ml_dtypes.int4), 21),
    ("ui4", np.dtype(ml_dtypes.uint4), 22),
    ("i2", np.dtype(ml_dtypes.int2), 24),
    ("ui2", np.dtype(ml_dtypes.uint2), 25),
    ("f8E4M3", np.dtype(ml_dtypes.float8_e4m3), 26),
    ("f8E3M4", np.dtype(ml_dtypes.float8_e3m4), 27),
    ("f8E8M0FNU", np.dtype(ml_dtypes.float8_e8m0fnu), 28),
    ("f4E2M1FN", np.dtype(ml_dtypes.float4_e2m1fn), 29),
    # PJRT C API 0.112 has no buffer type for these, and jaxlib no NumPy dtype: they live only
    # inside programs (an entry parameter or result of these types is a compile-time error).
    ("f6E2M3FN", np.dtype(ml_dtypes.float6_e2m3fn), None),
    ("f6E3M2FN", np.dtype(ml_dtypes.float6_e3m2fn), None),
]

# PJRT_Buffer_Type_TOKEN: the buffers of !stablehlo.token entry parameters and results (no bytes).
PJRT_TOKEN = 23

DTYPE_BY_MLIR = {name: dtype for name, dtype, _ in _TABLE}
PJRT_TYPE_BY_DTYPE = {dtype: code for _, dtype, code in _TABLE if code is not None}
DTYPE_BY_PJRT_TYPE = {code: dtype for _, dtype, code in _TABLE if code is not None}
MLIR_BY_DTYPE = {dtype: name for name, dtype, _ in _TABLE}


def is_float(dtype):
    return dtype.kind == "f" or dtype in _ML_FLOATS


def is_complex(dtype):
    return dtype.kind == "c"


def is_integer(dtype):
    return dtype.kind in "iu" or dtype in _ML_INTS


def is_unsigned(dtype):
    return dtype.kind == "u" or dtype in (_UINT4, _UINT2)


def is_bool(dtype):
    return dtype == np.bool_


_UINT4 = np.dtype(ml_dtypes.uint4)
_UINT2 = np.dtype(ml_dtypes.uint2)
_ML_INTS = {np.dtype(ml_dtypes.int4), np.dtype(ml_dtypes.int2), _UINT4, _UINT2}
_ML_FLOATS = {d for n, d, _ in _TABLE if d.kind == "V" and d not in _ML_INTS}
