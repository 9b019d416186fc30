#include "index/index_reader_cache.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <vector>

namespace rwd {

Result<std::shared_ptr<const IndexReader>> IndexReaderCache::Get(const std::string& path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->reader;
    }
    ++misses_;
  }
  // Opened outside the lock: a slow disk never holds up other queries' hits. The file is identified before
  // it is opened, so a table replaced in between is taken for the old one and dropped by DropRemoved(),
  // never the other way round.
  struct stat st;
  bool known = stat(path.c_str(), &st) == 0;
  auto opened = IndexReader::Open(path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<const IndexReader> reader(std::move(*opened));
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_path_.find(path);
  if (it != by_path_.end()) return it->second->reader;  // another thread opened it meanwhile
  lru_.push_front(Cached{path, reader, known ? static_cast<uint64_t>(st.st_dev) : 0,
                         known ? static_cast<uint64_t>(st.st_ino) : 0});
  by_path_[path] = lru_.begin();
  while (lru_.size() > capacity_) {
    by_path_.erase(lru_.back().path);
    lru_.pop_back();
  }
  return reader;
}

size_t IndexReaderCache::DropRemoved() {
  std::vector<Cached> cached;  // path and identity only
  {
    std::lock_guard<std::mutex> l(mu_);
    cached.reserve(lru_.size());
    for (const Cached& c : lru_) cached.push_back(Cached{c.path, nullptr, c.device, c.inode});
  }
  std::vector<Cached> gone;
  for (Cached& c : cached) {
    struct stat st;
    if (stat(c.path.c_str(), &st) == 0) {
      if (static_cast<uint64_t>(st.st_dev) == c.device && static_cast<uint64_t>(st.st_ino) == c.inode) continue;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      continue;  // cannot tell (e.g. EACCES, EIO): kept
    }
    gone.push_back(std::move(c));
  }
  size_t dropped = 0;
  std::lock_guard<std::mutex> l(mu_);
  for (const Cached& g : gone) {
    auto it = by_path_.find(g.path);
    // Only the reader that was checked: one opened again meanwhile is of the file now at the path.
    if (it == by_path_.end() || it->second->device != g.device || it->second->inode != g.inode) continue;
    lru_.erase(it->second);
    by_path_.erase(it);
    ++dropped;
  }
  return dropped;
}

size_t IndexReaderCache::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return lru_.size();
}

uint64_t IndexReaderCache::hits() const {
  std::lock_guard<std::mutex> l(mu_);
  return hits_;
}

uint64_t IndexReaderCache::misses() const {
  std::lock_guard<std::mutex> l(mu_);
  return misses_;
}

size_t IndexCacheCapacityForFdLimit(size_t max) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return max < 64 ? max : 64;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  size_t quarter = rl.rlim_cur == RLIM_INFINITY ? max : static_cast<size_t>(rl.rlim_cur / 4);
  if (quarter < 16) quarter = 16;
  return quarter < max ? quarter : max;
}

}  // namespace rwd
