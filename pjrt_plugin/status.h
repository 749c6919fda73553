// Status: an error code plus message, and PJRT_Error, its heap form handed to callers.
#ifndef PYRT_PJRT_PLUGIN_STATUS_H_
#define PYRT_PJRT_PLUGIN_STATUS_H_

#include <string>
#include <utility>

#include "pjrt_plugin/pjrt_abi.h"

namespace pyrt {

struct Status {
  PJRT_Error_Code code = PJRT_Error_Code_OK;
  std::string message;

  static Status Ok() { return {}; }
  bool ok() const { return code == PJRT_Error_Code_OK; }
};

inline Status Error(PJRT_Error_Code code, std::string message) {
  return Status{code, std::move(message)};
}
inline Status InvalidArgument(std::string m) { return Error(PJRT_Error_Code_INVALID_ARGUMENT, std::move(m)); }
inline Status Unimplemented(std::string m) { return Error(PJRT_Error_Code_UNIMPLEMENTED, std::move(m)); }
inline Status FailedPrecondition(std::string m) { return Error(PJRT_Error_Code_FAILED_PRECONDITION, std::move(m)); }
inline Status NotFound(std::string m) { return Error(PJRT_Error_Code_NOT_FOUND, std::move(m)); }
inline Status Internal(std::string m) { return Error(PJRT_Error_Code_INTERNAL, std::move(m)); }

}  // namespace pyrt

// Owned by the caller once returned; freed by PJRT_Error_Destroy.
struct PJRT_Error {
  pyrt::Status status;
};

namespace pyrt {
// NULL for OK, as the C API wants.
inline PJRT_Error* ToPjrtError(Status s) {
  if (s.ok()) return nullptr;
  return new PJRT_Error{std::move(s)};
}
}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_STATUS_H_
