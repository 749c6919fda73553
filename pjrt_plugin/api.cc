// The PJRT C API entry points. Each one checks its args (NULL, struct_size, NULL handles), then
// translates to a runtime.h call; none holds policy or op semantics. GetPjrtApi returns the table
// with all 138 slots filled: unimplemented ones answer UNIMPLEMENTED with their own name.
#include <cxxabi.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

#include "pjrt_plugin/element_type.h"
#include "pjrt_plugin/event.h"
#include "pjrt_plugin/layout.h"
#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"

namespace pyrt {
namespace {

// ---------------------------------------------------------------- argument checks

PJRT_Error* CheckArgs(const void* args, size_t needed, const char* fn) {
  if (args == nullptr) {
    return ToPjrtError(InvalidArgument(std::string("PJRT_") + fn + ": args is NULL"));
  }
  size_t given = *static_cast<const size_t*>(args);
  if (given < needed) {
    return ToPjrtError(InvalidArgument(
        std::string("PJRT_") + fn + ": args struct_size is " + std::to_string(given) +
        " but pyrt reads " + std::to_string(needed) +
        " bytes; the caller was built against an older PJRT C API"));
  }
  return nullptr;
}

#define PYRT_ARGS(args, last_field)                                                             \
  if (PJRT_Error* e = CheckArgs(args, PYRT_SIZE_THROUGH(std::remove_pointer_t<decltype(args)>, \
                                                        last_field),                            \
                                __func__)) {                                                    \
    return e;                                                                                   \
  }

#define PYRT_NOT_NULL(ptr)                                                                \
  if ((ptr) == nullptr) {                                                                 \
    return ToPjrtError(InvalidArgument(std::string("PJRT_") + __func__ + ": " #ptr " is NULL")); \
  }

#define PYRT_RETURN_IF_ERROR(expr)            \
  do {                                        \
    Status _s = (expr);                       \
    if (!_s.ok()) return ToPjrtError(std::move(_s)); \
  } while (0)

PJRT_Event* NewEvent(std::shared_ptr<Completion> c) { return new PJRT_Event{std::move(c)}; }

// ---------------------------------------------------------------- errors

void Error_Destroy(PJRT_Error_Destroy_Args* args) {
  if (args != nullptr) delete args->error;
}

void Error_Message(PJRT_Error_Message_Args* args) {
  if (args == nullptr || args->error == nullptr) return;
  args->message = args->error->status.message.data();
  args->message_size = args->error->status.message.size();
}

PJRT_Error* Error_GetCode(PJRT_Error_GetCode_Args* args) {
  PYRT_ARGS(args, code);
  PYRT_NOT_NULL(args->error);
  args->code = args->error->status.code;
  return nullptr;
}

// pyrt errors carry no payloads; this must succeed (jaxlib calls it on every error).
PJRT_Error* Error_ForEachPayload(PJRT_Error_ForEachPayload_Args* args) { return nullptr; }

// ---------------------------------------------------------------- plugin

PJRT_Error* Plugin_Initialize(PJRT_Plugin_Initialize_Args* args) { return nullptr; }

PJRT_Error* Plugin_Attributes(PJRT_Plugin_Attributes_Args* args) {
  PYRT_ARGS(args, num_attributes);
  static const NamedValues* attributes = [] {
    auto* a = new NamedValues;  // process lifetime, as the API requires
    a->AddInt("xla_version", 2);
    a->AddInts("stablehlo_current_version", {1, 17, 0});
    a->AddInts("stablehlo_minimum_version", {0, 9, 0});
    return a;
  }();
  args->attributes = attributes->data();
  args->num_attributes = attributes->size();
  return nullptr;
}

// ---------------------------------------------------------------- events

PJRT_Error* Event_Destroy(PJRT_Event_Destroy_Args* args) {
  if (args != nullptr) delete args->event;
  return nullptr;
}

PJRT_Error* Event_IsReady(PJRT_Event_IsReady_Args* args) {
  PYRT_ARGS(args, is_ready);
  PYRT_NOT_NULL(args->event);
  args->is_ready = args->event->completion->IsReady();
  return nullptr;
}

PJRT_Error* Event_Error(PJRT_Event_Error_Args* args) {
  PYRT_ARGS(args, event);
  PYRT_NOT_NULL(args->event);
  if (!args->event->completion->IsReady()) {
    return ToPjrtError(FailedPrecondition("PJRT_Event_Error: the event is not ready yet"));
  }
  return ToPjrtError(args->event->completion->status());
}

PJRT_Error* Event_Await(PJRT_Event_Await_Args* args) {
  PYRT_ARGS(args, event);
  PYRT_NOT_NULL(args->event);
  bridge::ScopedGilRelease no_gil;  // the work may need the GIL
  return ToPjrtError(args->event->completion->Await());
}

PJRT_Error* Event_OnReady(PJRT_Event_OnReady_Args* args) {
  PYRT_ARGS(args, user_arg);
  PYRT_NOT_NULL(args->event);
  PYRT_NOT_NULL(args->callback);
  PJRT_Event_OnReadyCallback callback = args->callback;
  void* user_arg = args->user_arg;
  args->event->completion->OnReady(
      [callback, user_arg](const Status& s) { callback(ToPjrtError(s), user_arg); });
  return nullptr;
}

PJRT_Error* Event_Create(PJRT_Event_Create_Args* args) {
  PYRT_ARGS(args, event);
  args->event = NewEvent(std::make_shared<Completion>());
  return nullptr;
}

PJRT_Error* Event_Set(PJRT_Event_Set_Args* args) {
  PYRT_ARGS(args, error_message_size);
  PYRT_NOT_NULL(args->event);
  std::string message;
  if (args->error_message != nullptr) message.assign(args->error_message, args->error_message_size);
  args->event->completion->Set(Error(args->error_code, std::move(message)));
  return nullptr;
}

// ---------------------------------------------------------------- client

PJRT_Error* Client_Create(PJRT_Client_Create_Args* args) {
  PYRT_ARGS(args, client);
  if (args->num_options > 0) PYRT_NOT_NULL(args->create_options);
  PYRT_RETURN_IF_ERROR(CreateClient(args->create_options, args->num_options, &args->client));
  return nullptr;
}

PJRT_Error* Client_Destroy(PJRT_Client_Destroy_Args* args) {
  if (args != nullptr) delete args->client;
  return nullptr;
}

PJRT_Error* Client_PlatformName(PJRT_Client_PlatformName_Args* args) {
  PYRT_ARGS(args, platform_name_size);
  PYRT_NOT_NULL(args->client);
  args->platform_name = args->client->platform_name.data();
  args->platform_name_size = args->client->platform_name.size();
  return nullptr;
}

PJRT_Error* Client_ProcessIndex(PJRT_Client_ProcessIndex_Args* args) {
  PYRT_ARGS(args, process_index);
  PYRT_NOT_NULL(args->client);
  args->process_index = 0;
  return nullptr;
}

PJRT_Error* Client_PlatformVersion(PJRT_Client_PlatformVersion_Args* args) {
  PYRT_ARGS(args, platform_version_size);
  PYRT_NOT_NULL(args->client);
  args->platform_version = args->client->options.platform_version.data();
  args->platform_version_size = args->client->options.platform_version.size();
  return nullptr;
}

PJRT_Error* Client_Devices(PJRT_Client_Devices_Args* args) {
  PYRT_ARGS(args, num_devices);
  PYRT_NOT_NULL(args->client);
  args->devices = args->client->devices.data();
  args->num_devices = args->client->devices.size();
  return nullptr;
}

PJRT_Error* Client_AddressableDevices(PJRT_Client_AddressableDevices_Args* args) {
  PYRT_ARGS(args, num_addressable_devices);
  PYRT_NOT_NULL(args->client);
  args->addressable_devices = args->client->devices.data();
  args->num_addressable_devices = args->client->devices.size();
  return nullptr;
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
  for (PJRT_Device* d : args->client->devices) {
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
  args->addressable_memories = args->client->memories.data();
  args->num_addressable_memories = args->client->memories.size();
  return nullptr;
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

// The memory a new buffer goes to: `memory` if given, else `device`'s default memory.
Status TargetMemory(PJRT_Client* client, PJRT_Device* device, PJRT_Memory* memory,
                    PJRT_Memory** out) {
  if (memory != nullptr) {
    *out = memory;
  } else if (device != nullptr) {
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

// ---------------------------------------------------------------- device descriptions

PJRT_Error* DeviceDescription_Id(PJRT_DeviceDescription_Id_Args* args) {
  PYRT_ARGS(args, id);
  PYRT_NOT_NULL(args->device_description);
  args->id = args->device_description->id;
  return nullptr;
}

PJRT_Error* DeviceDescription_ProcessIndex(PJRT_DeviceDescription_ProcessIndex_Args* args) {
  PYRT_ARGS(args, process_index);
  PYRT_NOT_NULL(args->device_description);
  args->process_index = args->device_description->process_index;
  return nullptr;
}

PJRT_Error* DeviceDescription_Attributes(PJRT_DeviceDescription_Attributes_Args* args) {
  PYRT_ARGS(args, attributes);
  PYRT_NOT_NULL(args->device_description);
  args->attributes = args->device_description->attributes.data();
  args->num_attributes = args->device_description->attributes.size();
  return nullptr;
}

PJRT_Error* ReturnString(PJRT_DeviceDescription_String_Args* args, const std::string& s) {
  args->string = s.data();
  args->string_size = s.size();
  return nullptr;
}

PJRT_Error* DeviceDescription_Kind(PJRT_DeviceDescription_Kind_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnString(args, args->device_description->kind);
}

PJRT_Error* DeviceDescription_DebugString(PJRT_DeviceDescription_DebugString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnString(args, args->device_description->debug_string);
}

PJRT_Error* DeviceDescription_ToString(PJRT_DeviceDescription_ToString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnString(args, args->device_description->to_string);
}

// ---------------------------------------------------------------- devices

PJRT_Error* Device_GetDescription(PJRT_Device_GetDescription_Args* args) {
  PYRT_ARGS(args, device_description);
  PYRT_NOT_NULL(args->device);
  args->device_description = &args->device->description;
  return nullptr;
}

PJRT_Error* Device_IsAddressable(PJRT_Device_IsAddressable_Args* args) {
  PYRT_ARGS(args, is_addressable);
  PYRT_NOT_NULL(args->device);
  args->is_addressable = true;  // single process: every device is ours
  return nullptr;
}

PJRT_Error* Device_LocalHardwareId(PJRT_Device_LocalHardwareId_Args* args) {
  PYRT_ARGS(args, local_hardware_id);
  PYRT_NOT_NULL(args->device);
  args->local_hardware_id = args->device->local_hardware_id;
  return nullptr;
}

PJRT_Error* Device_AddressableMemories(PJRT_Device_AddressableMemories_Args* args) {
  PYRT_ARGS(args, num_memories);
  PYRT_NOT_NULL(args->device);
  args->memories = args->device->memories.data();
  args->num_memories = args->device->memories.size();
  return nullptr;
}

PJRT_Error* Device_DefaultMemory(PJRT_Device_DefaultMemory_Args* args) {
  PYRT_ARGS(args, memory);
  PYRT_NOT_NULL(args->device);
  args->memory = args->device->default_memory;
  return nullptr;
}

PJRT_Error* Device_MemoryStats(PJRT_Device_MemoryStats_Args* args) {
  PYRT_ARGS(args, peak_pool_bytes_is_set);
  PYRT_NOT_NULL(args->device);
  const DeviceStats& s = args->device->stats;
  args->bytes_in_use = s.bytes_in_use;
  args->peak_bytes_in_use = s.peak_bytes_in_use;
  args->peak_bytes_in_use_is_set = true;
  args->num_allocs = s.num_allocs;
  args->num_allocs_is_set = true;
  args->largest_alloc_size = s.largest_alloc_size;
  args->largest_alloc_size_is_set = true;
  // pool_bytes carries the number of live arrays: PJRT has no field of its own for it.
  args->pool_bytes = s.live_arrays;
  args->pool_bytes_is_set = true;
  args->bytes_limit_is_set = args->bytes_reserved_is_set = args->peak_bytes_reserved_is_set = false;
  args->bytes_reservable_limit_is_set = args->largest_free_block_bytes_is_set = false;
  args->peak_pool_bytes_is_set = false;
  return nullptr;
}

void NoDeviceAttributesToFree(PJRT_Device_Attributes*) {}

PJRT_Error* Device_GetAttributes(PJRT_Device_GetAttributes_Args* args) {
  PYRT_ARGS(args, attributes_deleter);
  PYRT_NOT_NULL(args->device);
  args->attributes = args->device->description.attributes.data();
  args->num_attributes = args->device->description.attributes.size();
  args->device_attributes = nullptr;  // owned by the device
  args->attributes_deleter = &NoDeviceAttributesToFree;
  return nullptr;
}

// ---------------------------------------------------------------- memories

PJRT_Error* Memory_Id(PJRT_Memory_Id_Args* args) {
  PYRT_ARGS(args, id);
  PYRT_NOT_NULL(args->memory);
  args->id = args->memory->id;
  return nullptr;
}

PJRT_Error* Memory_Kind(PJRT_Memory_Kind_Args* args) {
  PYRT_ARGS(args, kind_size);
  PYRT_NOT_NULL(args->memory);
  args->kind = args->memory->kind.data();
  args->kind_size = args->memory->kind.size();
  return nullptr;
}

PJRT_Error* Memory_Kind_Id(PJRT_Memory_Kind_Id_Args* args) {
  PYRT_ARGS(args, kind_id);
  PYRT_NOT_NULL(args->memory);
  args->kind_id = 0;  // one kind: "device"
  return nullptr;
}

PJRT_Error* Memory_DebugString(PJRT_Memory_DebugString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->memory);
  args->string = args->memory->debug_string.data();
  args->string_size = args->memory->debug_string.size();
  return nullptr;
}

PJRT_Error* Memory_ToString(PJRT_Memory_ToString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->memory);
  args->string = args->memory->to_string.data();
  args->string_size = args->memory->to_string.size();
  return nullptr;
}

PJRT_Error* Memory_AddressableByDevices(PJRT_Memory_AddressableByDevices_Args* args) {
  PYRT_ARGS(args, num_devices);
  PYRT_NOT_NULL(args->memory);
  args->devices = args->memory->devices.data();
  args->num_devices = args->memory->devices.size();
  return nullptr;
}

// ---------------------------------------------------------------- executables

PJRT_Error* Executable_Destroy(PJRT_Executable_Destroy_Args* args) {
  if (args != nullptr) delete args->executable;
  return nullptr;
}

#define PYRT_EXECUTABLE_ARGS(args, last_field) \
  PYRT_ARGS(args, last_field);                 \
  PYRT_NOT_NULL(args->executable);             \
  const Program& program = *args->executable->info->program;

PJRT_Error* Executable_Name(PJRT_Executable_Name_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable_name_size);
  args->executable_name = program.name.data();
  args->executable_name_size = program.name.size();
  return nullptr;
}

PJRT_Error* Executable_NumReplicas(PJRT_Executable_NumReplicas_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, num_replicas);
  args->num_replicas = static_cast<size_t>(program.num_replicas);
  return nullptr;
}

PJRT_Error* Executable_NumPartitions(PJRT_Executable_NumPartitions_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, num_partitions);
  args->num_partitions = static_cast<size_t>(program.num_partitions);
  return nullptr;
}

PJRT_Error* Executable_NumOutputs(PJRT_Executable_NumOutputs_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, num_outputs);
  args->num_outputs = program.outputs.size();
  return nullptr;
}

// Shardings extension. A program that is not partitioned reports none (NULL), as XLA:CPU's
// executables do for one device.
PJRT_Error* Shardings_ParameterShardings(PJRT_Shardings_Executable_Shardings_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, sharding_sizes);
  args->num_shardings = program.inputs.size();
  args->shardings = nullptr;
  args->sharding_sizes = nullptr;
  return nullptr;
}

PJRT_Error* Shardings_OutputShardings(PJRT_Shardings_Executable_Shardings_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, sharding_sizes);
  args->num_shardings = program.outputs.size();
  args->shardings = nullptr;
  args->sharding_sizes = nullptr;
  return nullptr;
}

// Layouts extension: every pyrt array is row-major.
PJRT_Error* Layouts_MemoryLayout_Destroy(PJRT_Layouts_MemoryLayout_Destroy_Args* args) {
  if (args != nullptr) delete args->layout;
  return nullptr;
}

void DeleteSerializedLayout(PJRT_Layouts_SerializedLayout* layout) {
  delete reinterpret_cast<std::string*>(layout);
}

PJRT_Error* Layouts_MemoryLayout_Serialize(PJRT_Layouts_MemoryLayout_Serialize_Args* args) {
  PYRT_ARGS(args, serialized_layout_deleter);
  PYRT_NOT_NULL(args->layout);
  auto* text = new std::string(args->layout->text);
  args->serialized_bytes = text->data();
  args->serialized_bytes_size = text->size();
  args->serialized_layout = reinterpret_cast<PJRT_Layouts_SerializedLayout*>(text);
  args->serialized_layout_deleter = &DeleteSerializedLayout;
  return nullptr;
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

PJRT_Error* Layouts_Executable_OutputLayouts(PJRT_Layouts_Executable_Layouts_Args* args) {
  PYRT_ARGS(args, layouts);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->num_layouts = info.output_layout_ptrs.size();
  args->layouts = const_cast<PJRT_Layouts_MemoryLayout**>(info.output_layout_ptrs.data());
  return nullptr;
}

PJRT_Error* Layouts_Executable_ParameterLayouts(PJRT_Layouts_Executable_Layouts_Args* args) {
  PYRT_ARGS(args, layouts);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->num_layouts = info.input_layout_ptrs.size();
  args->layouts = const_cast<PJRT_Layouts_MemoryLayout**>(info.input_layout_ptrs.data());
  return nullptr;
}

PJRT_Error* Executable_SizeOfGeneratedCodeInBytes(
    PJRT_Executable_SizeOfGeneratedCodeInBytes_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, size_in_bytes);
  args->size_in_bytes = program.code_size_in_bytes;
  return nullptr;
}

PJRT_Error* Executable_GetCostAnalysis(PJRT_Executable_GetCostAnalysis_Args* args) {
  PYRT_ARGS(args, properties);
  PYRT_NOT_NULL(args->executable);
  args->properties = args->executable->info->costs.data();
  args->num_properties = args->executable->info->costs.size();
  return nullptr;
}

PJRT_Error* Executable_GetCompiledMemoryStats(PJRT_Executable_GetCompiledMemoryStats_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, total_size_in_bytes);
  constexpr size_t kKnown = PYRT_SIZE_THROUGH(PJRT_Executable_GetCompiledMemoryStats_Args,
                                              total_size_in_bytes);
  if (args->struct_size > kKnown) {  // newer fields we do not know: zero
    std::memset(reinterpret_cast<char*>(args) + kKnown, 0, args->struct_size - kKnown);
  }
  // The sizes the runtime computed at compile time (jax_pyrt.analysis.memory_sizes); device
  // memory is host memory, and NumPy temporaries are not counted as device temp memory.
  args->generated_code_size_in_bytes = program.code_size_in_bytes;
  args->argument_size_in_bytes = program.argument_size_in_bytes;
  args->output_size_in_bytes = program.output_size_in_bytes;
  args->alias_size_in_bytes = program.alias_size_in_bytes;
  args->temp_size_in_bytes = program.temp_size_in_bytes;
  args->host_generated_code_size_in_bytes = args->host_argument_size_in_bytes = 0;
  args->host_output_size_in_bytes = args->host_alias_size_in_bytes = 0;
  args->host_temp_size_in_bytes = 0;
  args->total_size_in_bytes = program.argument_size_in_bytes + program.output_size_in_bytes -
                              program.alias_size_in_bytes + program.temp_size_in_bytes;
  args->peak_memory_in_bytes = args->total_size_in_bytes;
  return nullptr;
}

PJRT_Error* Executable_OutputMemoryKinds(PJRT_Executable_OutputMemoryKinds_Args* args) {
  PYRT_ARGS(args, memory_kind_sizes);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->num_outputs = info.output_kind_ptrs.size();
  args->memory_kinds = info.output_kind_ptrs.data();
  args->memory_kind_sizes = info.output_kind_sizes.data();
  return nullptr;
}

PJRT_Error* Executable_ParameterMemoryKinds(PJRT_Executable_ParameterMemoryKinds_Args* args) {
  PYRT_ARGS(args, memory_kind_sizes);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->num_outputs = info.input_kind_ptrs.size();
  args->memory_kinds = info.input_kind_ptrs.data();
  args->memory_kind_sizes = info.input_kind_sizes.data();
  return nullptr;
}

PJRT_Error* Executable_OptimizedProgram(PJRT_Executable_OptimizedProgram_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, program);
  PYRT_NOT_NULL(args->program);
  PJRT_Program* out = args->program;
  static const char kFormat[] = "mlir";
  out->format = kFormat;
  out->format_size = sizeof(kFormat) - 1;
  if (out->code == nullptr) {  // first call: report the size
    out->code_size = program.text.size();
    return nullptr;
  }
  if (out->code_size < program.text.size()) {
    return ToPjrtError(InvalidArgument("PJRT_Executable_OptimizedProgram: code buffer too small"));
  }
  std::memcpy(out->code, program.text.data(), program.text.size());
  out->code_size = program.text.size();
  return nullptr;
}

// Backs the bytes returned by Serialize/GetCompileOptions/GetDeviceAssignment.
struct OwnedBytes {
  std::string bytes;
};
void FreeSerializedExecutable(PJRT_SerializedExecutable* p) { delete reinterpret_cast<OwnedBytes*>(p); }
void FreeSerializedCompileOptions(PJRT_SerializedCompileOptions* p) {
  delete reinterpret_cast<OwnedBytes*>(p);
}
void FreeDeviceAssignment(PJRT_DeviceAssignmentSerialized* p) { delete reinterpret_cast<OwnedBytes*>(p); }

PJRT_Error* Executable_Serialize(PJRT_Executable_Serialize_Args* args) {
  PYRT_ARGS(args, serialized_executable_deleter);
  PYRT_NOT_NULL(args->executable);
  auto owned = std::make_unique<OwnedBytes>();
  PYRT_RETURN_IF_ERROR(bridge::Serialize(*args->executable->info->program, &owned->bytes));
  args->serialized_bytes = owned->bytes.data();
  args->serialized_bytes_size = owned->bytes.size();
  args->serialized_executable = reinterpret_cast<PJRT_SerializedExecutable*>(owned.release());
  args->serialized_executable_deleter = &FreeSerializedExecutable;
  return nullptr;
}

PJRT_Error* Executable_GetCompileOptions(PJRT_Executable_GetCompileOptions_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, serialized_compile_options_deleter);
  auto* owned = new OwnedBytes{program.compile_options};
  args->serialized_bytes = owned->bytes.data();
  args->serialized_bytes_size = owned->bytes.size();
  args->serialized_compile_options = reinterpret_cast<PJRT_SerializedCompileOptions*>(owned);
  args->serialized_compile_options_deleter = &FreeSerializedCompileOptions;
  return nullptr;
}

PJRT_Error* Executable_OutputElementTypes(PJRT_Executable_OutputElementTypes_Args* args) {
  PYRT_ARGS(args, num_output_types);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->output_types = const_cast<PJRT_Buffer_Type*>(info.output_types.data());
  args->num_output_types = info.output_types.size();
  return nullptr;
}

PJRT_Error* Executable_OutputDimensions(PJRT_Executable_OutputDimensions_Args* args) {
  PYRT_ARGS(args, dim_sizes);
  PYRT_NOT_NULL(args->executable);
  const ExecutableInfo& info = *args->executable->info;
  args->num_outputs = info.output_ranks.size();
  args->dims = info.output_dims.data();
  args->dim_sizes = info.output_ranks.data();
  return nullptr;
}

PJRT_Error* Executable_Fingerprint(PJRT_Executable_Fingerprint_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable_fingerprint_size);
  args->executable_fingerprint = program.fingerprint.data();
  args->executable_fingerprint_size = program.fingerprint.size();
  return nullptr;
}

PJRT_Error* Executable_DeserializeAndLoad(PJRT_Executable_DeserializeAndLoad_Args* args) {
  PYRT_ARGS(args, loaded_executable);
  PYRT_NOT_NULL(args->client);
  if (args->serialized_executable_size > 0) PYRT_NOT_NULL(args->serialized_executable);
  std::string serialized(args->serialized_executable ? args->serialized_executable : "",
                         args->serialized_executable_size);
  std::string options;
  if (args->struct_size >= PYRT_SIZE_THROUGH(PJRT_Executable_DeserializeAndLoad_Args,
                                             overridden_serialized_compile_options_size) &&
      args->overridden_serialized_compile_options != nullptr) {
    options.assign(args->overridden_serialized_compile_options,
                   args->overridden_serialized_compile_options_size);
  }
  std::shared_ptr<Program> program;
  PYRT_RETURN_IF_ERROR(bridge::Deserialize(serialized, options, &program));
  PYRT_RETURN_IF_ERROR(LoadProgram(args->client, std::move(program), &args->loaded_executable));
  return nullptr;
}

// ---------------------------------------------------------------- loaded executables

PJRT_Error* LoadedExecutable_Destroy(PJRT_LoadedExecutable_Destroy_Args* args) {
  if (args != nullptr) delete args->executable;
  return nullptr;
}

PJRT_Error* LoadedExecutable_GetExecutable(PJRT_LoadedExecutable_GetExecutable_Args* args) {
  PYRT_ARGS(args, executable);
  PYRT_NOT_NULL(args->loaded_executable);
  args->executable = new PJRT_Executable{args->loaded_executable->info};
  return nullptr;
}

PJRT_Error* LoadedExecutable_AddressableDevices(PJRT_LoadedExecutable_AddressableDevices_Args* args) {
  PYRT_ARGS(args, num_addressable_devices);
  PYRT_NOT_NULL(args->executable);
  args->addressable_devices = args->executable->devices.data();
  args->num_addressable_devices = args->executable->devices.size();
  return nullptr;
}

PJRT_Error* LoadedExecutable_AddressableDeviceLogicalIds(
    PJRT_LoadedExecutable_AddressableDeviceLogicalIds_Args* args) {
  PYRT_ARGS(args, num_addressable_device_logical_ids);
  PYRT_NOT_NULL(args->executable);
  args->addressable_device_logical_ids = args->executable->logical_ids.data();
  args->num_addressable_device_logical_ids = args->executable->logical_ids.size();
  return nullptr;
}

PJRT_Error* LoadedExecutable_Delete(PJRT_LoadedExecutable_Delete_Args* args) {
  PYRT_ARGS(args, executable);
  PYRT_NOT_NULL(args->executable);
  args->executable->deleted = true;  // runs in flight hold the program and finish
  return nullptr;
}

PJRT_Error* LoadedExecutable_IsDeleted(PJRT_LoadedExecutable_IsDeleted_Args* args) {
  PYRT_ARGS(args, is_deleted);
  PYRT_NOT_NULL(args->executable);
  args->is_deleted = args->executable->deleted;
  return nullptr;
}

PJRT_Error* LoadedExecutable_Fingerprint(PJRT_LoadedExecutable_Fingerprint_Args* args) {
  PYRT_ARGS(args, executable_fingerprint_size);
  PYRT_NOT_NULL(args->executable);
  const std::string& f = args->executable->info->program->fingerprint;
  args->executable_fingerprint = f.data();
  args->executable_fingerprint_size = f.size();
  return nullptr;
}

PJRT_Error* LoadedExecutable_GetDeviceAssignment(PJRT_LoadedExecutable_GetDeviceAssignment_Args* args) {
  PYRT_ARGS(args, serialized_device_assignment_deleter);
  PYRT_NOT_NULL(args->executable);
  auto* owned = new OwnedBytes{args->executable->info->program->device_assignment};
  args->serialized_bytes = owned->bytes.data();
  args->serialized_bytes_size = owned->bytes.size();
  args->serialized_device_assignment = reinterpret_cast<PJRT_DeviceAssignmentSerialized*>(owned);
  args->serialized_device_assignment_deleter = &FreeDeviceAssignment;
  return nullptr;
}

PJRT_Error* LoadedExecutable_Execute(PJRT_LoadedExecutable_Execute_Args* args) {
  PYRT_ARGS(args, execute_device);
  PJRT_LoadedExecutable* exe = args->executable;
  PYRT_NOT_NULL(exe);
  // A program without outputs is valid (its effects count); jaxlib then passes no output lists.
  bool has_outputs = !exe->info->program->outputs.empty();
  if (has_outputs) PYRT_NOT_NULL(args->output_lists);
  if (args->num_args > 0) PYRT_NOT_NULL(args->argument_lists);
  const PJRT_ExecuteOptions* options = args->options;
  if (options != nullptr && options->struct_size < PYRT_SIZE_THROUGH(PJRT_ExecuteOptions, context)) {
    return ToPjrtError(InvalidArgument("PJRT_LoadedExecutable_Execute: options struct_size is too small"));
  }
  std::vector<PJRT_Device*> devices = exe->devices;
  if (args->execute_device != nullptr) devices = {args->execute_device};
  if (args->num_devices != devices.size()) {
    return ToPjrtError(InvalidArgument(
        "pyrt: the executable runs on " + std::to_string(devices.size()) + " device(s) but " +
        std::to_string(args->num_devices) + " argument lists were given"));
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    if (has_outputs) PYRT_NOT_NULL(args->output_lists[d]);
    if (args->num_args > 0) PYRT_NOT_NULL(args->argument_lists[d]);
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    std::shared_ptr<Completion> done;
    Status s = Execute(exe, devices[d], args->num_args ? args->argument_lists[d] : nullptr,
                       args->num_args, options, has_outputs ? args->output_lists[d] : nullptr,
                       &done);
    if (!s.ok()) {  // the caller reads no results: take back those of the earlier devices
      for (size_t k = 0; k < d; ++k) {
        for (size_t i = 0; i < exe->info->program->outputs.size(); ++i) {
          delete args->output_lists[k][i];
          args->output_lists[k][i] = nullptr;
        }
        if (args->device_complete_events != nullptr) {
          delete args->device_complete_events[k];
          args->device_complete_events[k] = nullptr;
        }
      }
      return ToPjrtError(s);
    }
    if (args->device_complete_events != nullptr) args->device_complete_events[d] = NewEvent(done);
  }
  return nullptr;
}

// ---------------------------------------------------------------- buffers

PJRT_Error* Buffer_Destroy(PJRT_Buffer_Destroy_Args* args) {
  if (args != nullptr) delete args->buffer;
  return nullptr;
}

#define PYRT_BUFFER_ARGS(args, last_field) \
  PYRT_ARGS(args, last_field);             \
  PYRT_NOT_NULL(args->buffer);             \
  PJRT_Buffer* buffer = args->buffer;

PJRT_Error* Buffer_ElementType(PJRT_Buffer_ElementType_Args* args) {
  PYRT_BUFFER_ARGS(args, type);
  args->type = buffer->type;
  return nullptr;
}

PJRT_Error* Buffer_Dimensions(PJRT_Buffer_Dimensions_Args* args) {
  PYRT_BUFFER_ARGS(args, num_dims);
  args->dims = buffer->dims.data();
  args->num_dims = buffer->dims.size();
  return nullptr;
}

PJRT_Error* Buffer_UnpaddedDimensions(PJRT_Buffer_UnpaddedDimensions_Args* args) {
  PYRT_BUFFER_ARGS(args, num_dims);
  args->dims = buffer->dims.data();  // pyrt never pads
  args->num_dims = buffer->dims.size();
  return nullptr;
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

Status DeletedBuffer(const char* fn) {
  return InvalidArgument(std::string("PJRT_") + fn + ": the buffer has been deleted or donated");
}

PJRT_Error* Buffer_CopyToDevice(PJRT_Buffer_CopyToDevice_Args* args) {
  PYRT_BUFFER_ARGS(args, dst_buffer);
  PYRT_NOT_NULL(args->dst_device);
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
  // Copy when the data is ready; never wait here (the caller may hold the GIL).
  auto done = std::make_shared<Completion>();
  char* dst = static_cast<char*>(args->dst);
  std::vector<int64_t> dims = buffer->dims;
  size_t elem = ElementSize(buffer->type);
  array->ready->OnReady([array, done, dst, strides, dims, elem](const Status& s) {
    if (s.ok()) {
      std::vector<int64_t> dense = DenseStrides(dims, elem);
      StridedCopy(static_cast<const char*>(array->storage->data()), dense.data(), dst,
                  strides.data(), dims, elem);
    }
    done->Set(s);
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
  array->ready->OnReady([array, done, dst, offset, size](const Status& s) {
    if (s.ok() && size > 0) {
      std::memcpy(dst, static_cast<const char*>(array->storage->data()) + offset, size);
    }
    done->Set(s);
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

// ---------------------------------------------------------------- the table

template <typename F>
struct EntryPoint;
template <typename R, typename A>
struct EntryPoint<R (*)(A*)> {
  using Args = A;
  using Result = R;
};

// No C++ exception may cross the C boundary: it would abort the user's process.
template <auto F>
typename EntryPoint<decltype(F)>::Result Safe(typename EntryPoint<decltype(F)>::Args* args) {
  using Result = typename EntryPoint<decltype(F)>::Result;
  try {
    return F(args);
  } catch (abi::__forced_unwind&) {
    // Not an error: Python is ending this thread (it tried to take the GIL while the interpreter
    // was finalizing). Swallowing the unwind would abort the process; let it continue.
    throw;
  } catch (const std::exception& e) {
    if constexpr (!std::is_void_v<Result>) return ToPjrtError(Internal(std::string("pyrt: ") + e.what()));
  } catch (...) {
    if constexpr (!std::is_void_v<Result>) return ToPjrtError(Internal("pyrt: unknown C++ exception"));
  }
}

const char* const kSlotNames[] = {
#define PYRT_SLOT(index, name, kind) "PJRT_" #name,
#include "pjrt_plugin/api_slots.inc"
#undef PYRT_SLOT
};

template <int kSlot>
PJRT_Error* NotImplemented(void* args) {
  return ToPjrtError(Unimplemented(std::string(kSlotNames[kSlot]) + " is not implemented by pyrt"));
}

// The Destroy stubs (topology, execute context, transfer manager, ...): pyrt never creates these
// objects, so the only handle a caller can hold is NULL, and destroying NULL succeeds as every
// other Destroy does (callers treat a failing Destroy as fatal). Any other handle is not ours.
template <int kSlot>
PJRT_Error* DestroyNothing(void* args) {
  struct DestroyArgs {
    PJRT_ARGS_HEADER;
    void* handle;
  };
  auto* a = static_cast<DestroyArgs*>(args);
  if (a == nullptr || a->struct_size < sizeof(DestroyArgs) || a->handle == nullptr) return nullptr;
  return ToPjrtError(InvalidArgument(std::string(kSlotNames[kSlot]) +
                                     ": pyrt never creates these objects; this handle is not ours"));
}

bool IsDestroy(const char* name) {
  size_t n = std::strlen(name);
  return n >= 8 && std::strcmp(name + n - 8, "_Destroy") == 0;
}

PJRT_Api MakeApi() {
  static PJRT_Layouts_Extension layouts{
      {sizeof(PJRT_Layouts_Extension), PJRT_Extension_Type_Layouts, nullptr},
      &Safe<&Layouts_MemoryLayout_Destroy>,
      &Safe<&Layouts_MemoryLayout_Serialize>,
      &Safe<&Layouts_Client_GetDefaultLayout>,
      &Safe<&Layouts_Buffer_MemoryLayout>,
      &Layouts_Topology_GetDefaultLayout,
      &Safe<&Layouts_Executable_OutputLayouts>,
      &Safe<&Layouts_Executable_ParameterLayouts>};
  static PJRT_Shardings_Extension shardings{
      {sizeof(PJRT_Shardings_Extension), PJRT_Extension_Type_Shardings, &layouts.base},
      &Safe<&Shardings_ParameterShardings>,
      &Safe<&Shardings_OutputShardings>};
  PJRT_Api api{};
  api.struct_size = sizeof(PJRT_Api);
  api.extension_start = &shardings.base;
  api.pjrt_api_version.struct_size = sizeof(PJRT_Api_Version);
  api.pjrt_api_version.major_version = PYRT_PJRT_API_MAJOR;
  api.pjrt_api_version.minor_version = PYRT_PJRT_API_MINOR;
#define PYRT_FILL_IMPL(index, name) api.slots[index] = reinterpret_cast<void*>(&Safe<&name>);
#define PYRT_FILL_STUB(index, name)                                                  \
  api.slots[index] = IsDestroy(#name) ? reinterpret_cast<void*>(&DestroyNothing<index>) \
                                      : reinterpret_cast<void*>(&NotImplemented<index>);
#define PYRT_SLOT(index, name, kind) PYRT_FILL_##kind(index, name)
#include "pjrt_plugin/api_slots.inc"
#undef PYRT_SLOT
#undef PYRT_FILL_IMPL
#undef PYRT_FILL_STUB
  return api;
}

}  // namespace
}  // namespace pyrt

extern "C" __attribute__((visibility("default"))) const PJRT_Api* GetPjrtApi() {
  static const PJRT_Api api = pyrt::MakeApi();
  return &api;
}
