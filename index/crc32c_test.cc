#include "index/crc32c.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

TEST(Crc32c, KnownVectors) {
  // RFC 3720 B.4 test vectors.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62a8ab43u);
  EXPECT_EQ(Crc32c(inc.data(), inc.size()), 0x46dd794eu);
  const std::string s = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xe3069283u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::vector<uint8_t> data(10007);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
  uint32_t whole = Crc32c(data.data(), data.size());
  for (size_t cut : {0ul, 1ul, 7ul, 8ul, 4096ul, 10006ul}) {
    EXPECT_EQ(Crc32cExtend(Crc32c(data.data(), cut), data.data() + cut, data.size() - cut), whole) << cut;
  }
  data[5000] ^= 1;
  EXPECT_NE(Crc32c(data.data(), data.size()), whole);
}

// Bit by bit, from the definition: the reference for every length and alignment, including inputs long enough
// for the three-stripe path (3 x 4 KiB and more), so the fast paths cannot drift from it.
uint32_t ReferenceCrc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82f63b78u : 0);
  }
  return ~c;
}

TEST(Crc32c, EqualsTheDefinitionAtEveryLengthAndAlignment) {
  std::vector<uint8_t> data((1 << 20) + 64);
  uint32_t x = 12345;
  for (auto& b : data) b = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
  for (size_t n : {0ul, 1ul, 9ul, 4095ul, 12287ul, 12288ul, 12289ul, 24576ul + 13, 100000ul, 1ul << 20}) {
    for (size_t start : {0ul, 1ul, 3ul, 8ul}) {
      EXPECT_EQ(Crc32c(data.data() + start, n), ReferenceCrc32c(data.data() + start, n)) << n << " at " << start;
    }
  }
  // Extending from a non-zero CRC through the striped path.
  uint32_t head = Crc32c(data.data(), 100);
  EXPECT_EQ(Crc32cExtend(head, data.data() + 100, 50000), ReferenceCrc32c(data.data(), 50100));
}

}  // namespace
}  // namespace rwd
