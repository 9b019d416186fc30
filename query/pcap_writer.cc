#include "query/pcap_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rwd {
namespace {

template <typename T>
void Put(std::string* s, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  s->append(b, sizeof(T));
}

void PadTo4(std::string* s) {
  while (s->size() % 4 != 0) s->push_back('\0');
}

}  // namespace

Status FdSink::Write(const void* data, size_t n) {
  if (!error_.ok()) return error_;
  if (buf_.size() + n > cap_) {
    Status s = Flush();
    if (!s.ok()) return s;
  }
  buf_.append(static_cast<const char*>(data), n);
  return Status::OK();
}

Status FdSink::Flush() {
  if (!error_.ok()) return error_;
  size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error_ = errno == EPIPE ? Status::Cancelled("output closed") : Status::FromErrno("writing output", errno);
      buf_.clear();
      return error_;
    }
    off += static_cast<size_t>(n);
  }
  buf_.clear();
  return Status::OK();
}

PcapWriter::PcapWriter(ByteSink* sink, CaptureFormat format, bool nanos)
    : sink_(sink), format_(format), nanos_(nanos) {}

Status PcapWriter::Begin(const std::vector<uint32_t>& linktypes, uint32_t snaplen) {
  linktypes_ = linktypes;
  std::string h;
  if (format_ == CaptureFormat::kPcap) {
    if (linktypes.size() != 1) return Status::InvalidArgument("pcap output holds exactly one link type");
    Put<uint32_t>(&h, nanos_ ? 0xa1b23c4d : 0xa1b2c3d4);
    Put<uint16_t>(&h, 2);
    Put<uint16_t>(&h, 4);
    Put<int32_t>(&h, 0);
    Put<uint32_t>(&h, 0);
    Put<uint32_t>(&h, snaplen);
    Put<uint32_t>(&h, linktypes[0]);
    return sink_->Write(h.data(), h.size());
  }
  // Section header block.
  Put<uint32_t>(&h, 0x0a0d0d0a);
  Put<uint32_t>(&h, 28);
  Put<uint32_t>(&h, 0x1a2b3c4d);
  Put<uint16_t>(&h, 1);
  Put<uint16_t>(&h, 0);
  Put<int64_t>(&h, -1);
  Put<uint32_t>(&h, 28);
  for (uint32_t lt : linktypes) {
    // Interface description block with if_tsresol.
    Put<uint32_t>(&h, 1);
    Put<uint32_t>(&h, 32);
    Put<uint16_t>(&h, static_cast<uint16_t>(lt));
    Put<uint16_t>(&h, 0);
    Put<uint32_t>(&h, snaplen);
    Put<uint16_t>(&h, 9);  // if_tsresol
    Put<uint16_t>(&h, 1);
    h.push_back(static_cast<char>(nanos_ ? 9 : 6));
    h.append(3, '\0');
    Put<uint32_t>(&h, 0);  // opt_endofopt
    Put<uint32_t>(&h, 32);
  }
  return sink_->Write(h.data(), h.size());
}

Status PcapWriter::WritePacket(uint32_t linktype, uint32_t ts_sec, uint32_t ts_nsec, uint32_t caplen,
                               uint32_t len, const uint8_t* data, FractionField fraction) {
  record_.clear();
  // The fraction in the output's unit (ns or µs); a kept field is libpcap's signed count.
  int64_t frac;
  switch (fraction) {
    case FractionField::kSignedMicros: frac = int64_t{static_cast<int32_t>(ts_nsec)} * (nanos_ ? 1000 : 1); break;
    case FractionField::kSignedNanos: frac = int64_t{static_cast<int32_t>(ts_nsec)} / (nanos_ ? 1 : 1000); break;
    default: frac = int64_t{nanos_ ? ts_nsec : ts_nsec / 1000};
  }
  if (format_ == CaptureFormat::kPcap) {
    Put<uint32_t>(&record_, ts_sec);
    Put<uint32_t>(&record_, static_cast<uint32_t>(frac));  // 32 bits, as libpcap writes the field
    Put<uint32_t>(&record_, caplen);
    Put<uint32_t>(&record_, len);
    Status s = sink_->Write(record_.data(), record_.size());
    return s.ok() ? sink_->Write(data, caplen) : s;
  }
  uint64_t ticks = static_cast<uint64_t>(int64_t{ts_sec} * (nanos_ ? 1000000000 : 1000000) + frac);
  auto it = std::find(linktypes_.begin(), linktypes_.end(), linktype);
  if (it == linktypes_.end()) return Status::InvalidArgument("packet of undeclared link type");
  uint32_t padded = (caplen + 3) & ~3u;
  uint32_t total = 32 + padded;
  Put<uint32_t>(&record_, 6);
  Put<uint32_t>(&record_, total);
  Put<uint32_t>(&record_, static_cast<uint32_t>(it - linktypes_.begin()));
  Put<uint32_t>(&record_, static_cast<uint32_t>(ticks >> 32));
  Put<uint32_t>(&record_, static_cast<uint32_t>(ticks));
  Put<uint32_t>(&record_, caplen);
  Put<uint32_t>(&record_, len);
  record_.append(reinterpret_cast<const char*>(data), caplen);
  PadTo4(&record_);
  Put<uint32_t>(&record_, total);
  return sink_->Write(record_.data(), record_.size());
}

}  // namespace rwd
