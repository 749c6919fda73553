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
