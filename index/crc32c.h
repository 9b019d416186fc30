// CRC-32C (Castagnoli), the checksum of packet-file blocks. Uses the SSE4.2 instruction where the CPU has
// it, a table otherwise. Pure functions; thread-safe.
#ifndef REWIND_INDEX_CRC32C_H_
#define REWIND_INDEX_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace rwd {

// Extends `crc` (0 to start) over n bytes.
uint32_t Crc32cExtend(uint32_t crc, const uint8_t* data, size_t n);
inline uint32_t Crc32c(const uint8_t* data, size_t n) { return Crc32cExtend(0, data, n); }

}  // namespace rwd

#endif  // REWIND_INDEX_CRC32C_H_
