// libFuzzer target: reading a stored extent back, as a query does. The input is an extent: a raw block (walked
// with BlockReader; one failing its checksum is salvaged, bridged over broken records, and its walk must then
// end without error) or a zstd extent (decompressed with salvage, its lost frames bridged, then walked).
// Damage must come back as a Status; nothing may read outside the extent or the 1 MiB block (ASan).
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
  bool bridged = false;  // a raw block salvaged as a query does: its walk must then end without error
  if (size >= 8 && rwd::IsCompressedExtent(extent.get())) {
    if (size >= rwd::kCompressedHeaderSize) (void)rwd::CompressedExtentLength(extent.get());
    std::vector<rwd::RawRange> lost;
    if (!rwd::DecompressExtent(extent.get(), static_cast<uint32_t>(size), block.get(), &used, &lost).ok()) return 0;
    raw = block.get();
    if (lost.empty() && !rwd::VerifyBlockChecksum(raw, used).ok()) return 0;
  } else {
    if (size > rwd::kBlockSize) return 0;
    raw = extent.get();
    used = static_cast<uint32_t>(size);
    if (!rwd::VerifyBlockChecksum(raw, used).ok()) {
      rwd::BlockReader probe;
      if (!probe.Open(raw, used).ok()) return 0;
      std::memcpy(block.get(), raw, used);
      rwd::BridgeBrokenRecords(block.get(), used, nullptr);
      raw = block.get();
      bridged = true;
    }
  }
  rwd::BlockReader reader;
  if (!reader.Open(raw, used).ok()) {
    if (bridged) __builtin_trap();  // bridging broke a descriptor that held
    return 0;
  }
  rwd::PacketView p;
  uint32_t n = 0;
  while (reader.Next(&p) && n < 100000) {
    if (p.caplen > 0) {
      volatile uint8_t sink = p.data[0] ^ p.data[p.caplen - 1];
      (void)sink;
    }
    ++n;
  }
  if (bridged && !reader.status().ok()) __builtin_trap();  // bridging left a break in the chain
  return 0;
}
