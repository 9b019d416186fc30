// PacketFileWriter: one writer's stream of packet files. Takes finished TPACKET_V3 blocks (from the capture
// ring or from import), writes them with BlockWriter, indexes them, rotates files by size and age, and
// writes each file's index table when the file is complete. Not thread-safe: one thread drives it.
#ifndef REWIND_CAPTURE_PACKET_FILE_WRITER_H_
#define REWIND_CAPTURE_PACKET_FILE_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "capture/block_writer.h"
#include "index/index_builder.h"
#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

struct PacketFileWriterOptions {
  std::string store;                      // store root directory
  uint64_t max_file_bytes = 1ull << 30;   // rotate when a file reaches this size (at most 4 GiB)
  int64_t max_file_age_ns = 0;            // rotate when a file is this old (0: never)
  int max_writes_in_flight = 8;
  bool preallocate = false;               // reserve max_file_bytes when a file is created
};

struct PacketFileWriterStats {
  uint64_t files = 0;    // completed files (index written)
  uint64_t blocks = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;    // bytes written to packet files
  uint64_t index_bytes = 0;
};

class PacketFileWriter {
 public:
  PacketFileWriter(PacketFileWriterOptions options, WriterLock lock);
  ~PacketFileWriter();

  // Writes one finished block (kBlockSize bytes, 4096-aligned). Its `tag` comes back from Reap() once the
  // block is on disk and the buffer may be reused. `now_ns` drives age-based rotation.
  Status WriteBlock(const uint8_t* block, void* tag, int64_t now_ns);
  // Collects tags of completed writes; waits for at least `min` of them if that many are pending.
  Status Reap(int min, std::vector<void*>* done);
  // Completes the current file (waits for its writes, writes its index). No-op without an open file.
  Status FinishFile(std::vector<void*>* done);

  uint32_t writer() const { return lock_.writer(); }
  int in_flight() const { return file_ ? file_->in_flight() : 0; }
  const PacketFileWriterStats& stats() const { return stats_; }
  // Path of the file being written ("" if none).
  const std::string& current_path() const { return packet_path_; }

 private:
  Status StartFile(int64_t now_ns);
  PacketFileWriterOptions options_;
  WriterLock lock_;
  std::unique_ptr<BlockWriter> file_;
  std::unique_ptr<IndexBuilder> index_;
  std::string name_;
  std::string packet_path_;
  std::string last_name_;
  int64_t file_started_ns_ = 0;
  uint32_t blocks_in_file_ = 0;
  Status index_error_;
  std::vector<void*> pending_done_;  // completed tags not yet handed out by Reap()
  PacketFileWriterStats stats_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PACKET_FILE_WRITER_H_
