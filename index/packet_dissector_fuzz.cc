// libFuzzer target: the packet dissector on any bytes, for every link type it decodes (the first byte picks
// one). It must never read past `caplen` (ASan), and whatever it records must lie inside the packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "index/packet_dissector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const uint32_t kLinkTypes[] = {rwd::kLinkNull,  rwd::kLinkEthernet,  rwd::kLinkRawOld12, rwd::kLinkRawOld14,
                                        rwd::kLinkRaw,   rwd::kLinkLoop,      rwd::kLinkLinuxSll, rwd::kLinkIpv4,
                                        rwd::kLinkIpv6,  rwd::kLinkLinuxSll2};
  if (size < 1) return 0;
  uint32_t linktype = kLinkTypes[data[0] % (sizeof(kLinkTypes) / sizeof(kLinkTypes[0]))];
  // A copy of exactly the packet's length, so that ASan sees any read past it.
  size_t n = size - 1;
  uint8_t* packet = static_cast<uint8_t*>(std::malloc(n == 0 ? 1 : n));
  for (size_t i = 0; i < n; ++i) packet[i] = data[i + 1];
  rwd::PacketFields fields;
  rwd::DissectPacket(linktype, packet, static_cast<uint32_t>(n), &fields);
  std::free(packet);
  return 0;
}
