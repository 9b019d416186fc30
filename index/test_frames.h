// Building blocks for hand-made frames in tests (included by *_test.cc only): big-endian writers, address
// helpers, an Ethernet header and an 802.1Q tag. Header-only; thread-safe.
#ifndef REWIND_INDEX_TEST_FRAMES_H_
#define REWIND_INDEX_TEST_FRAMES_H_

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace rwd {
namespace test_frames {

using Bytes = std::vector<uint8_t>;

inline void Put16(Bytes* b, uint16_t v) {
  b->push_back(v >> 8);
  b->push_back(v & 0xff);
}

inline void Put32(Bytes* b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}

inline void Append(Bytes* b, const Bytes& x) { b->insert(b->end(), x.begin(), x.end()); }

// a.b.c.d as a host-order integer, as PacketFields stores it.
constexpr uint32_t Ip4(int a, int b, int c, int d) {
  return static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 | static_cast<uint32_t>(c) << 8 |
         static_cast<uint32_t>(d);
}

inline std::array<uint8_t, 16> Ip6(const char* s) {
  std::array<uint8_t, 16> a{};
  if (inet_pton(AF_INET6, s, a.data()) != 1) throw std::invalid_argument(s);
  return a;
}

// An Ethernet header with fixed MAC addresses and the given ethertype.
inline Bytes Eth(uint16_t type) {
  Bytes b = {0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c, 0x00, 0x1b, 0x21, 0x0d, 0x0e, 0x0f};
  Put16(&b, type);
  return b;
}

// The 4 bytes that follow a 0x8100 ethertype: the TCI (VLAN ID) and the inner ethertype.
inline Bytes Tag(uint16_t vid, uint16_t inner) {
  Bytes b;
  Put16(&b, vid);
  Put16(&b, inner);
  return b;
}

}  // namespace test_frames
}  // namespace rwd

#endif  // REWIND_INDEX_TEST_FRAMES_H_
