#include "web/command_line.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace rwd {
namespace {

TEST(ParseDecimalUint, DigitsOnlyUpToTheLargest64BitValue) {
  uint64_t v = 7;
  EXPECT_TRUE(ParseDecimalUint("0", &v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(ParseDecimalUint("18446744073709551615", &v));
  EXPECT_EQ(v, UINT64_MAX);
  for (const char* bad : {"", "-1", "+5", " 5", "5 ", "1e3", "0x10", "18446744073709551616",
                          "99999999999999999999999"}) {
    v = 7;
    EXPECT_FALSE(ParseDecimalUint(bad, &v)) << "'" << bad << "'";
    EXPECT_EQ(v, 7u) << "'" << bad << "' changed the output";
  }
}

}  // namespace
}  // namespace rwd
