// SyntheticStoreWriter: writes one writer's packet files and index tables of a synthetic benchmark store
// (rewind_make_store), in exactly the store format (docs/format.md) and byte for byte what rewind's own
// writer would produce for the same blocks: blocks built with BlockBuilder and sealed with SealBlock,
// compressed by BlockCompressor, indexed by IndexBuilder. Only the I/O differs: plain buffered writes of a
// whole file at once instead of O_DIRECT through libaio (which costs tens of milliseconds per file), and no
// fsync at all: IndexBuilder writes (and fsyncs) each table in a scratch directory on tmpfs, from where it
// is copied into the store (as `<name>.tmp`, renamed) with buffered writes. A benchmark store needs no
// durability, and one fsync per file would make a 100,000-file store take hours on a busy disk.
//
// What a store holds depends only on the options and the source trace, never on how many files are asked
// for, so stores of different sizes agree on their common files:
//   - writer w's file i covers [start + i*file_ns, start + (i+1)*file_ns), is named after its start, and
//     holds packets_per_file packets spread evenly over that span (packet j at start + i*file_ns +
//     j*file_ns/packets_per_file);
//   - its packets are source packets (i*writers + w)*packets_per_file onwards, the source cycled;
//   - writer 0's files 2, 7, 12, ..., 47 (kNeedleFiles of them) each have their middle packet replaced by
//     a NeedleFrame (10.255.0.1 -> 10.255.0.2), so `host 10.255.0.1` answers kNeedleFiles packets in any
//     store whose writer 0 has at least 48 files.
// Not thread-safe: one writer object per thread; different writers may run in parallel.
#ifndef REWIND_BENCH_SYNTHETIC_STORE_WRITER_H_
#define REWIND_BENCH_SYNTHETIC_STORE_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/source_trace.h"
#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

constexpr uint32_t kNeedleFiles = 10;

struct SyntheticStoreOptions {
  std::string store;
  uint32_t writers = 2;
  uint64_t files = 0;              // packet files in the whole store, dealt out as evenly as possible
  uint32_t packets_per_file = 100;
  int64_t start_ns = 0;            // start of every writer's file 0
  int64_t file_ns = 60'000'000'000;
  int compress_level = 3;          // zstd level; 0 stores raw 1 MiB blocks
  std::string scratch_dir = "/dev/shm";  // where index tables are built before they are copied in (tmpfs)
  // Packets with a time in [window_start_ns, window_end_ns) are counted (WriterStats::window_packets),
  // so that a benchmark can check a time-window query's answer.
  int64_t window_start_ns = 0;
  int64_t window_end_ns = 0;
};

struct SyntheticWriterStats {
  uint64_t files = 0;
  uint64_t blocks = 0;
  uint64_t packets = 0;
  uint64_t needles = 0;
  uint64_t window_packets = 0;
  uint64_t packet_file_bytes = 0;
  uint64_t index_bytes = 0;
};

class SyntheticStoreWriter {
 public:
  // `trace` must outlive the writer; `lock` is writer `lock.writer()`'s lock on its directories.
  SyntheticStoreWriter(const SyntheticStoreOptions& options, const SourceTrace* trace, WriterLock lock);
  ~SyntheticStoreWriter();
  SyntheticStoreWriter(const SyntheticStoreWriter&) = delete;
  SyntheticStoreWriter& operator=(const SyntheticStoreWriter&) = delete;

  // How many of the store's files belong to `writer`.
  static uint64_t FilesOfWriter(const SyntheticStoreOptions& options, uint32_t writer);
  // True if writer `writer`'s file `file` carries a needle.
  static bool IsNeedleFile(uint32_t writer, uint64_t file);

  // Writes this writer's file number `file` (packet file, then its index table). Files must be written
  // in increasing order (block sequence numbers run on across files, as in a live writer). Fails if the
  // packet file already exists.
  Status WriteFile(uint64_t file);

  const SyntheticWriterStats& stats() const { return stats_; }

 private:
  // Seals the block being built, appends its extent to file_bytes_ and indexes it.
  Status FlushBlock(IndexBuilder* index, uint32_t block_no);

  SyntheticStoreOptions options_;
  const SourceTrace* trace_;
  WriterLock lock_;
  std::unique_ptr<BlockCompressor> compressor_;
  BlockBuilder builder_;
  uint8_t* block_;    // kBlockSize, the block being built
  uint8_t* extent_;   // kMaxExtentSize, its compressed extent
  std::vector<uint8_t> file_bytes_;  // the packet file being assembled
  std::string scratch_path_;         // this writer's scratch table in options_.scratch_dir
  std::string table_bytes_;          // the index table being copied into the store
  uint64_t seq_ = 0;  // block sequence number, across files
  SyntheticWriterStats stats_;
};

}  // namespace rwd

#endif  // REWIND_BENCH_SYNTHETIC_STORE_WRITER_H_
