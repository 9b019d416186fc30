#include "index/store_summary.h"

#include <cstdio>
#include <ctime>

#include "index/index_reader.h"
#include "index/store_layout.h"

namespace rwd {

std::string FormatRfc3339(int64_t ns) {
  int64_t secs = ns / 1000000000, frac = ns % 1000000000;
  if (frac < 0) frac += 1000000000, --secs;
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return buf;
}

Result<StoreSummary> SummarizeStore(const std::string& store) {
  auto files = ListStoreFiles(store);
  if (!files.ok()) return files.status();
  StoreSummary sum;
  for (const StoreFile& f : *files) {
    if (!f.indexed) {
      ++sum.unindexed_files;
      continue;
    }
    auto idx = IndexReader::Open(f.index_path);
    if (!idx.ok()) {
      ++sum.damaged_indexes;
      sum.problems.push_back(idx.status().ToString());
      continue;
    }
    const FileSummary& s = (*idx)->summary();
    ++sum.files;
    if (s.packets > 0) {
      if (sum.packets == 0 || s.min_ts_ns < sum.first_ts_ns) sum.first_ts_ns = s.min_ts_ns;
      if (sum.packets == 0 || s.max_ts_ns > sum.last_ts_ns) sum.last_ts_ns = s.max_ts_ns;
    }
    sum.packets += s.packets;
    sum.captured_bytes += s.captured_bytes;
    sum.wire_bytes += s.wire_bytes;
    sum.packet_file_bytes += s.file_bytes;
    sum.blocks += s.blocks;
    sum.index_bytes += (*idx)->table_bytes();
  }
  return sum;
}

}  // namespace rwd
