#include "index/live_index.h"

#include <algorithm>
#include <map>

#include "index/block_format.h"
#include "index/packet_file_reader.h"

namespace rwd {

// A frozen prefix of blocks; posting lists are read from the builder under the LiveIndex's lock, cut to it.
class LiveIndex::View : public IndexView {
 public:
  View(std::shared_ptr<const LiveIndex> owner, std::vector<BlockEntry> blocks)
      : owner_(std::move(owner)), blocks_(std::move(blocks)) {
    summary_.blocks = static_cast<uint32_t>(blocks_.size());
    for (const BlockEntry& b : blocks_) {
      if (b.packets == 0) continue;
      if (summary_.packets == 0 || b.min_ts_ns < summary_.min_ts_ns) summary_.min_ts_ns = b.min_ts_ns;
      if (summary_.packets == 0 || b.max_ts_ns > summary_.max_ts_ns) summary_.max_ts_ns = b.max_ts_ns;
      summary_.packets += b.packets;
      if (std::find(summary_.linktypes.begin(), summary_.linktypes.end(), b.linktype) == summary_.linktypes.end()) {
        summary_.linktypes.push_back(b.linktype);
      }
    }
    std::sort(summary_.linktypes.begin(), summary_.linktypes.end());
  }
  const FileSummary& summary() const override { return summary_; }
  const std::vector<BlockEntry>& blocks() const override { return blocks_; }
  Status LookupRange(const std::string& first, const std::string& last, std::vector<uint32_t>* out) const override {
    std::lock_guard<std::mutex> l(owner_->mu_);
    return owner_->builder_->LookupRange(first, last, static_cast<uint32_t>(blocks_.size()), out);
  }
  uint64_t EstimateBytes(const std::string&, const std::string&) const override { return 0; }

 private:
  std::shared_ptr<const LiveIndex> owner_;
  std::vector<BlockEntry> blocks_;
  FileSummary summary_;
};

Status LiveIndex::AddBlock(uint32_t block, uint64_t file_offset, uint32_t disk_length, const uint8_t* data,
                           uint32_t flags) {
  std::lock_guard<std::mutex> l(mu_);
  return builder_->AddBlock(block, file_offset, disk_length, data, flags);
}

void LiveIndex::SetDurableBlocks(uint32_t n) {
  std::lock_guard<std::mutex> l(mu_);
  durable_ = std::max(durable_, n);
}

std::shared_ptr<const IndexView> LiveIndex::Snapshot() const {
  std::vector<BlockEntry> blocks;
  {
    std::lock_guard<std::mutex> l(mu_);
    const std::vector<BlockEntry>& all = builder_->blocks();
    size_t n = std::min<size_t>(durable_, all.size());
    blocks.assign(all.begin(), all.begin() + static_cast<long>(n));
  }
  return std::make_shared<View>(shared_from_this(), std::move(blocks));
}

namespace {

std::mutex g_registry_mu;
std::map<std::string, std::weak_ptr<LiveIndex>>& Registry() {
  static auto* registry = new std::map<std::string, std::weak_ptr<LiveIndex>>();
  return *registry;
}

}  // namespace

void RegisterLiveIndex(const std::string& packet_path, std::shared_ptr<LiveIndex> index) {
  std::lock_guard<std::mutex> l(g_registry_mu);
  Registry()[packet_path] = index;
}

void UnregisterLiveIndex(const std::string& packet_path) {
  std::lock_guard<std::mutex> l(g_registry_mu);
  Registry().erase(packet_path);
}

std::shared_ptr<LiveIndex> FindLiveIndex(const std::string& packet_path) {
  std::lock_guard<std::mutex> l(g_registry_mu);
  auto it = Registry().find(packet_path);
  return it == Registry().end() ? nullptr : it->second.lock();
}

Result<std::shared_ptr<const IndexView>> IndexFileBeingWritten(const std::string& packet_path) {
  auto reader = PacketFileReader::Open(packet_path);
  if (!reader.ok()) return reader.status();
  auto builder = std::make_shared<IndexBuilder>();
  uint64_t size = (*reader)->size();
  uint32_t block = 0;
  // A block still in flight (or the preallocated zeros after the last one) fails its checksum or magic:
  // the view ends there.
  for (uint64_t off = 0; off + kBlockAlignment <= size && block < kMaxBlocksPerFile; ++block) {
    BlockReader br;
    uint32_t len = 0, flags = 0;
    if (!(*reader)->ReadExtentAt(off, &br, &len, &flags).ok() || br.num_packets() == 0) break;
    if (!builder->AddBlock(block, off, len, (*reader)->raw_block(), flags).ok()) break;
    off += ExtentStride(len, flags);
  }
  auto live = std::make_shared<LiveIndex>(builder);
  live->SetDurableBlocks(block);
  return live->Snapshot();
}

}  // namespace rwd
