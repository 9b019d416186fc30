// RequestDeadline: a time by which the HTTP request a connection thread is reading must have arrived whole
// (headers and body), so that a client sending nothing, or a byte at a time, holds a server thread only
// that long. cpp-httplib 0.11 bounds each read, not the request: it waits for a socket with poll(2) before
// every read, so this file interposes poll() for the process — on a thread with a deadline armed, a wait for
// input ends at the deadline and then fails with ETIMEDOUT, which cpp-httplib treats as a dead connection
// (waits for output, i.e. writing an answer, keep cpp-httplib's write timeout); on every other thread poll()
// is the C library's. A connection's thread arms the deadline when the connection is accepted and again
// after each answer (for the next request on a kept-alive connection). Deadlines are per thread.
#ifndef REWIND_WEB_REQUEST_DEADLINE_H_
#define REWIND_WEB_REQUEST_DEADLINE_H_

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <memory>

namespace rwd {

class RequestDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  // From now on the calling thread's socket waits end at `deadline`.
  static void Arm(Clock::time_point deadline);
  // The calling thread's waits are the C library's again.
  static void Disarm();
};

// cpp-httplib's thread pool, with each connection's first request due `request_timeout` after the
// connection was accepted (time spent queued for a thread counts).
class DeadlineThreadPool : public httplib::TaskQueue {
 public:
  DeadlineThreadPool(size_t threads, std::chrono::milliseconds request_timeout);
  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

 private:
  httplib::ThreadPool pool_;
  std::chrono::milliseconds request_timeout_;
};

}  // namespace rwd

#endif  // REWIND_WEB_REQUEST_DEADLINE_H_
