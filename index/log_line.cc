#include "index/log_line.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "index/wall_clock.h"

namespace rwd {
namespace {

// True if stderr is the stream systemd gave the journal: JOURNAL_STREAM is "device:inode" of that stream.
bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  struct stat st;
  if (js == nullptr || fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(js, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) && ino == static_cast<unsigned long long>(st.st_ino);
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
  }
  return "info";
}

}  // namespace

void LogLine(LogLevel level, const char* format, ...) {
  static const bool journal = StderrIsJournal();
  char prefix[64];
  if (journal) {
    std::snprintf(prefix, sizeof(prefix), "<%d>", static_cast<int>(level));
  } else {
    int64_t ns = WallClockNs();
    time_t secs = static_cast<time_t>(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char when[32];
    std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(prefix, sizeof(prefix), "%s.%03dZ %s ", when, static_cast<int>(ns / 1000000 % 1000), LevelName(level));
  }
  char body[4096];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(body, sizeof(body), format, args);
  va_end(args);
  std::string line = prefix;
  line.append(body, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof(body) - 1));
  if (line.empty() || line.back() != '\n') line += '\n';
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace rwd
