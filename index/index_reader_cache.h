// IndexReaderCache: keeps up to `capacity` open index tables, least recently used out first, so that a
// long-running server reopens hot tables without a system call and holds a bounded number of descriptors and
// bounded memory whatever the store's size. Readers are shared: an evicted reader stays valid for the queries
// that hold it. A reader keeps its table's disk space while cached, even after the file is removed:
// DropRemoved() lets those go. Thread-safe.
#ifndef REWIND_INDEX_INDEX_READER_CACHE_H_
#define REWIND_INDEX_INDEX_READER_CACHE_H_

#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "index/index_reader.h"
#include "index/status.h"

namespace rwd {

class IndexReaderCache {
 public:
  explicit IndexReaderCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}
  // The reader of the table at `path`, opened on a miss. A table that fails to open is not cached.
  Result<std::shared_ptr<const IndexReader>> Get(const std::string& path);
  // Drops every reader whose table is no longer at its path (removed, or replaced by another file): one
  // stat per cached table, none under the lock. Returns how many it dropped.
  size_t DropRemoved();
  size_t size() const;
  size_t capacity() const { return capacity_; }
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  struct Cached {
    std::string path;
    std::shared_ptr<const IndexReader> reader;
    uint64_t device = 0, inode = 0;  // of the file at `path` just before it was opened (0: unknown)
  };
  using Lru = std::list<Cached>;
  const size_t capacity_;
  mutable std::mutex mu_;
  Lru lru_;                                                // guarded by mu_: most recent first
  std::unordered_map<std::string, Lru::iterator> by_path_;  // guarded by mu_
  uint64_t hits_ = 0, misses_ = 0;                          // guarded by mu_
};

// Raises the soft RLIMIT_NOFILE to the hard limit and returns how many index tables a cache may keep open
// within it (a quarter of the limit, at most `max`), leaving the rest for packet files, sockets and capture.
size_t IndexCacheCapacityForFdLimit(size_t max);

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_READER_CACHE_H_
