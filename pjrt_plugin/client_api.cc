// PJRT entry points of the client, including the ones that create buffers (see api_common.h for
// their shape).
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/element_type.h"
#include "pjrt_plugin/layout.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"

namespace pyrt {

// ---------------------------------------------------------------- client

PJRT_Error* Client_Create(PJRT_Client_Create_Args* args) {
  PYRT_ARGS(args, client);
  if (args->num_options > 0) PYRT_NOT_NULL(args->create_options);
  bridge::KeyValueStore kv;
  if (args->struct_size >= PYRT_SIZE_THROUGH(PJRT_Client_Create_Args, kv_put_user_arg)) {
    kv = {args->kv_get_callback, args->kv_get_user_arg, args->kv_put_callback,
          args->kv_put_user_arg};
  }
  PYRT_RETURN_IF_ERROR(CreateClient(args->create_options, args->num_options, kv, &args->client));
  return nullptr;
}

PJRT_Error* Client_Destroy(PJRT_Client_Destroy_Args* args) {
  if (args != nullptr) delete args->client;
  return nullptr;
}

PJRT_Error* Client_PlatformName(PJRT_Client_PlatformName_Args* args) {
  PYRT_ARGS(args, platform_name_size);
  PYRT_NOT_NULL(args->client);
  return ReturnList(&args->platform_name, &args->platform_name_size, args->client->platform_name);
}

PJRT_Error* Client_ProcessIndex(PJRT_Client_ProcessIndex_Args* args) {
  PYRT_ARGS(args, process_index);
  PYRT_NOT_NULL(args->client);
  args->process_index = args->client->options.node_id;
  return nullptr;
}

PJRT_Error* Client_UpdateGlobalProcessInfo(PJRT_Client_UpdateGlobalProcessInfo_Args* args) {
  PYRT_ARGS(args, num_process_infos);
  PYRT_NOT_NULL(args->client);
  if (args->num_process_infos > 0) PYRT_NOT_NULL(args->process_infos);
  // jaxlib aborts the process if this fails, so problems are only reported, never returned.
  for (size_t i = 0; i < args->num_process_infos; ++i) {
    const PJRT_ProcessInfo& info = args->process_infos[i];
    if (info.struct_size < PYRT_SIZE_THROUGH(PJRT_ProcessInfo, error_message_size)) continue;
    if (info.state != PJRT_ProcessState_kDisconnected && info.state != PJRT_ProcessState_kError) {
      continue;
    }
    std::string why = info.state == PJRT_ProcessState_kError ? "failed" : "disconnected";
    if (info.error_message != nullptr && info.error_message_size > 0) {
      why += ": " + std::string(info.error_message, info.error_message_size);
    }
    bridge::ProcessFailed(info.task_id, why);  // best effort
  }
  return nullptr;
}

PJRT_Error* Client_PlatformVersion(PJRT_Client_PlatformVersion_Args* args) {
  PYRT_ARGS(args, platform_version_size);
  PYRT_NOT_NULL(args->client);
  return ReturnList(&args->platform_version, &args->platform_version_size,
                    args->client->options.platform_version);
}

PJRT_Error* Client_Devices(PJRT_Client_Devices_Args* args) {
  PYRT_ARGS(args, num_devices);
  PYRT_NOT_NULL(args->client);
  return ReturnList(&args->devices, &args->num_devices, args->client->devices);
}

PJRT_Error* Client_AddressableDevices(PJRT_Client_AddressableDevices_Args* args) {
  PYRT_ARGS(args, num_addressable_devices);
  PYRT_NOT_NULL(args->client);
  return ReturnList(&args->addressable_devices, &args->num_addressable_devices,
                    args->client->addressable_devices);
}

PJRT_Error* Client_LookupDevice(PJRT_Client_LookupDevice_Args* args) {
  PYRT_ARGS(args, device);
  PYRT_NOT_NULL(args->client);
  args->device = args->client->LookupDevice(args->id);
  if (args->device == nullptr) {
    return ToPjrtError(NotFound("pyrt has no device with id " + std::to_string(args->id) + " (it has " +
                                std::to_string(args->client->devices.size()) + ")"));
  }
  return nullptr;
}

PJRT_Error* Client_LookupAddressableDevice(PJRT_Client_LookupAddressableDevice_Args* args) {
  PYRT_ARGS(args, addressable_device);
  PYRT_NOT_NULL(args->client);
  for (PJRT_Device* d : args->client->addressable_devices) {
    if (d->local_hardware_id == args->local_hardware_id) {
      args->addressable_device = d;
      return nullptr;
    }
  }
  return ToPjrtError(NotFound("pyrt has no device with local hardware id " +
                              std::to_string(args->local_hardware_id)));
}

PJRT_Error* Client_AddressableMemories(PJRT_Client_AddressableMemories_Args* args) {
  PYRT_ARGS(args, num_addressable_memories);
  PYRT_NOT_NULL(args->client);
  return ReturnList(&args->addressable_memories, &args->num_addressable_memories,
                    args->client->memories);
}

PJRT_Error* Client_Compile(PJRT_Client_Compile_Args* args) {
  PYRT_ARGS(args, executable);
  PYRT_NOT_NULL(args->client);
  PYRT_NOT_NULL(args->program);
  const PJRT_Program* program = args->program;
  if (program->code == nullptr && program->code_size > 0) PYRT_NOT_NULL(program->code);
  PYRT_NOT_NULL(program->format);
  if (args->compile_options_size > 0) PYRT_NOT_NULL(args->compile_options);
  std::string code(program->code ? program->code : "", program->code_size);
  std::string format(program->format, program->format_size);
  std::string options(args->compile_options ? args->compile_options : "", args->compile_options_size);
  std::shared_ptr<Program> compiled;
  PYRT_RETURN_IF_ERROR(bridge::Compile(code, format, options, &compiled));
  PYRT_RETURN_IF_ERROR(LoadProgram(args->client, std::move(compiled), &args->executable));
  return nullptr;
}

PJRT_Error* Client_DefaultDeviceAssignment(PJRT_Client_DefaultDeviceAssignment_Args* args) {
  PYRT_ARGS(args, default_assignment);
  PYRT_NOT_NULL(args->client);
  if (args->num_replicas < 1 || args->num_partitions < 1) {
    return ToPjrtError(InvalidArgument("pyrt: replicas and partitions must be at least 1"));
  }
  size_t n = static_cast<size_t>(args->num_replicas) * args->num_partitions;
  if (n > args->client->devices.size()) {
    return ToPjrtError(InvalidArgument(
        "pyrt: " + std::to_string(n) + " devices requested but the client has " +
        std::to_string(args->client->devices.size()) + " (set PYRT_DEVICE_COUNT to have more)"));
  }
  if (n > args->default_assignment_size) {
    return ToPjrtError(InvalidArgument("pyrt: default_assignment_size is too small"));
  }
  PYRT_NOT_NULL(args->default_assignment);
  for (size_t i = 0; i < n; ++i) args->default_assignment[i] = args->client->devices[i]->description.id;
  return nullptr;
}

namespace {

// The memory a new buffer goes to: `memory` if given, else `device`'s default memory.
Status TargetMemory(PJRT_Client* client, PJRT_Device* device, PJRT_Memory* memory,
                    PJRT_Memory** out) {
  if (memory != nullptr) {
    *out = memory;
  } else if (device != nullptr) {
    Status s = device->CheckAddressable();
    if (!s.ok()) return s;
    *out = device->default_memory;
  } else {
    return InvalidArgument("pyrt: neither a device nor a memory was given for the new buffer");
  }
  if ((*out)->client != client) return InvalidArgument("pyrt: the memory belongs to another client");
  return Status::Ok();
}

Status CheckShape(PJRT_Buffer_Type type, const int64_t* dims, size_t num_dims,
                  std::vector<int64_t>* shape, size_t* nbytes) {
  if (ElementSize(type) == 0) {
    return InvalidArgument("pyrt: element type " + std::to_string(type) + " has no array storage");
  }
  if (num_dims > 0 && dims == nullptr) return InvalidArgument("pyrt: dims is NULL");
  shape->assign(dims, dims + num_dims);
  size_t count = 0;
  if (!ElementCount(*shape, &count)) return InvalidArgument("pyrt: invalid array dimensions");
  *nbytes = count * ElementSize(type);
  return Status::Ok();
}

// What every buffer-creating entry point checks and derives.
struct NewBufferPlan {
  std::vector<int64_t> dims;
  size_t nbytes = 0;
  PJRT_Memory* memory = nullptr;
  PJRT_Device* device = nullptr;
};
Status PlanNewBuffer(PJRT_Client* client, PJRT_Buffer_Type type, const int64_t* dims,
                     size_t num_dims, const PJRT_Buffer_MemoryLayout* layout, PJRT_Device* device,
                     PJRT_Memory* memory, NewBufferPlan* plan) {
  Status s = CheckShape(type, dims, num_dims, &plan->dims, &plan->nbytes);
  if (s.ok()) s = CheckDeviceLayout(layout, plan->dims.size());
  if (s.ok()) s = TargetMemory(client, device, memory, &plan->memory);
  if (s.ok()) plan->device = plan->memory->devices.front();
  return s;
}

}  // namespace

PJRT_Error* Client_BufferFromHostBuffer(PJRT_Client_BufferFromHostBuffer_Args* args) {
  PYRT_ARGS(args, buffer);
  PYRT_NOT_NULL(args->client);
  NewBufferPlan plan;
  PYRT_RETURN_IF_ERROR(PlanNewBuffer(args->client, args->type, args->dims, args->num_dims,
                                     args->device_layout, args->device, args->memory, &plan));
  if (plan.nbytes > 0) PYRT_NOT_NULL(args->data);
  const std::vector<int64_t>& dims = plan.dims;
  size_t nbytes = plan.nbytes;
  PJRT_Device* device = plan.device;

  size_t elem = ElementSize(args->type);
  std::vector<int64_t> dense = DenseStrides(dims, elem);
  std::vector<int64_t> strides = dense;
  if (args->num_byte_strides != 0) {
    if (args->num_byte_strides != dims.size() || args->byte_strides == nullptr) {
      return ToPjrtError(InvalidArgument("pyrt: byte_strides must have one entry per dimension"));
    }
    strides.assign(args->byte_strides, args->byte_strides + dims.size());
  }
  bool is_dense = true;
  for (size_t i = 0; i < dims.size(); ++i) is_dense &= dims[i] == 1 || strides[i] == dense[i];
  bool zero_copy = args->host_buffer_semantics == PJRT_HostBufferSemantics_kImmutableZeroCopy ||
                   args->host_buffer_semantics == PJRT_HostBufferSemantics_kMutableZeroCopy;
  // XLA:CPU aliases exactly when the data is dense and 64-byte aligned; so do we, so that pyrt
  // and the CPU backend agree on when a later write to the host array is visible.
  bool aligned = reinterpret_cast<uintptr_t>(args->data) % 64 == 0;

  std::shared_ptr<Storage> storage;
  std::shared_ptr<Completion> done_with_host;
  if (zero_copy && is_dense && aligned && nbytes > 0) {
    // Alias the caller's memory; it is theirs again when the last holder lets go.
    done_with_host = std::make_shared<Completion>();
    storage = Storage::Borrow(const_cast<void*>(args->data), nbytes, &device->stats,
                              [done_with_host] { done_with_host->Set(Status::Ok()); });
  } else {
    storage = Storage::Allocate(nbytes, &device->stats);
    StridedCopy(static_cast<const char*>(args->data), strides.data(),
                static_cast<char*>(storage->data()), dense.data(), dims, elem);
    done_with_host = Completion::Ready();
  }
  args->done_with_host_buffer = NewEvent(done_with_host);
  args->buffer = NewBuffer(plan.memory, device, args->type, std::move(plan.dims),
                           DeviceArray::Of(storage));
  return nullptr;
}

// Zero-copy import of memory pyrt does not own (jax.dlpack.from_dlpack onto a pyrt device):
// pyrt's device memory is host memory, so any host pointer can back a buffer.
PJRT_Error* Client_CreateViewOfDeviceBuffer(PJRT_Client_CreateViewOfDeviceBuffer_Args* args) {
  PYRT_ARGS(args, buffer);
  PYRT_NOT_NULL(args->client);
  PJRT_Memory* requested = args->struct_size >= PYRT_SIZE_THROUGH(
                               PJRT_Client_CreateViewOfDeviceBuffer_Args, memory)
                               ? args->memory
                               : nullptr;
  NewBufferPlan plan;
  PYRT_RETURN_IF_ERROR(PlanNewBuffer(args->client, args->element_type, args->dims, args->num_dims,
                                     args->layout, args->device, requested, &plan));
  if (plan.nbytes > 0) PYRT_NOT_NULL(args->device_buffer_ptr);
  std::function<void()> release;
  if (args->on_delete_callback != nullptr) {
    auto callback = args->on_delete_callback;
    void* ptr = args->device_buffer_ptr;
    void* user_arg = args->on_delete_callback_arg;
    // The owner's callback may need the GIL (a NumPy DLPack deleter takes it): run it where
    // waiting for the GIL is safe (see bridge::CallWithGil).
    release = [callback, ptr, user_arg] { bridge::CallWithGil([=] { callback(ptr, user_arg); }); };
  }
  // Not writable: donating the buffer never writes into the owner's memory.
  auto storage = Storage::Borrow(args->device_buffer_ptr, plan.nbytes, &plan.device->stats,
                                 std::move(release));
  args->buffer = NewBuffer(plan.memory, plan.device, args->element_type, std::move(plan.dims),
                           DeviceArray::Of(std::move(storage)));
  return nullptr;
}

PJRT_Error* Client_CreateUninitializedBuffer(PJRT_Client_CreateUninitializedBuffer_Args* args) {
  PYRT_ARGS(args, buffer);
  PYRT_NOT_NULL(args->client);
  NewBufferPlan plan;
  PYRT_RETURN_IF_ERROR(PlanNewBuffer(args->client, args->shape_element_type, args->shape_dims,
                                     args->shape_num_dims, args->shape_layout, args->device,
                                     args->memory, &plan));
  auto storage = Storage::Allocate(plan.nbytes, &plan.device->stats);
  std::memset(storage->data(), 0, plan.nbytes);  // deterministic, though nobody may read it
  args->buffer = NewBuffer(plan.memory, plan.device, args->shape_element_type,
                           std::move(plan.dims), DeviceArray::Of(storage));
  return nullptr;
}

PJRT_Error* Client_CreateErrorBuffer(PJRT_Client_CreateErrorBuffer_Args* args) {
  PYRT_ARGS(args, buffer);
  PYRT_NOT_NULL(args->client);
  PYRT_NOT_NULL(args->memory);
  std::vector<int64_t> dims;
  size_t nbytes = 0;
  PYRT_RETURN_IF_ERROR(
      CheckShape(args->shape_element_type, args->shape_dims, args->shape_num_dims, &dims, &nbytes));
  auto array = std::make_shared<DeviceArray>();
  std::string message(args->error_message ? args->error_message : "", args->error_message_size);
  PJRT_Error_Code code = args->error_code == PJRT_Error_Code_OK ? PJRT_Error_Code_UNKNOWN : args->error_code;
  array->ready->Set(Error(code, std::move(message)));
  args->buffer = NewBuffer(args->memory, args->memory->devices.front(), args->shape_element_type,
                           std::move(dims), std::move(array));
  return nullptr;
}

}  // namespace pyrt
