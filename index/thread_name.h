// NameThisThread: gives the calling thread a name that `top -H`, `ps -L`, /proc/PID/task/TID/comm and perf
// show ("capture0", "index0", "read-ahead"...), so an operator can tell which part of rewind uses the CPU.
// Linux keeps the first 15 bytes. Free function; thread-safe (it names only the caller).
#ifndef REWIND_INDEX_THREAD_NAME_H_
#define REWIND_INDEX_THREAD_NAME_H_

#include <string>

namespace rwd {

void NameThisThread(const std::string& name);

}  // namespace rwd

#endif  // REWIND_INDEX_THREAD_NAME_H_
