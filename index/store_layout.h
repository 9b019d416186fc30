// StoreLayout: where a store keeps its files. Per writer n (a capture thread or an import) there are
// DIR/PKT<n>/ (packet files) and DIR/IDX<n>/ (one index table per packet file, same name). A name is the
// file's creation time in nanoseconds since the epoch, 20 digits zero-padded, so names sort by time as
// plain strings. A packet file without its index is incomplete (being written, or cut off by a crash).
// Free functions; thread-safe.
#ifndef REWIND_INDEX_STORE_LAYOUT_H_
#define REWIND_INDEX_STORE_LAYOUT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "index/status.h"

namespace rwd {

struct StoreFile {
  uint32_t writer = 0;
  std::string name;
  std::string packet_path;
  std::string index_path;
  bool indexed = false;  // index table present
};

std::string PacketDirectory(const std::string& store, uint32_t writer);
std::string IndexDirectory(const std::string& store, uint32_t writer);
std::string WriterLockPath(const std::string& store, uint32_t writer);  // the file WriterLock holds
std::string FileNameForTime(int64_t ns);
bool IsStoreFileName(const std::string& name);

// Every packet file of the store, sorted by name then writer. NotFound if `store` does not exist. A name of a
// packet file or index that is not a regular file (a FIFO, a device, a directory) is never opened: a packet
// file is left out and an index counts as missing, and each gets a line in `*skipped` (optional).
Result<std::vector<StoreFile>> ListStoreFiles(const std::string& store, std::vector<std::string>* skipped = nullptr);

// True if `store` holds a catalog journal or a writer's directory (PKT<n> or IDX<n>), or nothing at all: a
// store rewind made or may make (an empty directory is a store nothing was written to yet).
bool LooksLikeStore(const std::string& store);

// Bytes the file occupies on disk, as du counts them (a packet file's holes are not); 0 if it is gone.
uint64_t DiskUsage(const std::string& path);
// Makes a rename or creation in the directory holding `path` durable (fsync of the directory): a record that
// names the file must not outlive the file's name after a power loss.
Status SyncParentDirectory(const std::string& path);
// Gives the space of `ranges` ([offset, length) pairs) of the open file `fd` back to the file system: holes
// that read as zeros, the file's size unchanged. Best effort: at the first range the file system refuses,
// the rest stays allocated as it was.
void PunchHoles(int fd, const std::vector<std::pair<uint64_t, uint64_t>>& ranges);

// Empty if `path` is a regular file (or does not exist), else a line saying what it is instead.
std::string NotRegularFile(const std::string& path);

// Holds an exclusive lock on one writer's directories for as long as it lives.
class WriterLock {
 public:
  // Creates the store and the writer's directories if needed and locks them. Fails if another process
  // holds the lock.
  static Result<WriterLock> Acquire(const std::string& store, uint32_t writer);
  // Locks the first writer number >= `first` that nobody holds.
  static Result<WriterLock> AcquireFree(const std::string& store, uint32_t first);
  WriterLock(WriterLock&& other) noexcept;
  WriterLock& operator=(WriterLock&& other) noexcept;
  ~WriterLock();
  uint32_t writer() const { return writer_; }

 private:
  WriterLock(int fd, uint32_t writer) : fd_(fd), writer_(writer) {}
  int fd_ = -1;
  uint32_t writer_ = 0;
};

}  // namespace rwd

#endif  // REWIND_INDEX_STORE_LAYOUT_H_
