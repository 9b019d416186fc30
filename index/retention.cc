#include "index/retention.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <map>

#include "index/index_reader.h"
#include "index/store_catalog.h"

namespace rwd {
namespace {

std::string Mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
  return buf;
}

struct Entry {
  const StoreFile* file;
  uint64_t bytes = 0;
  const char* reason = nullptr;  // set once the file is chosen for removal
};

// Removes one file: from the catalog, then its index, then the packet file. ENOENT means someone else got
// there first.
Status RemoveFile(const std::string& store, const StoreFile& f, const CatalogEntry* entry) {
  CatalogEntry gone;
  if (entry == nullptr) {
    gone.writer = f.writer;
    gone.name = f.name;
    entry = &gone;
  }
  // On a full disk the record may not fit until the files are gone: then it is written after them.
  bool recorded = RecordFileRemoved(store, *entry).ok();
  if (unlink(f.index_path.c_str()) != 0 && errno != ENOENT) {
    Status s = Status::FromErrno("removing " + f.index_path + " (its packet file is kept)", errno);
    // Not removed (a directory this process may not write, a read-only file system): the catalog lists the
    // file again, or its packets would vanish from answers while it stays on disk.
    if (recorded) (void)RecordFileCompleteFromIndex(store, f.writer, f.name);
    return s;
  }
  if (unlink(f.packet_path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("removing " + f.packet_path + " (its index is already gone)", errno);
  }
  if (!recorded) return RecordFileRemoved(store, *entry);
  return Status::OK();
}

}  // namespace

Status CheckRetentionLeavesRoom(const RetentionPolicy& policy, uint32_t writers, uint64_t file_bytes) {
  if (policy.max_bytes == 0) return Status::OK();
  uint64_t need = (uint64_t{writers} + 1) * file_bytes;
  if (policy.max_bytes >= need) return Status::OK();
  return Status::InvalidArgument(
      "max_store_mb " + std::to_string(policy.max_bytes >> 20) + " leaves no room for a complete file: the " +
      std::to_string(writers) + " file(s) being written take up to " + std::to_string(file_bytes >> 20) +
      " MiB each (filesize_mb, preallocated), so every file would be removed as soon as it completes; use " +
      "max_store_mb >= " + std::to_string(need >> 20) + " or a smaller filesize_mb");
}

std::string RetentionPolicy::Describe() const {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  if (max_bytes != 0) add("max " + Mib(max_bytes));
  if (min_free_percent > 0) {
    char buf[48];
    std::snprintf(buf, sizeof(buf), "min %g%% free", min_free_percent);
    add(buf);
  }
  if (max_files_per_writer != 0) add("max " + std::to_string(max_files_per_writer) + " files per writer");
  if (max_age_ns != 0) add("max age " + std::to_string(max_age_ns / 1000000000) + " s");
  return out.empty() ? "off" : out;
}

Status PruneStore(const std::string& store, const RetentionPolicy& policy, int64_t now_ns, PruneResult* result) {
  *result = PruneResult();
  auto listed = ListStoreFiles(store);  // sorted by name (creation time), then writer: oldest first
  if (!listed.ok()) return listed.status();
  const std::vector<StoreFile>& files = *listed;
  // The catalog gives each file's time span without opening its index.
  auto catalog = StoreCatalog::Open(store);
  if (!catalog.ok()) return catalog.status();
  std::map<std::pair<std::string, uint32_t>, CatalogEntry> known;
  for (CatalogEntry& e : (*catalog)->Entries()) known[{e.name, e.writer}] = std::move(e);
  auto entry_of = [&known](const StoreFile& f) -> const CatalogEntry* {
    auto it = known.find({f.name, f.writer});
    return it == known.end() ? nullptr : &it->second;
  };

  // The file system's size and free space, measured before anything is removed.
  uint64_t fs_total = 0, fs_avail = 0;
  if (policy.min_free_percent > 0) {
    struct statvfs vfs;
    if (statvfs(store.c_str(), &vfs) != 0) return Status::FromErrno("measuring the file system of " + store, errno);
    fs_total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    fs_avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  }

  // Disk usage of every file; the candidates are the complete ones, oldest first.
  uint64_t store_bytes = 0;
  std::vector<Entry> candidates;
  for (const StoreFile& f : files) {
    uint64_t bytes = DiskUsage(f.packet_path) + (f.indexed ? DiskUsage(f.index_path) : 0);
    store_bytes += bytes;
    // A file with its index table but listed "writing" is being completed right now (its catalog record
    // follows its table), or was when its writer crashed (start-up repair completes it): removed now, the
    // record that follows would list it complete again, gone.
    const CatalogEntry* ce = f.indexed ? entry_of(f) : nullptr;
    if (f.indexed && (ce == nullptr || ce->complete())) candidates.push_back({&f, bytes, nullptr});
    else ++result->incomplete_files;
  }
  uint64_t freed = 0;
  auto choose = [&](Entry* e, const char* reason) {
    e->reason = reason;
    freed += e->bytes;
  };

  // Age: every file whose newest packet is older than the cutoff (an empty file has nothing to keep).
  if (policy.max_age_ns > 0) {
    int64_t cutoff = now_ns - policy.max_age_ns;
    for (Entry& e : candidates) {
      const CatalogEntry* ce = entry_of(*e.file);
      if (ce != nullptr && ce->complete()) {
        if (ce->summary.packets == 0 || ce->summary.max_ts_ns < cutoff) choose(&e, "max_age");
        continue;
      }
      auto index = IndexReader::Open(e.file->index_path);
      if (!index.ok()) {
        struct stat st;
        bool gone = stat(e.file->index_path.c_str(), &st) != 0 && errno == ENOENT;
        if (!gone) result->problems.push_back(index.status().ToString());
        continue;
      }
      const FileSummary& s = (*index)->summary();
      if (s.packets == 0 || s.max_ts_ns < cutoff) choose(&e, "max_age");
    }
  }
  // File count: the oldest complete files of each writer beyond the limit.
  if (policy.max_files_per_writer > 0) {
    std::map<uint32_t, std::vector<Entry*>> by_writer;
    for (Entry& e : candidates) by_writer[e.file->writer].push_back(&e);
    for (auto& [writer, list] : by_writer) {
      for (size_t i = 0; i + policy.max_files_per_writer < list.size(); ++i) {
        if (list[i]->reason == nullptr) choose(list[i], "max_files");
      }
    }
  }
  // Bytes and free space: the oldest files until both limits are met.
  uint64_t need_avail = 0;
  if (policy.min_free_percent > 0) {
    need_avail = static_cast<uint64_t>(std::ceil(static_cast<double>(fs_total) * policy.min_free_percent / 100.0));
  }
  auto over_bytes = [&] { return policy.max_bytes != 0 && store_bytes - freed > policy.max_bytes; };
  auto under_free = [&] { return policy.min_free_percent > 0 && fs_avail + freed < need_avail; };
  for (Entry& e : candidates) {
    if (!over_bytes() && !under_free()) break;
    if (e.reason == nullptr) choose(&e, over_bytes() ? "max_bytes" : "min_free");
  }
  if (over_bytes()) {
    result->unmet.push_back("the store uses " + Mib(store_bytes - freed) + ", over its limit of " +
                            Mib(policy.max_bytes) + ", in files being written or without an index");
  }
  if (under_free()) {
    result->unmet.push_back("only " + Mib(fs_avail + freed) + " of " + Mib(fs_total) +
                            " free with no complete file left to remove");
  }

  // Remove, oldest first.
  Status first_error;
  for (const Entry& e : candidates) {
    if (e.reason == nullptr) continue;
    if (!policy.dry_run) {
      Status s = RemoveFile(store, *e.file, entry_of(*e.file));
      if (!s.ok()) {
        if (first_error.ok()) first_error = s;
        freed -= e.bytes;
        continue;
      }
    }
    ++result->files;
    result->bytes += e.bytes;
    result->removed.push_back({*e.file, e.bytes, e.reason});
  }
  result->store_bytes = store_bytes - freed;
  result->complete_files = candidates.size() - result->files;
  if (fs_total > 0) result->free_percent = 100.0 * static_cast<double>(fs_avail + freed) / static_cast<double>(fs_total);
  if (!policy.dry_run && result->files > 0) {
    Status s = StoreCatalog::CompactIfWorthIt(store);
    if (!s.ok() && first_error.ok()) first_error = s;
  }
  return first_error;
}

}  // namespace rwd
