#include "web/request_deadline.h"

#include <poll.h>

#include <cerrno>
#include <ctime>

#include "web/connection_thread_pool.h"

namespace rwd {
namespace {

// The calling thread's deadline; time_point::max() when none is armed.
thread_local RequestDeadline::Clock::time_point t_deadline = RequestDeadline::Clock::time_point::max();
thread_local bool t_close_after_answer = false;  // the screen answered: no further request on this connection

int LibcPoll(struct pollfd* fds, nfds_t n, int timeout_ms) {
  if (timeout_ms < 0) return ppoll(fds, n, nullptr, nullptr);
  timespec ts{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1000000};
  return ppoll(fds, n, &ts, nullptr);
}

}  // namespace

void RequestDeadline::Arm(Clock::time_point deadline) { t_deadline = deadline; }

void RequestDeadline::Disarm() { t_deadline = Clock::time_point::max(); }

bool RequestDeadline::HasBody(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) return true;
  std::string length = req.get_header_value("Content-Length");
  return !length.empty() && length.find_first_not_of('0') != std::string::npos;
}

namespace {

// The connection threads (ConnectionThreadPool), with each connection's deadline armed from when the
// connection was accepted.
class DeadlineThreadPool : public httplib::TaskQueue {
 public:
  DeadlineThreadPool(size_t threads, std::chrono::milliseconds request_timeout)
      : pool_(threads), request_timeout_(request_timeout) {}

  void enqueue(std::function<void()> fn) override {
    RequestDeadline::Clock::time_point due = RequestDeadline::Clock::now() + request_timeout_;
    pool_.Enqueue([fn = std::move(fn), due] {
      RequestDeadline::Arm(due);
      fn();
      RequestDeadline::Disarm();
    });
  }

  void shutdown() override { pool_.Shutdown(); }

 private:
  ConnectionThreadPool pool_;
  std::chrono::milliseconds request_timeout_;
};

}  // namespace

void RequestDeadline::Install(httplib::Server* server, size_t threads, std::chrono::milliseconds request_timeout,
                              std::function<bool(const httplib::Request&, httplib::Response&)> screen) {
  server->new_task_queue = [threads, request_timeout] { return new DeadlineThreadPool(threads, request_timeout); };
  server->set_pre_routing_handler([screen](const httplib::Request& req, httplib::Response& res) {
    // cpp-httplib reads a request's body after this handler: a request with one keeps its deadline until
    // its handler has it (and disarms); one without has arrived whole.
    if (!HasBody(req)) Disarm();
    if (screen && screen(req, res)) {
      t_close_after_answer = true;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server->set_logger([request_timeout](const httplib::Request&, const httplib::Response&) {
    // After a screened answer, the wait for the next request fails at once and the connection ends.
    Arm(t_close_after_answer ? Clock::now() : Clock::now() + request_timeout);
    t_close_after_answer = false;
  });
}

}  // namespace rwd

// Interposes the C library's poll() (see the header). A deadline shortens a wait for input; a wait that
// reaches it fails with ETIMEDOUT rather than returning 0, so that cpp-httplib's keep-alive wait, which polls
// in a loop until its own timeout, also ends. Waits for output only (writing an answer) are left alone.
extern "C" int poll(struct pollfd* fds, nfds_t n, int timeout_ms) {
  using Clock = rwd::RequestDeadline::Clock;
  if (rwd::t_deadline == Clock::time_point::max()) return rwd::LibcPoll(fds, n, timeout_ms);
  bool reading = false;
  for (nfds_t i = 0; i < n; ++i) reading |= (fds[i].events & (POLLIN | POLLPRI)) != 0;
  if (!reading) return rwd::LibcPoll(fds, n, timeout_ms);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(rwd::t_deadline - Clock::now()).count();
  if (left <= 0) {
    errno = ETIMEDOUT;
    return -1;
  }
  bool deadline_first = timeout_ms < 0 || left < timeout_ms;
  int r = rwd::LibcPoll(fds, n, deadline_first ? static_cast<int>(left) : timeout_ms);
  if (r == 0 && deadline_first) {
    errno = ETIMEDOUT;
    return -1;
  }
  return r;
}
