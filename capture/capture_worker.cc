#include "capture/capture_worker.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "index/block_format.h"
#include "index/index_repair.h"
#include "index/store_catalog.h"
#include "index/thread_name.h"
#include "index/wall_clock.h"
#include "index/log_line.h"

namespace rwd {
namespace {

Status MakeDirOwned(const std::string& path, int uid, int gid) {
  if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Status::FromErrno("creating " + path, errno);
  if ((uid >= 0 || gid >= 0) && chown(path.c_str(), uid, gid) != 0) return Status::FromErrno("chown " + path, errno);
  return Status::OK();
}

}  // namespace

namespace {

// The store side of writer `thread`: its lock and directories, files a crash left without an index
// re-indexed, the catalog handed to the capture's user.
Result<WriterLock> PrepareWriter(const CaptureConfig& config, uint32_t thread, bool quiet) {
  // A mistyped interface is refused before anything is made on disk (a store appearing where the config
  // points would suggest that capture works).
  if (if_nametoindex(config.ring.iface.c_str()) == 0) {
    return Status::InvalidArgument("no interface '" + config.ring.iface + "'");
  }
  Status s = MakeDirOwned(config.store, config.uid, config.gid);
  if (!s.ok()) return s;
  auto lock = WriterLock::Acquire(config.store, thread);
  if (!lock.ok()) return lock.status();
  for (const std::string& d : {PacketDirectory(config.store, thread), IndexDirectory(config.store, thread)}) {
    s = MakeDirOwned(d, config.uid, config.gid);
    if (!s.ok()) return s;
  }
  // The writer lock file too (made above, as root): a later start as the capture's user opens it.
  std::string lock_file = WriterLockPath(config.store, thread);
  if ((config.uid >= 0 || config.gid >= 0) && chown(lock_file.c_str(), config.uid, config.gid) != 0) {
    return Status::FromErrno("chown " + lock_file, errno);
  }
  // Files a crash left without an index become queryable again before capture starts.
  std::vector<RepairResult> repaired;
  s = RepairUnindexedFiles(config.store, static_cast<int>(thread), &repaired);
  for (const RepairResult& r : repaired) {
    if (!quiet) {
      LogLine(LogLevel::kInfo, "rewind capture[%u]: re-indexed %s: %u block(s), %llu packet(s)%s%s\n", thread,
                   r.packet_path.c_str(), r.blocks_kept, static_cast<unsigned long long>(r.packets),
                   r.bytes_dropped ? "; dropped a tail: " : "", r.bytes_dropped ? r.note.c_str() : "");
    }
  }
  if (!s.ok()) LogLine(LogLevel::kError, "rewind capture[%u]: repair: %s\n", thread, s.ToString().c_str());
  s = HandCatalogTo(config.store, config.uid, config.gid);
  if (!s.ok()) return s;
  return lock;
}

std::unique_ptr<CaptureWorker> MakeWorker(const CaptureConfig& config, uint32_t thread, WriterLock lock,
                                          std::unique_ptr<PacketRing> ring, std::atomic<int64_t>* packets_left) {
  PacketFileWriterOptions wo;
  wo.store = config.store;
  wo.max_file_bytes = config.max_file_bytes;
  wo.max_file_age_ns = config.max_file_age_ns;
  wo.max_writes_in_flight =
      std::max(1, std::min<int>(config.max_writes_in_flight, static_cast<int>(config.ring.blocks / 2)));
  wo.preallocate_bytes = config.preallocate_bytes ? config.preallocate_bytes : config.max_file_bytes;
  wo.index = config.index;
  wo.index_nice = config.index_nice;
  wo.compress_level = config.compress_level;
  wo.on_file_complete = config.on_file_complete;
  wo.name_ahead = true;  // a rotation must not hold the ring for a catalog sync
  auto writer = std::make_unique<PacketFileWriter>(wo, std::move(lock));
  return std::make_unique<CaptureWorker>(thread, std::move(ring), std::move(writer),
                                         config.store + "/capture" + std::to_string(thread) + ".json", packets_left);
}

}  // namespace

Result<std::unique_ptr<CaptureWorker>> OpenCaptureWorker(const CaptureConfig& config, uint32_t thread,
                                                         std::atomic<int64_t>* packets_left, bool quiet) {
  auto lock = PrepareWriter(config, thread, quiet);
  if (!lock.ok()) return lock.status();
  auto ring = PacketRing::Open(config.ring);
  if (!ring.ok()) return ring.status();
  return MakeWorker(config, thread, std::move(*lock), std::move(*ring), packets_left);
}

Result<std::vector<std::unique_ptr<CaptureWorker>>> OpenCaptureWorkers(const CaptureConfig& config,
                                                                       uint32_t threads,
                                                                       std::atomic<int64_t>* packets_left,
                                                                       bool quiet) {
  std::vector<WriterLock> locks;
  for (uint32_t t = 0; t < threads; ++t) {
    auto lock = PrepareWriter(config, t, quiet);
    if (!lock.ok()) return lock.status();
    locks.push_back(std::move(*lock));
  }
  // Each ring's memory is allocated and zeroed by the kernel inside one setsockopt: seconds for gigabytes
  // where memory is slow to come by, so the rings are set up side by side.
  std::vector<Result<std::unique_ptr<PacketRing>>> rings;
  rings.reserve(threads);
  for (uint32_t t = 0; t < threads; ++t) rings.emplace_back(Status::IOError("ring not opened"));
  std::vector<std::thread> openers;
  for (uint32_t t = 0; t < threads; ++t) {
    openers.emplace_back([&config, &rings, t] { rings[t] = PacketRing::Open(config.ring); });
  }
  for (std::thread& o : openers) o.join();
  std::vector<std::unique_ptr<CaptureWorker>> workers;
  for (uint32_t t = 0; t < threads; ++t) {
    if (!rings[t].ok()) return rings[t].status();
    workers.push_back(MakeWorker(config, t, std::move(locks[t]), std::move(*rings[t]), packets_left));
  }
  return workers;
}

CaptureWorker::CaptureWorker(uint32_t thread, std::unique_ptr<PacketRing> ring,
                             std::unique_ptr<PacketFileWriter> writer, std::string stats_path,
                             std::atomic<int64_t>* packets_left)
    : thread_(thread),
      ring_(std::move(ring)),
      writer_(std::move(writer)),
      stats_path_(std::move(stats_path)),
      packets_left_(packets_left) {}

void CaptureWorker::ReleaseDone(std::vector<void*>* done) {
  for (void* b : *done) {
    ring_->ReleaseBlock(static_cast<uint8_t*>(b));
    --outstanding_;
  }
  done->clear();
}

Status CaptureWorker::HandleBlock(uint8_t* block, int64_t now_ns) {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
  uint32_t num = desc->hdr.bh1.num_pkts;
  // --count: keep exactly the packets still wanted by cutting the block short in its header.
  if (packets_left_ != nullptr) {
    int64_t left = packets_left_->fetch_sub(num) ;
    if (left <= 0) {
      limit_reached_ = true;
      ring_->ReleaseBlock(block);
      return Status::OK();
    }
    if (left <= static_cast<int64_t>(num)) {
      limit_reached_ = true;
      uint32_t keep = static_cast<uint32_t>(left);
      uint32_t off = desc->hdr.bh1.offset_to_first_pkt;
      for (uint32_t i = 0; i < keep; ++i) {
        auto* h = reinterpret_cast<tpacket3_hdr*>(block + off);
        uint32_t end = off + h->tp_mac + h->tp_snaplen;
        if (i + 1 == keep) {
          desc->hdr.bh1.blk_len = end;
          h->tp_next_offset = 0;
        }
        off += h->tp_next_offset;
      }
      desc->hdr.bh1.num_pkts = keep;
      num = keep;
    }
  }
  BlockPriv priv{};
  std::memcpy(priv.magic, kBlockMagic, sizeof(priv.magic));
  priv.linktype = ring_->linktype();
  priv.snaplen = ring_->snaplen();
  std::memcpy(block + kBlockDescSize, &priv, sizeof(priv));
  ++outstanding_;
  auto start = std::chrono::steady_clock::now();
  Status s = writer_->WriteBlock(block, block, now_ns);
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
  if (us > counters_.max_write_latency_us.load()) counters_.max_write_latency_us = us;
  if (!s.ok()) {
    // The block could not be written (disk full, I/O error): count its packets, give it back, go on.
    --outstanding_;
    std::vector<void*> done;
    NoteError(writer_->Reap(0, &done));  // may carry an error of a file finished in the background
    ReleaseDone(&done);
    ring_->ReleaseBlock(block);
    counters_.write_drops += num;
    ++counters_.write_errors;
    return s;
  }
  counters_.packets += num;
  ++counters_.blocks;
  return Status::OK();
}

// A full disk fails every block: errors are logged at most once a second, with a count of the others.
void CaptureWorker::NoteError(const Status& s) {
  if (s.ok()) return;
  if (first_error_.ok()) first_error_ = s;
  auto now = std::chrono::steady_clock::now();
  if (now - last_error_log_ < std::chrono::seconds(1)) {
    ++unlogged_errors_;
    return;
  }
  if (unlogged_errors_ > 0) {
    LogLine(LogLevel::kError, "rewind capture[%u]: %s (%llu more errors since the last message)", thread_,
            s.ToString().c_str(), unlogged_errors_);
  } else {
    LogLine(LogLevel::kError, "rewind capture[%u]: %s", thread_, s.ToString().c_str());
  }
  unlogged_errors_ = 0;
  last_error_log_ = now;
}

Status CaptureWorker::Run(const std::atomic<bool>& stop) {
  NameThisThread("capture" + std::to_string(thread_));
  std::vector<void*> done;
  Status ring_error;
  WriteStats();  // the counters file exists from the start, so that a full disk can still update it
  auto last_stats = std::chrono::steady_clock::now();
  while (!stop.load() && !limit_reached_) {
    // Wait for the oldest held block's write and index when user space holds too many (keep at least one
    // block for the kernel), and when the next block is not ready: while user space holds a block the kernel
    // reports the socket readable (TPACKET_V3's poll looks at the block before the one being filled), so poll
    // cannot wait for the next block; once the held ones are given back, poll waits for the kernel.
    if (outstanding_ + 1 >= ring_->block_count() || (outstanding_ > 0 && !ring_->NextBlockReady())) {
      NoteError(writer_->Reap(1, &done));
      ReleaseDone(&done);
    }
    auto block = ring_->NextBlock(100);
    if (!block.ok()) {
      // The interface went down or away: what was captured is drained and finished (written, indexed) before
      // returning.
      ring_error = block.status();
      break;
    }
    int64_t now = MonotonicNs();  // drives age rotation only: a step of the wall clock must not (file names use it)
    if (*block != nullptr) NoteError(HandleBlock(*block, now));
    NoteError(writer_->Reap(0, &done));
    ReleaseDone(&done);
    NoteError(writer_->Tick(now, &done));
    ReleaseDone(&done);
    if (std::chrono::steady_clock::now() - last_stats > std::chrono::seconds(1)) {
      WriteStats();
      last_stats = std::chrono::steady_clock::now();
    }
  }
  // Drain: the kernel hands over a partly filled block once its retire timeout passes (also after the
  // interface went down: the packets it received before are in that block).
  if (!limit_reached_) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ring_->block_timeout_ms() + 600);
    while (std::chrono::steady_clock::now() < deadline) {
      auto block = ring_->NextBlock(50);
      if (!block.ok()) break;
      if (*block != nullptr) NoteError(HandleBlock(*block, MonotonicNs()));
    }
  }
  NoteError(writer_->FinishLastFile(&done));
  ReleaseDone(&done);
  if (unlogged_errors_ > 0) LogLine(LogLevel::kError, "rewind capture[%u]: %llu more errors\n", thread_, unlogged_errors_);
  WriteStats();
  return ring_error.ok() ? first_error_ : ring_error;
}

CaptureWorker::Totals CaptureWorker::totals() const {
  Totals t = carried_;
  t.packets += counters_.packets.load();
  t.bytes += counters_.bytes.load();
  t.kernel_packets += counters_.kernel_packets.load();
  t.kernel_drops += counters_.kernel_drops.load();
  t.write_drops += counters_.write_drops.load();
  t.write_errors += counters_.write_errors.load();
  t.blocks += counters_.blocks.load();
  t.files += writer_->stats().files;
  return t;
}

std::string CaptureWorker::StatsJson() const {
  Totals t = totals();
  char buf[768];
  std::snprintf(buf, sizeof(buf),
                "{\"thread\":%u,\"time_ns\":%lld,\"packets\":%llu,\"bytes\":%llu,\"kernel_packets\":%llu,"
                "\"kernel_drops\":%llu,\"write_drops\":%llu,\"write_errors\":%llu,\"blocks\":%llu,\"files\":%llu,"
                "\"max_write_latency_us\":%lld}\n",
                thread_, static_cast<long long>(WallClockNs()), (unsigned long long)t.packets,
                (unsigned long long)t.bytes, (unsigned long long)t.kernel_packets, (unsigned long long)t.kernel_drops,
                (unsigned long long)t.write_drops, (unsigned long long)t.write_errors, (unsigned long long)t.blocks,
                (unsigned long long)t.files, (long long)counters_.max_write_latency_us.load());
  return buf;
}

void CaptureWorker::WriteStats() {
  counters_.bytes = writer_->indexed_bytes();
  RingStats d;
  if (ring_->ReadStats(&d).ok()) {
    counters_.kernel_packets += d.packets;
    counters_.kernel_drops += d.drops;
  }
  if (stats_path_.empty()) return;
  std::string tmp = stats_path_ + ".tmp";
  std::string j = StatsJson();
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f != nullptr) {
    bool ok = std::fwrite(j.data(), 1, j.size(), f) == j.size();
    ok = std::fclose(f) == 0 && ok;
    if (ok && std::rename(tmp.c_str(), stats_path_.c_str()) == 0) return;
    unlink(tmp.c_str());
  }
  // A full disk refuses the new file, and that is when write_drops matter most: overwrite the old file in
  // place instead (its block is already allocated). A reader may then see it half-written.
  int fd = open(stats_path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  if (pwrite(fd, j.data(), j.size(), 0) == static_cast<ssize_t>(j.size())) {
    static_cast<void>(ftruncate(fd, static_cast<off_t>(j.size())) == 0);  // shrinking never needs space
  }
  close(fd);
}

}  // namespace rwd
