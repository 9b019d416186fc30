// SourceTrace: every packet of one capture file, held in memory, to be copied (cycled) into synthetic
// packet files by rewind_make_store. The whole file must use one link type. Immutable once loaded, so
// any number of threads may read it.
#ifndef REWIND_BENCH_SOURCE_TRACE_H_
#define REWIND_BENCH_SOURCE_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/status.h"

namespace rwd {

class SourceTrace {
 public:
  struct Packet {
    const uint8_t* data;  // caplen bytes of frame, owned by the trace
    uint32_t caplen;
    uint32_t len;         // original length on the wire
  };

  // Reads every packet of the pcap (or single-interface pcapng) file at `path` through libpcap.
  // InvalidArgument if it cannot be opened or holds no packet.
  static Result<SourceTrace> Load(const std::string& path);

  uint32_t linktype() const { return linktype_; }  // LINKTYPE_* (as stored in blocks)
  uint32_t snaplen() const { return snaplen_; }
  size_t size() const { return packets_.size(); }
  // The packet at `index` modulo size(): the trace repeats forever.
  Packet at(uint64_t index) const;

  // Packets whose outermost IPv4 header (Ethernet, behind up to two VLAN tags) has a source or
  // destination address inside `network`/`prefix_length` (host byte order). Only meaningful for Ethernet.
  uint64_t CountIpv4InNetwork(uint32_t network, int prefix_length) const;

 private:
  struct Entry {
    size_t offset;  // of the frame in bytes_
    uint32_t caplen;
    uint32_t len;
  };
  uint32_t linktype_ = 0;
  uint32_t snaplen_ = 0;
  std::vector<uint8_t> bytes_;
  std::vector<Entry> packets_;
};

}  // namespace rwd

#endif  // REWIND_BENCH_SOURCE_TRACE_H_
