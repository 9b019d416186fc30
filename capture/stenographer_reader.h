// StenographerReader: reads a packet file written by Stenographer's stenotype, packet by packet. Such a file
// is a sequence of 1 MiB blocks exactly as the kernel's TPACKET_V3 ring handed them over (struct
// tpacket_block_desc, then tpacket3_hdr records chained by tp_next_offset), of Ethernet frames, without
// rewind's block header. A VLAN tag the kernel moved into a record's header is put back into the frame (as
// rewind's own reader does; Stenographer's answers leave it out). Not thread-safe: one reader per file.
//
// Damage (status() after Next() returned false) names the block and what is wrong: a block descriptor out of
// bounds, a record that overruns its block, a chain that ends before the block's packet count, a file that
// ends inside a block. Every packet before the damage has been returned. Read errors give IOError.
#ifndef REWIND_CAPTURE_STENOGRAPHER_READER_H_
#define REWIND_CAPTURE_STENOGRAPHER_READER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/status.h"

namespace rwd {

class StenographerReader {
 public:
  static Result<std::unique_ptr<StenographerReader>> Open(const std::string& path);
  ~StenographerReader();
  StenographerReader(const StenographerReader&) = delete;
  StenographerReader& operator=(const StenographerReader&) = delete;

  // The next packet (valid until the next call); false at the end or on damage.
  bool Next(PacketView* out);
  const Status& status() const { return status_; }
  uint64_t offset() const { return block_offset_; }  // bytes of the file consumed (whole blocks)
  uint64_t size() const { return size_; }

 private:
  StenographerReader() = default;
  bool ReadBlock();
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t block_offset_ = 0;  // file offset of the block after the current one
  uint64_t block_at_ = 0;      // file offset of the current block
  std::unique_ptr<uint8_t[]> block_;
  std::unique_ptr<uint8_t[]> scratch_;
  uint32_t block_len_ = 0;
  uint32_t packets_left_ = 0;
  uint32_t next_ = 0;  // offset of the next record in the block (kChainGoesBack: the last one named a bad one)
  static constexpr uint32_t kChainGoesBack = UINT32_MAX;  // never a record's offset (records are 4-aligned)
  Status status_;
};

// The packet files of a Stenographer installation at `path`, which is its config file (every thread's
// PacketsDirectory), a directory holding PKT<n>/ (stenotype's --dir), or a packet directory itself. In thread
// order, then name (start time) order. Files being written (names starting with '.') are left out and put in
// *being_written; other names that are not a microsecond timestamp, and files that do not start with a
// TPACKET_V3 block (stenotype's index tables have the same names), are left out and put in *other.
Result<std::vector<std::string>> ListStenographerPacketFiles(const std::string& path,
                                                             std::vector<std::string>* being_written,
                                                             std::vector<std::string>* other);

}  // namespace rwd

#endif  // REWIND_CAPTURE_STENOGRAPHER_READER_H_
