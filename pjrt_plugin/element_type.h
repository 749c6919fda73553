// Bytes per element of each PJRT element type as pyrt stores it: sub-byte types (s1/s2/s4,
// u1/u2/u4, f4e2m1fn) take one byte per element, as NumPy's ml_dtypes arrays do.
#ifndef PYRT_PJRT_PLUGIN_ELEMENT_TYPE_H_
#define PYRT_PJRT_PLUGIN_ELEMENT_TYPE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pjrt_plugin/pjrt_abi.h"

namespace pyrt {

// 0 for types that have no array storage (INVALID, TOKEN) or that we do not know.
inline size_t ElementSize(int type) {
  switch (type) {
    case PJRT_Buffer_Type_PRED:
    case PJRT_Buffer_Type_S8:
    case PJRT_Buffer_Type_U8:
    case PJRT_Buffer_Type_S4:
    case PJRT_Buffer_Type_U4:
    case PJRT_Buffer_Type_S2:
    case PJRT_Buffer_Type_U2:
    case PJRT_Buffer_Type_S1:
    case PJRT_Buffer_Type_U1:
    case PJRT_Buffer_Type_F8E5M2:
    case PJRT_Buffer_Type_F8E4M3FN:
    case PJRT_Buffer_Type_F8E4M3B11FNUZ:
    case PJRT_Buffer_Type_F8E5M2FNUZ:
    case PJRT_Buffer_Type_F8E4M3FNUZ:
    case PJRT_Buffer_Type_F8E4M3:
    case PJRT_Buffer_Type_F8E3M4:
    case PJRT_Buffer_Type_F8E8M0FNU:
    case PJRT_Buffer_Type_F4E2M1FN:
      return 1;
    case PJRT_Buffer_Type_S16:
    case PJRT_Buffer_Type_U16:
    case PJRT_Buffer_Type_F16:
    case PJRT_Buffer_Type_BF16:
      return 2;
    case PJRT_Buffer_Type_S32:
    case PJRT_Buffer_Type_U32:
    case PJRT_Buffer_Type_F32:
      return 4;
    case PJRT_Buffer_Type_S64:
    case PJRT_Buffer_Type_U64:
    case PJRT_Buffer_Type_F64:
    case PJRT_Buffer_Type_C64:
      return 8;
    case PJRT_Buffer_Type_C128:
      return 16;
    default:
      return 0;
  }
}

// XLA's short name of an element type ("f32", "s4", ...), for error messages.
inline const char* ElementTypeName(int type) {
  static const char* const kNames[] = {
      "invalid", "pred",   "s8",         "s16",           "s32",        "s64",
      "u8",      "u16",    "u32",        "u64",           "f16",        "f32",
      "f64",     "bf16",   "c64",        "c128",          "f8e5m2",     "f8e4m3fn",
      "f8e4m3b11fnuz",     "f8e5m2fnuz", "f8e4m3fnuz",    "s4",         "u4",
      "token",   "s2",     "u2",         "f8e4m3",        "f8e3m4",     "f8e8m0fnu",
      "f4e2m1fn",          "s1",         "u1"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == PJRT_Buffer_Type_U1 + 1, "one name per type");
  if (type < 0 || type > PJRT_Buffer_Type_U1) return "unknown";
  return kNames[type];
}

// Element count of a shape; false on overflow or a negative dimension.
inline bool ElementCount(const std::vector<int64_t>& dims, size_t* count) {
  size_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return false;
    if (d != 0 && n > SIZE_MAX / static_cast<size_t>(d)) return false;
    n *= static_cast<size_t>(d);
  }
  *count = n;
  return true;
}

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_ELEMENT_TYPE_H_
