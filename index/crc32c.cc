#include "index/crc32c.h"

#include <array>
#include <cstring>

namespace rwd {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // reflected Castagnoli polynomial

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[i] = c;
  }
  return t;
}

uint32_t SoftwareExtend(uint32_t crc, const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = MakeTable();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint64_t HardwareRun(uint64_t c, const uint8_t* p, size_t n) {
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  return c;
}

// The crc32 instruction takes 3 cycles but can start one every cycle, so long inputs are checksummed as three
// interleaved stripes of kStripe bytes. The CRC register's change over a run of bytes is linear in its start
// value: crc(s, A B) = Z_|B|(crc(s, A)) ^ crc(0, B), where Z_n is what n zero bytes do to the register. So the
// 2nd and 3rd stripes start from 0 and are folded in with Z_kStripe, a linear map tabulated byte by byte.
constexpr size_t kStripe = 4096;

struct ZeroShift {
  uint32_t table[4][256];
  __attribute__((target("sse4.2"))) ZeroShift() {
    static const uint8_t zeros[kStripe] = {};
    uint32_t basis[32];
    for (int i = 0; i < 32; ++i) basis[i] = static_cast<uint32_t>(HardwareRun(uint64_t{1} << i, zeros, kStripe));
    for (int k = 0; k < 4; ++k) {
      for (uint32_t b = 0; b < 256; ++b) {
        uint32_t v = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if (b & (1u << bit)) v ^= basis[8 * k + bit];
        }
        table[k][b] = v;
      }
    }
  }
  uint32_t operator()(uint32_t c) const {
    return table[0][c & 0xff] ^ table[1][(c >> 8) & 0xff] ^ table[2][(c >> 16) & 0xff] ^ table[3][c >> 24];
  }
};

__attribute__((target("sse4.2"))) uint32_t HardwareExtend(uint32_t crc, const uint8_t* p, size_t n) {
  static const ZeroShift shift;
  uint64_t c = ~crc;
  while (n >= 3 * kStripe) {
    uint64_t a = c, b = 0, d = 0;
    for (size_t i = 0; i < kStripe; i += 8) {
      uint64_t va, vb, vd;
      std::memcpy(&va, p + i, 8);
      std::memcpy(&vb, p + kStripe + i, 8);
      std::memcpy(&vd, p + 2 * kStripe + i, 8);
      a = __builtin_ia32_crc32di(a, va);
      b = __builtin_ia32_crc32di(b, vb);
      d = __builtin_ia32_crc32di(d, vd);
    }
    c = shift(shift(static_cast<uint32_t>(a)) ^ static_cast<uint32_t>(b)) ^ static_cast<uint32_t>(d);
    p += 3 * kStripe;
    n -= 3 * kStripe;
  }
  c = HardwareRun(c, p, n);
  p += n & ~size_t{7};
  n &= 7;
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}
#endif

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const uint8_t* data, size_t n) {
#if defined(__x86_64__)
  static const bool hw = __builtin_cpu_supports("sse4.2");
  if (hw) return HardwareExtend(crc, data, n);
#endif
  return SoftwareExtend(crc, data, n);
}

}  // namespace rwd
