// RotationHook: runs a command for every completed packet file (what `tcpdump -z` does), e.g. to copy files
// off the box: `CMD PACKET_FILE INDEX_FILE`, through /bin/sh -c so CMD may hold arguments. Never blocks the
// caller: files are queued and run on the hook's own thread, at most `max_running` at once; a full queue
// drops the newest file's run (logged). Failures (non-zero exit, signals, spawn errors) are logged and
// counted. Thread-safe.
#ifndef REWIND_CAPTURE_ROTATION_HOOK_H_
#define REWIND_CAPTURE_ROTATION_HOOK_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace rwd {

class RotationHook {
 public:
  RotationHook(std::string command, int max_running = 2, size_t max_queued = 1000);
  // Runs what is queued and waits for the commands to finish, for up to kDrainTimeout; then returns, leaving
  // commands still running to finish on their own and logging the files whose command was not run.
  ~RotationHook();
  static constexpr std::chrono::milliseconds kDrainTimeout{5000};
  RotationHook(const RotationHook&) = delete;
  RotationHook& operator=(const RotationHook&) = delete;

  // Queues a run for a completed file. Returns at once.
  void FileCompleted(const std::string& packet_path, const std::string& index_path);

  uint64_t runs() const { return runs_; }
  uint64_t failures() const { return failures_; }
  uint64_t dropped() const { return dropped_; }

 private:
  void Loop();
  std::string command_;
  int max_running_;
  size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_;  // guarded by mu_
  bool stop_ = false;                                       // guarded by mu_
  std::atomic<uint64_t> runs_{0}, failures_{0}, dropped_{0};
  std::thread thread_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_ROTATION_HOOK_H_
