// PcapngReader: reads pcapng files whose interfaces differ in link type or snapshot length, which libpcap
// refuses. Packets come out one at a time with their interface's link type. Not thread-safe: one reader per
// thread; it owns its FILE and buffer.
//
// Format: the IETF pcapng draft (draft-ietf-opsawg-pcapng). Supported:
//  - Section Header Blocks, in either byte order (from the byte-order magic), version 1.x. A file may hold
//    several sections; each SHB starts a new interface list and may switch the byte order.
//  - Interface Description Blocks: link type, snaplen, and the options if_tsresol (10^-n, or 2^-n when the
//    high bit is set; default 10^-6) and if_tsoffset (signed seconds added to every timestamp).
//  - Enhanced Packet Blocks, Simple Packet Blocks (interface 0, no timestamp: reported as 0) and the obsolete
//    Packet Blocks (type 2). Every other block type is skipped by its length (its trailer is still checked).
//
// Timestamps: the 64-bit count of if_tsresol units is split into whole seconds and the remainder, which is
// converted to nanoseconds rounding down (as libpcap does); if_tsoffset is added to the seconds. Seconds that
// do not fit int64 saturate at INT64_MIN/INT64_MAX.
//
// Lengths: caplen larger than kMaxCaplen (262144, libpcap's limit) is clipped to kMaxCaplen — the packet is
// delivered truncated, not reported as damage — for every packet block type. A len smaller than caplen is
// raised to caplen. Simple Packet Blocks get caplen = min(len, snaplen if non-zero, room in the block).
// An EPB/PB caplen is not clipped to the interface snaplen (the bytes are in the file; snaplen is reported).
//
// Corruption (status() after Next() returned false), always naming the byte offset of the block at fault:
// a file that ends inside a block (every complete packet before it has been returned), a block total length
// that is < 12, not a multiple of 4, or below the minimum for its type; a trailing length that differs from
// the leading one; a byte-order magic that is neither order; a section version other than 1.x; a packet whose
// caplen runs past its block; a packet (or SPB) naming an interface the section has not described; an IDB
// option running past its block, an if_tsresol that is not 1 byte or too fine (> 10^-19 or < 2^-63), an
// if_tsoffset that is not 8 bytes; a block we must parse (SHB/IDB/packet) longer than kMaxBlockBytes.
// Read errors give IOError. After any error Next() keeps returning false with the same status.
#ifndef REWIND_CAPTURE_PCAPNG_READER_H_
#define REWIND_CAPTURE_PCAPNG_READER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "index/status.h"

namespace rwd {

class PcapngReader {
 public:
  static constexpr uint32_t kMaxCaplen = 262144;
  // Longest SHB, IDB or packet block buffered whole; longer skipped blocks are streamed past.
  static constexpr uint32_t kMaxBlockBytes = 64u << 20;

  // Opens `path`. NotFound/IOError if it cannot be opened or read; InvalidArgument if it does not start
  // with a Section Header Block (block type 0A0D0D0A and a valid byte-order magic).
  static Result<std::unique_ptr<PcapngReader>> Open(const std::string& path);
  ~PcapngReader();
  PcapngReader(const PcapngReader&) = delete;
  PcapngReader& operator=(const PcapngReader&) = delete;

  struct Packet {
    uint32_t linktype;      // LINKTYPE_* of the packet's interface
    uint32_t snaplen;       // the interface's snaplen (0 = unlimited)
    int64_t ts_sec;         // seconds since the epoch
    uint32_t ts_nsec;       // nanoseconds (from the interface's if_tsresol; if_tsoffset applied to ts_sec)
    uint32_t caplen, len;
    const uint8_t* data;    // valid until the next call
    uint32_t interface_id;  // the interface's index within its section
  };
  // Next packet: true with *out filled; false at the end of the file (status() OK) or on damage
  // (status() Corruption naming the byte offset and the problem) or a read error (IOError).
  bool Next(Packet* out);
  const Status& status() const { return status_; }
  uint64_t offset() const { return offset_; }  // bytes consumed so far (whole blocks)

 private:
  struct Interface {
    uint32_t linktype = 0;
    uint32_t snaplen = 0;
    uint64_t units_per_sec = 1000000;  // from if_tsresol
    int64_t ts_offset = 0;             // if_tsoffset, seconds
  };
  PcapngReader(std::FILE* file, std::string path);

  // Makes at least `n` unconsumed bytes available at buf_[pos_]; false at end of file (status_ untouched)
  // or on a read error (status_ set). May move the buffered bytes, invalidating earlier pointers.
  bool Fill(size_t n);
  // Consumes `n` bytes, reading and discarding past the buffer; false if the file ends first.
  bool Discard(uint64_t n);
  bool Fail(uint64_t at, const std::string& problem);
  bool Truncated(uint64_t at, uint32_t type, uint64_t need);
  uint16_t Get16(const uint8_t* p) const;
  uint32_t Get32(const uint8_t* p) const;
  uint64_t Get64(const uint8_t* p) const;
  bool ParseSectionHeader(const uint8_t* b, uint32_t len);
  bool ParseInterface(const uint8_t* b, uint32_t len);
  void SetTimestamp(const Interface& ifc, uint64_t units, Packet* out) const;

  std::FILE* file_;
  std::string path_;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;  // first unconsumed byte in buf_
  size_t end_ = 0;  // end of valid bytes in buf_
  bool eof_ = false;
  bool done_ = false;       // end of file reached or an error reported
  uint64_t file_pos_ = 0;   // file offset of buf_[pos_]
  uint64_t offset_ = 0;     // file offset just past the last whole block
  bool big_endian_ = false;
  std::vector<Interface> interfaces_;
  Status status_;
};

}  // namespace rwd

#endif  // REWIND_CAPTURE_PCAPNG_READER_H_
