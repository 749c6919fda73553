// The PJRT profiler extension: jax.profiler.trace / start_trace record pyrt's programs and ops.
// jaxlib finds PLUGIN_Profiler_Api in the PJRT_Api's extension chain when it loads the plugin;
// for each trace it calls create, start, (the traced code runs), stop, collect_data and
// destroy. The runtime records the events (jax_pyrt.tracing); collect_data hands jaxlib their
// serialized XSpace, which it merges into the trace it writes.
#include <cstring>
#include <string>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/status.h"

struct PLUGIN_Profiler {
  std::string xspace;  // what collect_data returned; jaxlib reads it until destroy
};

struct PLUGIN_Profiler_Error {
  pyrt::Status status;
};

namespace pyrt {
namespace {

PLUGIN_Profiler_Error* ToProfilerError(Status s) {
  if (s.ok()) return nullptr;
  return new PLUGIN_Profiler_Error{std::move(s)};
}

// jaxlib sets struct_size only for the error functions' args; the others are read unchecked.
void ErrorDestroy(PLUGIN_Profiler_Error_Destroy_Args* args) {
  if (args != nullptr) delete args->error;
}

void ErrorMessage(PLUGIN_Profiler_Error_Message_Args* args) {
  if (args == nullptr || args->error == nullptr) return;
  args->message = args->error->status.message.data();
  args->message_size = args->error->status.message.size();
}

PLUGIN_Profiler_Error* ErrorGetCode(PLUGIN_Profiler_Error_GetCode_Args* args) {
  // A failure here would abort jaxlib: always succeed.
  if (args != nullptr && args->error != nullptr) args->code = args->error->status.code;
  return nullptr;
}

PLUGIN_Profiler_Error* Create(PLUGIN_Profiler_Create_Args* args) {
  if (args == nullptr) return ToProfilerError(InvalidArgument("PLUGIN_Profiler_Create: NULL args"));
  args->profiler = new PLUGIN_Profiler();
  return nullptr;
}

PLUGIN_Profiler_Error* Destroy(PLUGIN_Profiler_Args* args) {
  if (args != nullptr) delete args->profiler;
  return nullptr;
}

PLUGIN_Profiler_Error* Start(PLUGIN_Profiler_Args* args) {
  if (args == nullptr || args->profiler == nullptr) {
    return ToProfilerError(InvalidArgument("PLUGIN_Profiler_Start: NULL profiler"));
  }
  return ToProfilerError(bridge::TraceStart());
}

PLUGIN_Profiler_Error* Stop(PLUGIN_Profiler_Args* args) {
  if (args == nullptr || args->profiler == nullptr) {
    return ToProfilerError(InvalidArgument("PLUGIN_Profiler_Stop: NULL profiler"));
  }
  return ToProfilerError(bridge::TraceStop());
}

PLUGIN_Profiler_Error* CollectData(PLUGIN_Profiler_CollectData_Args* args) {
  if (args == nullptr || args->profiler == nullptr) {
    return ToProfilerError(InvalidArgument("PLUGIN_Profiler_CollectData: NULL profiler"));
  }
  PLUGIN_Profiler* profiler = args->profiler;
  if (args->buffer == nullptr) {  // the first (at jaxlib 0.10.2 the only) call: collect
    Status s = bridge::TraceCollect(&profiler->xspace);
    if (!s.ok()) {
      profiler->xspace.clear();
      args->buffer_size_in_bytes = 0;
      return ToProfilerError(s);
    }
    // jaxlib reads the plugin's buffer back from `buffer` (an empty one it skips).
    args->buffer = reinterpret_cast<uint8_t*>(profiler->xspace.data());
  } else if (args->buffer != reinterpret_cast<uint8_t*>(profiler->xspace.data())) {
    std::memcpy(args->buffer, profiler->xspace.data(), profiler->xspace.size());
  }
  args->buffer_size_in_bytes = profiler->xspace.size();
  return nullptr;
}

}  // namespace

PJRT_Extension_Base* ProfilerExtension(PJRT_Extension_Base* next) {
  static PLUGIN_Profiler_Api api{sizeof(PLUGIN_Profiler_Api), nullptr, &ErrorDestroy,
                                 &ErrorMessage, &ErrorGetCode, &Create, &Destroy, &Start,
                                 &Stop, &CollectData};
  static PJRT_Profiler_Extension extension{
      {sizeof(PJRT_Profiler_Extension), PJRT_Extension_Type_Profiler, next}, &api, 0};
  return &extension.base;
}

}  // namespace pyrt
