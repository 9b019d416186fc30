#include "web/http_chunk_sink.h"

namespace rwd {

HttpChunkSink::HttpChunkSink(SendFn send, size_t chunk_bytes) : send_(std::move(send)), chunk_bytes_(chunk_bytes) {
  buf_.reserve(kSizeField + chunk_bytes_ + 2);
  buf_.assign(kSizeField, '\0');
}

Status HttpChunkSink::Write(const void* data, size_t n) {
  if (!error_.ok()) return error_;
  if (n >= (uint64_t{1} << 31)) return error_ = Status::InvalidArgument("a write too large for one chunk");
  size_t pending = buf_.size() - kSizeField;
  if (pending != 0 && pending + n > chunk_bytes_) {
    Status s = Flush();
    if (!s.ok()) return s;
  }
  buf_.append(static_cast<const char*>(data), n);
  return Status::OK();
}

Status HttpChunkSink::Flush() {
  if (!error_.ok()) return error_;
  size_t pending = buf_.size() - kSizeField;
  if (pending == 0) return Status::OK();
  // Eight hex digits, leading zeros allowed (RFC 9112 section 7.1: chunk-size = 1*HEXDIG); Write keeps a
  // chunk below 4 GiB.
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0, v = pending; i < 8; ++i, v >>= 4) buf_[7 - i] = kHex[v & 15];
  buf_[8] = '\r';
  buf_[9] = '\n';
  buf_ += "\r\n";
  if (!send_(buf_.data(), buf_.size())) return error_ = Status::Cancelled("client went away");
  written_ += pending;
  buf_.resize(kSizeField);
  return Status::OK();
}

Status HttpChunkSink::Finish(const std::string& trailer) {
  Status s = Flush();
  if (!s.ok()) return s;
  std::string last = "0\r\n" + trailer + "\r\n";
  if (!send_(last.data(), last.size())) return error_ = Status::Cancelled("client went away");
  return Status::OK();
}

}  // namespace rwd
