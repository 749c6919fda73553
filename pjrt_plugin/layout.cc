#include "pjrt_plugin/layout.h"

#include <cstring>
#include <string>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/element_type.h"
#include "pjrt_plugin/runtime.h"

namespace pyrt {

// ---------------------------------------------------------------- strides and copies

std::vector<int64_t> DenseStrides(const std::vector<int64_t>& dims, size_t elem) {
  std::vector<int64_t> strides(dims.size());
  int64_t stride = static_cast<int64_t>(elem);
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return strides;
}

namespace {
void CopyDim(const char* src, const int64_t* ss, char* dst, const int64_t* ds, const int64_t* dims,
             size_t rank, size_t elem) {
  if (rank == 1) {
    if (ss[0] == static_cast<int64_t>(elem) && ds[0] == static_cast<int64_t>(elem)) {
      std::memcpy(dst, src, dims[0] * elem);
      return;
    }
    for (int64_t i = 0; i < dims[0]; ++i) std::memcpy(dst + i * ds[0], src + i * ss[0], elem);
    return;
  }
  for (int64_t i = 0; i < dims[0]; ++i) {
    CopyDim(src + i * ss[0], ss + 1, dst + i * ds[0], ds + 1, dims + 1, rank - 1, elem);
  }
}
}  // namespace

void StridedCopy(const char* src, const int64_t* src_strides, char* dst, const int64_t* dst_strides,
                 const std::vector<int64_t>& dims, size_t elem) {
  size_t count = 0;
  if (!ElementCount(dims, &count) || count == 0) return;
  if (dims.empty()) {
    std::memcpy(dst, src, elem);
    return;
  }
  std::vector<int64_t> dense = DenseStrides(dims, elem);
  bool src_dense = true, dst_dense = true;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;  // the stride of a size-1 dimension never matters
    src_dense &= src_strides[i] == dense[i];
    dst_dense &= dst_strides[i] == dense[i];
  }
  if (src_dense && dst_dense) {
    std::memcpy(dst, src, count * elem);
    return;
  }
  CopyDim(src, src_strides, dst, dst_strides, dims.data(), dims.size(), elem);
}

// ---------------------------------------------------------------- device and host layouts

std::string RowMajorLayout(size_t rank) {
  std::string text = "{";
  for (size_t i = rank; i-- > 0;) text += std::to_string(i) + (i ? "," : "");
  return text + "}";
}

Status CheckDeviceLayout(const PJRT_Buffer_MemoryLayout* layout, size_t rank) {
  if (layout == nullptr) return Status::Ok();
  if (layout->type == PJRT_Buffer_MemoryLayout_Type_Tiled && layout->tiled.num_tiles == 0 &&
      layout->tiled.minor_to_major_size == rank) {
    bool descending = true;
    for (size_t i = 0; i < rank; ++i) {
      descending &= layout->tiled.minor_to_major[i] == static_cast<int64_t>(rank - 1 - i);
    }
    if (descending) return Status::Ok();
  }
  return Unimplemented("pyrt stores arrays dense and row-major; other device layouts are not supported");
}

Status HostStrides(const PJRT_Buffer_MemoryLayout* layout, const std::vector<int64_t>& dims,
                   size_t elem, std::vector<int64_t>* strides) {
  size_t rank = dims.size();
  *strides = DenseStrides(dims, elem);
  if (layout == nullptr) return Status::Ok();
  if (layout->type == PJRT_Buffer_MemoryLayout_Type_Strides) {
    if (layout->strides.num_byte_strides != rank || (rank && layout->strides.byte_strides == nullptr)) {
      return InvalidArgument("pyrt: host layout strides must have one entry per dimension");
    }
    strides->assign(layout->strides.byte_strides, layout->strides.byte_strides + rank);
    return Status::Ok();
  }
  const PJRT_Buffer_MemoryLayout_Tiled& tiled = layout->tiled;
  if (tiled.num_tiles != 0) return Unimplemented("pyrt: tiled host layouts are not supported");
  if (tiled.minor_to_major_size != rank || (rank && tiled.minor_to_major == nullptr)) {
    return InvalidArgument("pyrt: host layout minor_to_major must name every dimension");
  }
  int64_t stride = static_cast<int64_t>(elem);
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < rank; ++i) {
    int64_t dim = tiled.minor_to_major[i];
    if (dim < 0 || static_cast<size_t>(dim) >= rank || seen[dim]) {
      return InvalidArgument("pyrt: host layout minor_to_major is not a permutation");
    }
    seen[dim] = true;
    (*strides)[dim] = stride;
    stride *= dims[dim];
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- the Layouts extension

PJRT_Error* Layouts_MemoryLayout_Destroy(PJRT_Layouts_MemoryLayout_Destroy_Args* args) {
  if (args != nullptr) delete args->layout;
  return nullptr;
}

PJRT_Error* Layouts_MemoryLayout_Serialize(PJRT_Layouts_MemoryLayout_Serialize_Args* args) {
  PYRT_ARGS(args, serialized_layout_deleter);
  PYRT_NOT_NULL(args->layout);
  return ReturnBytes(args->layout->text, &args->serialized_bytes, &args->serialized_bytes_size,
                     &args->serialized_layout, &args->serialized_layout_deleter);
}

PJRT_Error* Layouts_Client_GetDefaultLayout(PJRT_Layouts_Client_GetDefaultLayout_Args* args) {
  PYRT_ARGS(args, layout);
  PYRT_NOT_NULL(args->client);
  args->layout = new PJRT_Layouts_MemoryLayout{RowMajorLayout(args->num_dims)};
  return nullptr;
}

PJRT_Error* Layouts_Buffer_MemoryLayout(PJRT_Layouts_Buffer_MemoryLayout_Args* args) {
  PYRT_ARGS(args, layout);
  PYRT_NOT_NULL(args->buffer);
  args->layout = new PJRT_Layouts_MemoryLayout{RowMajorLayout(args->buffer->dims.size())};
  return nullptr;
}

PJRT_Error* Layouts_Topology_GetDefaultLayout(void*) {
  return ToPjrtError(Unimplemented(
      "PJRT_Layouts_PJRT_Topology_GetDefaultLayout: pyrt has no topology descriptions"));
}

namespace {
// The layouts of an executable's outputs or parameters, owned by the executable.
PJRT_Error* ReturnLayouts(PJRT_Layouts_Executable_Layouts_Args* args,
                          const std::vector<PJRT_Layouts_MemoryLayout*>& layouts) {
  args->num_layouts = layouts.size();
  args->layouts = const_cast<PJRT_Layouts_MemoryLayout**>(layouts.data());
  return nullptr;
}
}  // namespace

PJRT_Error* Layouts_Executable_OutputLayouts(PJRT_Layouts_Executable_Layouts_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, layouts);
  return ReturnLayouts(args, info.output_layout_ptrs);
}

PJRT_Error* Layouts_Executable_ParameterLayouts(PJRT_Layouts_Executable_Layouts_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, layouts);
  return ReturnLayouts(args, info.input_layout_ptrs);
}

}  // namespace pyrt
