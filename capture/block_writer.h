// BlockWriter: appends aligned blocks to one file with O_DIRECT through libaio, keeping up to a fixed
// number of writes in flight. The caller's buffer must stay untouched until its tag comes back from Reap().
// The libaio context is borrowed (AioContext, one per writer, shared by its files) and must outlive it.
// Not thread-safe: one thread submits and reaps, the same that uses the AioContext (see Drain() for handing a
// drained file to another thread).
#ifndef REWIND_CAPTURE_BLOCK_WRITER_H_
#define REWIND_CAPTURE_BLOCK_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/aio_context.h"
#include "index/status.h"

namespace rwd {

class BlockWriter {
 public:
  ~BlockWriter();
  // Creates `path` (which must not exist). Falls back to buffered I/O where the file system refuses
  // O_DIRECT (tmpfs), see direct(). `preallocate_bytes` > 0 reserves space with fallocate,
  // at most half of what the file system has free but one block at least (ENOSPC without a block free).
  static Result<std::unique_ptr<BlockWriter>> Create(AioContext* aio, const std::string& path, int max_in_flight,
                                                     uint64_t preallocate_bytes);

  // Queues a write of `len` bytes (a multiple of 4096) from `buf` (4096-aligned) at the current end, which
  // then moves on by `stride` bytes (a multiple of 4096, at least `len`; 0: `len`). The bytes between are
  // never written: they read as zeros, and Seal() gives back the space preallocation reserved for them, so
  // a partly filled block costs the disk only what it holds. InvalidArgument if max_in_flight writes are
  // pending (Reap first).
  Status Submit(const uint8_t* buf, uint32_t len, void* tag, uint32_t stride = 0);
  // Waits until at least `min` writes have completed (fewer if fewer are pending) and appends their
  // tags to `*done`. A failed or short write is reported after all tags are collected.
  Status Reap(int min, std::vector<void*>* done);
  // Waits for every write of this file (not those of other files sharing the context) and appends their
  // tags to `*done`. Once it has returned OK nothing of the file is in the kernel's aio queue: Seal() and the
  // destructor touch only the file, so they may run on another thread and after the AioContext is gone.
  Status Drain(std::vector<void*>* done);
  // Frees the preallocated space of the gaps between writes (a hole; file systems that cannot keep it
  // allocated), sets the file's size to bytes_written() (trimming preallocated space, or extending over a gap
  // at the end), flushes to stable storage and closes. After Drain(); no Submit() after it.
  Status Seal();

  // Writes submitted whose tags Reap() has not handed back yet.
  int in_flight() const { return in_kernel_ + static_cast<int>(completed_.size()); }
  uint64_t bytes_written() const { return end_offset_; }
  // Writes that completed whole (a file with none holds nothing worth keeping).
  uint32_t good_writes() const { return good_writes_; }
  bool direct() const { return direct_; }

 private:
  struct Write : AioRequest {
    BlockWriter* owner = nullptr;
    void* tag = nullptr;
    void Complete(long res) override { owner->Completed(this, res); }
  };
  BlockWriter() = default;
  void Completed(Write* w, long res);  // called by aio_ (on this thread), maybe inside another file's wait
  Status WaitForOwn(int min);          // until completed_ holds `min` tags or nothing is in the kernel

  AioContext* aio_ = nullptr;
  std::string path_;
  int fd_ = -1;
  bool direct_ = true;
  int max_in_flight_ = 0;
  int in_kernel_ = 0;                  // submitted, not completed
  std::vector<void*> completed_;       // tags completed, not reaped
  uint64_t end_offset_ = 0;
  uint64_t written_end_ = 0;  // end of the last write (end_offset_ minus the gap after it)
  uint64_t preallocated_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> gaps_;  // [offset, length) skipped by Submit() in preallocated space
  std::vector<Write> writes_;
  std::vector<Write*> free_writes_;
  uint32_t good_writes_ = 0;
  Status error_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_BLOCK_WRITER_H_
