// Completion: a one-shot signal carrying a Status, shared by PJRT_Events, buffers and jobs.
//
// Thread-safety: every method may be called from any thread. Callbacks registered with OnReady
// run exactly once, on the thread that calls Set (or at once if already set), never under the
// internal lock, so a callback may take the GIL or register further callbacks.
#ifndef PYRT_PJRT_PLUGIN_EVENT_H_
#define PYRT_PJRT_PLUGIN_EVENT_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "pjrt_plugin/status.h"

namespace pyrt {

class Completion {
 public:
  using Callback = std::function<void(const Status&)>;

  static std::shared_ptr<Completion> Ready(Status s = Status::Ok()) {
    auto c = std::make_shared<Completion>();
    c->Set(std::move(s));
    return c;
  }

  // Completes the signal; later calls are ignored.
  void Set(Status s);
  bool IsReady();
  // Blocks until set. The caller must not hold the GIL if the work it waits for needs it.
  Status Await();
  // The status; only meaningful once IsReady().
  Status status();
  void OnReady(Callback cb);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  Status status_;
  std::vector<Callback> callbacks_;
};

// Completes `done` when every completion in `inputs` is ready, with the first error among them.
void WhenAllReady(const std::vector<std::shared_ptr<Completion>>& inputs,
                  std::function<void(const Status&)> done);

}  // namespace pyrt

// The caller's handle to a completion; destroying it does not cancel anything.
struct PJRT_Event {
  std::shared_ptr<pyrt::Completion> completion;
};

#endif  // PYRT_PJRT_PLUGIN_EVENT_H_
