// StoreSummary: what a store holds — files, packets, bytes, time span, index size — read from the store
// catalog (no index table or packet file is read; damaged tables are `rewind verify`'s to find).
// Free functions; thread-safe.
#ifndef REWIND_INDEX_STORE_SUMMARY_H_
#define REWIND_INDEX_STORE_SUMMARY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/status.h"
#include "index/store_catalog.h"

namespace rwd {

struct StoreSummary {
  uint64_t files = 0;             // indexed packet files
  uint64_t unindexed_files = 0;   // being written, or left by a crash
  uint64_t damaged_indexes = 0;  // not known from the catalog: always 0 here (see rewind verify)
  uint64_t packets = 0;
  uint64_t captured_bytes = 0;
  uint64_t wire_bytes = 0;
  uint64_t packet_file_bytes = 0;
  uint64_t blocks = 0;
  uint64_t index_bytes = 0;
  int64_t first_ts_ns = 0;        // valid when packets > 0
  int64_t last_ts_ns = 0;
  std::vector<std::string> problems;  // damaged index tables, one line each
};

Result<StoreSummary> SummarizeStore(const std::string& store);
StoreSummary SummarizeCatalog(const StoreCatalog& catalog);

// RFC 3339 UTC with nanoseconds, e.g. 2026-11-22T10:00:00.000000000Z.
std::string FormatRfc3339(int64_t ns);

}  // namespace rwd

#endif  // REWIND_INDEX_STORE_SUMMARY_H_
