// BlockWriter: appends aligned blocks to one file with O_DIRECT through libaio, keeping up to a fixed
// number of writes in flight. The caller's buffer must stay untouched until its tag comes back from Reap().
// Not thread-safe: one thread submits and reaps.
#ifndef REWIND_CAPTURE_BLOCK_WRITER_H_
#define REWIND_CAPTURE_BLOCK_WRITER_H_

#include <libaio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/status.h"

namespace rwd {

class BlockWriter {
 public:
  ~BlockWriter();
  // Creates `path` (which must not exist). Falls back to buffered I/O where the file system refuses
  // O_DIRECT (tmpfs), see direct(). `preallocate_bytes` > 0 reserves space with fallocate.
  static Result<std::unique_ptr<BlockWriter>> Create(const std::string& path, int max_in_flight,
                                                     uint64_t preallocate_bytes);

  // Queues a write of `len` bytes (a multiple of 4096) from `buf` (4096-aligned) at the current end.
  // Blocks in Reap() first if max_in_flight writes are pending.
  Status Submit(const uint8_t* buf, uint32_t len, void* tag);
  // Waits until at least `min` writes have completed (fewer if fewer are pending) and appends their
  // tags to `*done`. A failed or short write is reported after all tags are collected.
  Status Reap(int min, std::vector<void*>* done);
  // Waits for every write, trims preallocated space, flushes to stable storage and closes.
  Status Close(std::vector<void*>* done);

  int in_flight() const { return in_flight_; }
  uint64_t bytes_written() const { return end_offset_; }
  bool direct() const { return direct_; }

 private:
  BlockWriter() = default;
  std::string path_;
  int fd_ = -1;
  bool direct_ = true;
  io_context_t ctx_ = nullptr;
  int max_in_flight_ = 0;
  int in_flight_ = 0;
  uint64_t end_offset_ = 0;
  uint64_t preallocated_ = 0;
  std::vector<iocb> iocbs_;
  std::vector<iocb*> free_iocbs_;
  Status error_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_BLOCK_WRITER_H_
