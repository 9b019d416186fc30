// Block codec: how a block is stored on disk. An extent is either a raw 1 MiB TPACKET_V3 block or a
// zstd-compressed one, zero-padded to a multiple of 4096 so that writes stay O_DIRECT. A compressed extent
// ("RWNDZST2", docs/format.md) holds the block's head raw and its records in independent zstd frames of about
// kCompressedFrameSize raw bytes, split where records start, each with its own CRC-32C: damage costs the
// records of one frame, not the block. Extents of the first format ("RWNDZST1": one frame, one CRC) are
// still read. The index's BlockEntry says which (flags) and how long (disk_length), so a compressed block is
// found and read alone. BlockCompressor is not thread-safe (one per writer); the free functions are.
#ifndef REWIND_INDEX_BLOCK_CODEC_H_
#define REWIND_INDEX_BLOCK_CODEC_H_

#include <cstdint>
#include <vector>

#include "index/block_format.h"

#include "index/status.h"

namespace rwd {

constexpr uint32_t kBlockFlagZstd = 1;            // BlockEntry::flags: the extent is zstd-compressed
constexpr uint32_t kCompressedHeaderSize = 64;
constexpr uint32_t kMaxExtentSize = (1u << 20) + 4096;  // a compressed extent never exceeds this
// Raw bytes per zstd frame of a compressed extent (a frame ends at the first record boundary past this).
// Smaller frames lose less to damage and compress worse: on trace-512M at level 3 the ratio is 2.46 with one
// 1 MiB frame, 2.39 with 256 KiB, 2.32 with 128 KiB and 2.26 with 64 KiB frames.
constexpr uint32_t kCompressedFrameSize = 128 << 10;

// True if `p` (at least 8 bytes) starts a compressed extent.
bool IsCompressedExtent(const uint8_t* p);
// The on-disk length of the compressed extent whose header (kCompressedHeaderSize bytes) is at `header`; 0 if
// the header is invalid.
uint32_t CompressedExtentLength(const uint8_t* header);
// Restores the used part of a raw block from a compressed extent of `len` bytes into `block` (room for
// kBlockSize bytes) and sets `*used` to its length; the bytes of `block` past it are left as they were.
// Corruption on a bad header, checksum or frame. Reuses one decompression context per thread.
// With `lost` (salvage), an extent whose header holds but some of whose frames do not is restored in part:
// the damaged frames' raw ranges are zeroed and listed in *lost, the block's record chain is bridged over
// them (BridgeLostRanges) and OK is returned; *lost is empty when nothing was lost.
Status DecompressExtent(const uint8_t* extent, uint32_t len, uint8_t* block, uint32_t* used,
                        std::vector<RawRange>* lost = nullptr);

class BlockCompressor {
 public:
  explicit BlockCompressor(int level);
  ~BlockCompressor();
  BlockCompressor(const BlockCompressor&) = delete;
  BlockCompressor& operator=(const BlockCompressor&) = delete;
  // Compresses the used part of `block` into `out` (kMaxExtentSize bytes). Returns the extent length, or
  // 0 when compression would not save at least one 4 KiB page (then the raw block is written instead).
  uint32_t Compress(const uint8_t* block, uint8_t* out);
  int level() const { return level_; }

 private:
  int level_;
  void* cctx_;
};

}  // namespace rwd

#endif  // REWIND_INDEX_BLOCK_CODEC_H_
