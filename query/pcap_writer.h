// PcapWriter: the one writer of capture files — classic pcap (µs or ns) or pcapng (one interface per link
// type, for answers that mix link types) — onto a ByteSink (a file descriptor, an HTTP stream). Not
// thread-safe.
#ifndef REWIND_QUERY_PCAP_WRITER_H_
#define REWIND_QUERY_PCAP_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/status.h"

namespace rwd {

// Where output bytes go. Write() returning Cancelled means the reader went away: stop work at once.
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(const void* data, size_t n) = 0;
  virtual Status Flush() = 0;
};

// Buffers writes to a file descriptor. A closed pipe (EPIPE) becomes Cancelled. Does not own the fd.
class FdSink : public ByteSink {
 public:
  explicit FdSink(int fd, size_t buffer_bytes = 256 * 1024) : fd_(fd), cap_(buffer_bytes) { buf_.reserve(cap_); }
  ~FdSink() override { Flush(); }
  Status Write(const void* data, size_t n) override;
  Status Flush() override;

 private:
  int fd_;
  size_t cap_;
  std::string buf_;
  Status error_;
};

enum class CaptureFormat { kPcap, kPcapng };

class PcapWriter {
 public:
  // `sink` must outlive the writer. `nanos`: nanosecond timestamps (pcap magic 0xa1b23c4d, or pcapng
  // if_tsresol 9) instead of microseconds.
  PcapWriter(ByteSink* sink, CaptureFormat format, bool nanos);
  // Writes the file header. For kPcap `linktypes` must hold exactly one link type; for kPcapng one
  // interface is declared per link type, in the order given.
  Status Begin(const std::vector<uint32_t>& linktypes, uint32_t snaplen);
  // Writes one packet with timestamp ts_sec + ts_nsec / 1e9 (fields kept as stored; µs output truncates
  // the fraction). A pcap field kept as stored (`fraction` other than kNanos) is written as tcpdump writes
  // what libpcap read from it: in its own unit unchanged, in the other scaled as libpcap scales the signed
  // count (µs times 1000, ns divided by 1000 toward zero), in 32 bits; pcapng gets libpcap's time. Its link
  // type must be one passed to Begin().
  Status WritePacket(uint32_t linktype, uint32_t ts_sec, uint32_t ts_nsec, uint32_t caplen, uint32_t len,
                     const uint8_t* data, FractionField fraction = FractionField::kNanos);
  Status Flush() { return sink_->Flush(); }

 private:
  ByteSink* sink_;
  CaptureFormat format_;
  bool nanos_;
  std::vector<uint32_t> linktypes_;
  std::string record_;
};

}  // namespace rwd

#endif  // REWIND_QUERY_PCAP_WRITER_H_
