// RequestDeadline: a time by which the HTTP request a connection thread is reading must have arrived whole
// (headers and body), so that a client sending nothing, or a byte at a time, holds a server thread only
// that long. cpp-httplib 0.11 bounds each read, not the request: it waits for a socket with poll(2) before
// every read, so this file interposes poll() for the process — on a thread with a deadline armed, a wait for
// input ends at the deadline and then fails with ETIMEDOUT, which cpp-httplib treats as a dead connection
// (waits for output, i.e. writing an answer, keep cpp-httplib's write timeout); on every other thread poll()
// is the C library's. Deadlines are per thread; Install() arms and disarms them around each request.
#ifndef REWIND_WEB_REQUEST_DEADLINE_H_
#define REWIND_WEB_REQUEST_DEADLINE_H_

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

namespace rwd {

class RequestDeadline {
 public:
  using Clock = std::chrono::steady_clock;
  // Makes `server` keep request deadlines, with `threads` connection threads: a connection's first request
  // is due `request_timeout` after it was accepted (time queued for a thread counts), each next request on a
  // kept-alive connection `request_timeout` after the previous answer went out; a request that has been routed
  // has arrived whole, so its answer streams under cpp-httplib's write timeout only — except its body, which
  // cpp-httplib reads after routing: the handler of a request that has one (HasBody) calls Disarm() itself,
  // once it has the body. Takes over `server`'s
  // task queue, pre-routing handler and logger. Call before the server starts. `screen` (optional) runs in the
  // pre-routing handler after the deadline is disarmed; if it returns true it has answered the request, and
  // the connection ends after that answer.
  static void Install(httplib::Server* server, size_t threads, std::chrono::milliseconds request_timeout,
                      std::function<bool(const httplib::Request&, httplib::Response&)> screen = nullptr);

  // From now on the calling thread's socket waits for input end at `deadline`.
  static void Arm(Clock::time_point deadline);
  // The calling thread's waits are the C library's again.
  static void Disarm();
  // Whether `req` has a body still to be read when it is routed (Content-Length above 0, or chunked).
  static bool HasBody(const httplib::Request& req);
};

}  // namespace rwd

#endif  // REWIND_WEB_REQUEST_DEADLINE_H_
