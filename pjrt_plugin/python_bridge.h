// The one narrow interface between the C++ ABI layer and the Python runtime (jax_pyrt._bridge):
// compile, deserialize, serialize and run. Everything else in pjrt_plugin/ is Python-free.
//
// Threads and the GIL: every function here takes the GIL itself (PyGILState_Ensure), so it may be
// called from any thread, with or without the GIL. Callers must not hold a pyrt mutex while
// calling in, since the GIL may be held by a thread that waits on that mutex.
#ifndef PYRT_PJRT_PLUGIN_PYTHON_BRIDGE_H_
#define PYRT_PJRT_PLUGIN_PYTHON_BRIDGE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/status.h"
#include "pjrt_plugin/storage.h"

typedef struct _object PyObject;

namespace pyrt {

struct ArraySpec {
  PJRT_Buffer_Type type = PJRT_Buffer_Type_INVALID;
  std::vector<int64_t> dims;
  size_t nbytes = 0;
};

// A program compiled by the Python runtime, with its metadata copied out once at compile time
// (from jax_pyrt._bridge.Compiled)
// so that metadata queries never need the GIL. Immutable after construction.
struct Program {
  ~Program();  // releases `handle` (takes the GIL if Python is still alive)

  PyObject* handle = nullptr;  // jax_pyrt.executable.Executable, passed back to serialize/run
  std::string name;
  std::string fingerprint;
  std::string text;             // StableHLO text, for OptimizedProgram
  std::string compile_options;  // serialized xla.CompileOptionsProto
  std::string device_assignment;  // serialized xla.DeviceAssignmentProto
  int64_t num_replicas = 1;
  int64_t num_partitions = 1;
  std::vector<int> device_ids;  // device per (replica, partition), replica-major
  std::vector<ArraySpec> inputs;
  std::vector<ArraySpec> outputs;
  std::vector<std::string> output_memory_kinds;
  std::vector<std::string> input_memory_kinds;
  std::vector<std::pair<std::string, double>> cost_analysis;
  // Donation: (input index, output index) pairs whose output may reuse the input's storage.
  std::vector<std::pair<int64_t, int64_t>> input_output_aliases;
  // PJRT_Executable_GetCompiledMemoryStats, computed by the runtime at compile time.
  int64_t argument_size_in_bytes = 0, output_size_in_bytes = 0, alias_size_in_bytes = 0,
          temp_size_in_bytes = 0;
  int64_t code_size_in_bytes = 0;
  bool run_inline = false;  // cheap enough to run on the caller's thread (see runtime.cc)
  bool synchronous = false;  // Execute returns only when it has run (see runtime.cc)
  // Serialized xla.OpSharding of each parameter and output; empty for a program on one device.
  std::vector<std::string> parameter_shardings, output_shardings;
};

namespace bridge {

// jax.distributed's key-value store, as PJRT_Client_Create received it.
struct KeyValueStore {
  PJRT_KeyValueGetCallback get = nullptr;
  void* get_arg = nullptr;
  PJRT_KeyValuePutCallback put = nullptr;
  void* put_arg = nullptr;
};

// A device of the whole job: its global id, its process, and its index among that process's
// devices.
struct DevicePlace {
  int id = 0;
  int process_index = 0;
  int local_hardware_id = 0;
};

// Makes this process one of `num_processes` (jax_pyrt._bridge.join_processes): publishes its
// `local_devices` devices in `kv`, reads the other processes', and connects the communicator
// their collectives cross processes through. `kv` is used only during the call. Returns every
// device of the job, in id order.
Status JoinProcesses(int process_index, int num_processes, int local_devices,
                     const KeyValueStore& kv, std::vector<DevicePlace>* devices);

// A process of the job that jax.distributed's coordination service reports gone or failed
// (jax_pyrt._bridge.process_failed): collectives waiting for it fail at once.
Status ProcessFailed(int process_index, const std::string& why);

// A profiler trace (jax.profiler, through pjrt_plugin/profiler_api.cc): start and stop
// recording programs and ops (jax_pyrt.tracing), and collect them as a serialized XSpace.
Status TraceStart();
Status TraceStop();
Status TraceCollect(std::string* xspace);

Status Compile(const std::string& code, const std::string& format, const std::string& options,
               std::shared_ptr<Program>* program);
Status Deserialize(const std::string& serialized, const std::string& override_options,
                   std::shared_ptr<Program>* program);
Status Serialize(const Program& program, std::string* serialized);

// Which device runs one run of a program: its id, and its replica and partition ids (what
// stablehlo.replica_id / partition_id give).
struct RunPlace {
  int device = 0;
  int replica = 0;
  int partition = 0;
  // The run this device run belongs to, and how many devices run it: the device runs of one run
  // meet through one communicator for their collectives.
  uint64_t run = 0;
  int devices = 1;
};

// Runs `program` on views of `inputs`. Each output is a NumPy array that becomes the storage of
// an output buffer without a copy; it is accounted to `stats`. `donated` lists the inputs the
// program may write into (their views are writable); an output the runtime wrote into such an
// input shares its Storage.
Status Run(const Program& program, const RunPlace& place,
           const std::vector<std::shared_ptr<Storage>>& inputs,
           const std::vector<int64_t>& donated, DeviceStats* stats,
           std::vector<std::shared_ptr<Storage>>* outputs);

// False once the interpreter is finalizing: then Python objects are leaked, not touched.
bool PythonAlive();

// Runs `fn` with the GIL from any thread without ever waiting for the GIL (safe in
// destructors): at once if this thread holds the GIL, else on the main thread soon after.
// Skipped (a leak) once the interpreter is finalizing.
void CallWithGil(std::function<void()> fn);
// Drops a reference the same way.
void DecRef(PyObject* object);

// Registers `wait` with Python's atexit (once per process; later calls do nothing), so that it
// runs before the interpreter begins finalizing. It is called without the GIL, with a short
// timeout, until it returns true; pending signals are handled between calls, so Ctrl-C can
// interrupt the wait.
void CallAtExit(bool (*wait)(double seconds));

// Drops the GIL for its scope if this thread holds it, so that the thread can wait for work
// (on a device worker) that needs the GIL.
class ScopedGilRelease {
 public:
  ScopedGilRelease();
  ~ScopedGilRelease();
  ScopedGilRelease(const ScopedGilRelease&) = delete;
  ScopedGilRelease& operator=(const ScopedGilRelease&) = delete;

 private:
  void* saved_ = nullptr;  // PyThreadState*
};

}  // namespace bridge
}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_PYTHON_BRIDGE_H_
