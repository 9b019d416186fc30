#include "index/block_codec.h"

#include <linux/if_packet.h>
#include <zstd.h>

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/crc32c.h"

namespace rwd {
namespace {

constexpr char kZstdMagicV1[8] = {'R', 'W', 'N', 'D', 'Z', 'S', 'T', '1'};
constexpr char kZstdMagicV2[8] = {'R', 'W', 'N', 'D', 'Z', 'S', 'T', '2'};
constexpr uint32_t kMaxFrames = 64;      // a reader's bound; the compressor writes at most 8 (1 MiB / 128 KiB)
constexpr uint32_t kMaxHeadLength = 1024;  // bound on a block's head (descriptor and private area) kept raw

// "RWNDZST1": one zstd frame of the used bytes, one CRC over it.
struct HeaderV1 {
  char magic[8];
  uint32_t compressed_len;
  uint32_t raw_len;
  uint32_t crc;  // CRC-32C of the compressed bytes
  uint8_t reserved[44];
};
static_assert(sizeof(HeaderV1) == kCompressedHeaderSize);

// "RWNDZST2": this header, `frames` FrameEntry, the block's first head_len bytes raw, then the frames in
// order; frame i restores the raw bytes that follow those of frame i-1 (the first follows the head).
struct HeaderV2 {
  char magic[8];
  uint32_t compressed_len;  // bytes after this header: frame table, head and frames
  uint32_t raw_len;         // the block's used length (blk_len)
  uint32_t header_crc;      // CRC-32C of this header (this field as zero), the frame table and the head
  uint16_t frames;
  uint16_t head_len;
  uint8_t reserved[40];
};
static_assert(sizeof(HeaderV2) == kCompressedHeaderSize);
struct FrameEntry {
  uint32_t compressed_len;
  uint32_t raw_len;
  uint32_t crc;  // CRC-32C of the frame's compressed bytes
};
static_assert(sizeof(FrameEntry) == 12);

uint32_t RoundUp(uint32_t v) { return (v + kBlockAlignment - 1) & ~(kBlockAlignment - 1); }

// ZSTD_decompress() would allocate and free a context (~100 KiB of tables) for every block.
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> tls_dctx;

ZSTD_DCtx* ThreadDCtx() {
  if (!tls_dctx) tls_dctx.reset(ZSTD_createDCtx());
  return tls_dctx.get();
}

uint32_t HeaderV2Crc(const uint8_t* extent, const HeaderV2& h) {
  HeaderV2 zeroed = h;
  zeroed.header_crc = 0;
  uint32_t crc = Crc32c(reinterpret_cast<const uint8_t*>(&zeroed), sizeof(zeroed));
  return Crc32cExtend(crc, extent + kCompressedHeaderSize, h.frames * sizeof(FrameEntry) + h.head_len);
}

Status DecompressV1(const uint8_t* extent, uint8_t* block, uint32_t* used) {
  HeaderV1 h;
  std::memcpy(&h, extent, sizeof(h));
  const uint8_t* data = extent + kCompressedHeaderSize;
  if (Crc32c(data, h.compressed_len) != h.crc) return Status::Corruption("compressed block checksum mismatch");
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return Status::IOError("cannot allocate a zstd decompression context");
  size_t n = ZSTD_decompressDCtx(dctx, block, kBlockSize, data, h.compressed_len);
  if (ZSTD_isError(n) || n != h.raw_len) {
    return Status::Corruption(std::string("cannot decompress block: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length"));
  }
  *used = static_cast<uint32_t>(n);
  return Status::OK();
}

Status DecompressV2(const uint8_t* extent, uint8_t* block, uint32_t* used, std::vector<RawRange>* lost) {
  HeaderV2 h;
  std::memcpy(&h, extent, sizeof(h));
  if (HeaderV2Crc(extent, h) != h.header_crc) return Status::Corruption("compressed block header checksum mismatch");
  std::vector<FrameEntry> table(h.frames);
  if (h.frames > 0) std::memcpy(table.data(), extent + kCompressedHeaderSize, h.frames * sizeof(FrameEntry));
  uint64_t raw = h.head_len, packed = h.frames * sizeof(FrameEntry) + h.head_len;
  for (const FrameEntry& f : table) {
    raw += f.raw_len;
    packed += f.compressed_len;
  }
  if (raw != h.raw_len || packed > h.compressed_len) return Status::Corruption("compressed block frame table does not add up");
  ZSTD_DCtx* dctx = ThreadDCtx();
  if (dctx == nullptr) return Status::IOError("cannot allocate a zstd decompression context");
  std::memcpy(block, extent + kCompressedHeaderSize + h.frames * sizeof(FrameEntry), h.head_len);
  const uint8_t* data = extent + kCompressedHeaderSize + h.frames * sizeof(FrameEntry) + h.head_len;
  uint32_t at = h.head_len;
  std::vector<RawRange> damaged;
  for (uint32_t i = 0; i < h.frames; ++i) {
    const FrameEntry& f = table[i];
    bool ok = Crc32c(data, f.compressed_len) == f.crc;
    if (ok) {
      size_t n = ZSTD_decompressDCtx(dctx, block + at, f.raw_len, data, f.compressed_len);
      ok = !ZSTD_isError(n) && n == f.raw_len;
    }
    if (!ok) {
      if (lost == nullptr) {
        return Status::Corruption("compressed block: frame " + std::to_string(i + 1) + " of " +
                                  std::to_string(h.frames) + " damaged");
      }
      std::memset(block + at, 0, f.raw_len);
      damaged.push_back({at, at + f.raw_len});
    }
    data += f.compressed_len;
    at += f.raw_len;
  }
  *used = h.raw_len;
  if (!damaged.empty()) BridgeLostRanges(block, h.raw_len, damaged);
  if (lost != nullptr) *lost = std::move(damaged);
  return Status::OK();
}

}  // namespace

bool IsCompressedExtent(const uint8_t* p) {
  return std::memcmp(p, kZstdMagicV1, 8) == 0 || std::memcmp(p, kZstdMagicV2, 8) == 0;
}

uint32_t CompressedExtentLength(const uint8_t* header) {
  if (std::memcmp(header, kZstdMagicV2, 8) == 0) {
    HeaderV2 h;
    std::memcpy(&h, header, sizeof(h));
    if (h.raw_len > kBlockSize || h.frames > kMaxFrames || h.head_len > kMaxHeadLength || h.head_len > h.raw_len ||
        h.compressed_len < h.frames * sizeof(FrameEntry) + h.head_len ||
        h.compressed_len > kMaxExtentSize - kCompressedHeaderSize) {
      return 0;
    }
    return RoundUp(kCompressedHeaderSize + h.compressed_len);
  }
  HeaderV1 h;
  std::memcpy(&h, header, sizeof(h));
  if (std::memcmp(header, kZstdMagicV1, 8) != 0 || h.raw_len > kBlockSize || h.compressed_len == 0 ||
      h.compressed_len > kMaxExtentSize - kCompressedHeaderSize) {
    return 0;
  }
  return RoundUp(kCompressedHeaderSize + h.compressed_len);
}

Status DecompressExtent(const uint8_t* extent, uint32_t len, uint8_t* block, uint32_t* used,
                        std::vector<RawRange>* lost) {
  *used = 0;
  if (lost != nullptr) lost->clear();
  if (len < kCompressedHeaderSize) return Status::Corruption("compressed block cut short");
  uint32_t want = CompressedExtentLength(extent);
  if (want == 0) return Status::Corruption("bad compressed block header");
  if (want > len) return Status::Corruption("compressed block cut short");
  if (std::memcmp(extent, kZstdMagicV2, 8) == 0) return DecompressV2(extent, block, used, lost);
  return DecompressV1(extent, block, used);
}

BlockCompressor::BlockCompressor(int level) : level_(level), cctx_(ZSTD_createCCtx()) {}

BlockCompressor::~BlockCompressor() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

uint32_t BlockCompressor::Compress(const uint8_t* block, uint8_t* out) {
  tpacket_block_desc desc;
  std::memcpy(&desc, block, sizeof(desc));
  uint32_t used = desc.hdr.bh1.blk_len;
  if (used < kFirstPacketOffset || used > kBlockSize) used = kBlockSize;
  uint32_t head = desc.hdr.bh1.offset_to_first_pkt;
  if (head < kFirstPacketOffset || head > used || head > kMaxHeadLength) head = kFirstPacketOffset;
  // Frame boundaries: where records start, the first at or past kCompressedFrameSize raw bytes after the
  // frame's start. A chain that does not hold (never so in a block rewind wrote) ends the splitting there.
  std::vector<uint32_t> ends;
  uint32_t frame_start = head;
  for (uint32_t at = head; desc.hdr.bh1.offset_to_first_pkt == head && at + kPacketHeaderSize <= used;) {
    uint32_t delta;
    std::memcpy(&delta, block + at + offsetof(tpacket3_hdr, tp_next_offset), sizeof(delta));
    if (delta == 0 || delta >= used - at) break;
    at += delta;
    if (at - frame_start >= kCompressedFrameSize) {
      ends.push_back(at);
      frame_start = at;
    }
  }
  if (used > frame_start) ends.push_back(used);
  // Cannot happen: each frame but the last holds kCompressedFrameSize raw bytes or more.
  if (ends.size() > (kBlockSize + kCompressedFrameSize - 1) / kCompressedFrameSize) return 0;
  uint32_t frames = static_cast<uint32_t>(ends.size());
  uint32_t table_at = kCompressedHeaderSize;
  uint32_t pos = table_at + frames * sizeof(FrameEntry) + head;
  std::memcpy(out + table_at + frames * sizeof(FrameEntry), block, head);
  uint32_t raw_at = head;
  for (uint32_t i = 0; i < frames; ++i) {
    size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_), out + pos, kMaxExtentSize - pos, block + raw_at,
                                 ends[i] - raw_at, level_);
    if (ZSTD_isError(n)) return 0;
    FrameEntry f{static_cast<uint32_t>(n), ends[i] - raw_at, Crc32c(out + pos, n)};
    std::memcpy(out + table_at + i * sizeof(FrameEntry), &f, sizeof(f));
    pos += static_cast<uint32_t>(n);
    raw_at = ends[i];
  }
  uint32_t extent = RoundUp(pos);
  if (extent + kBlockAlignment > kBlockSize) return 0;  // saves less than a page: store it raw
  HeaderV2 h{};
  std::memcpy(h.magic, kZstdMagicV2, sizeof(h.magic));
  h.compressed_len = pos - kCompressedHeaderSize;
  h.raw_len = used;
  h.frames = static_cast<uint16_t>(frames);
  h.head_len = static_cast<uint16_t>(head);
  std::memcpy(out, &h, sizeof(h));
  h.header_crc = HeaderV2Crc(out, h);
  std::memcpy(out, &h, sizeof(h));
  std::memset(out + pos, 0, extent - pos);
  return extent;
}

}  // namespace rwd
