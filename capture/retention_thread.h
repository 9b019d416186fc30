// RetentionThread: housekeeping for a store that is being written — runs PruneStore with one policy on a
// background thread, once at Start() and then every `interval`, until Stop(), and reports each removed file
// (and limits it cannot meet) on stderr. Start() and Stop() are called from one thread; the counters may be
// read from any thread.
#ifndef REWIND_CAPTURE_RETENTION_THREAD_H_
#define REWIND_CAPTURE_RETENTION_THREAD_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "index/retention.h"

namespace rwd {

class RetentionThread {
 public:
  // `who` prefixes the log lines ("rewind capture"); `quiet` logs only failures.
  RetentionThread(std::string store, RetentionPolicy policy, std::chrono::milliseconds interval, std::string who,
                  bool quiet);
  ~RetentionThread();  // Stop()s
  RetentionThread(const RetentionThread&) = delete;
  RetentionThread& operator=(const RetentionThread&) = delete;

  void Start();
  // Wakes the thread and waits for it; a prune in progress finishes first.
  void Stop();

  uint64_t runs() const { return runs_.load(); }
  uint64_t files_removed() const { return files_removed_.load(); }
  uint64_t bytes_removed() const { return bytes_removed_.load(); }

 private:
  void Loop();
  void RunOnce();

  const std::string store_;
  const RetentionPolicy policy_;
  const std::chrono::milliseconds interval_;
  const std::string who_;
  const bool quiet_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  bool last_unmet_ = false;    // used by the thread only: whether the last run left a limit unmet
  std::string last_problems_;  // used by the thread only: the last run's problems, as logged
  std::thread thread_;
  std::atomic<uint64_t> runs_{0};
  std::atomic<uint64_t> files_removed_{0};
  std::atomic<uint64_t> bytes_removed_{0};
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_RETENTION_THREAD_H_
