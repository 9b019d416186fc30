// CaptureWorker: one capture thread's pipeline — a PacketRing's blocks go, unchanged, to a PacketFileWriter
// (O_DIRECT/libaio writes, indexing on the writer's own thread) and back to the kernel once written and
// indexed. Keeps counters and writes them as JSON for other processes. Run() is called from one thread;
// stats() may be read from any thread.
#ifndef REWIND_CAPTURE_CAPTURE_WORKER_H_
#define REWIND_CAPTURE_CAPTURE_WORKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>
#include <string>

#include "capture/packet_file_writer.h"
#include "capture/packet_ring.h"
#include "index/status.h"

namespace rwd {

struct CaptureCounters {
  std::atomic<uint64_t> packets{0};         // packets written to packet files
  std::atomic<uint64_t> bytes{0};           // captured bytes written
  std::atomic<uint64_t> kernel_packets{0};  // packets the kernel saw for this ring (PACKET_STATISTICS)
  std::atomic<uint64_t> kernel_drops{0};    // dropped by the kernel: ring full
  std::atomic<uint64_t> write_drops{0};     // packets of blocks that could not be written (disk full, I/O error)
  std::atomic<uint64_t> blocks{0};
  std::atomic<uint64_t> files{0};
  std::atomic<uint64_t> write_errors{0};
  std::atomic<int64_t> max_write_latency_us{0};
};

// Everything one capture thread needs; shared by `rewind capture` and `rewind run`.
struct CaptureConfig {
  std::string store;
  PacketRingOptions ring;             // ring.iface etc.; fanout applies when threads > 1
  uint64_t max_file_bytes = 4096ull << 20;
  int64_t max_file_age_ns = 60ll * 1000000000;
  int max_writes_in_flight = 128;
  uint64_t preallocate_bytes = 0;     // 0: max_file_bytes
  bool index = true;
  int index_nice = 0;
  int compress_level = 0;             // zstd level per block (0: store raw)
  // Called after each completed file (packet file, index table); must not block (see RotationHook).
  std::function<void(const std::string&, const std::string&)> on_file_complete;
  int uid = -1, gid = -1;             // owner of the store directories (privileges are dropped elsewhere)
};

class CaptureWorker;
// Locks writer `thread`'s directories, re-indexes files a crash left without an index (reported on
// stderr unless quiet), opens the ring and the writer.
Result<std::unique_ptr<CaptureWorker>> OpenCaptureWorker(const CaptureConfig& config, uint32_t thread,
                                                         std::atomic<int64_t>* packets_left, bool quiet);
// Opens workers 0 .. threads-1 as OpenCaptureWorker does, the store side of each in turn, then every ring at
// the same time (one thread each: setting a ring up is the slow part). Every ring is bound when it returns.
Result<std::vector<std::unique_ptr<CaptureWorker>>> OpenCaptureWorkers(const CaptureConfig& config,
                                                                       uint32_t threads,
                                                                       std::atomic<int64_t>* packets_left,
                                                                       bool quiet);

class CaptureWorker {
 public:
  // `ring` and `writer` are owned by the worker. `packet_limit` < 0: unlimited (shared across workers via
  // `packets_left`, which may be null when unlimited).
  CaptureWorker(uint32_t thread, std::unique_ptr<PacketRing> ring, std::unique_ptr<PacketFileWriter> writer,
                std::string stats_path, std::atomic<int64_t>* packets_left);
  // Captures until `stop` is set or the packet limit is reached, then drains: the kernel's last partial
  // block (up to its retire timeout), in-flight writes and the last file's index.
  Status Run(const std::atomic<bool>& stop);
  const CaptureCounters& counters() const { return counters_; }
  // The counters of the stats file (StatsJson): this worker's, plus those of the workers it replaced.
  struct Totals {
    uint64_t packets = 0, bytes = 0, kernel_packets = 0, kernel_drops = 0, write_drops = 0, write_errors = 0,
             blocks = 0, files = 0;
  };
  Totals totals() const;
  // Counts on from `previous` (rewind run restarting a thread): a counter of the stats file and /metrics never
  // goes back, so that rates and increase() over a restart stay right. Before Run().
  void ContinueTotals(const Totals& previous) { carried_ = previous; }
  std::string StatsJson() const;

 private:
  Status HandleBlock(uint8_t* block, int64_t now_ns);
  void ReleaseDone(std::vector<void*>* done);
  void WriteStats();
  // Logs `s` (if an error), at most once a second with a count of the others; keeps the first for Run().
  void NoteError(const Status& s);
  uint32_t thread_;
  std::unique_ptr<PacketRing> ring_;
  std::unique_ptr<PacketFileWriter> writer_;
  std::string stats_path_;
  std::atomic<int64_t>* packets_left_;
  uint32_t outstanding_ = 0;  // blocks held by user space
  CaptureCounters counters_;
  Totals carried_;  // of the workers this one replaced
  bool limit_reached_ = false;
  Status first_error_;
  std::chrono::steady_clock::time_point last_error_log_ = std::chrono::steady_clock::now() - std::chrono::seconds(2);
  unsigned long long unlogged_errors_ = 0;  // errors since the last one logged
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_CAPTURE_WORKER_H_
