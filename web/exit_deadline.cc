#include "web/exit_deadline.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

namespace rwd {

void ExitAfterDeadline(int ms, const char* who, int status) {
  std::thread([ms, who, status] {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    std::fprintf(stderr, "%s: still stopping after %d ms: exiting now\n", who, ms);
    std::fflush(stderr);
    _exit(status);
  }).detach();
}

}  // namespace rwd
