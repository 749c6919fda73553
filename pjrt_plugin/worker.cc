#include "pjrt_plugin/worker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "pjrt_plugin/python_bridge.h"

namespace pyrt {

namespace {
// Every asynchronous worker, for WaitForAllWorkers. Never destroyed: used during process exit.
std::mutex& WorkersMutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<Worker*>& Workers() {
  static auto* workers = new std::vector<Worker*>;
  return *workers;
}
}  // namespace

Worker::Worker(bool synchronous) : synchronous_(synchronous) {
  if (synchronous_) return;
  thread_ = std::thread([state = state_] { Loop(state); });
  {
    bridge::ScopedGilRelease no_gil;  // as in ~Worker: the lock may be held by a GIL-less wait
    std::lock_guard<std::mutex> lock(WorkersMutex());
    Workers().push_back(this);
  }
  bridge::CallAtExit(&WaitForAllWorkers);  // registers once per process
}

Worker::~Worker() {
  if (synchronous_) return;
  {
    // WaitForAllWorkers holds this lock while it waits (without the GIL) for jobs that may need
    // the GIL: do not hold the GIL while taking it.
    bridge::ScopedGilRelease no_gil;
    std::lock_guard<std::mutex> lock(WorkersMutex());
    auto& workers = Workers();
    workers.erase(std::remove(workers.begin(), workers.end(), this), workers.end());
  }
  State& s = *state_;
  if (!bridge::PythonAlive()) {
    // The interpreter is finalizing (e.g. its GC is destroying the client): a job may be stuck
    // on the GIL for good, so do not join. Drop the queued jobs here, while the device their
    // storage is accounted to still exists, and leave the thread be: it only touches State,
    // which it co-owns. (Detaching used to leave it reading the freed Worker: heap corruption
    // at exit.)
    std::deque<std::function<void()>> dropped;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      dropped.swap(s.jobs);
      s.stopping = true;
    }
    s.cv.notify_all();
    thread_.detach();
    return;  // `dropped` releases the jobs' captures here
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stopping = true;
  }
  s.cv.notify_all();
  bridge::ScopedGilRelease no_gil;  // queued jobs may need the GIL to finish
  thread_.join();
}

void Worker::Schedule(std::function<void()> job) {
  if (synchronous_) {
    job();
    return;
  }
  State& s = *state_;
  ++s.pending;
  std::unique_lock<std::mutex> lock(s.mu);
  if (s.jobs.size() >= kMaxQueuedJobs) {
    // Backpressure, as XLA:CPU bounds in-flight computations per device: without it a loop that
    // dispatches faster than the device runs queues without limit, holding every queued job's
    // arguments in memory (and making exit wait for all of them). Wait without the GIL (the
    // running job needs it), and never hold the lock while retaking the GIL.
    lock.unlock();
    {
      bridge::ScopedGilRelease no_gil;
      std::unique_lock<std::mutex> wait_lock(s.mu);
      s.space_cv.wait(wait_lock, [&s] { return s.jobs.size() < kMaxQueuedJobs; });
    }
    lock.lock();
  }
  s.jobs.push_back(std::move(job));
  ++s.scheduled;
  lock.unlock();
  s.cv.notify_one();
}

void Worker::Loop(std::shared_ptr<State> state) {
  State& s = *state;
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.cv.wait(lock, [&s] { return s.stopping || !s.jobs.empty(); });
      if (s.jobs.empty()) return;  // stopping and drained
      job = std::move(s.jobs.front());
      s.jobs.pop_front();
    }
    s.space_cv.notify_all();
    job();
    job = nullptr;  // let go of the job's captures (which may free storage) before reporting
    --s.pending;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      ++s.finished;
    }
    s.finished_cv.notify_all();
  }
}

uint64_t Worker::Ticket() {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->scheduled;
}

bool Worker::WaitFinished(uint64_t ticket, std::chrono::steady_clock::time_point deadline) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  return s.finished_cv.wait_until(lock, deadline, [&] { return s.finished >= ticket; });
}

bool WaitForAllWorkers(double seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(seconds));
  std::lock_guard<std::mutex> lock(WorkersMutex());  // no worker is destroyed while we wait
  static auto* targets = new std::vector<std::pair<Worker*, uint64_t>>;  // from the first call
  static bool snapshotted = false;
  if (!snapshotted) {
    for (Worker* w : Workers()) targets->emplace_back(w, w->Ticket());
    snapshotted = true;
  }
  const auto& live = Workers();
  for (const auto& [w, ticket] : *targets) {
    if (std::find(live.begin(), live.end(), w) == live.end()) continue;  // destroyed since
    if (!w->WaitFinished(ticket, deadline)) return false;
  }
  return true;
}

}  // namespace pyrt
