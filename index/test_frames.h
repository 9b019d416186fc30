// Building blocks for hand-made frames in tests (included by *_test.cc only): big-endian writers, address
// helpers, an Ethernet header and an 802.1Q tag, a small UDP pcap. Header-only; thread-safe.
#ifndef REWIND_INDEX_TEST_FRAMES_H_
#define REWIND_INDEX_TEST_FRAMES_H_

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <stdexcept>
#include <string>
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

// A `size`-byte (>= 42) UDP frame 10.0.0.1:(1000 + i % 7) -> 10.0.0.2:53 whose payload names `i` in text
// (so blocks of such frames compress, and each frame differs).
inline Bytes NumberedUdpFrame(uint32_t i, size_t size) {
  Bytes b = Eth(0x0800);
  b.resize(size);
  b[14] = 0x45, b[22] = 64, b[23] = 17;
  b[16] = static_cast<uint8_t>((size - 14) >> 8), b[17] = static_cast<uint8_t>((size - 14) & 0xff);
  b[26] = 10, b[29] = 1, b[30] = 10, b[33] = 2;
  uint16_t port = static_cast<uint16_t>(1000 + i % 7);
  b[34] = port >> 8, b[35] = port & 0xff, b[37] = 53;
  std::string text = "packet " + std::to_string(i) + " ";
  for (size_t k = 42; k < size; ++k) b[k] = static_cast<uint8_t>(text[(k - 42) % text.size()]);
  return b;
}

// A nanosecond pcap of `n` 200-byte UDP frames 10.0.0.1:(1000 + i % 7) -> 10.0.0.2:53, 1 ms apart from
// `base_ns`.
inline void WriteUdpPcap(const std::string& path, int n, int64_t base_ns) {
  constexpr int64_t kSec = 1000000000;
  std::string f(200, '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  p[12] = 0x08, p[14] = 0x45, p[17] = 186, p[22] = 64, p[23] = 17;
  p[26] = 10, p[29] = 1, p[30] = 10, p[33] = 2;
  p[37] = 53, p[39] = 166;
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  u32(0xa1b23c4d), u16(2), u16(4), u32(0), u32(0), u32(65535), u32(1);
  for (int i = 0; i < n; ++i) {
    int64_t t = base_ns + i * (kSec / 1000);
    uint16_t port = static_cast<uint16_t>(1000 + i % 7);
    p[34] = port >> 8, p[35] = port & 0xff;
    u32(static_cast<uint32_t>(t / kSec)), u32(static_cast<uint32_t>(t % kSec));
    u32(static_cast<uint32_t>(f.size())), u32(static_cast<uint32_t>(f.size()));
    out.write(f.data(), static_cast<std::streamsize>(f.size()));
  }
}

}  // namespace test_frames
}  // namespace rwd

#endif  // REWIND_INDEX_TEST_FRAMES_H_
