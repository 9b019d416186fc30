#include "index/index_reader_cache.h"

#include <sys/resource.h>

namespace rwd {

Result<std::shared_ptr<const IndexReader>> IndexReaderCache::Get(const std::string& path) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = by_path_.find(path);
    if (it != by_path_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      ++hits_;
      return it->second->second;
    }
    ++misses_;
  }
  // Opened outside the lock: a slow disk never holds up other queries' hits.
  auto opened = IndexReader::Open(path);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<const IndexReader> reader(std::move(*opened));
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_path_.find(path);
  if (it != by_path_.end()) return it->second->second;  // another thread opened it meanwhile
  lru_.emplace_front(path, reader);
  by_path_[path] = lru_.begin();
  while (lru_.size() > capacity_) {
    by_path_.erase(lru_.back().first);
    lru_.pop_back();
  }
  return reader;
}

void IndexReaderCache::Erase(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return;
  lru_.erase(it->second);
  by_path_.erase(it);
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
