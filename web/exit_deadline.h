// ExitAfterDeadline: bounds how long stopping may take. Called when a daemon (`rewind serve`, `rewind run`)
// begins to stop; if the process still runs `ms` milliseconds later (a thread stuck in I/O, say), it is
// ended with _exit(status) after a message on stderr. Nothing is lost for good by that: queries are
// read-only, and a packet file left without its index is re-indexed by the next writer of its directory.
// Free function; thread-safe; the deadline thread is detached.
#ifndef REWIND_WEB_EXIT_DEADLINE_H_
#define REWIND_WEB_EXIT_DEADLINE_H_

namespace rwd {

void ExitAfterDeadline(int ms, const char* who, int status);

}  // namespace rwd

#endif  // REWIND_WEB_EXIT_DEADLINE_H_
