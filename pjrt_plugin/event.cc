#include "pjrt_plugin/event.h"

#include <atomic>

namespace pyrt {

void Completion::Set(Status s) {
  std::vector<Callback> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_) return;
    ready_ = true;
    status_ = std::move(s);
    callbacks.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& cb : callbacks) cb(status_);
}

bool Completion::IsReady() {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_;
}

Status Completion::Await() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return ready_; });
  return status_;
}

Status Completion::status() {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void Completion::OnReady(Callback cb) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_) {
      callbacks_.push_back(std::move(cb));
      return;
    }
  }
  cb(status_);  // status_ never changes once ready
}

void WhenAllReady(const std::vector<std::shared_ptr<Completion>>& inputs,
                  std::function<void(const Status&)> done) {
  struct Join {
    std::atomic<size_t> pending;
    std::mutex mu;
    Status first_error;
    std::function<void(const Status&)> done;
  };
  auto join = std::make_shared<Join>();
  join->pending = inputs.size() + 1;  // +1 released below, so `done` runs once at the end
  join->done = std::move(done);
  auto arrive = [join](const Status& s) {
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(join->mu);
      if (join->first_error.ok()) join->first_error = s;
    }
    if (--join->pending == 0) {
      Status result;
      {
        std::lock_guard<std::mutex> lock(join->mu);
        result = join->first_error;
      }
      join->done(result);
    }
  };
  for (const auto& c : inputs) c->OnReady(arrive);
  arrive(Status::Ok());
}

}  // namespace pyrt
