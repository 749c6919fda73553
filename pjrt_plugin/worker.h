// Worker: the per-device thread that runs a device's programs one at a time, in order.
//
// Threads and the GIL: jobs run Python, so nothing here waits for a job while holding the GIL
// (~Worker and a full queue in Schedule drop it first). At exit, WaitForAllWorkers (registered
// with Python's atexit by the first worker) lets the jobs queued before exit finish while the
// interpreter can still run them.
#ifndef PYRT_PJRT_PLUGIN_WORKER_H_
#define PYRT_PJRT_PLUGIN_WORKER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace pyrt {

// Runs jobs one at a time, in submission order, on a thread of its own; in synchronous mode
// (a debugging aid) jobs run inline on the submitting thread.
class Worker {
 public:
  explicit Worker(bool synchronous);
  ~Worker();  // finishes queued jobs, then joins; drops the GIL while waiting
  void Schedule(std::function<void()> job);
  // True when no job is queued or running: work may then run on the caller's thread without
  // overtaking anything queued earlier.
  bool Idle() const { return state_->pending == 0; }
  // True on the worker's own thread, i.e. inside a job (a host callback of a running program).
  bool OnWorkerThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  // The number of jobs scheduled so far, and a wait (until `deadline`) for the first `ticket`
  // jobs to finish; true if they have.
  uint64_t Ticket();
  bool WaitFinished(uint64_t ticket, std::chrono::steady_clock::time_point deadline);

 private:
  static constexpr size_t kMaxQueuedJobs = 64;  // Schedule blocks beyond this many

  // Everything the worker thread touches. The thread holds it through a shared_ptr, so a thread
  // left running when the Worker is destroyed during interpreter finalization (see ~Worker)
  // never touches freed memory.
  struct State {
    std::mutex mu;
    std::condition_variable cv;           // notified when a job arrives or on stop
    std::condition_variable finished_cv;  // notified when `finished` grows
    std::condition_variable space_cv;     // notified when a job leaves the queue
    std::deque<std::function<void()>> jobs;  // guarded by mu
    bool stopping = false;                   // guarded by mu
    uint64_t scheduled = 0, finished = 0;    // guarded by mu
    std::atomic<int> pending{0};             // queued or running
  };
  static void Loop(std::shared_ptr<State> state);

  bool synchronous_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::thread thread_;
};

// Waits (up to `seconds`) until every job that was scheduled on an asynchronous worker before
// the first call has finished; true if they all have. Runs from Python's atexit (see
// bridge::CallAtExit): jobs run Python code, and a thread that needs the GIL once the interpreter
// has begun finalizing is ended mid-job, which used to abort the process ("PyGILState_Release:
// thread state must be current") whenever a script exited with work in flight. Jobs scheduled
// later (by daemon threads) are not waited for, so exit cannot be held up forever.
bool WaitForAllWorkers(double seconds);

}  // namespace pyrt

#endif  // PYRT_PJRT_PLUGIN_WORKER_H_
