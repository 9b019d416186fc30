#include "capture/aio_context.h"

#include <cerrno>
#include <system_error>
#include <thread>

namespace rwd {

Result<std::unique_ptr<AioContext>> AioContext::Create(int capacity) {
  std::unique_ptr<AioContext> c(new AioContext());
  c->capacity_ = capacity < 1 ? 1 : capacity;
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
  // io_destroy waits for an RCU grace period (tens of milliseconds, more under load) and would stall the
  // owner, so a helper thread waits instead. It touches nothing but the kernel context, so it may outlive
  // every object of the process; an exit while it waits waits for the rest of that grace period only.
  io_context_t ctx = ctx_;
  if (in_flight_ > 0) {  // waiting failed: the kernel may still read buffers their owners are about to free
    io_destroy(ctx);
    return;
  }
  try {
    std::thread([ctx] { io_destroy(ctx); }).detach();
  } catch (const std::system_error&) {
    io_destroy(ctx);
  }
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
