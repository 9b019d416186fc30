// PacketFileReader: reads blocks and single packets of one packet file, located through its index's block
// directory. The query engine reads packet files only through this class. Not thread-safe (one per cursor).
#ifndef REWIND_INDEX_PACKET_FILE_READER_H_
#define REWIND_INDEX_PACKET_FILE_READER_H_

#include <cstdint>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/index_format.h"
#include "index/status.h"

namespace rwd {

class PacketFileReader {
 public:
  ~PacketFileReader();
  static Result<std::unique_ptr<PacketFileReader>> Open(const std::string& path);

  // Reads a whole block (decompressing it if it is stored compressed), verifies its checksum and opens
  // `*reader` on it. The block stays valid until the next call. With `unverified` (salvage), a raw block that
  // fails only its checksum is opened all the same and *unverified says why (else it is cleared): its walk
  // then yields the records whose framing holds, one of which may carry the damage. A compressed block some
  // of whose zstd frames are damaged is opened on the records of its intact frames (each checked by its own
  // CRC), and *unverified says what was lost; one whose frames all hold but whose raw checksum fails is never
  // salvaged (the damage was there before compression, anywhere in the block).
  Status ReadBlock(const BlockEntry& block, BlockReader* reader, std::string* unverified = nullptr);
  // Reads just the packet whose header is at `offset` in `block`: a few KiB of I/O for a raw block (its
  // record structure is checked, not the whole block's checksum); a compressed block is read whole, and
  // decompressed and checked once for the packets read from it in a row (a packet in a damaged frame is
  // Corruption, one in an intact frame of the same block is served).
  // `*out` stays valid until the next call.
  Status ReadPacket(const BlockEntry& block, uint32_t offset, PacketView* out);
  // Tells the kernel these bytes will be read soon (readahead in the background), so that many small
  // reads of one query go to the disk together instead of one after another.
  void Prefetch(const BlockEntry& block, uint32_t offset, uint32_t length);
  // Reads whatever extent starts at `file_offset` (raw or compressed; for repair, without an index) and
  // opens `*reader` on it. Sets `*disk_length` and `*flags` as a BlockEntry would hold them.
  Status ReadExtentAt(uint64_t file_offset, BlockReader* reader, uint32_t* disk_length, uint32_t* flags,
                      std::string* unverified = nullptr);
  // What the kBlockAlignment bytes at `offset` hold: all zeros (preallocated space never written, or wiped),
  // the start of a block or compressed extent (its header's magic, and a compressed one's length, hold), or
  // neither.
  enum class Start { kZeros, kExtent, kNothing };
  Start StartAt(uint64_t offset);
  uint64_t size() const { return size_; }
  // The raw block read last by ReadBlock()/ReadExtentAt(): kBlockSize bytes, of which those past the
  // block's used length (its blk_len, checked by the read) are unspecified.
  const uint8_t* raw_block() const { return block_.get(); }

  // Frees the block and extent buffers (reallocated by the next read); what ReadBlock()/ReadPacket() returned
  // before is invalid after this.
  void ReleaseBuffers();
  bool holds_buffers() const { return block_ != nullptr || extent_ != nullptr; }

  uint64_t bytes_read() const { return bytes_read_; }
  const std::string& path() const { return path_; }

 private:
  PacketFileReader() = default;
  bool InLostRange(uint32_t offset) const;
  std::string LostDescription() const;  // of cached_lost_, for a warning
  Status PreadFully(uint8_t* buf, uint32_t len, uint64_t offset, uint32_t* got);
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  AlignedBuffer block_;                  // kBlockSize bytes, allocated on the first read
  AlignedBuffer extent_;                 // kMaxExtentSize bytes, allocated on the first compressed read
  uint64_t cached_offset_ = UINT64_MAX;  // file offset of the compressed block now in block_
  uint32_t cached_used_ = 0;             // its used length
  bool cached_verified_ = false;         // its checksum held and a reader opened on it
  std::vector<RawRange> cached_lost_;    // its raw ranges lost to damaged frames (then bridged over)
  std::vector<uint8_t> packet_;
  std::unique_ptr<uint8_t[]> scratch_;
  uint64_t bytes_read_ = 0;
};

}  // namespace rwd

#endif  // REWIND_INDEX_PACKET_FILE_READER_H_
