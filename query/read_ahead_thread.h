// ReadAheadThread: one helper thread that runs a query's read-ahead jobs (read and check the next block of a
// packet file) in the order they were submitted, so the query's own thread filters and writes one block while
// the next is copied from the page cache and checksummed. Thread-safe; the owner outlives every job it submits.
#ifndef REWIND_QUERY_READ_AHEAD_THREAD_H_
#define REWIND_QUERY_READ_AHEAD_THREAD_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace rwd {

class ReadAheadThread {
 public:
  using Ticket = uint64_t;

  ReadAheadThread() = default;
  ReadAheadThread(const ReadAheadThread&) = delete;
  ReadAheadThread& operator=(const ReadAheadThread&) = delete;
  // Runs the jobs still queued, then joins the thread.
  ~ReadAheadThread();

  // Queues `job`; the thread starts with the first one (if no thread can be started, the job runs here, as
  // every later one). The returned ticket is never 0.
  Ticket Submit(std::function<void()> job);
  // Returns once the job of `ticket` has run (jobs run one at a time, in ticket order).
  void Wait(Ticket ticket);

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;  // guarded by mu_; jobs_[i] has ticket done_ + 1 + i (+1 if running)
  Ticket submitted_ = 0;                    // guarded by mu_: tickets handed out
  Ticket done_ = 0;                         // guarded by mu_: every ticket <= done_ has run
  bool stop_ = false;                       // guarded by mu_
  bool no_thread_ = false;                  // guarded by mu_: the thread could not be started; jobs run in Submit
  std::thread thread_;
};

}  // namespace rwd

#endif  // REWIND_QUERY_READ_AHEAD_THREAD_H_
