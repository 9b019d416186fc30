#include "index/store_summary.h"

#include <cstdio>
#include <ctime>


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

StoreSummary SummarizeCatalog(const StoreCatalog& catalog) {
  CatalogTotals t = catalog.Totals();
  StoreSummary sum;
  sum.files = t.files;
  sum.unindexed_files = t.writing;
  sum.packets = t.packets;
  sum.captured_bytes = t.captured_bytes;
  sum.wire_bytes = t.wire_bytes;
  sum.packet_file_bytes = t.packet_file_bytes;
  sum.blocks = t.blocks;
  sum.index_bytes = t.index_bytes;
  sum.first_ts_ns = t.first_ts_ns;
  sum.last_ts_ns = t.last_ts_ns;
  return sum;
}

Result<StoreSummary> SummarizeStore(const std::string& store) {
  auto catalog = StoreCatalog::Open(store);
  if (!catalog.ok()) return catalog.status();
  return SummarizeCatalog(**catalog);
}

}  // namespace rwd
