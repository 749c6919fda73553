// PJRT entry points of buffers (see api_common.h for their shape).
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/element_type.h"
#include "pjrt_plugin/layout.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"

namespace pyrt {

// ---------------------------------------------------------------- buffers

PJRT_Error* Buffer_Destroy(PJRT_Buffer_Destroy_Args* args) {
  if (args != nullptr) delete args->buffer;
  return nullptr;
}

PJRT_Error* Buffer_ElementType(PJRT_Buffer_ElementType_Args* args) {
  PYRT_BUFFER_ARGS(args, type);
  args->type = buffer->type;
  return nullptr;
}

PJRT_Error* Buffer_Dimensions(PJRT_Buffer_Dimensions_Args* args) {
  PYRT_BUFFER_ARGS(args, num_dims);
  return ReturnList(&args->dims, &args->num_dims, buffer->dims);
}

PJRT_Error* Buffer_UnpaddedDimensions(PJRT_Buffer_UnpaddedDimensions_Args* args) {
  PYRT_BUFFER_ARGS(args, num_dims);
  return ReturnList(&args->dims, &args->num_dims, buffer->dims);  // pyrt never pads
}

PJRT_Error* Buffer_DynamicDimensionIndices(PJRT_Buffer_DynamicDimensionIndices_Args* args) {
  PYRT_ARGS(args, num_dynamic_dims);
  PYRT_NOT_NULL(args->buffer);
  args->dynamic_dim_indices = nullptr;  // all dimensions are static
  args->num_dynamic_dims = 0;
  return nullptr;
}

PJRT_Error* Buffer_OnDeviceSizeInBytes(PJRT_Buffer_OnDeviceSizeInBytes_Args* args) {
  PYRT_BUFFER_ARGS(args, on_device_size_in_bytes);
  args->on_device_size_in_bytes = buffer->nbytes;
  return nullptr;
}

PJRT_Error* Buffer_Device(PJRT_Buffer_Device_Args* args) {
  PYRT_BUFFER_ARGS(args, device);
  args->device = buffer->device;
  return nullptr;
}

PJRT_Error* Buffer_Memory(PJRT_Buffer_Memory_Args* args) {
  PYRT_BUFFER_ARGS(args, memory);
  args->memory = buffer->memory;
  return nullptr;
}

PJRT_Error* Buffer_Delete(PJRT_Buffer_Delete_Args* args) {
  PYRT_BUFFER_ARGS(args, buffer);
  buffer->set_array(nullptr);  // runs in flight keep their own reference
  return nullptr;
}

PJRT_Error* Buffer_IsDeleted(PJRT_Buffer_IsDeleted_Args* args) {
  PYRT_BUFFER_ARGS(args, is_deleted);
  args->is_deleted = buffer->array() == nullptr;
  return nullptr;
}

namespace {
Status DeletedBuffer(const char* fn) {
  return InvalidArgument(std::string("PJRT_") + fn + ": the buffer has been deleted or donated");
}
}  // namespace

PJRT_Error* Buffer_CopyToDevice(PJRT_Buffer_CopyToDevice_Args* args) {
  PYRT_BUFFER_ARGS(args, dst_buffer);
  PYRT_NOT_NULL(args->dst_device);
  PYRT_RETURN_IF_ERROR(args->dst_device->CheckAddressable());
  if (buffer->array() == nullptr) return ToPjrtError(DeletedBuffer(__func__));
  PYRT_RETURN_IF_ERROR(CopyToMemory(buffer, args->dst_device->default_memory, &args->dst_buffer));
  return nullptr;
}

PJRT_Error* Buffer_CopyToMemory(PJRT_Buffer_CopyToMemory_Args* args) {
  PYRT_BUFFER_ARGS(args, dst_buffer);
  PYRT_NOT_NULL(args->dst_memory);
  if (buffer->array() == nullptr) return ToPjrtError(DeletedBuffer(__func__));
  PYRT_RETURN_IF_ERROR(CopyToMemory(buffer, args->dst_memory, &args->dst_buffer));
  return nullptr;
}

PJRT_Error* Buffer_ToHostBuffer(PJRT_Buffer_ToHostBuffer_Args* args) {
  PYRT_ARGS(args, event);
  PYRT_NOT_NULL(args->src);
  PJRT_Buffer* buffer = args->src;
  std::shared_ptr<DeviceArray> array = buffer->array();
  if (array == nullptr) return ToPjrtError(DeletedBuffer(__func__));
  std::vector<int64_t> strides;
  PYRT_RETURN_IF_ERROR(
      HostStrides(args->host_layout, buffer->dims, ElementSize(buffer->type), &strides));
  if (args->dst == nullptr) {
    args->dst_size = buffer->nbytes;
    args->event = NewEvent(Completion::Ready());
    return nullptr;
  }
  if (args->dst_size < buffer->nbytes) {
    return ToPjrtError(InvalidArgument("PJRT_Buffer_ToHostBuffer: dst_size " +
                                       std::to_string(args->dst_size) + " is smaller than the " +
                                       std::to_string(buffer->nbytes) + " bytes of the buffer"));
  }
  auto done = std::make_shared<Completion>();
  char* dst = static_cast<char*>(args->dst);
  std::vector<int64_t> dims = buffer->dims;
  size_t elem = ElementSize(buffer->type);
  CopyWhenReady(std::move(array), done, [dst, strides, dims, elem](const Storage& from) {
    std::vector<int64_t> dense = DenseStrides(dims, elem);
    StridedCopy(static_cast<const char*>(from.data()), dense.data(), dst, strides.data(), dims, elem);
  });
  args->event = NewEvent(done);
  return nullptr;
}

PJRT_Error* Buffer_CopyRawToHost(PJRT_Buffer_CopyRawToHost_Args* args) {
  PYRT_BUFFER_ARGS(args, event);
  std::shared_ptr<DeviceArray> array = buffer->array();
  if (array == nullptr) return ToPjrtError(DeletedBuffer(__func__));
  if (args->offset < 0 || args->transfer_size < 0 ||
      static_cast<size_t>(args->offset + args->transfer_size) > buffer->nbytes) {
    return ToPjrtError(InvalidArgument("PJRT_Buffer_CopyRawToHost: range is outside the buffer"));
  }
  if (args->transfer_size > 0) PYRT_NOT_NULL(args->dst);
  auto done = std::make_shared<Completion>();
  char* dst = static_cast<char*>(args->dst);
  int64_t offset = args->offset, size = args->transfer_size;
  CopyWhenReady(std::move(array), done, [dst, offset, size](const Storage& from) {
    if (size > 0) std::memcpy(dst, static_cast<const char*>(from.data()) + offset, size);
  });
  args->event = NewEvent(done);
  return nullptr;
}

PJRT_Error* Buffer_IsOnCpu(PJRT_Buffer_IsOnCpu_Args* args) {
  PYRT_ARGS(args, is_on_cpu);
  PYRT_NOT_NULL(args->buffer);
  // pyrt's device memory is host memory: jaxlib may then read it in place (np.asarray without a
  // copy), holding an external reference (see Buffer_IncreaseExternalReferenceCount).
  args->is_on_cpu = true;
  return nullptr;
}

PJRT_Error* Buffer_ReadyEvent(PJRT_Buffer_ReadyEvent_Args* args) {
  PYRT_BUFFER_ARGS(args, event);
  std::shared_ptr<DeviceArray> array = buffer->array();
  args->event = NewEvent(array ? array->ready : Completion::Ready(DeletedBuffer(__func__)));
  return nullptr;
}

namespace {
// The storage address once the data is ready; waits (without the GIL) if it is not.
Status ReadyData(PJRT_Buffer* buffer, const char* fn, void** data) {
  std::shared_ptr<DeviceArray> array = buffer->array();
  if (array == nullptr) return DeletedBuffer(fn);
  Status s;
  {
    bridge::ScopedGilRelease no_gil;
    s = array->ready->Await();
  }
  if (!s.ok()) return s;
  *data = array->storage->data();
  return Status::Ok();
}
}  // namespace

PJRT_Error* Buffer_UnsafePointer(PJRT_Buffer_UnsafePointer_Args* args) {
  PYRT_BUFFER_ARGS(args, buffer_pointer);
  void* data = nullptr;
  PYRT_RETURN_IF_ERROR(ReadyData(buffer, __func__, &data));
  args->buffer_pointer = reinterpret_cast<uintptr_t>(data);
  return nullptr;
}

PJRT_Error* Buffer_OpaqueDeviceMemoryDataPointer(PJRT_Buffer_OpaqueDeviceMemoryDataPointer_Args* args) {
  PYRT_BUFFER_ARGS(args, device_memory_ptr);
  PYRT_RETURN_IF_ERROR(ReadyData(buffer, __func__, &args->device_memory_ptr));
  return nullptr;
}

PJRT_Error* Buffer_IncreaseExternalReferenceCount(
    PJRT_Buffer_IncreaseExternalReferenceCount_Args* args) {
  PYRT_BUFFER_ARGS(args, buffer);
  std::lock_guard<std::mutex> lock(buffer->mu);
  if (buffer->array_ == nullptr) return ToPjrtError(DeletedBuffer(__func__));
  if (buffer->external_references++ == 0) buffer->pinned = buffer->array_;
  return nullptr;
}

PJRT_Error* Buffer_DecreaseExternalReferenceCount(
    PJRT_Buffer_DecreaseExternalReferenceCount_Args* args) {
  PYRT_BUFFER_ARGS(args, buffer);
  std::shared_ptr<DeviceArray> unpinned;  // released after the lock: freeing may take the GIL
  std::lock_guard<std::mutex> lock(buffer->mu);
  if (buffer->external_references == 0) {
    return ToPjrtError(FailedPrecondition(
        "PJRT_Buffer_DecreaseExternalReferenceCount: the count is already zero"));
  }
  if (--buffer->external_references == 0) unpinned.swap(buffer->pinned);
  return nullptr;
}

}  // namespace pyrt
