#include "bench/source_trace.h"

#include <pcap/pcap.h>

#include <memory>

#include "index/block_format.h"
#include "index/link_type.h"

namespace rwd {
namespace {

struct PcapCloser {
  void operator()(pcap_t* p) const { pcap_close(p); }
};

constexpr uint32_t kLinktypeEthernet = 1;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}

}  // namespace

Result<SourceTrace> SourceTrace::Load(const std::string& path) {
  char errbuf[PCAP_ERRBUF_SIZE] = {0};
  std::unique_ptr<pcap_t, PcapCloser> p(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf));
  if (!p) return Status::InvalidArgument(path + ": " + errbuf);
  SourceTrace trace;
  trace.linktype_ = DltToLinktype(pcap_datalink(p.get()));
  int snaplen = pcap_snapshot(p.get());
  trace.snaplen_ = snaplen <= 0 || static_cast<uint32_t>(snaplen) > kMaxSnapLen ? kMaxSnapLen : snaplen;
  while (true) {
    pcap_pkthdr* hdr = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(p.get(), &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) break;
    if (rc != 1) {
      return Status::InvalidArgument(path + ": packet " + std::to_string(trace.packets_.size() + 1) + ": " +
                                     pcap_geterr(p.get()));
    }
    uint32_t caplen = hdr->caplen > kMaxSnapLen ? kMaxSnapLen : hdr->caplen;
    trace.packets_.push_back({trace.bytes_.size(), caplen, hdr->len});
    trace.bytes_.insert(trace.bytes_.end(), data, data + caplen);
  }
  if (trace.packets_.empty()) return Status::InvalidArgument(path + ": no packets");
  return trace;
}

SourceTrace::Packet SourceTrace::at(uint64_t index) const {
  const Entry& e = packets_[index % packets_.size()];
  return {bytes_.data() + e.offset, e.caplen, e.len};
}

uint64_t SourceTrace::CountIpv4InNetwork(uint32_t network, int prefix_length) const {
  if (linktype_ != kLinktypeEthernet) return 0;
  uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
  uint64_t count = 0;
  for (const Entry& e : packets_) {
    const uint8_t* frame = bytes_.data() + e.offset;
    uint32_t at = 12;
    for (int tags = 0; tags < 2 && at + 2 <= e.caplen; ++tags) {
      uint16_t type = Be16(frame + at);
      if (type != 0x8100 && type != 0x88a8) break;
      at += 4;
    }
    if (at + 2 > e.caplen || Be16(frame + at) != 0x0800) continue;
    const uint8_t* ip = frame + at + 2;
    if (at + 2 + 20 > e.caplen) continue;
    if ((Be32(ip + 12) & mask) == (network & mask) || (Be32(ip + 16) & mask) == (network & mask)) ++count;
  }
  return count;
}

}  // namespace rwd
