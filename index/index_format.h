// The records of a per-file index table (a LevelDB table, keys sorted bytewise): key encodings, the file
// summary and the block directory. See docs/format.md. Plain values; thread-safe.
#ifndef REWIND_INDEX_INDEX_FORMAT_H_
#define REWIND_INDEX_INDEX_FORMAT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/status.h"

namespace rwd {

// First byte of every key. Posting-list keys are the type byte followed by the value, big-endian, so a
// range of values (a network, a port range) is a contiguous key range.
enum IndexKeyType : uint8_t {
  kKeySummary = 0x01,     // -> FileSummary
  kKeyBlock = 0x02,       // + u32 block number -> BlockEntry
  kKeyIpv4 = 0x10,        // + 4 bytes
  kKeyIpv6 = 0x11,        // + 16 bytes
  kKeyPort = 0x20,        // + u16 (TCP, UDP, SCTP; source or destination)
  kKeyProtocol = 0x30,    // + u8 IP protocol / IPv6 next header
  kKeyEthertype = 0x31,   // + u16 network-layer type
  kKeyVlan = 0x40,        // + u16 VLAN ID
  kKeyIncomplete = 0x7f,  // packets the dissector could not fully decode: candidates for every lookup
};

constexpr uint32_t kIndexFormatVersion = 1;

std::string SummaryKey();
std::string BlockKey(uint32_t block);
std::string Ipv4Key(uint32_t addr);  // host-order address
std::string Ipv6Key(const uint8_t addr[16]);
std::string PortKey(uint16_t port);
std::string ProtocolKey(uint8_t proto);
std::string EthertypeKey(uint16_t type);
std::string VlanKey(uint16_t vlan);
std::string IncompleteKey();

// What a packet file holds, stored under SummaryKey().
struct FileSummary {
  uint32_t version = kIndexFormatVersion;
  uint64_t packets = 0;
  uint64_t captured_bytes = 0;  // sum of captured lengths
  uint64_t wire_bytes = 0;      // sum of original lengths
  uint32_t blocks = 0;
  uint64_t file_bytes = 0;      // disk space the packet file takes (as du counts it: without its holes)
  int64_t min_ts_ns = 0;        // smallest and largest packet timestamp (meaningless if packets == 0)
  int64_t max_ts_ns = 0;
  std::vector<uint32_t> linktypes;  // distinct link types, ascending

  std::string Encode() const;
  static Status Decode(std::string_view in, FileSummary* out);
};

// Where a block lives and what time it covers, stored under BlockKey(n).
struct BlockEntry {
  uint64_t file_offset = 0;  // multiple of 4096
  // Bytes of the extent that hold data, a multiple of 4096: a compressed block's extent; a raw block's used
  // bytes rounded up (the rest of its kBlockSize bytes of the file is a hole, or stale bytes in a file
  // written before 2026-11-27, whose entries say kBlockSize unless repair rebuilt them). See ExtentStride().
  uint32_t disk_length = 0;
  uint32_t packets = 0;
  int64_t min_ts_ns = 0;     // smallest and largest timestamp in the block (timestamps may go backwards)
  int64_t max_ts_ns = 0;
  uint32_t linktype = 0;
  uint32_t flags = 0;        // reserved: compression and checksum flags

  std::string Encode() const;
  static Status Decode(std::string_view in, BlockEntry* out);
};

// How far the next extent of a packet file starts after one of `disk_length` bytes with BlockEntry `flags`:
// a raw block takes kBlockSize bytes of the file whatever it holds, a compressed one its disk_length.
uint64_t ExtentStride(uint32_t disk_length, uint32_t flags);

}  // namespace rwd

#endif  // REWIND_INDEX_INDEX_FORMAT_H_
