// Layouts: pyrt keeps every array dense and row-major on its device; hosts may hand in or ask for
// other strides. The helpers that convert between the two, and the layout object of the Layouts
// extension (its entry points are in layout.cc too).
#ifndef PYRT_PJRT_PLUGIN_LAYOUT_H_
#define PYRT_PJRT_PLUGIN_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/status.h"

// A layout handed out by the Layouts extension.
struct PJRT_Layouts_MemoryLayout {
  std::string text;  // XLA's text form, e.g. "{1,0}"
};

namespace pyrt {

// Row-major byte strides of `dims`.
std::vector<int64_t> DenseStrides(const std::vector<int64_t>& dims, size_t elem);

// Copies an array of `dims` with element size `elem` between two strided layouts.
void StridedCopy(const char* src, const int64_t* src_strides, char* dst, const int64_t* dst_strides,
                 const std::vector<int64_t>& dims, size_t elem);

// XLA's text form of the row-major layout of a rank-`rank` array ("{2,1,0}"), the only layout
// pyrt's arrays have.
std::string RowMajorLayout(size_t rank);

// OK if `layout` is NULL or dense row-major for rank `rank`: the only device layout pyrt accepts.
Status CheckDeviceLayout(const PJRT_Buffer_MemoryLayout* layout, size_t rank);

// The byte strides a host `layout` gives an array of `dims` with element size `elem`; NULL means
// dense row-major.
Status HostStrides(const PJRT_Buffer_MemoryLayout* layout, const std::vector<int64_t>& dims,
                   size_t elem, std::vector<int64_t>* strides);

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_LAYOUT_H_
