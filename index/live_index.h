// LiveIndex: the index of a packet file while it is being written, shared by its writer (which adds blocks
// and says which are on disk) and by queries, so that a packet is queryable as soon as its block is written
// and indexed, not when its file rotates. A process-wide registry finds a file's LiveIndex by packet path
// (queries in the same process as the writer: `rewind run`). IndexFileBeingWritten() gives the same view from
// another process by indexing the blocks on disk (bounded by the file size). Thread-safe.
#ifndef REWIND_INDEX_LIVE_INDEX_H_
#define REWIND_INDEX_LIVE_INDEX_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "index/index_builder.h"
#include "index/index_view.h"
#include "index/status.h"

namespace rwd {

class LiveIndex : public std::enable_shared_from_this<LiveIndex> {
 public:
  explicit LiveIndex(std::shared_ptr<IndexBuilder> builder) : builder_(std::move(builder)) {}
  // IndexBuilder::AddBlock under the index's lock (the writer's indexing thread).
  Status AddBlock(uint32_t block, uint64_t file_offset, uint32_t disk_length, const uint8_t* data, uint32_t flags);
  // Blocks [0, n) of the file are on disk.
  void SetDurableBlocks(uint32_t n);
  // The blocks that are both indexed and on disk, as an index view (no block: an empty view).
  std::shared_ptr<const IndexView> Snapshot() const;

 private:
  class View;
  mutable std::mutex mu_;
  std::shared_ptr<IndexBuilder> builder_;  // guarded by mu_ (its contents)
  uint32_t durable_ = 0;                   // guarded by mu_
};

// Registry of the files being written in this process, by packet path.
void RegisterLiveIndex(const std::string& packet_path, std::shared_ptr<LiveIndex> index);
void UnregisterLiveIndex(const std::string& packet_path);
std::shared_ptr<LiveIndex> FindLiveIndex(const std::string& packet_path);

// Indexes the blocks of a packet file being written by another process, from offset 0 up to the first block
// that is not (yet) whole on disk. Reads the file; its cost grows with the file, bounded by the file size limit.
Result<std::shared_ptr<const IndexView>> IndexFileBeingWritten(const std::string& packet_path);

}  // namespace rwd

#endif  // REWIND_INDEX_LIVE_INDEX_H_
