// Query: one query over a store, from text to a pcap stream. Prepare() parses, plans and validates without
// reading packet files (a malformed query never scans the store); Execute() streams matching packets, merged
// across files and writers in timestamp order, to a ByteSink as they are found.
// A Query is used by one thread; several Queries may run on one store at once.
#ifndef REWIND_QUERY_QUERY_ENGINE_H_
#define REWIND_QUERY_QUERY_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/index_reader.h"
#include "index/index_reader_cache.h"
#include "index/status.h"
#include "index/store_catalog.h"
#include "index/store_layout.h"
#include "query/packet_filter.h"
#include "query/pcap_writer.h"
#include "query/query_parser.h"
#include "query/query_plan.h"

namespace rwd {

struct QueryOptions {
  uint64_t limit = 0;          // stop after this many packets (0: no limit)
  uint64_t limit_bytes = 0;    // stop before the packet that would take the captured bytes past this (0: none)
  // A server's cap: like limit_bytes, but the answer is cut short there (Cancelled) rather than complete.
  uint64_t cut_bytes = 0;
  bool nanos = false;          // nanosecond timestamps in the output
  bool pcapng = false;         // pcapng even when one link type would allow pcap
  bool vlan_fold = true;       // host/net/port/proto also match inside VLAN tags (see PacketFilter)
  int64_t now_ns = 0;          // "now" for relative times (0: the wall clock)
  const std::atomic<bool>* cancel = nullptr;  // set by another thread to stop the query
  int64_t deadline_ns = 0;     // wall-clock time after which the query stops (0: none)
  // The store's catalog, shared by a long-running server (refreshed by each query); null: opened for this query
  // (StoreCatalog::OpenRange), and handed to *opened_catalog if that is set (a process that ends with the query
  // need not free a million entries), else freed when Prepare() returns.
  std::shared_ptr<StoreCatalog> catalog;
  std::shared_ptr<StoreCatalog>* opened_catalog = nullptr;
  IndexReaderCache* index_cache = nullptr;  // open index tables shared across queries (null: none)
  // How many of the answer's files may hold a block buffer (1 MiB, plus up to 1 MiB for a compressed
  // extent) at once. The merge keeps every file that overlaps the current time open; past this many, the
  // one used longest ago gives its buffers back and reads its block again when the merge returns to it.
  // Bounds a query's memory whatever the number of files that overlap in time (at some re-reading cost).
  size_t max_block_buffers = 64;
};

struct QueryStats {
  uint64_t files = 0;             // indexed packet files in the store
  uint64_t files_in_range = 0;    // of them, files whose time span overlaps the query
  uint64_t files_searched = 0;    // of those, files whose key filter allows a match (their index is read)
  uint64_t blocks_read = 0;       // whole blocks read
  uint64_t packets_read = 0;      // single packets read through the index
  uint64_t blocks_reread = 0;     // blocks read again after their buffer was given back (max_block_buffers)
  uint64_t blocks_read_ahead = 0;  // of blocks_read, those read on the helper thread while the last was walked
  uint64_t bytes_read = 0;        // packet-file bytes read
  uint64_t packets_examined = 0;  // packets checked against the filter
  uint64_t packets_matched = 0;   // packets written
  uint64_t bytes_matched = 0;     // captured bytes of the packets written
  std::vector<std::string> warnings;  // damaged files or blocks skipped, link types the filter does not apply to
  // A packet file the query meant to read was removed (by retention) after Prepare() opened its index and
  // before its cursor opened the file: the answer lacks that file's matches, and a warning names it. A file
  // whose index was already gone when Prepare() opened the store is simply not part of the answer.
  bool cut_short = false;
};

class Query {
 public:
  ~Query();
  // InvalidArgument ("at position N: problem") for a malformed query; NotFound if the store is missing.
  static Result<std::unique_ptr<Query>> Prepare(const std::string& store, const std::string& text,
                                                const QueryOptions& options);
  // Streams the answer. Cancelled if the sink's reader went away or `cancel` was set.
  Status Execute(ByteSink* sink, QueryStats* stats);
  const QueryPlan& plan() const { return plan_; }
  // Changes QueryOptions::max_block_buffers before Execute()/ForEach().
  void set_max_block_buffers(size_t n) { options_.max_block_buffers = n; }
  // Changes QueryOptions::deadline_ns before Execute()/ForEach() (e.g. not to count a wait for admission).
  void set_deadline_ns(int64_t ns) { options_.deadline_ns = ns; }
  // The link types of the files in the query's time range, and whether Execute() writes pcapng (asked
  // for, or more than one link type).
  std::vector<uint32_t> OutputLinktypes() const;
  bool WritesPcapng() const { return options_.pcapng || OutputLinktypes().size() > 1; }
  // True if the index narrows the query to little work: at most `max_files` files to search, holding at most
  // `max_candidates` candidate packets in all. Reads the plan's posting lists of those files (through the
  // index cache if there is one), file by file until the count is past the bound. False for a plan that
  // does not use the index.
  bool NarrowedByIndex(size_t max_files, uint64_t max_candidates) const;
  // The plan, then per file in the time range: candidate packets (or "all") and blocks to read.
  Status Explain(std::string* out) const;

  // Per-packet callback form of Execute(), for previews: `fn` returns false to stop.
  struct Match {
    uint32_t linktype;
    const PacketView* packet;
  };
  template <typename Fn>
  Status ForEach(Fn fn, QueryStats* stats);

 private:
  class FileCursor;
  Query() = default;
  Status Run(bool (*emit)(void*, uint32_t, const PacketView&), void* ctx, QueryStats* stats);
  // True once the query was cancelled or ran past its deadline.
  bool ShouldStop() const;
  std::string store_;
  std::string text_;
  QueryOptions options_;
  ParsedQuery parsed_;
  QueryPlan plan_;
  std::unique_ptr<PacketFilter> filter_;
  // A file the query may read; its index is opened when the merge reaches the file.
  struct OpenFile {
    StoreFile file;
    FileSummary summary;
    std::shared_ptr<const IndexView> index;  // set at Prepare() for a file being written (its live index)
  };
  Result<std::shared_ptr<const IndexView>> OpenIndex(const StoreFile& file) const;
  std::vector<OpenFile> files_;
  std::vector<uint32_t> linktypes_;  // of the files in the time range
  std::vector<uint32_t> store_linktypes_;  // of every complete file (the catalog's), for an empty answer
  std::vector<std::string> open_warnings_;
  uint64_t total_files_ = 0;
  uint64_t files_in_range_ = 0;
};

template <typename Fn>
Status Query::ForEach(Fn fn, QueryStats* stats) {
  return Run([](void* ctx, uint32_t lt, const PacketView& p) { return (*static_cast<Fn*>(ctx))(Match{lt, &p}); },
             &fn, stats);
}

}  // namespace rwd

#endif  // REWIND_QUERY_QUERY_ENGINE_H_
