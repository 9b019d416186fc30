// PacketRing: one AF_PACKET socket with a memory-mapped TPACKET_V3 receive ring of 1 MiB blocks, bound to
// one interface and optionally joined to a PACKET_FANOUT group. The kernel fills blocks; NextBlock() hands
// a full (or timed-out) block to user space, which writes it as-is and gives it back with ReleaseBlock().
// Not thread-safe: one capture thread per ring.
#ifndef REWIND_CAPTURE_PACKET_RING_H_
#define REWIND_CAPTURE_PACKET_RING_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/status.h"

namespace rwd {

struct PacketRingOptions {
  std::string iface;
  uint32_t blocks = 64;               // ring size in 1 MiB blocks
  uint32_t block_timeout_ms = 1000;   // the kernel hands over a partly filled block after this long
  uint32_t snaplen = 262144;
  bool promiscuous = true;
  int fanout_id = -1;                 // < 0: no fanout group
  int fanout_type = 0;                // PACKET_FANOUT_HASH (0), _LB (1), _CPU (2), ...
  // Socket filter: empty for none; a tcpdump expression, or Stenographer's hex-encoded compiled BPF
  // (the output of `tcpdump -ddd` as hex numbers, as made by its compile_bpf.sh).
  std::string filter;
};

struct RingStats {
  uint64_t packets = 0;  // packets the kernel passed to the ring (after the filter)
  uint64_t drops = 0;    // packets the kernel dropped because the ring was full
};

class PacketRing {
 public:
  ~PacketRing();
  // Opens the socket, sets up and maps the ring, attaches the filter and binds to the interface.
  static Result<std::unique_ptr<PacketRing>> Open(const PacketRingOptions& options);

  // Waits up to `timeout_ms` for the next block the kernel has handed over; nullptr on timeout.
  // Blocks come in ring order; each must be released exactly once (in any order).
  Result<uint8_t*> NextBlock(int timeout_ms);
  // Whether the kernel has handed over the next block (NextBlock would return it without waiting).
  bool NextBlockReady() const;
  void ReleaseBlock(uint8_t* block);
  // Kernel counters since the previous call (PACKET_STATISTICS resets them).
  Status ReadStats(RingStats* delta);

  uint32_t linktype() const { return linktype_; }
  uint32_t snaplen() const { return options_.snaplen; }
  uint32_t block_count() const { return options_.blocks; }
  uint32_t block_timeout_ms() const { return options_.block_timeout_ms; }
  int fd() const { return fd_; }

 private:
  PacketRing() = default;
  PacketRingOptions options_;
  int fd_ = -1;
  uint8_t* map_ = nullptr;
  size_t map_size_ = 0;
  uint32_t next_ = 0;  // index of the next block to look at
  uint32_t linktype_ = 1;
};

// Compiles `filter` (see PacketRingOptions::filter) into a classic BPF program for `linktype`, with
// `snaplen` as the accept length. Fills `*code` with (code, jt, jf, k) quadruples.
Status CompileSocketFilter(const std::string& filter, uint32_t linktype, uint32_t snaplen,
                           std::vector<uint64_t>* code);

}  // namespace rwd

#endif  // REWIND_CAPTURE_PACKET_RING_H_
