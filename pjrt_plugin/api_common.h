// What every PJRT C API entry point shares: the argument checks and the macros that return their
// errors, PJRT_Event creation, the declarations of the entry points (generated from
// api_slots.inc), and the wrapper that keeps C++ exceptions from crossing the C boundary.
//
// Every entry point has the same shape: check `args` (NULL, a struct_size shorter than the fields
// it touches, NULL handles) and return INVALID_ARGUMENT naming the entry point; then a short
// translation into runtime.h. No policy lives in an entry point. Destroy functions accept NULL and
// never fail. Each object's entry points have one home: event_api.cc (errors, events, plugin),
// client_api.cc, device_api.cc (device descriptions, devices, memories), buffer_api.cc,
// executable_api.cc (executables, loaded executables, Shardings), layout.cc (Layouts);
// api_table.cc fills PJRT_Api with them.
#ifndef PYRT_PJRT_PLUGIN_API_COMMON_H_
#define PYRT_PJRT_PLUGIN_API_COMMON_H_

#include <cxxabi.h>

#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "pjrt_plugin/event.h"
#include "pjrt_plugin/pjrt_abi.h"
#include "pjrt_plugin/status.h"

namespace pyrt {

// ---------------------------------------------------------------- argument checks

// INVALID_ARGUMENT naming PJRT_`fn` if `args` is NULL or its struct_size is smaller than the
// `needed` bytes the entry point reads; NULL otherwise.
inline PJRT_Error* CheckArgs(const void* args, size_t needed, const char* fn) {
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

// Returns the error of CheckArgs for an entry point that reads `args` up to `last_field`.
#define PYRT_ARGS(args, last_field)                                                             \
  if (PJRT_Error* e = CheckArgs(args, PYRT_SIZE_THROUGH(std::remove_pointer_t<decltype(args)>, \
                                                        last_field),                            \
                                __func__)) {                                                    \
    return e;                                                                                   \
  }

// Returns INVALID_ARGUMENT naming the entry point and `ptr` if `ptr` is NULL.
#define PYRT_NOT_NULL(ptr)                                                                \
  if ((ptr) == nullptr) {                                                                 \
    return ToPjrtError(InvalidArgument(std::string("PJRT_") + __func__ + ": " #ptr " is NULL")); \
  }

// Returns the Status `expr` as a PJRT_Error if it is not OK.
#define PYRT_RETURN_IF_ERROR(expr)            \
  do {                                        \
    Status _s = (expr);                       \
    if (!_s.ok()) return ToPjrtError(std::move(_s)); \
  } while (0)

// The preamble of an entry point on a buffer (args->buffer) or an executable (args->executable,
// loaded or not): PYRT_ARGS and PYRT_NOT_NULL, then a name for what the body reads (`buffer`;
// `info` and `program`). They need runtime.h.
#define PYRT_BUFFER_ARGS(args, last_field) \
  PYRT_ARGS(args, last_field);             \
  PYRT_NOT_NULL(args->buffer);             \
  PJRT_Buffer* buffer = args->buffer;
#define PYRT_EXECUTABLE_ARGS(args, last_field)                           \
  PYRT_ARGS(args, last_field);                                           \
  PYRT_NOT_NULL(args->executable);                                       \
  [[maybe_unused]] const ExecutableInfo& info = *args->executable->info; \
  [[maybe_unused]] const Program& program = *info.program;

// ---------------------------------------------------------------- results

// A PJRT_Event for `c`, owned by the caller (PJRT_Event_Destroy).
inline PJRT_Event* NewEvent(std::shared_ptr<Completion> c) { return new PJRT_Event{std::move(c)}; }

// Hands `items` out the way the C API returns a list or a string: a pointer to the first and a
// count, valid while `items` lives. Returns NULL (OK), so that an entry point can end with it.
template <typename First, typename Count, typename Items>
PJRT_Error* ReturnList(First* first, Count* count, Items& items) {
  *first = items.data();
  *count = items.size();
  return nullptr;
}

// Bytes handed out with a handle that owns them and its deleter (serialized executables, compile
// options, device assignments, layouts).
struct OwnedBytes {
  std::string bytes;
};
template <typename Handle>
void DeleteOwnedBytes(Handle* handle) {
  delete reinterpret_cast<OwnedBytes*>(handle);
}
template <typename Handle>
PJRT_Error* ReturnBytes(std::string bytes, const char** data, size_t* size, Handle** handle,
                        void (**deleter)(Handle*)) {
  auto* owned = new OwnedBytes{std::move(bytes)};
  *handle = reinterpret_cast<Handle*>(owned);
  *deleter = &DeleteOwnedBytes<Handle>;
  return ReturnList(data, size, owned->bytes);
}

// ---------------------------------------------------------------- the entry points

// What an entry point returns: a PJRT_Error* (NULL for OK), or nothing for the two that cannot
// fail.
template <typename Args>
struct EntryPointResult {
  using type = PJRT_Error*;
};
template <>
struct EntryPointResult<PJRT_Error_Destroy_Args> {
  using type = void;
};
template <>
struct EntryPointResult<PJRT_Error_Message_Args> {
  using type = void;
};

// `Name` implements PJRT_Name, for every slot api_slots.inc marks IMPL.
#define PYRT_DECLARE_IMPL(name) EntryPointResult<PJRT_##name##_Args>::type name(PJRT_##name##_Args* args);
#define PYRT_DECLARE_STUB(name)
#define PYRT_SLOT(index, name, kind) PYRT_DECLARE_##kind(name)
#include "pjrt_plugin/api_slots.inc"
#undef PYRT_SLOT
#undef PYRT_DECLARE_STUB
#undef PYRT_DECLARE_IMPL

// The Layouts extension (layout.cc): every pyrt array is row-major.
PJRT_Error* Layouts_MemoryLayout_Destroy(PJRT_Layouts_MemoryLayout_Destroy_Args* args);
PJRT_Error* Layouts_MemoryLayout_Serialize(PJRT_Layouts_MemoryLayout_Serialize_Args* args);
PJRT_Error* Layouts_Client_GetDefaultLayout(PJRT_Layouts_Client_GetDefaultLayout_Args* args);
PJRT_Error* Layouts_Buffer_MemoryLayout(PJRT_Layouts_Buffer_MemoryLayout_Args* args);
PJRT_Error* Layouts_Topology_GetDefaultLayout(void* args);
PJRT_Error* Layouts_Executable_OutputLayouts(PJRT_Layouts_Executable_Layouts_Args* args);
PJRT_Error* Layouts_Executable_ParameterLayouts(PJRT_Layouts_Executable_Layouts_Args* args);

// The Shardings extension (executable_api.cc): what Shardy assigned; none on one device.
PJRT_Error* Shardings_ParameterShardings(PJRT_Shardings_Executable_Shardings_Args* args);
PJRT_Error* Shardings_OutputShardings(PJRT_Shardings_Executable_Shardings_Args* args);

// The Profiler extension (profiler_api.cc), chained before `next`.
PJRT_Extension_Base* ProfilerExtension(PJRT_Extension_Base* next);

// ---------------------------------------------------------------- no exception crosses the ABI

template <typename F>
struct EntryPoint;
template <typename R, typename A>
struct EntryPoint<R (*)(A*)> {
  using Args = A;
  using Result = R;
};

// Entry point F, but a C++ exception becomes an INTERNAL error: one crossing the C boundary would
// abort the user's process.
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

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_API_COMMON_H_
