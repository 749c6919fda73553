// The objects behind PJRT's opaque handles: client, device, memory, buffer, executable (each
// device's worker, which runs its programs in order, is in worker.h).
//
// Ownership: the client owns its devices and memories (they live as long as the client). A buffer
// holds its DeviceArray through a shared_ptr; jobs in flight hold it too, so deleting a buffer
// never frees memory a running program reads or writes. Executables share the compiled Program.
#ifndef PYRT_PJRT_PLUGIN_RUNTIME_H_
#define PYRT_PJRT_PLUGIN_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pjrt_plugin/event.h"
#include "pjrt_plugin/layout.h"
#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/status.h"
#include "pjrt_plugin/storage.h"
#include "pjrt_plugin/worker.h"

namespace pyrt {

// Strings, attributes and the NamedValues pointing into them, kept together so the pointers
// handed to callers stay valid for the owner's lifetime.
class NamedValues {
 public:
  void AddInt(std::string name, int64_t value);
  void AddInts(std::string name, std::vector<int64_t> values);
  void AddString(std::string name, std::string value);
  void AddFloat(std::string name, float value);
  const PJRT_NamedValue* data() const { return values_.data(); }
  size_t size() const { return values_.size(); }

 private:
  PJRT_NamedValue& Add(std::string name, PJRT_NamedValue_Type type);
  std::deque<std::string> strings_;             // deque: stable addresses
  std::deque<std::vector<int64_t>> int_lists_;  // deque: stable addresses
  std::vector<PJRT_NamedValue> values_;
};

// Client-creation settings, from PJRT_Client_Create's NamedValue options.
struct ClientOptions {
  int device_count = 1;  // devices of this process
  bool synchronous = false;
  std::string platform_version = "pyrt";
  // Set by jax.distributed.initialize(): this process's index and how many there are.
  int node_id = 0;
  int num_nodes = 1;
};

// The value of a buffer on its device: the Storage once it is computed, or the error that
// prevented it. `storage` is written before `ready` is set and never changed after.
struct DeviceArray {
  std::shared_ptr<Completion> ready = std::make_shared<Completion>();
  std::shared_ptr<Storage> storage;

  static std::shared_ptr<DeviceArray> Of(std::shared_ptr<Storage> storage);
};

// Once `src` is ready, runs `copy` on its storage (if it holds a value, not an error), then
// completes `done` with src's status. Never waits: it runs at once if `src` is ready, else on the
// thread that completes it. The one way bytes leave a buffer (ToHostBuffer, CopyRawToHost,
// CopyToMemory), since their callers may hold the GIL that the work computing `src` needs.
void CopyWhenReady(std::shared_ptr<DeviceArray> src, std::shared_ptr<Completion> done,
                   std::function<void(const Storage& from)> copy);

// Executable metadata in the shapes the C API returns, derived once from the Program.
struct ExecutableInfo {
  explicit ExecutableInfo(std::shared_ptr<Program> program);

  std::shared_ptr<Program> program;
  std::vector<PJRT_Buffer_Type> output_types;
  std::vector<int64_t> output_dims;  // concatenated
  std::vector<size_t> output_ranks;
  std::vector<const char*> output_kind_ptrs, input_kind_ptrs;
  std::vector<size_t> output_kind_sizes, input_kind_sizes;
  NamedValues costs;
  // Layouts extension: one layout per parameter / output, owned here.
  std::vector<PJRT_Layouts_MemoryLayout> input_layouts, output_layouts;
  std::vector<PJRT_Layouts_MemoryLayout*> input_layout_ptrs, output_layout_ptrs;
  // Shardings extension: serialized OpSharding per parameter / output; empty when not partitioned.
  std::vector<const char*> parameter_sharding_ptrs, output_sharding_ptrs;
  std::vector<size_t> parameter_sharding_sizes, output_sharding_sizes;
};

}  // namespace pyrt

struct PJRT_DeviceDescription {
  int id = 0;
  int process_index = 0;
  std::string kind = "pyrt";
  std::string debug_string;
  std::string to_string;
  pyrt::NamedValues attributes;
};

struct PJRT_Memory {
  // jaxlib >= 0.105 reads the first word of a PJRT_Memory as an optional pointer to a table of
  // per-object callbacks (it calls through it when non-NULL; see docs/architecture.md). pyrt has
  // none, so this word must be NULL and must stay first.
  const void* callbacks = nullptr;
  PJRT_Client* client = nullptr;
  int id = 0;
  std::string kind = "device";
  int kind_id = 0;  // 0: device, 1: pinned_host (both host memory for pyrt)
  std::string debug_string;
  std::string to_string;
  std::vector<PJRT_Device*> devices;  // the devices that address it
};

static_assert(offsetof(PJRT_Memory, callbacks) == 0, "jaxlib reads the first word of PJRT_Memory");

struct PJRT_Device {
  PJRT_Client* client = nullptr;
  PJRT_DeviceDescription description;
  int local_hardware_id = 0;
  PJRT_Memory* default_memory = nullptr;  // kind "device"; memories[1] is "pinned_host"
  std::vector<PJRT_Memory*> memories;
  pyrt::DeviceStats stats;
  std::unique_ptr<pyrt::Worker> worker;

  // This device's memory of `kind` ("device", "pinned_host"); the default one for others.
  PJRT_Memory* MemoryOfKind(const std::string& kind) const;
  // Whether this process holds the device (it has a worker then).
  bool addressable() const { return worker != nullptr; }
  // OK if addressable(); else an error naming the device's process.
  pyrt::Status CheckAddressable() const;
};

struct PJRT_Client {
  // `places`: every device of the job; those of this process (options.node_id) get memories and
  // a worker, the others only a description.
  PJRT_Client(const pyrt::ClientOptions& options,
              const std::vector<pyrt::bridge::DevicePlace>& places);
  ~PJRT_Client();
  PJRT_Device* LookupDevice(int id) const;

  pyrt::ClientOptions options;
  std::string platform_name = "pyrt";
  std::vector<std::unique_ptr<PJRT_Device>> owned_devices;
  std::vector<std::unique_ptr<PJRT_Memory>> owned_memories;
  std::vector<PJRT_Device*> devices;              // of the whole job
  std::vector<PJRT_Device*> addressable_devices;  // of this process
  std::vector<PJRT_Memory*> memories;             // of this process's devices
  // Held while the jobs of a run over several devices are queued, so that every device's queue
  // has the runs in the same order (two runs queued in opposite orders would each wait at a
  // collective for a device busy with the other).
  std::mutex launch_mu;
};

struct PJRT_Buffer {
  PJRT_Client* client = nullptr;
  PJRT_Device* device = nullptr;
  PJRT_Memory* memory = nullptr;
  PJRT_Buffer_Type type = PJRT_Buffer_Type_INVALID;
  std::vector<int64_t> dims;
  size_t nbytes = 0;

  // NULL once deleted.
  std::shared_ptr<pyrt::DeviceArray> array() {
    std::lock_guard<std::mutex> lock(mu);
    return array_;
  }
  void set_array(std::shared_ptr<pyrt::DeviceArray> a) {
    {
      std::lock_guard<std::mutex> lock(mu);
      array_.swap(a);
    }
    // `a` now holds the old array and releases it here, outside the lock: freeing its storage
    // may take the GIL (or run jaxlib's done-with-host-buffer callback, which does), and a thread
    // holding the GIL may be waiting for `mu` (e.g. in array()).
  }

  std::mutex mu;
  std::shared_ptr<pyrt::DeviceArray> array_;
  // While other frameworks view the storage (external references), `pinned` keeps it alive even
  // if the buffer is deleted.
  int external_references = 0;  // guarded by mu
  std::shared_ptr<pyrt::DeviceArray> pinned;  // guarded by mu
};

struct PJRT_Executable {
  std::shared_ptr<const pyrt::ExecutableInfo> info;
};

struct PJRT_LoadedExecutable {
  PJRT_Client* client = nullptr;
  std::shared_ptr<const pyrt::ExecutableInfo> info;
  std::vector<PJRT_Device*> devices;  // addressable devices, one per (replica, partition)
  std::vector<PJRT_LogicalDeviceIds> logical_ids;
  std::atomic<bool> deleted{false};
};

namespace pyrt {

// A client of this process's devices; with several processes (options node_id and num_nodes
// from jax.distributed) it first joins the others through their key-value store.
Status CreateClient(const PJRT_NamedValue* options, size_t num_options,
                    const bridge::KeyValueStore& kv, PJRT_Client** client);

PJRT_Buffer* NewBuffer(PJRT_Memory* memory, PJRT_Device* device, PJRT_Buffer_Type type,
                       std::vector<int64_t> dims, std::shared_ptr<DeviceArray> array);

// Binds a compiled Program to the client's devices.
Status LoadProgram(PJRT_Client* client, std::shared_ptr<Program> program,
                   PJRT_LoadedExecutable** executable);

// One run of `exe` on `device`: checks the arguments, takes the donated ones, makes the output
// buffers, then runs the program here or queues it on the device's worker (see Dispatch in
// runtime.cc). Outputs are new buffers whose ready events complete when the run does; `done`
// completes then too. The error of a run that finished inside Execute is returned, and then no
// outputs are handed out.
Status Execute(PJRT_LoadedExecutable* exe, PJRT_Device* device, PJRT_Buffer* const* args,
               size_t num_args, const PJRT_ExecuteOptions* options, PJRT_Buffer** outputs,
               std::shared_ptr<Completion>* done);

// Copies `src` into a new buffer in `memory` once `src` is ready.
// Runs `exe` on all `devices` at once (one device run each, on each device's worker, meeting
// through one communicator), with `arg_lists[d]` on devices[d]; fills `output_lists[d]` and
// `done[d]`. Never inline: each device run may wait for the others at a collective. On an error
// nothing is handed out.
Status ExecuteOnDevices(PJRT_LoadedExecutable* exe, const std::vector<PJRT_Device*>& devices,
                        PJRT_Buffer* const* const* arg_lists, size_t num_args,
                        const PJRT_ExecuteOptions* options, PJRT_Buffer** const* output_lists,
                        std::vector<std::shared_ptr<Completion>>* done);

Status CopyToMemory(PJRT_Buffer* src, PJRT_Memory* memory, PJRT_Buffer** dst);

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_RUNTIME_H_
