// PacketFileWriter: one writer's stream of packet files. Takes finished TPACKET_V3 blocks (from the capture
// ring or from import), writes them with BlockWriter, indexes them on its own indexing thread (so indexing
// never holds up the writes), rotates files by size and age, and writes each file's index table when the
// file is complete. A block's buffer is handed back (Reap) only when it is both on disk and indexed.
// Not thread-safe: one thread calls it (the indexing thread is internal).
#ifndef REWIND_CAPTURE_PACKET_FILE_WRITER_H_
#define REWIND_CAPTURE_PACKET_FILE_WRITER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "capture/aio_context.h"
#include "capture/block_writer.h"
#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/live_index.h"
#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

struct PacketFileWriterOptions {
  std::string store;                      // store root directory
  uint64_t max_file_bytes = 1ull << 30;   // rotate when a file reaches this size (at most 4 GiB)
  int64_t max_file_age_ns = 0;            // rotate when a file is this old (0: never)
  int max_writes_in_flight = 8;
  uint64_t preallocate_bytes = 0;         // reserve this much when a file is created (trimmed at completion)
  bool index = true;                      // false: no index tables (files stay unqueryable until indexed)
  int index_nice = 0;                     // nice level of the indexing thread
  int compress_level = 0;                 // > 0: zstd level for each block before it is written (0: raw)
  // Called (on the writer's thread) after a file and its index are complete; must not block.
  std::function<void(const std::string& packet_path, const std::string& index_path)> on_file_complete;
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
  PacketFileWriter(const PacketFileWriter&) = delete;
  PacketFileWriter& operator=(const PacketFileWriter&) = delete;

  // Writes one finished block (kBlockSize bytes, 4096-aligned, unchanged until its tag comes back from
  // Reap()) after sealing it with its checksum. `now_ns` drives age-based rotation.
  Status WriteBlock(uint8_t* block, void* tag, int64_t now_ns);
  // Collects tags of blocks that are written and indexed; waits until at least `min` are (or none is
  // pending any more).
  Status Reap(int min, std::vector<void*>* done);
  // Completes the current file if it is older than max_file_age_ns (for idle links, where no block
  // arrives to trigger rotation). Tags of its blocks are appended to `*done`.
  Status Tick(int64_t now_ns, std::vector<void*>* done);
  // Completes the current file: waits for its writes and indexing, writes its index table. Tags of its
  // blocks are appended to `*done`. No-op without an open file.
  Status FinishFile(std::vector<void*>* done);
  // FinishFile for a writer that expects no more blocks: the aio context is released as soon as the file's
  // data is on disk, so its teardown overlaps the index build (a later WriteBlock sets up a new one).
  Status FinishLastFile(std::vector<void*>* done);

  uint32_t writer() const { return lock_.writer(); }
  const PacketFileWriterStats& stats() const { return stats_; }
  // Captured bytes of the packets indexed so far (any thread; 0 without indexing).
  uint64_t indexed_bytes() const { return indexed_bytes_total_.load(std::memory_order_relaxed); }
  // Path of the file being written ("" if none).
  const std::string& current_path() const { return packet_path_; }

 private:
  struct IndexJob {
    std::shared_ptr<IndexBuilder> index;
    std::shared_ptr<LiveIndex> live;
    uint32_t block_no;
    uint64_t offset;
    uint32_t disk_length;
    uint32_t flags;
    const uint8_t* block;
    void* tag;
  };
  Status StartFile(int64_t now_ns);
  Status CompleteFile(std::vector<void*>* done, bool last);
  void IndexLoop();
  void Release(void* tag);                      // one of a tag's two holds (write, index) is done
  Status CollectWrites(int min);                // moves finished writes into Release()
  void WriteDone(void* tag);                    // a write finished: free its extent buffer or Release()

  PacketFileWriterOptions options_;
  WriterLock lock_;
  std::unique_ptr<AioContext> aio_;     // set up with the first file, shared by all; outlives file_
  std::unique_ptr<BlockWriter> file_;
  std::shared_ptr<IndexBuilder> index_;
  std::shared_ptr<LiveIndex> live_;              // index_ as queries in this process see it while it grows
  std::unordered_map<void*, uint32_t> write_block_;  // write tag -> block number, for writes in flight
  std::vector<bool> block_written_;              // of the current file
  uint32_t written_prefix_ = 0;                  // blocks [0, n) of the current file are on disk
  std::string name_;
  std::string packet_path_;
  std::string last_name_;
  std::vector<std::string> catalog_backlog_;  // complete files the catalog does not list yet
  int64_t file_started_ns_ = 0;
  uint32_t blocks_in_file_ = 0;
  PacketFileWriterStats stats_;
  std::unique_ptr<BlockCompressor> compressor_;
  std::vector<AlignedBuffer> extent_buffers_;  // compressed extents in flight
  std::vector<uint8_t*> free_extents_;
  std::unordered_set<const void*> extent_tags_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<IndexJob> jobs_;         // guarded by mu_
  bool indexing_ = false;             // guarded by mu_: the indexing thread holds a job
  bool stop_ = false;                 // guarded by mu_
  std::unordered_map<void*, int> holds_;  // guarded by mu_: tag -> outstanding holds
  std::vector<void*> ready_;          // guarded by mu_: tags free for reuse
  Status index_error_;                // guarded by mu_
  uint64_t indexed_packets_ = 0;      // guarded by mu_
  std::atomic<uint64_t> indexed_bytes_total_{0};
  std::thread indexer_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PACKET_FILE_WRITER_H_
