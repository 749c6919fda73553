// PJRT entry points of executables, loaded executables and the Shardings extension (see
// api_common.h for their shape).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"

namespace pyrt {

// ---------------------------------------------------------------- executables

PJRT_Error* Executable_Destroy(PJRT_Executable_Destroy_Args* args) {
  if (args != nullptr) delete args->executable;
  return nullptr;
}

PJRT_Error* Executable_Name(PJRT_Executable_Name_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable_name_size);
  return ReturnList(&args->executable_name, &args->executable_name_size, program.name);
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

PJRT_Error* Executable_SizeOfGeneratedCodeInBytes(
    PJRT_Executable_SizeOfGeneratedCodeInBytes_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, size_in_bytes);
  args->size_in_bytes = program.code_size_in_bytes;
  return nullptr;
}

PJRT_Error* Executable_GetCostAnalysis(PJRT_Executable_GetCostAnalysis_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, properties);
  return ReturnList(&args->properties, &args->num_properties, info.costs);
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

namespace {
// The memory kinds of the outputs or parameters: both entry points' args have these fields.
template <typename Args>
PJRT_Error* ReturnMemoryKinds(Args* args, const std::vector<const char*>& kinds,
                              const std::vector<size_t>& sizes) {
  args->memory_kind_sizes = sizes.data();
  return ReturnList(&args->memory_kinds, &args->num_outputs, kinds);
}
}  // namespace

PJRT_Error* Executable_OutputMemoryKinds(PJRT_Executable_OutputMemoryKinds_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, memory_kind_sizes);
  return ReturnMemoryKinds(args, info.output_kind_ptrs, info.output_kind_sizes);
}

PJRT_Error* Executable_ParameterMemoryKinds(PJRT_Executable_ParameterMemoryKinds_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, memory_kind_sizes);
  return ReturnMemoryKinds(args, info.input_kind_ptrs, info.input_kind_sizes);
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

PJRT_Error* Executable_Serialize(PJRT_Executable_Serialize_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, serialized_executable_deleter);
  std::string bytes;
  PYRT_RETURN_IF_ERROR(bridge::Serialize(program, &bytes));
  return ReturnBytes(std::move(bytes), &args->serialized_bytes, &args->serialized_bytes_size,
                     &args->serialized_executable, &args->serialized_executable_deleter);
}

PJRT_Error* Executable_GetCompileOptions(PJRT_Executable_GetCompileOptions_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, serialized_compile_options_deleter);
  return ReturnBytes(program.compile_options, &args->serialized_bytes, &args->serialized_bytes_size,
                     &args->serialized_compile_options, &args->serialized_compile_options_deleter);
}

PJRT_Error* Executable_OutputElementTypes(PJRT_Executable_OutputElementTypes_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, num_output_types);
  args->output_types = const_cast<PJRT_Buffer_Type*>(info.output_types.data());
  args->num_output_types = info.output_types.size();
  return nullptr;
}

PJRT_Error* Executable_OutputDimensions(PJRT_Executable_OutputDimensions_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, dim_sizes);
  args->dims = info.output_dims.data();
  return ReturnList(&args->dim_sizes, &args->num_outputs, info.output_ranks);
}

PJRT_Error* Executable_Fingerprint(PJRT_Executable_Fingerprint_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable_fingerprint_size);
  return ReturnList(&args->executable_fingerprint, &args->executable_fingerprint_size,
                    program.fingerprint);
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
  PYRT_EXECUTABLE_ARGS(args, num_addressable_devices);
  return ReturnList(&args->addressable_devices, &args->num_addressable_devices,
                    args->executable->devices);
}

PJRT_Error* LoadedExecutable_AddressableDeviceLogicalIds(
    PJRT_LoadedExecutable_AddressableDeviceLogicalIds_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, num_addressable_device_logical_ids);
  return ReturnList(&args->addressable_device_logical_ids,
                    &args->num_addressable_device_logical_ids, args->executable->logical_ids);
}

PJRT_Error* LoadedExecutable_Delete(PJRT_LoadedExecutable_Delete_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable);
  args->executable->deleted = true;  // runs in flight hold the program and finish
  return nullptr;
}

PJRT_Error* LoadedExecutable_IsDeleted(PJRT_LoadedExecutable_IsDeleted_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, is_deleted);
  args->is_deleted = args->executable->deleted;
  return nullptr;
}

PJRT_Error* LoadedExecutable_Fingerprint(PJRT_LoadedExecutable_Fingerprint_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, executable_fingerprint_size);
  return ReturnList(&args->executable_fingerprint, &args->executable_fingerprint_size,
                    program.fingerprint);
}

PJRT_Error* LoadedExecutable_GetDeviceAssignment(PJRT_LoadedExecutable_GetDeviceAssignment_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, serialized_device_assignment_deleter);
  return ReturnBytes(program.device_assignment, &args->serialized_bytes,
                     &args->serialized_bytes_size, &args->serialized_device_assignment,
                     &args->serialized_device_assignment_deleter);
}

PJRT_Error* LoadedExecutable_Execute(PJRT_LoadedExecutable_Execute_Args* args) {
  PYRT_ARGS(args, execute_device);
  PJRT_LoadedExecutable* exe = args->executable;
  PYRT_NOT_NULL(exe);
  // None of the program's devices is in this process (other processes run it): nothing to do
  // here, and jaxlib passes no lists.
  if (exe->devices.empty() && args->execute_device == nullptr && args->num_devices == 0) {
    return nullptr;
  }
  // A program without outputs is valid (its effects count); jaxlib then passes no output lists.
  bool has_outputs = !exe->info->program->outputs.empty();
  if (has_outputs) PYRT_NOT_NULL(args->output_lists);
  if (args->num_args > 0) PYRT_NOT_NULL(args->argument_lists);
  const PJRT_ExecuteOptions* options = args->options;
  if (options != nullptr && options->struct_size < PYRT_SIZE_THROUGH(PJRT_ExecuteOptions, context)) {
    return ToPjrtError(InvalidArgument("PJRT_LoadedExecutable_Execute: options struct_size is too small"));
  }
  std::vector<PJRT_Device*> devices = exe->devices;
  if (args->execute_device != nullptr) {
    PYRT_RETURN_IF_ERROR(args->execute_device->CheckAddressable());
    devices = {args->execute_device};
  }
  if (args->num_devices != devices.size()) {
    return ToPjrtError(InvalidArgument(
        "pyrt: the executable runs on " + std::to_string(devices.size()) + " device(s) but " +
        std::to_string(args->num_devices) + " argument lists were given"));
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    if (has_outputs) PYRT_NOT_NULL(args->output_lists[d]);
    if (args->num_args > 0) PYRT_NOT_NULL(args->argument_lists[d]);
  }
  if (devices.size() > 1) {  // one run over several devices: all at once
    std::vector<std::shared_ptr<Completion>> done;
    PYRT_RETURN_IF_ERROR(ExecuteOnDevices(exe, devices, args->argument_lists, args->num_args,
                                          options, has_outputs ? args->output_lists : nullptr,
                                          &done));
    for (size_t d = 0; d < devices.size() && args->device_complete_events != nullptr; ++d) {
      args->device_complete_events[d] = NewEvent(done[d]);
    }
    return nullptr;
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

// ---------------------------------------------------------------- the Shardings extension

namespace {
// A program on one device reports no shardings (NULL), as XLA:CPU's executables do; a partitioned
// one reports the OpSharding of each parameter and output, as Shardy assigned them.
PJRT_Error* ReturnShardings(PJRT_Shardings_Executable_Shardings_Args* args, size_t count,
                            const std::vector<const char*>& pointers,
                            const std::vector<size_t>& sizes) {
  args->num_shardings = count;
  args->shardings = pointers.empty() ? nullptr : pointers.data();
  args->sharding_sizes = sizes.empty() ? nullptr : sizes.data();
  return nullptr;
}
}  // namespace

PJRT_Error* Shardings_ParameterShardings(PJRT_Shardings_Executable_Shardings_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, sharding_sizes);
  return ReturnShardings(args, program.inputs.size(), info.parameter_sharding_ptrs,
                         info.parameter_sharding_sizes);
}

PJRT_Error* Shardings_OutputShardings(PJRT_Shardings_Executable_Shardings_Args* args) {
  PYRT_EXECUTABLE_ARGS(args, sharding_sizes);
  return ReturnShardings(args, program.outputs.size(), info.output_sharding_ptrs,
                         info.output_sharding_sizes);
}

}  // namespace pyrt
