#include "index/thread_name.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace rwd {
namespace {

// The name /proc shows for the calling thread.
std::string OwnName() {
  std::ifstream in("/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/comm");
  std::string name;
  std::getline(in, name);
  return name;
}

TEST(NameThisThread, NamesOnlyTheCallingThreadAndKeeps15Bytes) {
  std::string main_before = OwnName();
  std::string short_name, long_name;
  std::thread([&] {
    NameThisThread("capture3");
    short_name = OwnName();
    NameThisThread("a-name-longer-than-fifteen-bytes");
    long_name = OwnName();
  }).join();
  EXPECT_EQ(short_name, "capture3");
  EXPECT_EQ(long_name, "a-name-longer-t");
  EXPECT_EQ(OwnName(), main_before);
}

}  // namespace
}  // namespace rwd
