// TempDir (tests only): a fresh directory under `parent` (default /tmp), removed with everything in it when
// the TempDir is destroyed. A failure to create it fails the test. Not thread-safe.
#ifndef REWIND_INDEX_TEST_TEMP_DIR_H_
#define REWIND_INDEX_TEST_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {

class TempDir {
 public:
  explicit TempDir(const std::string& parent = "/tmp") {
    std::string tmpl = parent + "/rwd_test_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* d = mkdtemp(buf.data());
    EXPECT_NE(d, nullptr) << parent;
    path_ = d ? d : parent;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace rwd

#endif  // REWIND_INDEX_TEST_TEMP_DIR_H_
