// LogLine: one line of a long-running command's log (capture, serve, run) on stderr, with its time and level:
//   2026-11-26T17:31:15.123Z warning rewind run: capture thread 0 stopped: ...; restarting
// Under systemd (JOURNAL_STREAM names stderr: the journal stamps lines itself) the line starts with the
// syslog priority instead, "<4>rewind run: ...", so that `journalctl -p warning` selects by level.
// Thread-safe: each line is one write(2).
#ifndef REWIND_INDEX_LOG_LINE_H_
#define REWIND_INDEX_LOG_LINE_H_

namespace rwd {

enum class LogLevel { kError = 3, kWarning = 4, kInfo = 6 };

// printf-style; a trailing newline is added when missing.
void LogLine(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace rwd

#endif  // REWIND_INDEX_LOG_LINE_H_
