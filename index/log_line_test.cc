#include "index/log_line.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include "gtest/gtest.h"

namespace rwd {
namespace {

// What LogLine writes to stderr, caught in a file.
std::string Logged(LogLevel level, const char* text) {
  char path[] = "/tmp/rwd_log_test_XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  LogLine(level, "rewind test: %s %d", text, 7);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string out(256, '\0');
  ssize_t n = pread(fd, out.data(), out.size(), 0);
  close(fd);
  unlink(path);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

TEST(LogLine, OneLineWithUtcTimeAndLevel) {
  ASSERT_EQ(std::getenv("JOURNAL_STREAM"), nullptr) << "run the tests outside the journal";
  std::regex line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warning|info) rewind test: hello 7\n)");
  std::string w = Logged(LogLevel::kWarning, "hello");
  EXPECT_TRUE(std::regex_match(w, line)) << w;
  EXPECT_NE(w.find("Z warning rewind"), std::string::npos) << w;
  EXPECT_NE(Logged(LogLevel::kError, "hello").find("Z error rewind"), std::string::npos);
  EXPECT_NE(Logged(LogLevel::kInfo, "hello").find("Z info rewind"), std::string::npos);
}

}  // namespace
}  // namespace rwd
