#include "capture/packet_file_writer.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>

#include "index/block_format.h"
#include "index/index_repair.h"
#include "index/store_catalog.h"
#include "index/thread_name.h"
#include "index/wall_clock.h"
#include "index/log_line.h"

namespace rwd {
PacketFileWriter::PacketFileWriter(PacketFileWriterOptions options, WriterLock lock)
    : options_(std::move(options)), lock_(std::move(lock)) {
  uint64_t max_bytes = uint64_t{kMaxBlocksPerFile} * kBlockSize;
  if (options_.max_file_bytes == 0 || options_.max_file_bytes > max_bytes) options_.max_file_bytes = max_bytes;
  if (options_.compress_level > 0) compressor_ = std::make_unique<BlockCompressor>(options_.compress_level);
  indexer_ = std::thread([this] { IndexLoop(); });
  finisher_ = std::thread([this] { FinishLoop(); });
}

PacketFileWriter::~PacketFileWriter() {
  std::vector<void*> ignored;
  FinishLastFile(&ignored);
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  jobs_cv_.notify_all();
  finish_cv_.notify_all();
  indexer_.join();
  finisher_.join();
}

PacketFileWriterStats PacketFileWriter::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

void PacketFileWriter::IndexLoop() {
  NameThisThread("index" + std::to_string(writer()));
  if (options_.index_nice != 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), options_.index_nice);
  }
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    jobs_cv_.wait(l, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_ and drained
    IndexJob job = jobs_.front();
    jobs_.pop_front();
    if (job.finish) {  // every block of the file is indexed
      to_finish_.push_back(std::move(job.finish));
      finish_cv_.notify_one();
      if (jobs_.empty()) cv_.notify_all();
      continue;
    }
    indexing_ = true;
    l.unlock();
    uint64_t before = job.index->summary().packets;
    uint64_t bytes_before = job.index->summary().captured_bytes;
    Status s = job.live->AddBlock(job.block_no, job.offset, job.disk_length, job.block, job.flags);
    uint64_t added = job.index->summary().packets - before;
    indexed_bytes_total_.fetch_add(job.index->summary().captured_bytes - bytes_before, std::memory_order_relaxed);
    l.lock();
    stats_.packets += added;
    if (!s.ok() && index_error_.ok()) index_error_ = s;
    indexing_ = false;
    bool idle = jobs_.empty();
    l.unlock();
    Release(job.tag);
    if (idle) cv_.notify_all();  // for a caller waiting until every block is indexed
    l.lock();
  }
}

void PacketFileWriter::FinishLoop() {
  NameThisThread("finish" + std::to_string(writer()));
  if (options_.index_nice != 0) {  // index work, as on the indexing thread
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), options_.index_nice);
  }
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    finish_cv_.wait(l, [this] { return stop_ || !to_finish_.empty() || reserve_wanted_; });
    if (reserve_wanted_) {  // first: it is needed by the next rotation
      reserve_wanted_ = false;
      reserving_ = true;
      std::string name = NextFileName(reserve_after_);
      l.unlock();
      // A failure is not reported here: the rotation then records its name itself, and says what fails.
      bool recorded = RecordFileWriting(options_.store, lock_.writer(), name).ok();
      l.lock();
      if (recorded) reserved_name_ = name;
      reserving_ = false;
      cv_.notify_all();
      continue;
    }
    if (to_finish_.empty()) return;  // stop_ and drained
    std::shared_ptr<FileToFinish> file = std::move(to_finish_.front());
    to_finish_.pop_front();
    l.unlock();
    Status s = FinishWrittenFile(file.get());
    file.reset();  // the index's memory goes before the next file is taken
    l.lock();
    if (!s.ok() && finish_error_.ok()) finish_error_ = s;
    --files_finishing_;
    cv_.notify_all();
  }
}

Status PacketFileWriter::FinishWrittenFile(FileToFinish* file) {
  // Durable before the catalog may call it complete. A file that cannot be synced or indexed is read back from
  // disk later (RetryUnindexed), which keeps what checks out.
  Status s = file->file->Seal();
  if (file->failed) {
    // A write failed: the blocks in memory are not what is on disk. Indexed from disk once a later file's table
    // is written (RetryUnindexed); its write error was reported when it was closed.
    if (file->index) unindexed_.push_back(file->name);
    if (file->live) UnregisterLiveIndex(file->packet_path);
    return Status::OK();
  }
  if (file->index) {
    std::string index_path = IndexDirectory(options_.store, lock_.writer()) + "/" + file->name;
    // What the file takes on disk: its holes (part-filled blocks) are not counted.
    if (s.ok()) s = file->index->Finish(index_path, DiskUsage(file->packet_path));
    if (s.ok()) {
      RecordIndexedFile(*file, index_path);
    } else {
      unindexed_.push_back(file->name);
    }
  }
  if (file->live) UnregisterLiveIndex(file->packet_path);  // after the catalog lists the file as complete
  return s;
}

void PacketFileWriter::RecordIndexedFile(const FileToFinish& file, const std::string& index_path) {
  RetryUnindexed();
  // Files whose catalog record could not be written before (a full disk) are retried first, in order.
  for (size_t i = 0; i < catalog_backlog_.size();) {
    std::string index_path = IndexDirectory(options_.store, lock_.writer()) + "/" + catalog_backlog_[i];
    struct stat st;
    if (stat(index_path.c_str(), &st) != 0 && errno == ENOENT) {  // removed meanwhile (by hand): nothing to list
      if (!RecordRemoved(catalog_backlog_[i]).ok()) break;
    } else if (!RecordFileCompleteFromIndex(options_.store, lock_.writer(), catalog_backlog_[i]).ok()) {
      break;  // a full disk still: retried at the next file, in order
    }
    catalog_backlog_.erase(catalog_backlog_.begin() + static_cast<long>(i));
  }
  Status cs = RecordFileComplete(options_.store, lock_.writer(), file.name, file.index->summary(),
                                 file.index->table_bytes(), file.index->key_filter(), file.index->unfiltered());
  if (!cs.ok()) {
    catalog_backlog_.push_back(file.name);
    LogLine(LogLevel::kWarning, "rewind: cannot record %s in the store catalog (retried at the next file): %s\n",
            file.packet_path.c_str(), cs.ToString().c_str());
  }
  struct stat st;
  uint64_t index_bytes = stat(index_path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    ++stats_.files;
    stats_.index_bytes += index_bytes;
  }
  if (options_.on_file_complete) options_.on_file_complete(file.packet_path, index_path);
}

// A file whose index table could not be written (a full disk, a broken index directory) is indexed again
// from disk once a later file's table has been written, so it becomes queryable through the catalog and
// retention can remove it, without waiting for the next start's repair. At most one attempt per finished
// file; what still fails waits for the next.
void PacketFileWriter::RetryUnindexed() {
  while (!unindexed_.empty()) {
    StoreFile f;
    f.writer = lock_.writer();
    f.name = unindexed_.front();
    f.packet_path = PacketDirectory(options_.store, f.writer) + "/" + f.name;
    f.index_path = IndexDirectory(options_.store, f.writer) + "/" + f.name;
    struct stat st;
    if (stat(f.packet_path.c_str(), &st) != 0 && errno == ENOENT) {  // removed by hand meanwhile
      unindexed_.erase(unindexed_.begin());
      continue;
    }
    RepairResult r;
    Status s = RepairPacketFile(f, &r);
    if (!s.ok()) {
      LogLine(LogLevel::kWarning, "rewind: %s is still unindexed (retried after the next file): %s\n",
              f.packet_path.c_str(), s.ToString().c_str());
      return;
    }
    unindexed_.erase(unindexed_.begin());
    if (r.blocks_kept == 0) {
      // Nothing in it reads back, as start-up repair would find: quarantined, so that it is not left "writing"
      // in the catalog (read by every query until the next start).
      std::string moved;
      Status qs = Quarantine(options_.store, f.packet_path, &moved);
      if (qs.ok()) qs = RecordRemoved(f.name);
      LogLine(LogLevel::kWarning, "rewind: %s holds no readable block (%s): %s\n", f.packet_path.c_str(),
              r.note.c_str(), qs.ok() ? ("moved to " + moved).c_str() : qs.ToString().c_str());
    } else {
      LogLine(LogLevel::kInfo, "rewind: indexed %s after an earlier failure: %u block(s), %llu packet(s)\n",
              f.packet_path.c_str(), r.blocks_kept, static_cast<unsigned long long>(r.packets));
      catalog_backlog_.push_back(f.name);  // recorded with the catalog's backlog, next
    }
  }
}

Status PacketFileWriter::TakeDeferredError() {
  std::lock_guard<std::mutex> l(mu_);
  Status s = !index_error_.ok() ? index_error_ : finish_error_;
  index_error_ = Status::OK();
  finish_error_ = Status::OK();
  return s;
}

void PacketFileWriter::Release(void* tag) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = holds_.find(tag);
    if (it == holds_.end() || --it->second > 0) return;
    holds_.erase(it);
    ready_.push_back(tag);
  }
  cv_.notify_all();
}

void PacketFileWriter::WriteDone(void* tag) {
  auto it = write_block_.find(tag);
  if (it != write_block_.end()) {
    uint32_t b = it->second;
    write_block_.erase(it);
    if (b < block_written_.size()) block_written_[b] = true;
    while (written_prefix_ < block_written_.size() && block_written_[written_prefix_]) ++written_prefix_;
    if (live_) live_->SetDurableBlocks(written_prefix_);
  }
  if (extent_tags_.count(tag)) {
    free_extents_.push_back(static_cast<uint8_t*>(tag));
  } else {
    Release(tag);
  }
}

Status PacketFileWriter::CollectWrites(int min) {
  if (!file_) return Status::OK();
  std::vector<void*> written;
  Status s = file_->Reap(min, &written);
  for (void* t : written) WriteDone(t);
  if (!s.ok()) AbandonFile();
  return s;
}

std::string PacketFileWriter::NextFileName(const std::string& after) {
  std::string name = FileNameForTime(WallClockNs());
  if (!after.empty() && name <= after) name = FileNameForTime(std::stoll(after) + 1);
  return name;
}

void PacketFileWriter::ReserveNextName(int64_t now_ns) {
  if (!options_.name_ahead || reserve_asked_ || !file_) return;
  bool half_full = file_->bytes_written() * 2 >= options_.max_file_bytes;
  bool half_age = options_.max_file_age_ns > 0 && (now_ns - file_started_ns_) * 2 >= options_.max_file_age_ns;
  if (!half_full && !half_age) return;
  reserve_asked_ = true;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!reserved_name_.empty()) return;  // one from an earlier file is still unused
    reserve_wanted_ = true;
    reserve_after_ = name_;
  }
  finish_cv_.notify_one();
}

Status PacketFileWriter::StartFile(int64_t now_ns) {
  if (!aio_) {
    auto aio = AioContext::Create(options_.max_writes_in_flight);
    if (!aio.ok()) return aio.status();
    aio_ = std::move(*aio);
  }
  // The catalog lists the file before it exists, so no packet file is ever unknown to it (a crash leaves a
  // "writing" entry that start-up repair resolves). Its name was usually recorded ahead (ReserveNextName).
  std::string name;
  {
    std::unique_lock<std::mutex> l(mu_);
    reserve_wanted_ = false;  // not taken up yet (the finishing thread is busy with a file): recorded below
    cv_.wait(l, [this] { return !reserving_; });
    name.swap(reserved_name_);
  }
  if (name.empty()) {
    name = NextFileName(last_name_);
    Status cs = RecordFileWriting(options_.store, lock_.writer(), name);
    if (!cs.ok()) return cs;
  }
  std::string path = PacketDirectory(options_.store, lock_.writer()) + "/" + name;
  Result<std::unique_ptr<BlockWriter>> w = BlockWriter::Create(
      aio_.get(), path, options_.max_writes_in_flight, std::min(options_.preallocate_bytes, options_.max_file_bytes));
  if (!w.ok()) {
    (void)RecordRemoved(name);
    return w.status();
  }
  file_ = std::move(*w);
  index_ = std::make_shared<IndexBuilder>();
  if (options_.index) {
    live_ = std::make_shared<LiveIndex>(index_);
    RegisterLiveIndex(path, live_);
  }
  write_block_.clear();
  block_written_.clear();
  written_prefix_ = 0;
  name_ = last_name_ = name;
  packet_path_ = path;
  file_started_ns_ = now_ns;
  blocks_in_file_ = 0;
  reserve_asked_ = false;
  return Status::OK();
}

Status PacketFileWriter::WriteBlock(uint8_t* block, void* tag, int64_t now_ns) {
  if (file_ && (file_->bytes_written() + kBlockSize > options_.max_file_bytes ||
                blocks_in_file_ >= kMaxBlocksPerFile ||
                (options_.max_file_age_ns > 0 && now_ns - file_started_ns_ >= options_.max_file_age_ns))) {
    // The next file is started before the closed one goes to the finishing thread: its sync (a journal
    // commit that can take a tenth of a second) would hold up the new file's fallocate.
    std::shared_ptr<FileToFinish> closed;
    Status s = CloseFile(&closed);  // a failed write: the file is closed all the same
    if (!s.ok()) NoteWriteError(s);
    s = StartAfterFailureWait(now_ns);
    if (closed) HandOver(std::move(closed));
    if (!s.ok()) return s;
  }
  // Room for one more write (and, compressing, a free extent buffer). A write found failed here closes its
  // file (CollectWrites): this block then starts the next one.
  if (file_ && file_->in_flight() >= options_.max_writes_in_flight) NoteWriteError(CollectWrites(1));
  while (compressor_ && free_extents_.empty()) {
    if (extent_buffers_.size() < static_cast<size_t>(options_.max_writes_in_flight)) {
      extent_buffers_.push_back(NewAlignedBuffer(kMaxExtentSize));
      uint8_t* buf = extent_buffers_.back().get();
      extent_tags_.insert(buf);
      free_extents_.push_back(buf);
    } else if (file_) {
      NoteWriteError(CollectWrites(1));
    } else {
      return Status::IOError("no extent buffer came back from the writes");  // extents are in flight only in file_
    }
  }
  if (!file_) {
    Status s = StartAfterFailureWait(now_ns);
    if (!s.ok()) return s;
  }
  SealBlock(block);
  uint64_t offset = file_->bytes_written();
  // With compression the extent buffer is written and the raw block is needed only for indexing.
  const uint8_t* to_write = block;
  void* write_tag = tag;
  uint32_t disk_length = kBlockSize, flags = 0;
  if (compressor_) {
    uint8_t* extent = free_extents_.back();
    uint32_t n = compressor_->Compress(block, extent);
    if (n != 0) {
      free_extents_.pop_back();
      to_write = extent;
      write_tag = extent;
      disk_length = n;
      flags = kBlockFlagZstd;
    }
  }
  // A raw block is written only as far as it is used (rounded up to whole pages): the kernel hands over
  // partly filled blocks every blockage interval, and on a quiet link most of each is unused. It still
  // takes kBlockSize bytes of the file (ExtentStride), the rest a hole; the index records what was written.
  if (flags == 0) disk_length = RawBlockDiskLength(block);
  Status s = file_->Submit(to_write, disk_length, write_tag, static_cast<uint32_t>(ExtentStride(disk_length, flags)));
  if (!s.ok()) {
    if (write_tag != tag) free_extents_.push_back(static_cast<uint8_t*>(write_tag));
    AbandonFile();
    return s;  // the block is the caller's again: its tag never comes back from Reap()
  }
  // Completions are collected on this thread only (CollectWrites), so the holds are in place before any.
  write_block_[write_tag] = blocks_in_file_;
  block_written_.push_back(false);
  int holds = (options_.index ? 1 : 0) + (write_tag == tag ? 1 : 0);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (holds > 0) holds_[tag] = holds;  // released by the write of the raw block and by the indexing
    else ready_.push_back(tag);
    ++stats_.blocks;
    stats_.bytes += disk_length;
  }
  if (options_.index) {
    {
      std::lock_guard<std::mutex> l(mu_);
      jobs_.push_back({index_, live_, blocks_in_file_, offset, disk_length, flags, block, tag, nullptr});
    }
    jobs_cv_.notify_one();
  }
  ++blocks_in_file_;
  ReserveNextName(now_ns);
  return Status::OK();
}

Status PacketFileWriter::Reap(int min, std::vector<void*>* done) {
  Status deferred = TakeDeferredError();
  if (deferred.ok()) deferred = write_error_;
  write_error_ = Status::OK();
  Status s = CollectWrites(0);
  size_t start = done->size();
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      done->insert(done->end(), ready_.begin(), ready_.end());
      ready_.clear();
      if (static_cast<int>(done->size() - start) >= min || holds_.empty() || !s.ok()) return s.ok() ? deferred : s;
    }
    if (file_ && file_->in_flight() > 0) {
      s = CollectWrites(1);  // block on the disk
    } else {
      std::unique_lock<std::mutex> l(mu_);  // block on the indexing thread
      cv_.wait(l, [this] { return !ready_.empty() || holds_.empty(); });
    }
  }
}

Status PacketFileWriter::Tick(int64_t now_ns, std::vector<void*>* done) {
  if (!file_ || options_.max_file_age_ns <= 0) return Status::OK();
  if (now_ns - file_started_ns_ < options_.max_file_age_ns) {
    ReserveNextName(now_ns);  // also on an idle link
    return Status::OK();
  }
  return CompleteFile(done, false, false);
}

Status PacketFileWriter::FinishFile(std::vector<void*>* done) { return CompleteFile(done, false, true); }

Status PacketFileWriter::FinishLastFile(std::vector<void*>* done) {
  Status s = CompleteFile(done, true, true);
  aio_.reset();  // also without an open file
  std::string unused;
  {
    std::lock_guard<std::mutex> l(mu_);
    unused.swap(reserved_name_);
  }
  if (!unused.empty()) {
    Status rs = RecordRemoved(unused);
    if (s.ok()) s = rs;
  }
  return s;
}

Status PacketFileWriter::RecordRemoved(const std::string& name) {
  CatalogEntry gone;
  gone.writer = lock_.writer();
  gone.name = name;
  return RecordFileRemoved(options_.store, gone);
}

Status PacketFileWriter::CloseFile(std::shared_ptr<FileToFinish>* closed) {
  std::vector<void*> written;
  Status s = file_->Drain(&written);
  for (void* t : written) WriteDone(t);
  if (s.ok() || file_->good_writes() > 0) {
    auto file = std::make_shared<FileToFinish>();
    file->file = std::move(file_);
    if (options_.index) file->index = std::move(index_);
    file->live = std::move(live_);
    file->name = name_;
    file->packet_path = packet_path_;
    file->failed = !s.ok();
    *closed = std::move(file);
  } else {
    // Not one block of it reached the disk (a full disk): nothing to keep, and no catalog entry left
    // "writing" for it.
    (void)file_->Seal();
    file_.reset();
    if (live_) UnregisterLiveIndex(packet_path_);
    if (unlink(packet_path_.c_str()) == 0 || errno == ENOENT) (void)RecordRemoved(name_);
  }
  live_.reset();
  index_.reset();
  packet_path_.clear();
  return s;
}

void PacketFileWriter::HandOver(std::shared_ptr<FileToFinish> file) {
  std::unique_lock<std::mutex> l(mu_);
  // Bounded: each waiting file holds its whole index in memory.
  cv_.wait(l, [this] { return files_finishing_ < kMaxFilesFinishing; });
  ++files_finishing_;
  jobs_.push_back({nullptr, nullptr, 0, 0, 0, 0, nullptr, nullptr, std::move(file)});
  l.unlock();
  jobs_cv_.notify_one();
}

void PacketFileWriter::AbandonFile() {
  std::shared_ptr<FileToFinish> closed;
  (void)CloseFile(&closed);  // the write error was reported by the caller
  if (closed) HandOver(std::move(closed));
}

void PacketFileWriter::NoteWriteError(const Status& s) {
  if (!s.ok() && write_error_.ok()) write_error_ = s;
}

Status PacketFileWriter::StartAfterFailureWait(int64_t now_ns) {
  auto now = std::chrono::steady_clock::now();
  if (now < no_start_until_) return start_error_;
  Status s = StartFile(now_ns);
  if (!s.ok()) {
    no_start_until_ = now + kStartRetryInterval;
    start_error_ = s;
  }
  return s;
}

Status PacketFileWriter::CompleteFile(std::vector<void*>* done, bool last, bool wait) {
  Status s;
  if (file_) {
    std::shared_ptr<FileToFinish> closed;
    s = CloseFile(&closed);
    if (last) aio_.reset();  // no more writes: its teardown overlaps the index build
    if (closed) HandOver(std::move(closed));
  }
  if (!wait) return s;
  {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [this] {
      return jobs_.empty() && !indexing_ && files_finishing_ == 0 && !reserve_wanted_ && !reserving_;
    });
    done->insert(done->end(), ready_.begin(), ready_.end());
    ready_.clear();
  }
  Status deferred = TakeDeferredError();
  return s.ok() ? deferred : s;
}

}  // namespace rwd
