#include "index/block_codec.h"

#include <linux/if_packet.h>
#include <zstd.h>

#include <cstddef>
#include <cstring>
#include <memory>

#include "index/block_format.h"
#include "index/crc32c.h"

namespace rwd {
namespace {

constexpr char kZstdMagic[8] = {'R', 'W', 'N', 'D', 'Z', 'S', 'T', '1'};

struct CompressedHeader {
  char magic[8];
  uint32_t compressed_len;
  uint32_t raw_len;
  uint32_t crc;  // CRC-32C of the compressed bytes
  uint8_t reserved[44];
};
static_assert(sizeof(CompressedHeader) == kCompressedHeaderSize);

uint32_t RoundUp(uint32_t v) { return (v + kBlockAlignment - 1) & ~(kBlockAlignment - 1); }

// ZSTD_decompress() would allocate and free a context (~100 KiB of tables) for every block.
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> tls_dctx;

}  // namespace

bool IsCompressedExtent(const uint8_t* p) { return std::memcmp(p, kZstdMagic, sizeof(kZstdMagic)) == 0; }

uint32_t CompressedExtentLength(const uint8_t* header) {
  CompressedHeader h;
  std::memcpy(&h, header, sizeof(h));
  if (!IsCompressedExtent(header) || h.raw_len > kBlockSize || h.compressed_len == 0 ||
      h.compressed_len > kMaxExtentSize - kCompressedHeaderSize) {
    return 0;
  }
  return RoundUp(kCompressedHeaderSize + h.compressed_len);
}

Status DecompressExtent(const uint8_t* extent, uint32_t len, uint8_t* block, uint32_t* used) {
  *used = 0;
  if (len < kCompressedHeaderSize) return Status::Corruption("compressed block cut short");
  uint32_t want = CompressedExtentLength(extent);
  if (want == 0) return Status::Corruption("bad compressed block header");
  if (want > len) return Status::Corruption("compressed block cut short");
  CompressedHeader h;
  std::memcpy(&h, extent, sizeof(h));
  const uint8_t* data = extent + kCompressedHeaderSize;
  if (Crc32c(data, h.compressed_len) != h.crc) return Status::Corruption("compressed block checksum mismatch");
  if (!tls_dctx) tls_dctx.reset(ZSTD_createDCtx());
  if (!tls_dctx) return Status::IOError("cannot allocate a zstd decompression context");
  size_t n = ZSTD_decompressDCtx(tls_dctx.get(), block, kBlockSize, data, h.compressed_len);
  if (ZSTD_isError(n) || n != h.raw_len) {
    return Status::Corruption(std::string("cannot decompress block: ") + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong length"));
  }
  *used = static_cast<uint32_t>(n);
  return Status::OK();
}

BlockCompressor::BlockCompressor(int level) : level_(level), cctx_(ZSTD_createCCtx()) {}

BlockCompressor::~BlockCompressor() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

uint32_t BlockCompressor::Compress(const uint8_t* block, uint8_t* out) {
  uint32_t used;
  std::memcpy(&used, block + offsetof(tpacket_block_desc, hdr.bh1.blk_len), 4);
  if (used < kFirstPacketOffset || used > kBlockSize) used = kBlockSize;
  uint8_t* data = out + kCompressedHeaderSize;
  size_t cap = kMaxExtentSize - kCompressedHeaderSize;
  size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_), data, cap, block, used, level_);
  if (ZSTD_isError(n)) return 0;
  uint32_t extent = RoundUp(kCompressedHeaderSize + static_cast<uint32_t>(n));
  if (extent + kBlockAlignment > kBlockSize) return 0;  // saves less than a page: store it raw
  CompressedHeader h{};
  std::memcpy(h.magic, kZstdMagic, sizeof(h.magic));
  h.compressed_len = static_cast<uint32_t>(n);
  h.raw_len = used;
  h.crc = Crc32c(data, n);
  std::memcpy(out, &h, sizeof(h));
  std::memset(out + kCompressedHeaderSize + n, 0, extent - kCompressedHeaderSize - n);
  return extent;
}

}  // namespace rwd
