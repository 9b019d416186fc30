#include "web/connection_thread_pool.h"

#include <system_error>
#include <utility>

namespace rwd {

ConnectionThreadPool::ConnectionThreadPool(size_t max_threads) : max_threads_(max_threads == 0 ? 1 : max_threads) {}

ConnectionThreadPool::~ConnectionThreadPool() { Shutdown(); }

void ConnectionThreadPool::Enqueue(std::function<void()> job) {
  std::unique_lock<std::mutex> l(mu_);
  if (!idle_.empty()) {
    Worker* w = idle_.back();
    idle_.pop_back();
    w->job = std::move(job);
    w->wake.notify_one();
    return;
  }
  if (shutdown_) {  // no thread may start any more
    l.unlock();
    job();
    return;
  }
  if (workers_.size() < max_threads_) {
    workers_.emplace_back();
    Worker* w = &workers_.back();
    try {
      w->thread = std::thread([this, w, job]() mutable { Work(w, std::move(job)); });
      return;
    } catch (const std::system_error&) {  // no thread to be had (e.g. RLIMIT_NPROC): the started ones serve
      workers_.pop_back();
      if (workers_.empty()) {
        l.unlock();
        job();
        return;
      }
    }
  }
  waiting_.push_back(std::move(job));
}

void ConnectionThreadPool::Work(Worker* self, std::function<void()> job) {
  for (;;) {
    job();
    job = nullptr;  // what it captured goes now, not when the next job comes
    std::unique_lock<std::mutex> l(mu_);
    while (job == nullptr) {
      if (!waiting_.empty()) {
        job = std::move(waiting_.front());
        waiting_.pop_front();
      } else if (shutdown_) {
        return;
      } else {
        idle_.push_back(self);
        self->wake.wait(l, [this, self] { return self->job != nullptr || shutdown_; });
        // Shut down while idle: Shutdown() took it off idle_; it looks at waiting_ once more.
        job = std::move(self->job);
        self->job = nullptr;
      }
    }
  }
}

void ConnectionThreadPool::Shutdown() {
  {
    std::lock_guard<std::mutex> l(mu_);
    shutdown_ = true;  // no thread starts from now on (Enqueue runs jobs itself), so workers_ stays as it is
    for (Worker* w : idle_) w->wake.notify_one();
    idle_.clear();
  }
  for (Worker& w : workers_) {
    if (w.thread.joinable()) w.thread.join();
  }
}

size_t ConnectionThreadPool::threads_started() const {
  std::lock_guard<std::mutex> l(mu_);
  return workers_.size();
}

size_t ConnectionThreadPool::threads_idle() const {
  std::lock_guard<std::mutex> l(mu_);
  return idle_.size();
}

}  // namespace rwd
