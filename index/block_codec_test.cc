#include "index/block_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cstring>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/crc32c.h"
#include "index/test_frames.h"

namespace rwd {
namespace {

using test_frames::Bytes;
using test_frames::NumberedUdpFrame;

// A sealed block filled with numbered UDP frames of `size` bytes (the last ones as many as fit), and each
// record's offset and frame.
struct FullBlock {
  AlignedBuffer data = NewAlignedBuffer(kBlockSize);
  std::vector<uint32_t> offsets;
  std::vector<Bytes> frames;
  uint32_t used = 0;
};

FullBlock BuildFullBlock(size_t size, uint32_t max_packets = UINT32_MAX) {
  FullBlock fb;
  BlockBuilder b;
  b.Reset(fb.data.get(), 1, 65535, 7);
  for (uint32_t i = 0; i < max_packets; ++i) {
    Bytes f = NumberedUdpFrame(i, size);
    uint32_t at = b.bytes_used();
    if (!b.Add(1700000000 + i / 100, i % 100 * 1000, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()),
               f.data())) {
      break;
    }
    fb.offsets.push_back(at);
    fb.frames.push_back(std::move(f));
  }
  b.Finish();
  fb.used = b.bytes_used();
  SealBlock(fb.data.get());
  return fb;
}

uint16_t Frames(const uint8_t* extent) {
  uint16_t n;
  std::memcpy(&n, extent + 20, 2);
  return n;
}

// Where frame `i`'s compressed bytes start in `extent`, and how many there are.
std::pair<uint32_t, uint32_t> FrameBytes(const uint8_t* extent, uint32_t i) {
  uint16_t n = Frames(extent), head;
  std::memcpy(&head, extent + 22, 2);
  uint32_t at = kCompressedHeaderSize + n * 12u + head;
  for (uint32_t k = 0;; ++k) {
    uint32_t len;
    std::memcpy(&len, extent + kCompressedHeaderSize + k * 12, 4);
    if (k == i) return {at, len};
    at += len;
  }
}

// Walks `block` and returns the offsets of its records, checking each frame against the original.
std::vector<uint32_t> Walk(const uint8_t* block, uint32_t used, const FullBlock& original) {
  BlockReader r;
  EXPECT_TRUE(r.Open(block, used).ok());
  std::vector<uint32_t> got;
  PacketView p;
  while (r.Next(&p)) {
    got.push_back(p.offset);
    size_t i = std::lower_bound(original.offsets.begin(), original.offsets.end(), p.offset) - original.offsets.begin();
    EXPECT_LT(i, original.offsets.size());
    if (i >= original.offsets.size()) break;
    EXPECT_EQ(original.offsets[i], p.offset);
    EXPECT_EQ(Bytes(p.data, p.data + p.caplen), original.frames[i]) << "packet at " << p.offset;
  }
  EXPECT_TRUE(r.status().ok()) << r.status().ToString();
  EXPECT_EQ(got.size(), r.num_packets());
  return got;
}

// Compresses `fb` at `level` into a new extent buffer; its length in *n (0: stored raw).
AlignedBuffer Compressed(const FullBlock& fb, int level, uint32_t* n) {
  BlockCompressor c(level);
  AlignedBuffer extent = NewAlignedBuffer(kMaxExtentSize);
  *n = c.Compress(fb.data.get(), extent.get());
  return extent;
}

// The extent decompresses, with nothing lost, into exactly `fb`'s used bytes.
void ExpectRestores(const uint8_t* extent, uint32_t n, const FullBlock& fb) {
  AlignedBuffer back = NewAlignedBuffer(kBlockSize);
  uint32_t used = 0;
  std::vector<RawRange> lost;
  ASSERT_TRUE(DecompressExtent(extent, n, back.get(), &used, &lost).ok());
  EXPECT_TRUE(lost.empty());
  ASSERT_EQ(used, fb.used);
  EXPECT_EQ(std::memcmp(back.get(), fb.data.get(), used), 0);
  EXPECT_TRUE(VerifyBlockChecksum(back.get(), kBlockSize).ok());
  EXPECT_EQ(Walk(back.get(), kBlockSize, fb), fb.offsets);
}

TEST(BlockCodec, RoundTripInFramesSplitWhereRecordsStart) {
  for (size_t size : {60u, 700u, 1514u}) {
    FullBlock fb = BuildFullBlock(size);
    uint32_t n = 0;
    AlignedBuffer extent = Compressed(fb, 3, &n);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(n % kBlockAlignment, 0u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(extent.get()), 8), "RWNDZST2");
    EXPECT_EQ(Frames(extent.get()), (fb.used - kFirstPacketOffset + kCompressedFrameSize - 1) / kCompressedFrameSize)
        << size;
    ExpectRestores(extent.get(), n, fb);
  }
}

// A record larger than a frame is a frame of its own; an empty block is the head alone.
TEST(BlockCodec, BigRecordsAndEmptyBlocks) {
  for (uint32_t packets : {0u, 1u, 5u}) {
    FullBlock fb = BuildFullBlock(200000, packets);
    ASSERT_EQ(fb.offsets.size(), packets);
    uint32_t n = 0;
    AlignedBuffer extent = Compressed(fb, 3, &n);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(Frames(extent.get()), packets);
    ExpectRestores(extent.get(), n, fb);
  }
}

// One flipped byte in one frame: a strict read refuses the block; salvage restores every record of the
// other frames, byte for byte, and loses only that frame's.
TEST(BlockCodec, AFlippedByteCostsTheRecordsOfItsFrameOnly) {
  FullBlock fb = BuildFullBlock(700);
  uint32_t n = 0;
  AlignedBuffer extent = Compressed(fb, 3, &n);
  ASSERT_GT(n, 0u);
  uint16_t frames = Frames(extent.get());
  ASSERT_EQ(frames, 8);
  AlignedBuffer damaged = NewAlignedBuffer(kMaxExtentSize);
  AlignedBuffer back = NewAlignedBuffer(kBlockSize);
  for (uint32_t i = 0; i < frames; ++i) {
    std::memcpy(damaged.get(), extent.get(), n);
    auto [at, len] = FrameBytes(damaged.get(), i);
    damaged.get()[at + len / 2] ^= 0x20;
    uint32_t used = 0;
    Status strict = DecompressExtent(damaged.get(), n, back.get(), &used);
    EXPECT_EQ(strict.code(), Status::kCorruption);
    EXPECT_NE(strict.message().find("frame " + std::to_string(i + 1) + " of 8"), std::string::npos) << strict.message();
    std::vector<RawRange> lost;
    ASSERT_TRUE(DecompressExtent(damaged.get(), n, back.get(), &used, &lost).ok());
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_FALSE(VerifyBlockChecksum(back.get(), kBlockSize).ok());
    std::vector<uint32_t> want;
    for (uint32_t off : fb.offsets) {
      if (off < lost[0].begin || off >= lost[0].end) want.push_back(off);
    }
    EXPECT_GT(want.size(), fb.offsets.size() * 6 / 8);
    EXPECT_LT(want.size(), fb.offsets.size());
    EXPECT_EQ(Walk(back.get(), kBlockSize, fb), want) << "frame " << i;
  }
}

// Several frames lost, adjacent ones and the last: the walk bridges each gap and ends where the last intact
// record does.
TEST(BlockCodec, SeveralLostFramesAreBridged) {
  FullBlock fb = BuildFullBlock(1514);
  uint32_t n = 0;
  AlignedBuffer extent = Compressed(fb, 1, &n);
  ASSERT_GT(n, 0u);
  ASSERT_EQ(Frames(extent.get()), 8);
  for (uint32_t i : {0u, 3u, 4u, 7u}) {
    auto [at, len] = FrameBytes(extent.get(), i);
    extent.get()[at + 3] ^= 0x01;
  }
  AlignedBuffer back = NewAlignedBuffer(kBlockSize);
  uint32_t used = 0;
  std::vector<RawRange> lost;
  ASSERT_TRUE(DecompressExtent(extent.get(), n, back.get(), &used, &lost).ok());
  ASSERT_EQ(lost.size(), 4u);
  std::vector<uint32_t> want;
  for (uint32_t off : fb.offsets) {
    bool in_lost = false;
    for (const RawRange& r : lost) in_lost |= off >= r.begin && off < r.end;
    if (!in_lost) want.push_back(off);
  }
  EXPECT_GT(want.size(), fb.offsets.size() * 3 / 8);  // 4 frames of 8 lost
  EXPECT_LT(want.size(), fb.offsets.size() * 5 / 8);
  EXPECT_EQ(Walk(back.get(), kBlockSize, fb), want);
}

// The header, the frame table and the block's head have one CRC: damage there loses the extent even in
// salvage (frame boundaries and the link type cannot be trusted).
TEST(BlockCodec, DamageInTheHeaderTableOrHeadLosesTheExtent) {
  FullBlock fb = BuildFullBlock(700);
  uint32_t n = 0;
  AlignedBuffer extent = Compressed(fb, 3, &n);
  ASSERT_GT(n, 0u);
  uint32_t table_and_head = 8 * 12 + kFirstPacketOffset;
  for (uint32_t at : {12u, 40u, kCompressedHeaderSize + 5, kCompressedHeaderSize + table_and_head - 30}) {
    AlignedBuffer damaged = NewAlignedBuffer(kMaxExtentSize);
    std::memcpy(damaged.get(), extent.get(), n);
    damaged.get()[at] ^= 0x04;
    AlignedBuffer back = NewAlignedBuffer(kBlockSize);
    uint32_t used = 0;
    std::vector<RawRange> lost;
    EXPECT_EQ(DecompressExtent(damaged.get(), n, back.get(), &used, &lost).code(), Status::kCorruption) << at;
  }
}

// Extents of the first format (one frame, one CRC) written by earlier versions still read.
TEST(BlockCodec, FirstFormatExtentsStillRead) {
  FullBlock fb = BuildFullBlock(700);
  AlignedBuffer extent = NewAlignedBuffer(kMaxExtentSize);
  std::memset(extent.get(), 0, kMaxExtentSize);
  size_t z = ZSTD_compress(extent.get() + kCompressedHeaderSize, kMaxExtentSize - kCompressedHeaderSize,
                           fb.data.get(), fb.used, 3);
  ASSERT_FALSE(ZSTD_isError(z));
  uint32_t h[5] = {0, 0, static_cast<uint32_t>(z), fb.used, Crc32c(extent.get() + kCompressedHeaderSize, z)};
  std::memcpy(h, "RWNDZST1", 8);
  std::memcpy(extent.get(), h, sizeof(h));
  uint32_t n = CompressedExtentLength(extent.get());
  ASSERT_EQ(n, (kCompressedHeaderSize + z + 4095) / 4096 * 4096);
  ExpectRestores(extent.get(), n, fb);
  AlignedBuffer back = NewAlignedBuffer(kBlockSize);
  uint32_t used = 0;
  std::vector<RawRange> lost;
  extent.get()[kCompressedHeaderSize + 100] ^= 1;  // one frame, one CRC: lost whole, as before
  EXPECT_EQ(DecompressExtent(extent.get(), n, back.get(), &used, &lost).code(), Status::kCorruption);
}

}  // namespace
}  // namespace rwd
