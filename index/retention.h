// Retention: keeps a store within limits by removing its oldest complete packet files, each together with
// its index table. Limits, in any combination (0 turns one off): the disk usage of the store's packet files
// and index tables, the free space left on the store's file system (Stenographer's DiskFreePercentage), the
// number of complete files per writer (Stenographer's MaxDirectoryFiles), and the age of a file's newest
// packet.
//
// Invariants PruneStore keeps:
// - Only complete files (index table present) are removed. A file being written has no index yet and is
//   never touched; neither is a file a crash left without an index (repair indexes it, and it becomes a
//   candidate). Nothing else in the store (locks, counters, temporary index files) is touched.
// - "Oldest" is the order of file names: each file's creation time by its writer's clock, across all
//   writers (ties by writer number). For live capture this is packet-time order; it needs no index reads,
//   and a file whose packets carry wrong timestamps (an import of a capture dated 2106) cannot escape the
//   byte, free-space and file-count limits. Only the age limit looks at packet times: a file has expired
//   when its newest packet (the index summary's max_ts_ns) is older than now - max_age_ns.
// - A file is removed index first, then packet file. Queries read only indexed files, so no index ever
//   points at a missing packet file; a query that opened the index before it was removed either already
//   holds the packet file open (and reads it whole: an unlinked file stays readable while open) or finds
//   it gone and says its answer was cut short (see QueryStats::cut_short). If the index cannot be removed,
//   the packet file stays.
// - Disk usage is what the files occupy (st_blocks, as du counts), including files being written (their
//   preallocated space), which count against max_bytes but cannot be removed: a limit smaller than what
//   the writers hold open cannot be met, and PruneResult::unmet says so.
// - The free-space limit is met on paper: each removal is assumed to free the file's blocks. A removed file
//   a query still holds open frees them only when the query ends; the next prune sees the real numbers.
//   This keeps one long query from making retention empty the store.
//
// Free functions; safe to run while writers, queries and other PruneStore calls use the same store (a file
// someone else removed first is skipped).
#ifndef REWIND_INDEX_RETENTION_H_
#define REWIND_INDEX_RETENTION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "index/status.h"
#include "index/store_layout.h"

namespace rwd {

struct RetentionPolicy {
  uint64_t max_bytes = 0;            // disk usage of packet files + index tables
  double min_free_percent = 0;       // keep at least this much of the file system free (0..100)
  uint32_t max_files_per_writer = 0; // complete files per writer (PKT<n>); the file being written not counted
  int64_t max_age_ns = 0;            // remove files whose newest packet is older than this
  bool dry_run = false;              // decide and report, remove nothing

  bool enabled() const {
    return max_bytes != 0 || min_free_percent > 0 || max_files_per_writer != 0 || max_age_ns != 0;
  }
  // "max 6.0 MiB, min 10% free, max 100 files per writer, max age 86400 s" (the limits that are on).
  std::string Describe() const;
};

// InvalidArgument, with the reason and the smallest limit that works, if `policy.max_bytes` cannot hold one
// complete file beside the `writers` files being written (up to `file_bytes` each, as preallocated): every
// file would then be removed as soon as it completes.
Status CheckRetentionLeavesRoom(const RetentionPolicy& policy, uint32_t writers, uint64_t file_bytes);

struct PrunedFile {
  StoreFile file;
  uint64_t bytes = 0;   // disk usage of the packet file and its index table
  std::string reason;   // "max_bytes", "min_free", "max_files" or "max_age"
};

struct PruneResult {
  uint64_t files = 0;                 // files removed (with dry_run: that would be removed)
  uint64_t bytes = 0;                 // their disk usage
  std::vector<PrunedFile> removed;    // oldest first
  uint64_t store_bytes = 0;           // disk usage of the store's files afterwards
  uint64_t complete_files = 0;        // complete files left
  uint64_t incomplete_files = 0;      // files without an index (being written, or left by a crash)
  double free_percent = 0;            // free space afterwards, as the free-space limit counts it (0 if off)
  std::vector<std::string> unmet;     // limits still exceeded with no complete file left to remove
  std::vector<std::string> problems;  // index tables that could not be read for the age limit
};

// Applies `policy` to `store` once. `now_ns` is the time the age limit counts from. Fails (removing
// nothing) if the store cannot be listed or its file system cannot be measured; a file that cannot be
// removed is reported in the status after the others were tried.
Status PruneStore(const std::string& store, const RetentionPolicy& policy, int64_t now_ns, PruneResult* result);

}  // namespace rwd

#endif  // REWIND_INDEX_RETENTION_H_
