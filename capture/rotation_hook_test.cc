#include "capture/rotation_hook.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "index/test_temp_dir.h"

namespace rwd {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every completed file gets one run with its two paths as arguments (spaces kept), failures are counted.
TEST(RotationHook, RunsTheCommandOncePerFileWithItsPaths) {
  TempDir dir;
  std::string log = dir.path() + "/hook.log";
  {
    RotationHook hook("printf '%s|%s\\n' >> " + log);
    for (int i = 0; i < 5; ++i) hook.FileCompleted(dir.path() + "/p " + std::to_string(i), dir.path() + "/i" + std::to_string(i));
  }
  std::string got = ReadFile(log);
  for (int i = 0; i < 5; ++i) {
    std::string line = dir.path() + "/p " + std::to_string(i) + "|" + dir.path() + "/i" + std::to_string(i) + "\n";
    EXPECT_NE(got.find(line), std::string::npos) << line << " in:\n" << got;
  }
  RotationHook failing("exit 3;");
  failing.FileCompleted("a", "b");
  for (int i = 0; i < 200 && failing.failures() == 0; ++i) usleep(20000);
  EXPECT_EQ(failing.failures(), 1u);
}

// With SIGCHLD ignored (as a parent process may leave it), the kernel reaps the commands itself: they still
// run, and stopping does not wait forever for children it can no longer collect.
TEST(RotationHook, StopsWhenChildrenAreReapedByTheKernel) {
  TempDir dir;
  std::string log = dir.path() + "/hook.log";
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ignore, &old);
  {
    RotationHook hook("printf 'ran\\n' >> " + log + " #", 1);
    for (int i = 0; i < 4; ++i) hook.FileCompleted("p", "i");
    for (int i = 0; i < 500 && ReadFile(log).size() < 16; ++i) usleep(10000);
  }
  sigaction(SIGCHLD, &old, nullptr);
  EXPECT_EQ(ReadFile(log), "ran\nran\nran\nran\n");
}

// A command that does not end does not hold up stopping beyond the drain time (5 s): the files still queued
// are not run (logged), the running command is left to finish on its own.
TEST(RotationHook, AHangingCommandDoesNotHoldUpStopping) {
  auto start = std::chrono::steady_clock::now();
  {
    RotationHook hook("sleep 20 #", 1);
    for (int i = 0; i < 3; ++i) hook.FileCompleted("p", "i");
    usleep(100000);
  }
  // A hang detector, not a speed target: without the drain time this takes 60 s (three runs of 20 s).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

}  // namespace
}  // namespace rwd
