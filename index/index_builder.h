// IndexBuilder: accumulates the index of one packet file block by block and writes it as one immutable
// LevelDB table when the file is complete. Not thread-safe: one builder per packet file, one thread at a time.
#ifndef REWIND_INDEX_INDEX_BUILDER_H_
#define REWIND_INDEX_INDEX_BUILDER_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/address_map.h"
#include "index/index_format.h"
#include "index/posting_list.h"
#include "index/status.h"

namespace rwd {

class IndexBuilder {
 public:
  IndexBuilder();
  ~IndexBuilder();
  IndexBuilder(const IndexBuilder&) = delete;
  IndexBuilder& operator=(const IndexBuilder&) = delete;

  // Indexes block number `block` of the packet file (blocks are added in order, starting at 0), stored as
  // an extent of `disk_length` bytes at `file_offset` with BlockEntry `flags` (kBlockFlagZstd). `data` holds
  // the raw block (kBlockSize bytes, TPACKET_V3 layout). A block that fails to parse is recorded up to the
  // damage and the error is returned.
  Status AddBlock(uint32_t block, uint64_t file_offset, uint32_t disk_length, const uint8_t* data,
                  uint32_t flags = 0);

  // Writes the table to `path` atomically (a temporary file, fsync, rename). `file_bytes` is the packet
  // file's final size. After the last AddBlock(), it may run while other threads call LookupRange() and
  // blocks() (a LiveIndex serving queries): it reads the lists and blocks, and writes only
  // summary().file_bytes and what the accessors below return.
  Status Finish(const std::string& path, uint64_t file_bytes);

  const FileSummary& summary() const { return summary_; }
  const std::vector<BlockEntry>& blocks() const { return blocks_; }
  // Appends the union of the lists of keys in [first, last], restricted to blocks below `max_block`; sorted,
  // duplicate-free. For reading the index of a file while it is written (LiveIndex), between AddBlock calls.
  Status LookupRange(const std::string& first, const std::string& last, uint32_t max_block,
                     std::vector<uint32_t>* out) const;
  // After Finish(): the key filter of the table's posting-list keys (index/key_filter.h), and whether the file
  // has packets every lookup must read (undecoded, or of a link type the dissector does not index).
  const std::string& key_filter() const { return key_filter_; }
  bool unfiltered() const { return unfiltered_; }
  uint64_t table_bytes() const { return table_bytes_; }
  // Approximate heap bytes held by the builder.
  size_t memory() const;

 private:
  struct Ipv6Hash {
    size_t operator()(const std::array<uint8_t, 16>& a) const;
  };
  FileSummary summary_;
  std::string key_filter_;
  bool unfiltered_ = false;
  uint64_t table_bytes_ = 0;
  std::vector<BlockEntry> blocks_;
  AddressMap ipv4_;
  std::unordered_map<std::array<uint8_t, 16>, PostingListBuilder, Ipv6Hash> ipv6_;
  std::vector<PostingListBuilder> ports_;  // indexed by port: 65536 entries
  std::unordered_map<uint16_t, PostingListBuilder> ethertypes_;
  // The lists of recently seen ethertypes, direct-mapped by a hash of the type (the common ones, IPv4, IPv6,
  // ARP, 802.1Q, 802.1ad, MPLS, land in different slots): traffic switches among a few types all the time.
  // Null: none yet. unordered_map keeps its elements in place.
  static constexpr int kEthertypeCacheBits = 4;
  struct CachedEthertype {
    uint16_t type = 0;
    PostingListBuilder* list = nullptr;
  };
  std::array<CachedEthertype, 1 << kEthertypeCacheBits> ethertype_cache_;
  std::vector<PostingListBuilder> vlans_;  // indexed by VLAN ID: 4096 entries
  std::array<PostingListBuilder, 256> protocols_;
  PostingListBuilder incomplete_;
};

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_BUILDER_H_
