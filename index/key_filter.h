// KeyFilter: a blocked Bloom filter over one packet file's posting-list keys, so that a lookup across the
// whole store opens only the index tables that may hold the value. The filter is a sequence of 64-byte
// blocks; a key's probes all fall into one block, so testing a key reads 64 bytes. The last 4 bytes of each
// block are a CRC-32C of its first 60 bytes and its block number: a damaged block is detected and then
// answers "may contain" (never a false negative from damage).
// Pure functions and a value type; thread-safe.
#ifndef REWIND_INDEX_KEY_FILTER_H_
#define REWIND_INDEX_KEY_FILTER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rwd {

constexpr uint32_t kKeyFilterBlockBytes = 64;
// At ~12 bits per key a block holds ~40 keys; a file with more distinct keys than the cap allows gets a
// filter of the maximum size and a higher false-positive rate (still no false negatives).
constexpr uint32_t kKeyFilterMaxBlocks = 2048;  // 128 KiB

// 64-bit hash of a key's bytes.
uint64_t KeyFilterHash(std::string_view key);

// Builds the filter for the given key hashes (duplicates allowed). Empty input gives one block.
std::string BuildKeyFilter(const std::vector<uint64_t>& hashes);

// Which block of a filter of `blocks` blocks a key with hash `h` lives in.
uint32_t KeyFilterBlockFor(uint64_t h, uint32_t blocks);

// True if the key may be in the filter, judged from its block (`data`: 64 bytes of block `block_no`).
// A block whose checksum does not hold also answers true; `*damaged` (optional) is then set.
bool KeyFilterBlockMayContain(const uint8_t* data, uint32_t block_no, uint64_t h, bool* damaged = nullptr);

}  // namespace rwd

#endif  // REWIND_INDEX_KEY_FILTER_H_
