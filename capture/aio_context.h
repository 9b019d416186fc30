// AioContext: one libaio context for all the files of one writer. Setting a context up is cheap; tearing
// it down (io_destroy waits for an RCU grace period, tens of milliseconds) is too slow to do per file or on
// the writer's thread, so a PacketFileWriter creates one for its lifetime, every BlockWriter it opens
// borrows it, and the destructor hands the teardown to a detached thread.
// Each completion is handed to the AioRequest it belongs to, so a file waits only for its own writes.
// Not thread-safe: the writer's thread submits and waits; the context must outlive every request.
#ifndef REWIND_CAPTURE_AIO_CONTEXT_H_
#define REWIND_CAPTURE_AIO_CONTEXT_H_

#include <libaio.h>

#include <memory>

#include "index/status.h"

namespace rwd {

// One write in flight. Its owner fills `cb` (io_prep_pwrite) and gets Complete() once the kernel is done.
class AioRequest {
 public:
  virtual ~AioRequest() = default;
  iocb cb;
  // `res` is the kernel's result: bytes written, or -errno.
  virtual void Complete(long res) = 0;
};

class AioContext {
 public:
  // A context with room for `capacity` writes in flight at once (over all files).
  static Result<std::unique_ptr<AioContext>> Create(int capacity);
  // Waits for every write still in flight; they are completed with their results. The kernel context is
  // then destroyed on a detached thread (here, if a write could not be waited for).
  ~AioContext();
  AioContext(const AioContext&) = delete;
  AioContext& operator=(const AioContext&) = delete;

  // Queues `request` (its cb prepared, cb.data untouched). Waits for completions first if the context
  // is full. `request` must stay alive until its Complete() has been called.
  Status Submit(AioRequest* request);
  // Waits until at least `min` (at most in_flight()) writes have completed, calling Complete() on each.
  Status Wait(int min);

  int in_flight() const { return in_flight_; }
  int capacity() const { return capacity_; }

 private:
  AioContext() = default;
  io_context_t ctx_ = nullptr;
  int capacity_ = 0;
  int in_flight_ = 0;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_AIO_CONTEXT_H_
