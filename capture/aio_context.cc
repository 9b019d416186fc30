#include "capture/aio_context.h"

#include <cerrno>
#include <mutex>
#include <utility>
#include <vector>

namespace rwd {
namespace {

// Idle contexts (nothing in flight) with their capacity, kept for the next writer of this process.
constexpr size_t kMaxIdleContexts = 4;
std::mutex idle_mu;
std::vector<std::pair<io_context_t, int>>& IdleContexts() {
  static auto* idle = new std::vector<std::pair<io_context_t, int>>();
  return *idle;
}

}  // namespace

Result<std::unique_ptr<AioContext>> AioContext::Create(int capacity) {
  std::unique_ptr<AioContext> c(new AioContext());
  c->capacity_ = capacity < 1 ? 1 : capacity;
  {
    std::lock_guard<std::mutex> l(idle_mu);
    auto& idle = IdleContexts();
    for (size_t i = 0; i < idle.size(); ++i) {
      if (idle[i].second != c->capacity_) continue;
      c->ctx_ = idle[i].first;
      idle.erase(idle.begin() + static_cast<long>(i));
      return c;
    }
  }
  int err = io_setup(c->capacity_, &c->ctx_);
  if (err != 0) {
    c->ctx_ = nullptr;
    return Status::FromErrno("io_setup", -err);
  }
  return c;
}

AioContext::~AioContext() {
  if (ctx_ == nullptr) return;
  if (in_flight_ > 0) Wait(in_flight_);
  if (in_flight_ == 0) {
    std::lock_guard<std::mutex> l(idle_mu);
    auto& idle = IdleContexts();
    if (idle.size() < kMaxIdleContexts) {
      idle.emplace_back(ctx_, capacity_);
      return;
    }
  }
  io_destroy(ctx_);
}

Status AioContext::Submit(AioRequest* request) {
  while (in_flight_ >= capacity_) {
    Status s = Wait(1);
    if (!s.ok()) return s;
  }
  request->cb.data = request;
  iocb* list[1] = {&request->cb};
  int rc;
  do {
    rc = io_submit(ctx_, 1, list);
  } while (rc == -EINTR || (rc == -EAGAIN && in_flight_ == 0));
  if (rc == -EAGAIN) {  // the kernel's ring is full after all: make room, then try once more
    Status s = Wait(1);
    if (!s.ok()) return s;
    rc = io_submit(ctx_, 1, list);
  }
  if (rc != 1) return Status::FromErrno("io_submit", rc < 0 ? -rc : EIO);
  ++in_flight_;
  return Status::OK();
}

Status AioContext::Wait(int min) {
  if (min > in_flight_) min = in_flight_;
  io_event events[64];
  while (in_flight_ > 0) {
    int want = min > 64 ? 64 : (min > 0 ? min : 0);
    int rc = io_getevents(ctx_, want, 64, events, nullptr);
    if (rc == -EINTR) continue;
    if (rc < 0) return Status::FromErrno("io_getevents", -rc);
    for (int i = 0; i < rc; ++i) {
      --in_flight_;
      static_cast<AioRequest*>(events[i].data)->Complete(static_cast<long>(events[i].res));
    }
    min -= rc;
    if (min <= 0) break;
  }
  return Status::OK();
}

}  // namespace rwd
