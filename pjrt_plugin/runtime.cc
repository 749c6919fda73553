#include "pjrt_plugin/runtime.h"

#include <cstring>

#include "pjrt_plugin/element_type.h"

namespace pyrt {

// ---------------------------------------------------------------- NamedValues

PJRT_NamedValue& NamedValues::Add(std::string name, PJRT_NamedValue_Type type) {
  strings_.push_back(std::move(name));
  PJRT_NamedValue v{};
  v.struct_size = sizeof(PJRT_NamedValue);
  v.name = strings_.back().data();
  v.name_size = strings_.back().size();
  v.type = type;
  v.value_size = 1;
  values_.push_back(v);
  return values_.back();
}

void NamedValues::AddInt(std::string name, int64_t value) {
  Add(std::move(name), PJRT_NamedValue_kInt64).int64_value = value;
}

void NamedValues::AddInts(std::string name, std::vector<int64_t> values) {
  int_lists_.push_back(std::move(values));
  PJRT_NamedValue& v = Add(std::move(name), PJRT_NamedValue_kInt64List);
  v.int64_array_value = int_lists_.back().data();
  v.value_size = int_lists_.back().size();
}

void NamedValues::AddString(std::string name, std::string value) {
  PJRT_NamedValue& v = Add(std::move(name), PJRT_NamedValue_kString);
  strings_.push_back(std::move(value));
  v.string_value = strings_.back().data();
  v.value_size = strings_.back().size();
}

void NamedValues::AddFloat(std::string name, float value) {
  Add(std::move(name), PJRT_NamedValue_kFloat).float_value = value;
}

// ---------------------------------------------------------------- arrays

std::shared_ptr<DeviceArray> DeviceArray::Of(std::shared_ptr<Storage> storage) {
  auto a = std::make_shared<DeviceArray>();
  a->storage = std::move(storage);
  a->ready->Set(Status::Ok());
  return a;
}

void CopyWhenReady(std::shared_ptr<DeviceArray> src, std::shared_ptr<Completion> done,
                   std::function<void(const Storage& from)> copy) {
  std::shared_ptr<Completion> ready = src->ready;
  ready->OnReady([src = std::move(src), done = std::move(done), copy = std::move(copy)](const Status& s) {
    if (s.ok()) copy(*src->storage);
    done->Set(s);
  });
}

// ---------------------------------------------------------------- executables

ExecutableInfo::ExecutableInfo(std::shared_ptr<Program> p) : program(std::move(p)) {
  for (const ArraySpec& out : program->outputs) {
    output_types.push_back(out.type);
    output_ranks.push_back(out.dims.size());
    output_dims.insert(output_dims.end(), out.dims.begin(), out.dims.end());
  }
  // The string lists PJRT hands out as (pointers, sizes) pairs.
  auto point_to = [](const std::vector<std::string>& strings, std::vector<const char*>& ptrs,
                     std::vector<size_t>& sizes) {
    for (const std::string& s : strings) {
      ptrs.push_back(s.data());
      sizes.push_back(s.size());
    }
  };
  point_to(program->output_memory_kinds, output_kind_ptrs, output_kind_sizes);
  point_to(program->input_memory_kinds, input_kind_ptrs, input_kind_sizes);
  point_to(program->parameter_shardings, parameter_sharding_ptrs, parameter_sharding_sizes);
  point_to(program->output_shardings, output_sharding_ptrs, output_sharding_sizes);
  for (const auto& [name, value] : program->cost_analysis) costs.AddFloat(name, static_cast<float>(value));
  for (const ArraySpec& in : program->inputs) input_layouts.push_back({RowMajorLayout(in.dims.size())});
  for (const ArraySpec& out : program->outputs) output_layouts.push_back({RowMajorLayout(out.dims.size())});
  for (auto& l : input_layouts) input_layout_ptrs.push_back(&l);
  for (auto& l : output_layouts) output_layout_ptrs.push_back(&l);
}

Status LoadProgram(PJRT_Client* client, std::shared_ptr<Program> program,
                   PJRT_LoadedExecutable** executable) {
  auto exe = std::make_unique<PJRT_LoadedExecutable>();
  exe->client = client;
  size_t n = program->device_ids.size();
  if (n == 0 || n != static_cast<size_t>(program->num_replicas * program->num_partitions)) {
    return InvalidArgument("pyrt: the device assignment has " + std::to_string(n) +
                           " entries for " + std::to_string(program->num_replicas) +
                           " replicas x " + std::to_string(program->num_partitions) +
                           " partitions");
  }
  for (size_t i = 0; i < n; ++i) {
    PJRT_Device* device = client->LookupDevice(program->device_ids[i]);
    if (device == nullptr) {
      return InvalidArgument("pyrt: the device assignment names device " +
                             std::to_string(program->device_ids[i]) + ", but this client has " +
                             std::to_string(client->devices.size()) +
                             " devices (set PYRT_DEVICE_COUNT to have more)");
    }
    if (!device->addressable()) continue;  // another process runs this part
    exe->devices.push_back(device);
    int replica = static_cast<int>(i / program->num_partitions);
    int partition = static_cast<int>(i % program->num_partitions);
    exe->logical_ids.push_back(PJRT_LogicalDeviceIds{replica, partition});
  }
  exe->info = std::make_shared<ExecutableInfo>(std::move(program));
  *executable = exe.release();
  return Status::Ok();
}

// ---------------------------------------------------------------- Execute

namespace {

// Takes back output buffers that will not be handed out.
void DeleteOutputs(const Program& program, PJRT_Buffer** outputs) {
  for (size_t i = 0; i < program.outputs.size(); ++i) {
    delete outputs[i];
    outputs[i] = nullptr;
  }
}

std::string ShapeString(PJRT_Buffer_Type type, const std::vector<int64_t>& dims) {
  std::string s = std::string(ElementTypeName(type)) + "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "," : "") + std::to_string(dims[i]);
  return s + "]";
}

// Step 1: the arrays of `args`, once each is checked against the program's parameters (count,
// type and shape, device) and found live.
Status CheckArguments(const PJRT_LoadedExecutable& exe, PJRT_Device* device,
                      PJRT_Buffer* const* args, size_t num_args,
                      std::vector<std::shared_ptr<DeviceArray>>* inputs) {
  const Program& program = *exe.info->program;
  if (exe.deleted) {
    return FailedPrecondition("pyrt: executable '" + program.name + "' was deleted");
  }
  if (num_args != program.inputs.size()) {
    return InvalidArgument("pyrt: '" + program.name + "' takes " +
                           std::to_string(program.inputs.size()) + " arguments, got " +
                           std::to_string(num_args));
  }
  inputs->reserve(num_args);
  for (size_t i = 0; i < num_args; ++i) {
    PJRT_Buffer* b = args[i];
    const ArraySpec& spec = program.inputs[i];
    std::string which = "argument " + std::to_string(i) + " of '" + program.name + "'";
    if (b == nullptr) return InvalidArgument("pyrt: " + which + " is NULL");
    // A token parameter takes any buffer without bytes: a token, or the bool[0] JAX passes
    // for an ordered effect's runtime token.
    bool token_ok = spec.type == PJRT_Buffer_Type_TOKEN && b->nbytes == 0;
    if (!token_ok && (b->type != spec.type || b->dims != spec.dims)) {
      return InvalidArgument("pyrt: " + which + " is " + ShapeString(b->type, b->dims) +
                             " but the program expects " + ShapeString(spec.type, spec.dims));
    }
    if (b->device != device) {
      return InvalidArgument("pyrt: " + which + " is on " + b->device->description.to_string +
                             " but the program runs on " + device->description.to_string +
                             "; move it there with jax.device_put");
    }
    std::shared_ptr<DeviceArray> array = b->array();
    if (array == nullptr) {
      return InvalidArgument("pyrt: " + which +
                             " has been deleted or donated; pass a live array");
    }
    inputs->push_back(std::move(array));
  }
  return Status::Ok();
}

// Step 2: donation (policy in Python: the program's input_output_aliases). An aliased input is
// donated unless the caller forbids it or other frameworks view its memory; its buffer is then
// deleted at once, as on XLA:CPU, and its index goes to `donating`. Whether its memory can
// actually be reused is decided when the run starts (see Job); if not, the output simply gets new
// memory.
Status TakeDonations(const Program& program, PJRT_Buffer* const* args, size_t num_args,
                     const PJRT_ExecuteOptions* options,
                     const std::vector<std::shared_ptr<DeviceArray>>& inputs,
                     std::vector<int64_t>* donating) {
  std::vector<int64_t> candidates;
  for (const auto& [in, out] : program.input_output_aliases) {
    bool forbidden = false;
    if (options != nullptr && options->non_donatable_input_indices != nullptr) {
      for (size_t k = 0; k < options->num_non_donatable_input_indices; ++k) {
        forbidden |= options->non_donatable_input_indices[k] == in;
      }
    }
    if (forbidden) continue;
    for (size_t k = 0; k < num_args; ++k) {
      if (k != static_cast<size_t>(in) && args[k] == args[in]) {  // as XLA:CPU
        return InvalidArgument(
            "pyrt: argument " + std::to_string(in) + " of '" + program.name +
            "' is donated but the same buffer is also argument " + std::to_string(k) +
            " (Attempt to use a buffer that was previously donated in the same call to "
            "Execute(); toy example for this bug: `f(donate(a), a)`)");
      }
    }
    candidates.push_back(in);
  }
  for (int64_t in : candidates) {
    PJRT_Buffer* b = args[in];
    std::shared_ptr<DeviceArray> taken;  // dropped after the lock (it is also in `inputs`)
    std::lock_guard<std::mutex> lock(b->mu);
    // Other frameworks viewing the memory (e.g. np.asarray) keep the array alive, undonated, as
    // on XLA:CPU.
    if (b->external_references > 0 || b->array_ != inputs[in]) continue;
    taken.swap(b->array_);  // the buffer is now deleted; no external reference can pin it
    donating->push_back(in);
  }
  return Status::Ok();
}

// Step 3: the output buffers, in `outputs`, on `device`; their arrays (returned) are ready when
// the run completes them.
std::vector<std::shared_ptr<DeviceArray>> MakeOutputs(const Program& program, PJRT_Device* device,
                                                      PJRT_Buffer** outputs) {
  std::vector<std::shared_ptr<DeviceArray>> results;
  for (size_t i = 0; i < program.outputs.size(); ++i) {
    auto array = std::make_shared<DeviceArray>();
    const ArraySpec& spec = program.outputs[i];
    const std::string& kind = i < program.output_memory_kinds.size()
                                  ? program.output_memory_kinds[i] : std::string("device");
    outputs[i] = NewBuffer(device->MemoryOfKind(kind), device, spec.type, spec.dims, array);
    results.push_back(std::move(array));
  }
  return results;
}

std::atomic<uint64_t> next_run{1};  // ids of runs, for the communicator of each

// Where `device` runs the executable (its id, replica and partition) in a new run of `devices`
// device runs in this process.
bridge::RunPlace PlaceOf(const PJRT_LoadedExecutable& exe, PJRT_Device* device, uint64_t run,
                         int devices) {
  for (size_t d = 0; d < exe.devices.size(); ++d) {
    if (exe.devices[d] != device) continue;
    return {device->description.id, exe.logical_ids[d].replica, exe.logical_ids[d].partition,
            run, devices};
  }
  return {};
}

// One run of a program on one device, held by value: a queued job outlives Execute.
struct Job {
  std::shared_ptr<const ExecutableInfo> info;
  bridge::RunPlace place;
  std::vector<std::shared_ptr<DeviceArray>> inputs;
  std::vector<std::shared_ptr<DeviceArray>> results;
  std::shared_ptr<Completion> completion;
  DeviceStats* stats;
  std::vector<int64_t> donating;

  // Waits for the inputs, runs the program (bridge::Run takes the GIL), then completes the
  // results and `completion` with its status.
  void operator()() const {
    Status status;
    std::vector<std::shared_ptr<Storage>> in_storages, out_storages;
    for (const auto& in : inputs) {
      status = in->ready->Await();  // only ever earlier work: no cycles
      if (!status.ok()) break;
      in_storages.push_back(in->storage);
    }
    // A donated input's memory is reused only if it is writable and nothing else holds it: its
    // DeviceArray (1) and in_storages (1) are the only owners, so no other buffer (e.g. a
    // zero-copy reshape output) and no Python view can see the write.
    std::vector<int64_t> donated;
    if (status.ok()) {
      for (int64_t in : donating) {
        const std::shared_ptr<Storage>& s = in_storages[in];
        if (s->writable() && s.use_count() == 2 && inputs[in].use_count() <= 2) {
          donated.push_back(in);
        }
      }
    }
    if (status.ok()) {
      status = bridge::Run(*info->program, place, in_storages, donated, stats, &out_storages);
    }
    in_storages.clear();
    if (status.ok()) {
      for (size_t i = 0; i < results.size(); ++i) results[i]->storage = std::move(out_storages[i]);
    }
    for (const auto& r : results) r->ready->Set(status);
    completion->Set(status);
  }
};

// Step 4: where the program runs (policy in Python, see executable.py):
// - Programs marked cheap or synchronous run right here when nothing is queued before them
//   and their inputs are ready: for cheap ones a thread hand-off would cost more than the
//   work (XLA:CPU does the same for cheap computations).
// - Everything else goes to the device's in-order worker, and a synchronous program is
//   waited for. Synchronous programs (those calling host callbacks, and all programs when the
//   client is synchronous) thus finish inside Execute, as XLA:CPU runs programs with host
//   callbacks, so their errors raise at the user's call rather than at a later read.
// - Work a host callback starts on this device runs here (`nested`, see Execute).
// An error of a program that finished here is returned and its outputs are deleted, never handed
// out; otherwise `done` completes when the run does.
Status Dispatch(Job job, PJRT_Device* device, bool nested, bool inputs_ready,
                PJRT_Buffer** outputs, std::shared_ptr<Completion>* done) {
  std::shared_ptr<const ExecutableInfo> info = job.info;
  const Program& program = *info->program;
  std::shared_ptr<Completion> completion = job.completion;
  bool synchronous = program.synchronous || device->client->options.synchronous;
  if (nested || ((program.run_inline || synchronous) && inputs_ready && device->worker->Idle())) {
    job();
  } else {
    device->worker->Schedule(std::move(job));
    if (!synchronous) {
      *done = completion;
      return Status::Ok();
    }
    bridge::ScopedGilRelease no_gil;  // the worker needs the GIL to run the program
    completion->Await();
  }
  Status status = completion->status();
  if (!status.ok()) {
    DeleteOutputs(program, outputs);
    return status;
  }
  *done = completion;
  return Status::Ok();
}

}  // namespace

Status Execute(PJRT_LoadedExecutable* exe, PJRT_Device* device, PJRT_Buffer* const* args,
               size_t num_args, const PJRT_ExecuteOptions* options, PJRT_Buffer** outputs,
               std::shared_ptr<Completion>* done) {
  std::shared_ptr<const ExecutableInfo> info = exe->info;
  const Program& program = *info->program;
  // Held until Execute returns, beside the job's own copy (the job's donation check allows for
  // both holders).
  std::vector<std::shared_ptr<DeviceArray>> inputs;
  Status s = CheckArguments(*exe, device, args, num_args, &inputs);
  if (!s.ok()) return s;
  bool inputs_ready = true;
  for (const auto& in : inputs) inputs_ready = inputs_ready && in->ready->IsReady();
  // A host callback of a program running on the worker may itself run work on this device
  // (jax.device_put + jnp ops inside the callback). That work runs at once, on this thread: queued
  // behind the job that is waiting for it, it would never run. Inputs still queued cannot be
  // waited for either.
  bool nested = device->worker->OnWorkerThread();
  if (nested && !inputs_ready) {
    return FailedPrecondition(
        "pyrt: a host callback running on " + device->description.to_string + " passed '" +
        program.name + "' an array that work queued after the callback's program computes; "
        "it would wait forever. Compute it inside the callback, or pass it into the program");
  }
  std::vector<int64_t> donating;
  s = TakeDonations(program, args, num_args, options, inputs, &donating);
  if (!s.ok()) return s;
  Job job{info, PlaceOf(*exe, device, next_run++, 1), inputs, MakeOutputs(program, device, outputs),
          std::make_shared<Completion>(), &device->stats, std::move(donating)};
  return Dispatch(std::move(job), device, nested, inputs_ready, outputs, done);
}

// ---------------------------------------------------------------- buffers

PJRT_Buffer* NewBuffer(PJRT_Memory* memory, PJRT_Device* device, PJRT_Buffer_Type type,
                       std::vector<int64_t> dims, std::shared_ptr<DeviceArray> array) {
  auto* b = new PJRT_Buffer;
  b->client = device->client;
  b->device = device;
  b->memory = memory;
  b->type = type;
  size_t count = 0;
  ElementCount(dims, &count);
  b->nbytes = count * ElementSize(type);
  b->dims = std::move(dims);
  b->array_ = std::move(array);
  return b;
}

Status ExecuteOnDevices(PJRT_LoadedExecutable* exe, const std::vector<PJRT_Device*>& devices,
                        PJRT_Buffer* const* const* arg_lists, size_t num_args,
                        const PJRT_ExecuteOptions* options, PJRT_Buffer** const* output_lists,
                        std::vector<std::shared_ptr<Completion>>* done) {
  std::shared_ptr<const ExecutableInfo> info = exe->info;
  const Program& program = *info->program;
  uint64_t run = next_run++;
  // Every device's arguments are checked before any donation is taken: a bad argument list
  // must leave every donated buffer intact.
  std::vector<std::vector<std::shared_ptr<DeviceArray>>> all_inputs(devices.size());
  Status s;
  for (size_t d = 0; d < devices.size() && s.ok(); ++d) {
    s = CheckArguments(*exe, devices[d], num_args ? arg_lists[d] : nullptr, num_args,
                       &all_inputs[d]);
    if (s.ok() && devices[d]->worker->OnWorkerThread()) {
      s = FailedPrecondition("pyrt: a host callback started '" + program.name + "', a program "
                             "over several devices, on a device its own program occupies; run "
                             "it outside the callback");
    }
  }
  std::vector<Job> jobs;
  for (size_t d = 0; d < devices.size() && s.ok(); ++d) {
    PJRT_Device* device = devices[d];
    std::vector<std::shared_ptr<DeviceArray>> inputs = std::move(all_inputs[d]);
    std::vector<int64_t> donating;
    s = TakeDonations(program, num_args ? arg_lists[d] : nullptr, num_args, options, inputs,
                      &donating);
    if (!s.ok()) break;
    bridge::RunPlace place = PlaceOf(*exe, device, run, static_cast<int>(devices.size()));
    jobs.push_back(Job{info, place, std::move(inputs),
                       MakeOutputs(program, device, output_lists ? output_lists[d] : nullptr),
                       std::make_shared<Completion>(), &device->stats, std::move(donating)});
  }
  if (!s.ok()) {
    for (size_t d = 0; d < jobs.size(); ++d) DeleteOutputs(program, output_lists[d]);
    return s;
  }
  done->clear();
  for (const Job& job : jobs) done->push_back(job.completion);
  {
    bridge::ScopedGilRelease no_gil;  // Schedule may wait for queue space; workers need the GIL
    std::lock_guard<std::mutex> lock(devices.front()->client->launch_mu);
    for (size_t d = 0; d < jobs.size(); ++d) devices[d]->worker->Schedule(std::move(jobs[d]));
  }
  if (!program.synchronous && !devices.front()->client->options.synchronous) {
    return Status::Ok();
  }
  Status first;
  {
    bridge::ScopedGilRelease no_gil;
    for (const auto& completion : *done) {
      Status status = completion->Await();
      if (first.ok() && !status.ok()) first = status;
    }
  }
  if (!first.ok()) {
    for (size_t d = 0; d < devices.size(); ++d) DeleteOutputs(program, output_lists[d]);
  }
  return first;
}

Status CopyToMemory(PJRT_Buffer* src, PJRT_Memory* memory, PJRT_Buffer** dst) {
  std::shared_ptr<DeviceArray> from = src->array();
  if (from == nullptr) return InvalidArgument("pyrt: cannot copy a deleted buffer");
  PJRT_Device* device = memory->devices.front();
  auto to = std::make_shared<DeviceArray>();
  size_t nbytes = src->nbytes;
  DeviceStats* stats = &device->stats;
  CopyWhenReady(std::move(from), to->ready, [to, nbytes, stats](const Storage& bytes) {
    auto storage = Storage::Allocate(nbytes, stats);
    std::memcpy(storage->data(), bytes.data(), nbytes);
    to->storage = std::move(storage);
  });
  *dst = NewBuffer(memory, device, src->type, src->dims, std::move(to));
  return Status::Ok();
}

// ---------------------------------------------------------------- client

namespace {
Status ParseOptions(const PJRT_NamedValue* values, size_t n, ClientOptions* options) {
  for (size_t i = 0; i < n; ++i) {
    const PJRT_NamedValue& v = values[i];
    std::string name(v.name, v.name_size);
    if (name == "device_count" && v.type == PJRT_NamedValue_kInt64) {
      if (v.int64_value < 1 || v.int64_value > 1024) {
        return InvalidArgument("pyrt: device_count must be between 1 and 1024, got " +
                               std::to_string(v.int64_value));
      }
      options->device_count = static_cast<int>(v.int64_value);
    } else if (name == "synchronous" && v.type == PJRT_NamedValue_kInt64) {
      options->synchronous = v.int64_value != 0;
    } else if (name == "synchronous" && v.type == PJRT_NamedValue_kBool) {
      options->synchronous = v.bool_value;
    } else if (name == "platform_version" && v.type == PJRT_NamedValue_kString) {
      options->platform_version.assign(v.string_value, v.value_size);
    } else if (name == "node_id" && v.type == PJRT_NamedValue_kInt64) {
      options->node_id = static_cast<int>(v.int64_value);
    } else if (name == "num_nodes" && v.type == PJRT_NamedValue_kInt64) {
      options->num_nodes = static_cast<int>(v.int64_value);
    } else {
      return InvalidArgument("pyrt: unknown client option '" + name +
                             "' (or wrong type); known: device_count (int), synchronous "
                             "(bool), platform_version (str), node_id (int), num_nodes (int)");
    }
  }
  if (options->num_nodes < 1 || options->node_id < 0 || options->node_id >= options->num_nodes) {
    return InvalidArgument("pyrt: node_id " + std::to_string(options->node_id) +
                           " is not a process of num_nodes " + std::to_string(options->num_nodes));
  }
  return Status::Ok();
}
}  // namespace
}  // namespace pyrt

PJRT_Client::PJRT_Client(const pyrt::ClientOptions& opts,
                         const std::vector<pyrt::bridge::DevicePlace>& places)
    : options(opts) {
  const std::string total = std::to_string(places.size());
  for (const pyrt::bridge::DevicePlace& place : places) {
    auto device = std::make_unique<PJRT_Device>();
    device->client = this;
    device->local_hardware_id = place.local_hardware_id;
    PJRT_DeviceDescription& d = device->description;
    d.id = place.id;
    d.process_index = place.process_index;
    std::string id = std::to_string(place.id), process = std::to_string(place.process_index);
    d.to_string = "PyrtDevice(id=" + id + (options.num_nodes > 1 ? ", process=" + process : "") + ")";
    d.debug_string = "PyrtDevice(id=" + id + ", process_index=" + process +
                     ", kind=pyrt, runtime=Python/NumPy)";
    d.attributes.AddInt("local_hardware_id", place.local_hardware_id);
    d.attributes.AddInt("synchronous", options.synchronous ? 1 : 0);
    devices.push_back(device.get());
    if (place.process_index == options.node_id) {  // ours: memories and a worker
      // Two memories, as XLA:CPU's devices have: "device" (the default) and "pinned_host", for
      // memory-kind annotations (compute_on, offloading). Both are host memory here.
      for (int kind_id : {0, 1}) {
        auto memory = std::make_unique<PJRT_Memory>();
        memory->client = this;
        memory->id = kind_id * static_cast<int>(places.size()) + place.id;
        memory->kind_id = kind_id;
        memory->kind = kind_id == 0 ? "device" : "pinned_host";
        memory->to_string = "PyrtMemory(id=" + std::to_string(memory->id) + ", kind=" +
                            memory->kind + ")";
        memory->debug_string = memory->to_string + " of " + d.to_string;
        memory->devices.push_back(device.get());
        device->memories.push_back(memory.get());
        memories.push_back(memory.get());
        owned_memories.push_back(std::move(memory));
      }
      device->default_memory = device->memories[0];
      device->worker = std::make_unique<pyrt::Worker>(options.synchronous);
      addressable_devices.push_back(device.get());
    }
    owned_devices.push_back(std::move(device));
  }
}

pyrt::Status PJRT_Device::CheckAddressable() const {
  if (addressable()) return pyrt::Status::Ok();
  return pyrt::InvalidArgument(
      "pyrt: device " + std::to_string(description.id) + " belongs to process " +
      std::to_string(description.process_index) + ", not to this one (process " +
      std::to_string(client->options.node_id) + "); only a process's own devices hold its "
      "buffers and run its programs (jax.local_devices())");
}

PJRT_Memory* PJRT_Device::MemoryOfKind(const std::string& kind) const {
  for (PJRT_Memory* m : memories) {
    if (m->kind == kind) return m;
  }
  return default_memory;
}

PJRT_Client::~PJRT_Client() {
  for (auto& d : owned_devices) d->worker.reset();  // drain before anything else goes
}

PJRT_Device* PJRT_Client::LookupDevice(int id) const {
  for (PJRT_Device* d : devices) {
    if (d->description.id == id) return d;
  }
  return nullptr;
}

namespace pyrt {
Status CreateClient(const PJRT_NamedValue* values, size_t n, const bridge::KeyValueStore& kv,
                    PJRT_Client** client) {
  ClientOptions options;
  Status s = ParseOptions(values, n, &options);
  if (!s.ok()) return s;
  std::vector<bridge::DevicePlace> places;
  if (options.num_nodes == 1) {
    for (int id = 0; id < options.device_count; ++id) places.push_back({id, 0, id});
  } else {
    s = bridge::JoinProcesses(options.node_id, options.num_nodes, options.device_count, kv,
                              &places);
    if (!s.ok()) return s;
  }
  *client = new PJRT_Client(options, places);
  return Status::Ok();
}
}  // namespace pyrt
