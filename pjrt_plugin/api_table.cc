// The PJRT_Api table: GetPjrtApi returns it with all 138 slots filled from api_slots.inc, and the
// Profiler, Shardings and Layouts extensions chained from extension_start. An IMPL slot holds its
// entry point (declared in api_common.h) behind Safe; a STUB answers UNIMPLEMENTED with its own
// name.
#include <cstring>
#include <string>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/status.h"

namespace pyrt {
namespace {

const char* const kSlotNames[] = {
#define PYRT_SLOT(index, name, kind) "PJRT_" #name,
#include "pjrt_plugin/api_slots.inc"
#undef PYRT_SLOT
};

template <int kSlot>
PJRT_Error* NotImplemented(void*) {
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
  api.extension_start = ProfilerExtension(&shardings.base);
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
