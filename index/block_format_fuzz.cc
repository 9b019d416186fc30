// libFuzzer target: reading a stored extent back, as a query does. The input is an extent: a raw block (walked
// with BlockReader after its checksum) or a zstd extent (decompressed with salvage, its lost frames bridged,
// then walked). Damage must come back as a Status; nothing may read outside the extent or the 1 MiB block (ASan).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "index/block_codec.h"
#include "index/block_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > rwd::kMaxExtentSize) return 0;
  static std::unique_ptr<uint8_t[]> block(new uint8_t[rwd::kBlockSize]);
  std::unique_ptr<uint8_t[]> extent(new uint8_t[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(extent.get(), data, size);
  const uint8_t* raw = nullptr;
  uint32_t used = 0;
  if (size >= 8 && rwd::IsCompressedExtent(extent.get())) {
    if (size >= rwd::kCompressedHeaderSize) (void)rwd::CompressedExtentLength(extent.get());
    std::vector<rwd::RawRange> lost;
    if (!rwd::DecompressExtent(extent.get(), static_cast<uint32_t>(size), block.get(), &used, &lost).ok()) return 0;
    raw = block.get();
    if (!lost.empty()) used = rwd::kBlockSize;  // walked as a salvaged block: its checksum cannot hold
  } else {
    if (size > rwd::kBlockSize) return 0;
    raw = extent.get();
    used = static_cast<uint32_t>(size);
  }
  if (used != rwd::kBlockSize && !rwd::VerifyBlockChecksum(raw, used).ok()) return 0;
  rwd::BlockReader reader;
  if (!reader.Open(raw, used).ok()) return 0;
  rwd::PacketView p;
  uint32_t n = 0;
  while (reader.Next(&p) && n < 100000) {
    if (p.caplen > 0) {
      volatile uint8_t sink = p.data[0] ^ p.data[p.caplen - 1];
      (void)sink;
    }
    ++n;
  }
  return 0;
}
