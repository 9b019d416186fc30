// NeedleFrame: a small, well-formed Ethernet/IPv4/UDP frame between two addresses no source trace uses,
// planted by rewind_make_store a fixed number of times so that a `host` query over the synthetic store
// has the same known answer whatever the store's size. Pure function; thread-safe.
#ifndef REWIND_BENCH_NEEDLE_FRAME_H_
#define REWIND_BENCH_NEEDLE_FRAME_H_

#include <cstdint>
#include <vector>

namespace rwd {

// 10.255.0.1 and 10.255.0.2 (host byte order): the needle's source and destination.
constexpr uint32_t kNeedleSource = 0x0aff0001;
constexpr uint32_t kNeedleDestination = 0x0aff0002;

// Frame number `serial` (UDP source port 40000 + serial % 20000, payload naming it), with a valid IPv4
// header checksum and no UDP checksum (0, allowed over IPv4).
std::vector<uint8_t> NeedleFrame(uint32_t serial);

}  // namespace rwd

#endif  // REWIND_BENCH_NEEDLE_FRAME_H_
