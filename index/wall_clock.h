// Clocks, in nanoseconds since the Unix epoch (wall) or an arbitrary start (monotonic). Thread-safe.
#ifndef REWIND_INDEX_WALL_CLOCK_H_
#define REWIND_INDEX_WALL_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace rwd {

inline int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace rwd

#endif  // REWIND_INDEX_WALL_CLOCK_H_
