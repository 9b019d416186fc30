#include "query/pcap_file_splitter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

namespace rwd {
namespace {

constexpr size_t kInputBuffer = 256 * 1024;   // capture bytes gathered before compressing / writing
constexpr size_t kOutputBuffer = 256 * 1024;  // compressed bytes per write()

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

// Renames `from` to `to` unless `to` exists. EEXIST if it does.
int RenameNoReplace(const std::string& from, const std::string& to) {
  if (renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return errno;
  // A file system without RENAME_NOREPLACE: link() refuses an existing target too.
  if (link(from.c_str(), to.c_str()) != 0) return errno;
  unlink(from.c_str());
  return 0;
}

}  // namespace

bool ParseSplitCompression(const std::string& text, SplitCompression* out) {
  std::string t = Lower(text);
  if (t == "none") *out = SplitCompression::kNone;
  else if (t == "gz" || t == "gzip") *out = SplitCompression::kGzip;
  else if (t == "zst" || t == "zstd") *out = SplitCompression::kZstd;
  else return false;
  return true;
}

bool ParseSplitSize(const std::string& text, uint64_t* bytes) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (__builtin_mul_overflow(n, uint64_t{10}, &n) || __builtin_add_overflow(n, uint64_t(text[i] - '0'), &n)) {
      return false;
    }
    ++i;
  }
  if (i == 0) return false;
  std::string suffix = Lower(text.substr(i));
  int shift = 0;
  if (!suffix.empty() && suffix[0] != 'b') {
    switch (suffix[0]) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: return false;
    }
    suffix.erase(0, 1);
    if (suffix == "ib") suffix = "b";
  }
  if (!suffix.empty() && suffix != "b") return false;
  if (n == 0 || n > (UINT64_MAX >> shift)) return false;
  *bytes = n << shift;
  return true;
}

// One output file: buffers capture bytes, compresses them if asked, writes them to the temporary file.
// The destructor only closes the descriptor (it never writes); the caller removes an unfinished file.
class PcapFileSplitter::FileSink : public ByteSink {
 public:
  static Result<std::unique_ptr<FileSink>> Create(const std::string& path, const std::string& name,
                                                  SplitCompression compression, int level) {
    std::unique_ptr<FileSink> f(new FileSink(name, compression));
    f->fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd_ < 0) return Status::FromErrno("creating " + path, errno);
    if (compression == SplitCompression::kGzip) {
      // windowBits 15 + 16: a gzip header and trailer around the deflate stream.
      if (deflateInit2(&f->z_, level == 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 15 + 16, 8,
                       Z_DEFAULT_STRATEGY) != Z_OK) {
        return Status::IOError("zlib: cannot start a gzip stream for " + name);
      }
      f->z_open_ = true;
    } else if (compression == SplitCompression::kZstd) {
      f->zstd_ = ZSTD_createCCtx();
      if (f->zstd_ == nullptr) return Status::IOError("zstd: cannot create a context for " + name);
      size_t r = ZSTD_CCtx_setParameter(f->zstd_, ZSTD_c_compressionLevel, level);
      if (ZSTD_isError(r)) return Status::InvalidArgument(std::string("zstd level: ") + ZSTD_getErrorName(r));
      ZSTD_CCtx_setParameter(f->zstd_, ZSTD_c_checksumFlag, 1);
    }
    if (compression != SplitCompression::kNone) f->out_.resize(kOutputBuffer);
    f->in_.reserve(kInputBuffer);
    return f;
  }

  ~FileSink() override {
    if (fd_ >= 0) close(fd_);
    if (z_open_) deflateEnd(&z_);
    if (zstd_ != nullptr) ZSTD_freeCCtx(zstd_);
  }

  Status Write(const void* data, size_t n) override {
    if (!error_.ok()) return error_;
    if (in_.size() + n > kInputBuffer) {
      Status s = Push(in_.data(), in_.size(), false);
      in_.clear();
      if (!s.ok()) return s;
    }
    if (n >= kInputBuffer) return Push(static_cast<const char*>(data), n, false);
    in_.append(static_cast<const char*>(data), n);
    return Status::OK();
  }

  // Hands buffered bytes to the compressor (which may keep some) and the file.
  Status Flush() override {
    if (!error_.ok()) return error_;
    Status s = Push(in_.data(), in_.size(), false);
    in_.clear();
    return s;
  }

  // Ends the compressed stream, writes everything, syncs if asked and closes the file.
  Status Close(bool sync) {
    if (!error_.ok()) return error_;
    Status s = Push(in_.data(), in_.size(), true);
    in_.clear();
    if (!s.ok()) return s;
    if (sync && fsync(fd_) != 0) return Fail(errno);
    int fd = fd_;
    fd_ = -1;
    if (close(fd) != 0) return Fail(errno);
    return Status::OK();
  }

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  FileSink(std::string name, SplitCompression compression) : name_(std::move(name)), compression_(compression) {}

  Status Fail(int err) {
    error_ = Status::FromErrno("writing " + name_, err);
    return error_;
  }

  Status Push(const char* data, size_t n, bool end) {
    if (compression_ == SplitCompression::kNone) return WriteFd(data, n);
    if (compression_ == SplitCompression::kGzip) {
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
      z_.avail_in = static_cast<uInt>(n);  // n <= kInputBuffer or one packet record: fits
      while (true) {
        z_.next_out = reinterpret_cast<Bytef*>(out_.data());
        z_.avail_out = static_cast<uInt>(out_.size());
        int r = deflate(&z_, end ? Z_FINISH : Z_NO_FLUSH);
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) {
          error_ = Status::IOError("zlib: compressing " + name_ + " failed (" + std::to_string(r) + ")");
          return error_;
        }
        size_t have = out_.size() - z_.avail_out;
        Status s = WriteFd(out_.data(), have);
        if (!s.ok()) return s;
        if (end ? r == Z_STREAM_END : (z_.avail_in == 0 && z_.avail_out != 0)) break;
        if (r == Z_BUF_ERROR && have == 0) break;  // no progress possible (nothing left to do)
      }
      return Status::OK();
    }
    ZSTD_inBuffer in{data, n, 0};
    while (true) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      size_t rem = ZSTD_compressStream2(zstd_, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(rem)) {
        error_ = Status::IOError("zstd: compressing " + name_ + ": " + ZSTD_getErrorName(rem));
        return error_;
      }
      Status s = WriteFd(out_.data(), out.pos);
      if (!s.ok()) return s;
      if (end ? rem == 0 : in.pos == in.size) break;
    }
    return Status::OK();
  }

  Status WriteFd(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Fail(errno);
      p += w;
      n -= static_cast<size_t>(w);
      bytes_written_ += static_cast<uint64_t>(w);
    }
    return Status::OK();
  }

  std::string name_;  // the final path, for messages
  SplitCompression compression_;
  int fd_ = -1;
  std::string in_;
  std::string out_;
  z_stream z_{};
  bool z_open_ = false;
  ZSTD_CCtx* zstd_ = nullptr;
  uint64_t bytes_written_ = 0;
  Status error_;
};

PcapFileSplitter::PcapFileSplitter(PcapSplitOptions options) : options_(std::move(options)) {}

PcapFileSplitter::~PcapFileSplitter() { AbandonFile(); }

uint64_t PcapFileSplitter::HeaderBytes(CaptureFormat format, size_t linktypes) {
  return format == CaptureFormat::kPcap ? 24 : 28 + 32 * uint64_t{linktypes};
}

uint64_t PcapFileSplitter::RecordBytes(CaptureFormat format, uint32_t caplen) {
  return format == CaptureFormat::kPcap ? 16 + uint64_t{caplen} : 32 + ((uint64_t{caplen} + 3) & ~uint64_t{3});
}

std::string PcapFileSplitter::FileName(uint32_t ts_sec, uint64_t seq) const {
  time_t t = static_cast<time_t>(ts_sec);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%04d%02d%02dT%02d%02d%02dZ-%06llu", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned long long>(seq));
  std::string name = options_.prefix + buf + (format_ == CaptureFormat::kPcapng ? ".pcapng" : ".pcap");
  if (options_.compression == SplitCompression::kGzip) name += ".gz";
  if (options_.compression == SplitCompression::kZstd) name += ".zst";
  return name;
}

Status PcapFileSplitter::Begin(CaptureFormat format, const std::vector<uint32_t>& linktypes, uint32_t snaplen) {
  if (begun_) return Status::InvalidArgument("PcapFileSplitter::Begin called twice");
  if (options_.split_bytes == 0) return Status::InvalidArgument("split size must be at least 1 byte");
  if (options_.dir.empty()) return Status::InvalidArgument("no output directory");
  if (format == CaptureFormat::kPcap && linktypes.size() != 1) {
    return Status::InvalidArgument("pcap output holds exactly one link type");
  }
  if (linktypes.empty()) return Status::InvalidArgument("no link type");
  std::error_code ec;
  std::filesystem::create_directories(options_.dir, ec);
  if (ec) return Status::FromErrno("creating " + options_.dir, ec.value());
  if (!std::filesystem::is_directory(options_.dir, ec)) {
    return Status::InvalidArgument(options_.dir + " is not a directory");
  }
  format_ = format;
  linktypes_ = linktypes;
  snaplen_ = snaplen;
  begun_ = true;
  return Status::OK();
}

Status PcapFileSplitter::WritePacket(uint32_t linktype, const PacketView& packet) {
  if (!error_.ok()) return error_;
  if (!begun_) return Status::InvalidArgument("PcapFileSplitter::WritePacket before Begin");
  uint64_t record = RecordBytes(format_, packet.caplen);
  Status s;
  if (sink_ != nullptr && file_packets_ > 0 && file_capture_bytes_ + record > options_.split_bytes) {
    s = CompleteFile();
  }
  if (s.ok() && sink_ == nullptr) s = StartFile(packet.ts_sec);
  if (s.ok()) s = writer_->WritePacket(linktype, packet.ts_sec, packet.ts_nsec, packet.caplen, packet.len, packet.data,
                                          packet.fraction);
  if (!s.ok()) {
    error_ = s;
    AbandonFile();
    return s;
  }
  file_capture_bytes_ += record;
  ++file_packets_;
  return Status::OK();
}

Status PcapFileSplitter::Finish() {
  if (!error_.ok()) return error_;
  if (!begun_) return Status::InvalidArgument("PcapFileSplitter::Finish before Begin");
  Status s = sink_ != nullptr ? CompleteFile() : Status::OK();
  if (s.ok() && options_.sync && !stats_.files.empty()) {
    // Make the renames durable.
    int fd = open(options_.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) s = Status::FromErrno("syncing " + options_.dir, errno);
    if (fd >= 0) close(fd);
  }
  if (!s.ok()) {
    error_ = s;
    AbandonFile();
  }
  return s;
}

Status PcapFileSplitter::StartFile(uint32_t ts_sec) {
  uint32_t name_sec = seq_ > 0 && ts_sec < last_name_sec_ ? last_name_sec_ : ts_sec;
  last_name_sec_ = name_sec;
  ++seq_;
  std::string name = FileName(name_sec, seq_);
  final_path_ = options_.dir + "/" + name;
  struct stat st;
  if (lstat(final_path_.c_str(), &st) == 0) {
    return Status::IOError(final_path_ + ": already exists; not overwriting (export into an empty directory)");
  }
  std::string tmp = options_.dir + "/.tmp-" + name;
  auto sink = FileSink::Create(tmp, final_path_, options_.compression, options_.level);
  if (!sink.ok()) return sink.status();
  tmp_path_ = tmp;
  sink_ = std::move(*sink);
  writer_ = std::make_unique<PcapWriter>(sink_.get(), format_, options_.nanos);
  file_capture_bytes_ = HeaderBytes(format_, linktypes_.size());
  file_packets_ = 0;
  return writer_->Begin(linktypes_, snaplen_);
}

Status PcapFileSplitter::CompleteFile() {
  Status s = sink_->Close(options_.sync);
  if (!s.ok()) return s;
  int err = RenameNoReplace(tmp_path_, final_path_);
  if (err == EEXIST) return Status::IOError(final_path_ + ": already exists; not overwriting");
  if (err != 0) return Status::FromErrno("renaming " + tmp_path_ + " to " + final_path_, err);
  tmp_path_.clear();
  stats_.files.push_back(final_path_);
  stats_.packets += file_packets_;
  stats_.capture_bytes += file_capture_bytes_;
  stats_.file_bytes += sink_->bytes_written();
  writer_.reset();
  sink_.reset();
  file_packets_ = 0;
  file_capture_bytes_ = 0;
  return Status::OK();
}

void PcapFileSplitter::AbandonFile() {
  writer_.reset();
  sink_.reset();
  if (!tmp_path_.empty()) unlink(tmp_path_.c_str());
  tmp_path_.clear();
}

Status ExportQueryToFiles(Query* query, const PcapSplitOptions& options, PcapSplitStats* stats,
                          QueryStats* query_stats) {
  PcapFileSplitter splitter(options);
  CaptureFormat format = query->WritesPcapng() ? CaptureFormat::kPcapng : CaptureFormat::kPcap;
  Status s = splitter.Begin(format, query->OutputLinktypes(), kMaxSnapLen);
  QueryStats local;
  if (s.ok()) {
    Status write;
    Status run = query->ForEach(
        [&](const Query::Match& m) {
          write = splitter.WritePacket(m.linktype, *m.packet);
          return write.ok();
        },
        query_stats != nullptr ? query_stats : &local);
    s = !write.ok() ? write : !run.ok() ? run : splitter.Finish();
  }
  if (stats != nullptr) *stats = splitter.stats();
  return s;  // on failure the splitter's destructor removes the unfinished file
}

}  // namespace rwd
