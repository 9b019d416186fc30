#include "index/key_filter.h"

#include <cstring>

#include "index/crc32c.h"

namespace rwd {
namespace {

constexpr uint32_t kBitsPerBlock = (kKeyFilterBlockBytes - 4) * 8;  // 480: the rest is the checksum
constexpr int kProbes = 6;
constexpr uint32_t kBitsPerKey = 12;

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

uint32_t BlockChecksum(const uint8_t* data, uint32_t block_no) {
  uint8_t no[4];
  std::memcpy(no, &block_no, 4);
  return Crc32cExtend(Crc32c(data, kKeyFilterBlockBytes - 4), no, 4);
}

// The probe positions of hash `h` inside its block.
template <typename Fn>
void ForEachProbe(uint64_t h, Fn fn) {
  uint32_t a = static_cast<uint32_t>(h);
  uint32_t step = static_cast<uint32_t>(h >> 17) | 1;
  for (int i = 0; i < kProbes; ++i) {
    fn(a % kBitsPerBlock);
    a += step;
  }
}

}  // namespace

uint64_t KeyFilterHash(std::string_view key) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ key.size();
  size_t i = 0;
  for (; i + 8 <= key.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, key.data() + i, 8);
    h = Mix(h ^ w);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, key.data() + i, key.size() - i);
  return Mix(h ^ tail ^ (uint64_t{0xa5} << 56));
}

uint32_t KeyFilterBlockFor(uint64_t h, uint32_t blocks) {
  return static_cast<uint32_t>(((h >> 32) * blocks) >> 32);
}

std::string BuildKeyFilter(const std::vector<uint64_t>& hashes) {
  uint64_t want = (uint64_t{hashes.size()} * kBitsPerKey + kBitsPerBlock - 1) / kBitsPerBlock;
  uint32_t blocks = static_cast<uint32_t>(want < 1 ? 1 : want > kKeyFilterMaxBlocks ? kKeyFilterMaxBlocks : want);
  std::string out(size_t{blocks} * kKeyFilterBlockBytes, '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(out.data());
  for (uint64_t h : hashes) {
    uint8_t* block = bytes + size_t{KeyFilterBlockFor(h, blocks)} * kKeyFilterBlockBytes;
    ForEachProbe(h, [block](uint32_t bit) { block[bit / 8] |= static_cast<uint8_t>(1u << (bit % 8)); });
  }
  for (uint32_t b = 0; b < blocks; ++b) {
    uint8_t* block = bytes + size_t{b} * kKeyFilterBlockBytes;
    uint32_t crc = BlockChecksum(block, b);
    std::memcpy(block + kKeyFilterBlockBytes - 4, &crc, 4);
  }
  return out;
}

bool KeyFilterBlockMayContain(const uint8_t* data, uint32_t block_no, uint64_t h, bool* damaged) {
  uint32_t stored;
  std::memcpy(&stored, data + kKeyFilterBlockBytes - 4, 4);
  if (stored != BlockChecksum(data, block_no)) {
    if (damaged != nullptr) *damaged = true;
    return true;
  }
  bool all = true;
  ForEachProbe(h, [&](uint32_t bit) { all = all && (data[bit / 8] >> (bit % 8) & 1); });
  return all;
}

}  // namespace rwd
