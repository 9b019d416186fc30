#include "capture/packet_file_writer.h"

#include <sys/stat.h>

#include <chrono>

#include "index/block_format.h"

namespace rwd {
namespace {

int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

PacketFileWriter::PacketFileWriter(PacketFileWriterOptions options, WriterLock lock)
    : options_(std::move(options)), lock_(std::move(lock)) {
  uint64_t max_bytes = uint64_t{kMaxBlocksPerFile} * kBlockSize;
  if (options_.max_file_bytes == 0 || options_.max_file_bytes > max_bytes) options_.max_file_bytes = max_bytes;
}

PacketFileWriter::~PacketFileWriter() {
  std::vector<void*> ignored;
  FinishFile(&ignored);
}

Status PacketFileWriter::StartFile(int64_t now_ns) {
  std::string name = FileNameForTime(WallClockNs());
  if (!last_name_.empty() && name <= last_name_) name = FileNameForTime(std::stoll(last_name_) + 1);
  std::string path = PacketDirectory(options_.store, lock_.writer()) + "/" + name;
  Result<std::unique_ptr<BlockWriter>> w = BlockWriter::Create(
      path, options_.max_writes_in_flight, options_.preallocate ? options_.max_file_bytes : 0);
  if (!w.ok()) return w.status();
  file_ = std::move(*w);
  index_ = std::make_unique<IndexBuilder>();
  name_ = last_name_ = name;
  packet_path_ = path;
  file_started_ns_ = now_ns;
  blocks_in_file_ = 0;
  index_error_ = Status::OK();
  return Status::OK();
}

Status PacketFileWriter::WriteBlock(const uint8_t* block, void* tag, int64_t now_ns) {
  std::vector<void*> done;
  if (file_ && (uint64_t{blocks_in_file_ + 1} * kBlockSize > options_.max_file_bytes ||
                (options_.max_file_age_ns > 0 && now_ns - file_started_ns_ >= options_.max_file_age_ns))) {
    Status s = FinishFile(&done);
    pending_done_.insert(pending_done_.end(), done.begin(), done.end());
    if (!s.ok()) return s;
  }
  if (!file_) {
    Status s = StartFile(now_ns);
    if (!s.ok()) return s;
  }
  uint32_t block_no = blocks_in_file_;
  uint64_t offset = file_->bytes_written();
  if (file_->in_flight() >= options_.max_writes_in_flight) {
    Status s = file_->Reap(1, &pending_done_);
    if (!s.ok()) return s;
  }
  Status s = file_->Submit(block, kBlockSize, tag);
  if (!s.ok()) return s;
  ++blocks_in_file_;
  ++stats_.blocks;
  stats_.bytes += kBlockSize;
  uint64_t before = index_->summary().packets;
  Status is = index_->AddBlock(block_no, offset, kBlockSize, block);
  stats_.packets += index_->summary().packets - before;
  if (!is.ok() && index_error_.ok()) index_error_ = is;
  return Status::OK();
}

Status PacketFileWriter::Reap(int min, std::vector<void*>* done) {
  done->insert(done->end(), pending_done_.begin(), pending_done_.end());
  int got = static_cast<int>(pending_done_.size());
  pending_done_.clear();
  if (!file_) return Status::OK();
  return file_->Reap(min > got ? min - got : 0, done);
}

Status PacketFileWriter::FinishFile(std::vector<void*>* done) {
  if (!file_) return Status::OK();
  Status s = file_->Close(done);
  uint64_t bytes = file_->bytes_written();
  file_.reset();
  if (s.ok()) {
    std::string index_path = IndexDirectory(options_.store, lock_.writer()) + "/" + name_;
    s = index_->Finish(index_path, bytes);
    if (s.ok()) {
      ++stats_.files;
      struct stat st;
      if (stat(index_path.c_str(), &st) == 0) stats_.index_bytes += static_cast<uint64_t>(st.st_size);
    }
  }
  index_.reset();
  packet_path_.clear();
  if (s.ok() && !index_error_.ok()) s = index_error_;
  return s;
}

}  // namespace rwd
