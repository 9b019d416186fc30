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

}  // namespace
}  // namespace rwd
