// PJRT entry points of errors, the plugin and events (see api_common.h for their shape).
#include <string>
#include <utility>

#include "pjrt_plugin/api_common.h"
#include "pjrt_plugin/event.h"
#include "pjrt_plugin/python_bridge.h"
#include "pjrt_plugin/runtime.h"
#include "pjrt_plugin/status.h"

namespace pyrt {

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
PJRT_Error* Error_ForEachPayload(PJRT_Error_ForEachPayload_Args*) { return nullptr; }

// ---------------------------------------------------------------- plugin

PJRT_Error* Plugin_Initialize(PJRT_Plugin_Initialize_Args*) { return nullptr; }

PJRT_Error* Plugin_Attributes(PJRT_Plugin_Attributes_Args* args) {
  PYRT_ARGS(args, num_attributes);
  static const NamedValues* attributes = [] {
    auto* a = new NamedValues;  // process lifetime, as the API requires
    a->AddInt("xla_version", 2);
    a->AddInts("stablehlo_current_version", {1, 17, 0});
    a->AddInts("stablehlo_minimum_version", {0, 9, 0});
    return a;
  }();
  return ReturnList(&args->attributes, &args->num_attributes, *attributes);
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

}  // namespace pyrt
