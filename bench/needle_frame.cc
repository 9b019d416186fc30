#include "bench/needle_frame.h"

#include <cstdio>
#include <cstring>

namespace rwd {
namespace {

void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void PutBe32(uint8_t* p, uint32_t v) {
  PutBe16(p, static_cast<uint16_t>(v >> 16));
  PutBe16(p + 2, static_cast<uint16_t>(v));
}

// RFC 791 header checksum: one's complement of the one's complement sum of the 16-bit words.
uint16_t Ipv4HeaderChecksum(const uint8_t* header, size_t length) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2) sum += static_cast<uint32_t>(header[i] << 8 | header[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

}  // namespace

std::vector<uint8_t> NeedleFrame(uint32_t serial) {
  constexpr size_t kEthernet = 14, kIpv4 = 20, kUdp = 8, kPayload = 32;
  std::vector<uint8_t> frame(kEthernet + kIpv4 + kUdp + kPayload, 0);
  uint8_t* eth = frame.data();
  const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x02}, src_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
  std::memcpy(eth, dst_mac, 6);
  std::memcpy(eth + 6, src_mac, 6);
  PutBe16(eth + 12, 0x0800);
  uint8_t* ip = eth + kEthernet;
  ip[0] = 0x45;  // version 4, 5-word header
  PutBe16(ip + 2, kIpv4 + kUdp + kPayload);
  PutBe16(ip + 4, static_cast<uint16_t>(serial));  // identification
  PutBe16(ip + 6, 0x4000);                          // don't fragment
  ip[8] = 64;                                       // TTL
  ip[9] = 17;                                       // UDP
  PutBe32(ip + 12, kNeedleSource);
  PutBe32(ip + 16, kNeedleDestination);
  PutBe16(ip + 10, Ipv4HeaderChecksum(ip, kIpv4));
  uint8_t* udp = ip + kIpv4;
  PutBe16(udp, static_cast<uint16_t>(40000 + serial % 20000));
  PutBe16(udp + 2, 9);  // discard
  PutBe16(udp + 4, kUdp + kPayload);
  char text[kPayload + 1];
  std::snprintf(text, sizeof(text), "rewind needle %u", serial);
  std::memcpy(udp + kUdp, text, std::strlen(text));
  return frame;
}

}  // namespace rwd
