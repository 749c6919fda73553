// PJRT entry points of device descriptions, devices and memories (see api_common.h for their
// shape).
#include <string>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"
#include "pjrt_plugin/storage.h"

namespace pyrt {

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
  return ReturnList(&args->attributes, &args->num_attributes, args->device_description->attributes);
}

PJRT_Error* DeviceDescription_Kind(PJRT_DeviceDescription_Kind_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnList(&args->string, &args->string_size, args->device_description->kind);
}

PJRT_Error* DeviceDescription_DebugString(PJRT_DeviceDescription_DebugString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnList(&args->string, &args->string_size, args->device_description->debug_string);
}

PJRT_Error* DeviceDescription_ToString(PJRT_DeviceDescription_ToString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->device_description);
  return ReturnList(&args->string, &args->string_size, args->device_description->to_string);
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
  args->is_addressable = args->device->addressable();
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
  return ReturnList(&args->memories, &args->num_memories, args->device->memories);
}

PJRT_Error* Device_DefaultMemory(PJRT_Device_DefaultMemory_Args* args) {
  PYRT_ARGS(args, memory);
  PYRT_NOT_NULL(args->device);
  PYRT_RETURN_IF_ERROR(args->device->CheckAddressable());
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

namespace {
void NoDeviceAttributesToFree(PJRT_Device_Attributes*) {}
}  // namespace

PJRT_Error* Device_GetAttributes(PJRT_Device_GetAttributes_Args* args) {
  PYRT_ARGS(args, attributes_deleter);
  PYRT_NOT_NULL(args->device);
  args->device_attributes = nullptr;  // owned by the device
  args->attributes_deleter = &NoDeviceAttributesToFree;
  return ReturnList(&args->attributes, &args->num_attributes, args->device->description.attributes);
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
  return ReturnList(&args->kind, &args->kind_size, args->memory->kind);
}

PJRT_Error* Memory_Kind_Id(PJRT_Memory_Kind_Id_Args* args) {
  PYRT_ARGS(args, kind_id);
  PYRT_NOT_NULL(args->memory);
  args->kind_id = args->memory->kind_id;
  return nullptr;
}

PJRT_Error* Memory_DebugString(PJRT_Memory_DebugString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->memory);
  return ReturnList(&args->string, &args->string_size, args->memory->debug_string);
}

PJRT_Error* Memory_ToString(PJRT_Memory_ToString_Args* args) {
  PYRT_ARGS(args, string_size);
  PYRT_NOT_NULL(args->memory);
  return ReturnList(&args->string, &args->string_size, args->memory->to_string);
}

PJRT_Error* Memory_AddressableByDevices(PJRT_Memory_AddressableByDevices_Args* args) {
  PYRT_ARGS(args, num_devices);
  PYRT_NOT_NULL(args->memory);
  return ReturnList(&args->devices, &args->num_devices, args->memory->devices);
}

}  // namespace pyrt
