#include "bench/synthetic_store_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "bench/needle_frame.h"

namespace rwd {
namespace {

// Writer 0's files 2, 7, ..., 47 carry the needles: all inside the first 50 files, so the smallest
// benchmark store (100 files over 2 writers) already holds every one.
constexpr uint64_t kFirstNeedleFile = 2;
constexpr uint64_t kNeedleFileStride = 5;

Status WriteWholeFile(const std::string& path, const uint8_t* bytes, size_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("creating " + path, errno);
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      close(fd);
      return Status::FromErrno("writing " + path, err);
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return Status::FromErrno("closing " + path, errno);
  return Status::OK();
}

Status ReadWholeFile(const std::string& path, std::string* bytes) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("opening " + path, errno);
  bytes->clear();
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::FromErrno("reading " + path, err);
    }
    if (n == 0) break;
    bytes->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return Status::OK();
}

}  // namespace

SyntheticStoreWriter::SyntheticStoreWriter(const SyntheticStoreOptions& options, const SourceTrace* trace,
                                           WriterLock lock)
    : options_(options),
      trace_(trace),
      lock_(std::move(lock)),
      block_(static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kBlockSize))),
      extent_(static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, kMaxExtentSize))) {
  if (options_.compress_level > 0) compressor_ = std::make_unique<BlockCompressor>(options_.compress_level);
  scratch_path_ = options_.scratch_dir + "/rewind_make_store." + std::to_string(getpid()) + "." +
                  std::to_string(lock_.writer());
}

SyntheticStoreWriter::~SyntheticStoreWriter() {
  unlink(scratch_path_.c_str());
  std::free(block_);
  std::free(extent_);
}

uint64_t SyntheticStoreWriter::FilesOfWriter(const SyntheticStoreOptions& options, uint32_t writer) {
  return options.files / options.writers + (writer < options.files % options.writers ? 1 : 0);
}

bool SyntheticStoreWriter::IsNeedleFile(uint32_t writer, uint64_t file) {
  return writer == 0 && file >= kFirstNeedleFile && (file - kFirstNeedleFile) % kNeedleFileStride == 0 &&
         (file - kFirstNeedleFile) / kNeedleFileStride < kNeedleFiles;
}

Status SyntheticStoreWriter::FlushBlock(IndexBuilder* index, uint32_t block_no) {
  builder_.Finish();
  SealBlock(block_);
  const uint8_t* extent = block_;
  uint32_t disk_length = kBlockSize, flags = 0;
  if (compressor_) {
    uint32_t n = compressor_->Compress(block_, extent_);
    if (n != 0) {
      extent = extent_;
      disk_length = n;
      flags = kBlockFlagZstd;
    }
  }
  uint64_t offset = file_bytes_.size();  // every extent length is a multiple of 4096: offsets stay aligned
  file_bytes_.insert(file_bytes_.end(), extent, extent + disk_length);
  ++stats_.blocks;
  return index->AddBlock(block_no, offset, disk_length, block_, flags);
}

Status SyntheticStoreWriter::WriteFile(uint64_t file) {
  const uint32_t writer = lock_.writer();
  const uint32_t packets = options_.packets_per_file;
  const int64_t file_start = options_.start_ns + static_cast<int64_t>(file) * options_.file_ns;
  const uint64_t first_source = (file * options_.writers + writer) * packets;
  const bool needle = IsNeedleFile(writer, file);
  std::vector<uint8_t> needle_frame;
  if (needle) needle_frame = NeedleFrame(static_cast<uint32_t>(stats_.needles));

  IndexBuilder index;
  file_bytes_.clear();
  uint32_t block_no = 0;
  builder_.Reset(block_, trace_->linktype(), trace_->snaplen(), seq_++);
  for (uint32_t j = 0; j < packets; ++j) {
    SourceTrace::Packet p = trace_->at(first_source + j);
    if (needle && j == packets / 2) {
      p = {needle_frame.data(), static_cast<uint32_t>(needle_frame.size()),
           static_cast<uint32_t>(needle_frame.size())};
      ++stats_.needles;
    }
    // j * file_ns stays far below 2^63 for any sane packets_per_file (< 10^8 at 60 s files).
    int64_t ts = file_start + static_cast<int64_t>(j) * options_.file_ns / packets;
    uint32_t sec = static_cast<uint32_t>(ts / 1'000'000'000), nsec = static_cast<uint32_t>(ts % 1'000'000'000);
    if (!builder_.Add(sec, nsec, p.caplen, p.len, p.data)) {
      Status s = FlushBlock(&index, block_no++);
      if (!s.ok()) return s;
      if (block_no >= kMaxBlocksPerFile) return Status::InvalidArgument("too many packets for one packet file");
      builder_.Reset(block_, trace_->linktype(), trace_->snaplen(), seq_++);
      if (!builder_.Add(sec, nsec, p.caplen, p.len, p.data)) return Status::InvalidArgument("packet larger than a block");
    }
    if (ts >= options_.window_start_ns && ts < options_.window_end_ns) ++stats_.window_packets;
  }
  Status s = FlushBlock(&index, block_no);
  if (!s.ok()) return s;

  const std::string name = FileNameForTime(file_start);
  s = WriteWholeFile(PacketDirectory(options_.store, writer) + "/" + name, file_bytes_.data(), file_bytes_.size());
  if (!s.ok()) return s;
  // The index is written last, as `<name>.tmp` then renamed, as IndexBuilder does it: a packet file is
  // complete exactly when its index table exists.
  s = index.Finish(scratch_path_, file_bytes_.size());
  if (s.ok()) s = ReadWholeFile(scratch_path_, &table_bytes_);
  if (!s.ok()) return s;
  const std::string index_path = IndexDirectory(options_.store, writer) + "/" + name;
  s = WriteWholeFile(index_path + ".tmp", reinterpret_cast<const uint8_t*>(table_bytes_.data()), table_bytes_.size());
  if (!s.ok()) return s;
  if (rename((index_path + ".tmp").c_str(), index_path.c_str()) != 0) {
    return Status::FromErrno("renaming index to " + index_path, errno);
  }
  stats_.index_bytes += table_bytes_.size();
  ++stats_.files;
  stats_.packets += packets;
  stats_.packet_file_bytes += file_bytes_.size();
  return Status::OK();
}

}  // namespace rwd
