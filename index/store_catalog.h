// StoreCatalog: the store-wide list of packet files, so that a query finds the files of its time range (and,
// through each file's key filter, the files that may hold a value) without listing directories or opening
// index tables outside what it needs.
//
// On disk (docs/format.md, "Catalog"):
//   DIR/CATALOG        an append-only journal of records (file being written, file complete with its summary,
//                      file removed), each framed with a length and a CRC-32C; appended with one O_APPEND
//                      write(2) and fdatasync by any process that changes the store, read without locks.
//   DIR/CATALOG.lock   flock: shared while appending, exclusive while the journal is rebuilt or compacted
//                      (replaced by rename, so a reader holding the old one keeps a consistent view).
//   DIR/CATALOG.checkpoint  the live entries as of an offset of the journal, sorted by time with a sparse index,
//                      so that a process that reads the catalog for one query loads the entries of its time
//                      range and the journal appended since, not every record (WriteCheckpoint, OpenRange).
//   DIR/IDX<n>/FILTERS the key filters (index/key_filter.h) of writer n's files, appended under an flock of
//                      that file; a removed file's filter is punched out (the offsets of the others stay).
// It is not a LevelDB database on purpose: a LevelDB database can be open in one process only, and a store
// is written and read by several (capture, import, prune, queries, the server) at once.
//
// Invariants:
// - A writer records a file as "writing" before it creates the packet file (its next file's name up to a
//   file's lifetime ahead: a "writing" entry may have no file yet), and "complete" after the packet file and
//   the index table are durable; so every packet file a writer made is in the catalog, and a "complete"
//   entry's index exists unless retention removed it since (queries treat a missing index of a complete file
//   as removed).
// - Retention records "removed" before it unlinks the index and the packet file; a crash in between leaves
//   files the catalog no longer lists, which `rewind repair` (Rebuild) takes back.
// - A store without a journal gets one built from its index tables on first Open (Rebuild).
//
// Thread-safety: Open() returns an object whose methods may be called from several threads at once. The
// Record*() functions are free functions, safe from any process and thread.
#ifndef REWIND_INDEX_STORE_CATALOG_H_
#define REWIND_INDEX_STORE_CATALOG_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "index/index_format.h"
#include "index/status.h"

namespace rwd {

struct CatalogEntry {
  enum class State : uint8_t { kWriting = 1, kComplete = 2 };
  uint32_t writer = 0;
  std::string name;              // the file's name in PKT<writer>/ and IDX<writer>/
  State state = State::kWriting;
  FileSummary summary;           // complete files only: packets, bytes, blocks, time span, link types
  uint64_t index_bytes = 0;      // size of the index table
  uint64_t filter_offset = 0;    // where its key filter starts in IDX<writer>/FILTERS
  uint32_t filter_blocks = 0;    // 0: no filter (every lookup reads the index)
  bool unfiltered = false;       // the file has packets every lookup must read (undecoded, undissected link type)

  bool complete() const { return state == State::kComplete; }
  std::string packet_path(const std::string& store) const;
  std::string index_path(const std::string& store) const;
};

struct CatalogTotals {
  uint64_t files = 0;          // complete
  uint64_t writing = 0;        // being written, or left without an index by a crash
  uint64_t packets = 0;
  uint64_t captured_bytes = 0;
  uint64_t wire_bytes = 0;
  uint64_t packet_file_bytes = 0;
  uint64_t index_bytes = 0;
  uint64_t blocks = 0;
  int64_t first_ts_ns = 0;     // valid when packets > 0
  int64_t last_ts_ns = 0;
  std::vector<uint32_t> linktypes;  // ascending
};

// Appends one record. Durable (fdatasync) when it returns OK.
Status RecordFileWriting(const std::string& store, uint32_t writer, const std::string& name);
// `filter` is BuildKeyFilter()'s output (may be empty: no filter). `unfiltered`: see CatalogEntry.
Status RecordFileComplete(const std::string& store, uint32_t writer, const std::string& name,
                          const FileSummary& summary, uint64_t index_bytes, const std::string& filter,
                          bool unfiltered);
// Records `entry` (writer, name) as removed and frees its key filter.
Status RecordFileRemoved(const std::string& store, const CatalogEntry& entry);
// Reads an index table and records its file as complete, with the filter built from its keys.
Status RecordFileCompleteFromIndex(const std::string& store, uint32_t writer, const std::string& name);

// Makes sure the journal (rebuilt from the index tables if missing) and its lock file exist, and hands
// both to `uid`/`gid` (-1: unchanged), so that a writer that drops privileges after start-up can append.
Status HandCatalogTo(const std::string& store, int uid, int gid);

struct CatalogEntrySet;  // store_catalog.cc

struct CatalogRebuildStats {
  uint64_t complete = 0;
  uint64_t writing = 0;                // packet files without an index
  std::vector<std::string> problems;   // what could not be read (a file whose index table cannot be opened is listed as being written)
};

class StoreCatalog {
 public:
  ~StoreCatalog();
  // Opens the catalog of `store` and reads it; builds it from the index tables first if the store has none.
  // NotFound if the store does not exist, or is a directory without a journal or writer directories.
  static Result<std::shared_ptr<StoreCatalog>> Open(const std::string& store);
  // Opens the catalog for the queries of [lo, hi): reads from the checkpoint the entries that may overlap
  // the range, the files being written, and then the journal appended since the checkpoint. Without a valid
  // checkpoint (or with one far behind the journal) it reads everything, as Open() does, and writes a
  // checkpoint if the store is writable. Select() of a range within [lo, hi), MayContain() and Linktypes()
  // answer as Open()'s catalog would; CompleteFiles() too, unless the journal since the checkpoint records a
  // complete file again with another time span outside the range (then it counts it twice). Entries() and
  // Totals() see only what was read.
  // `keep` (optional) is what the caller will pass to Select(): a complete entry of the checkpoint for which it
  // is false is not loaded at all (a whole-store lookup then keeps the few files that may match, not a
  // million entries). It is given the catalog being read, for MayContain() (which needs no entries).
  using KeepFn = std::function<bool(const StoreCatalog&, const CatalogEntry&)>;
  static Result<std::shared_ptr<StoreCatalog>> OpenRange(const std::string& store, int64_t lo, int64_t hi,
                                                        const KeepFn& keep = nullptr);
  // Writes the checkpoint of what this catalog has read (temporary file, fdatasync, rename), unless the
  // journal was replaced since or this catalog was opened for a range (then it does nothing). After a
  // failure CheckpointDue() is false until the journal grows by kCheckpointLagBytes again.
  Status WriteCheckpoint() const;
  // True if the journal this catalog has read is more than kCheckpointLagBytes past the checkpoint on disk,
  // or there is none. One small read at most.
  bool CheckpointDue() const;
  static constexpr uint64_t kCheckpointLagBytes = 256 * 1024;

  // Rebuilds the journal from the store's directories and index tables (exclusive; replaces it atomically).
  static Status Rebuild(const std::string& store, CatalogRebuildStats* stats);
  // Rewrites the journal with only its live entries when most of it is history (cheap no-op otherwise).
  static Status CompactIfWorthIt(const std::string& store);

  // Reads what was appended since the last read, by any process (one stat when nothing changed); reloads
  // from the start if the journal was replaced.
  Status Refresh();

  const std::string& store() const { return store_; }
  // Complete files whose time span overlaps [lo, hi) and for which `keep` (optional) holds, plus every file
  // being written; in name order (creation time), then writer. Reads the entries of the time range only
  // (and those spanning over an hour); `keep` sees them in time order.
  std::vector<CatalogEntry> Select(int64_t lo, int64_t hi, const std::function<bool(const CatalogEntry&)>& keep) const;
  std::vector<CatalogEntry> Entries() const;  // in name order, then writer
  // Everything summed over the entries (one pass; a stat per file being written).
  CatalogTotals Totals() const;
  // Complete files and their link types (ascending), kept as records are read: no pass over the entries.
  uint64_t CompleteFiles() const;
  std::vector<uint32_t> Linktypes() const;
  // What one caller has read of the FILTERS files: a window of each writer's file. Probing files in time
  // order (as Select's `keep` sees them) then reads each FILTERS file mostly sequentially, one pread per
  // window instead of one per file. Owned by one thread (e.g. one query); bounded by kFilterWindowBytes per writer.
  class FilterWindows {
   public:
    static constexpr size_t kFilterWindowBytes = 256 * 1024;

   private:
    friend class StoreCatalog;
    struct Window {
      uint64_t start = 0;
      std::unique_ptr<uint8_t[]> bytes;  // kFilterWindowBytes, allocated once, not cleared
      size_t length = 0;                 // bytes of `bytes` read from offset `start`
    };
    std::map<uint32_t, Window> by_writer_;
  };

  // False only if the file's key filter proves it holds no posting list under the key with this hash
  // (KeyFilterHash). Reads the writer's FILTERS file through `windows` (may be null: 64 bytes per call);
  // a damaged or missing filter answers true.
  bool MayContain(const CatalogEntry& entry, uint64_t key_hash, FilterWindows* windows = nullptr) const;

 private:
  explicit StoreCatalog(std::string store);
  Status ReadNew();  // requires mu_ held exclusively
  // Loads the entries of [lo, hi) from the checkpoint and the journal after it; an error if the checkpoint
  // is missing, stale or damaged (this object is then left empty).
  Status ReadCheckpointFor(int64_t lo, int64_t hi, const KeepFn& keep);
  int FilterFd(uint32_t writer) const;

  const std::string store_;
  mutable std::shared_mutex mu_;
  int fd_ = -1;                   // guarded by mu_
  uint64_t inode_ = 0;            // guarded by mu_
  uint64_t read_offset_ = 0;      // guarded by mu_: bytes of the journal applied
  uint64_t records_ = 0;          // guarded by mu_
  bool ranged_ = false;           // guarded by mu_: read from a checkpoint for one time range
  mutable std::atomic<uint64_t> checkpoint_seen_{0};  // journal offset of the newest checkpoint seen (0: none)
  std::unique_ptr<CatalogEntrySet> entries_;  // guarded by mu_: the live entries
  mutable std::mutex filter_mu_;
  mutable std::map<uint32_t, int> filter_fds_;  // guarded by filter_mu_
};

}  // namespace rwd

#endif  // REWIND_INDEX_STORE_CATALOG_H_
