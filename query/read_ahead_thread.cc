#include "query/read_ahead_thread.h"

#include <system_error>
#include <utility>

#include "index/thread_name.h"

namespace rwd {

ReadAheadThread::~ReadAheadThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ReadAheadThread::Ticket ReadAheadThread::Submit(std::function<void()> job) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable() && !no_thread_) {
    try {
      thread_ = std::thread([this] { Loop(); });
    } catch (const std::system_error&) {
      no_thread_ = true;  // no thread to be had (RLIMIT_NPROC, a pids cgroup): jobs run on the caller
    }
  }
  if (no_thread_) {  // nothing is queued then: in ticket order as well
    Ticket ticket = ++submitted_;
    lock.unlock();
    job();
    lock.lock();
    ++done_;
    return ticket;
  }
  jobs_.push_back(std::move(job));
  cv_.notify_all();
  return ++submitted_;
}

void ReadAheadThread::Wait(Ticket ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_ >= ticket; });
}

void ReadAheadThread::Loop() {
  NameThisThread("read-ahead");
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_ and nothing left to run
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
    ++done_;
    cv_.notify_all();
  }
}

}  // namespace rwd
