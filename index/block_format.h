// The packet-file block: 1 MiB in the kernel's TPACKET_V3 block layout, so a block handed over by the
// capture ring is written to disk as-is. BlockBuilder makes such blocks from capture files (import);
// BlockReader walks one back into packets. See docs/format.md. Neither is thread-safe; both are cheap.
#ifndef REWIND_INDEX_BLOCK_FORMAT_H_
#define REWIND_INDEX_BLOCK_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "index/status.h"

namespace rwd {

constexpr uint32_t kBlockSize = 1u << 20;
constexpr uint32_t kBlockAlignment = 4096;  // O_DIRECT alignment of buffers, offsets and lengths

// A buffer aligned to kBlockAlignment: what O_DIRECT needs, and what the kernel copies into several times
// faster than into a malloc'd (16-byte aligned) one (measured: 1 MiB preads from the page cache 0.11 ms
// against 0.48 ms). Uninitialised. Owned by the holder; freed with std::free.
struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;
// `size` is rounded up to a multiple of kBlockAlignment. Null only if memory is exhausted.
inline AlignedBuffer NewAlignedBuffer(size_t size) {
  size_t rounded = (size + kBlockAlignment - 1) / kBlockAlignment * kBlockAlignment;
  return AlignedBuffer(static_cast<uint8_t*>(std::aligned_alloc(kBlockAlignment, rounded)));
}

// Layout of a block: [48-byte tpacket_block_desc][BlockPriv, 64 bytes][packets ...]. BlockPriv sits in the
// per-block private area the ring reserves (tp_sizeof_priv = kBlockPrivSize), which the kernel leaves alone.
constexpr uint32_t kBlockDescSize = 48;
constexpr uint32_t kBlockPrivSize = 64;
constexpr uint32_t kFirstPacketOffset = kBlockDescSize + kBlockPrivSize;
constexpr uint32_t kPacketHeaderSize = 48;  // struct tpacket3_hdr
constexpr uint32_t kMaxSnapLen = 262144;    // libpcap's MAXIMUM_SNAPLEN
// Position of a packet within its packet file: block number << 20 | offset of its header in the block.
// Packet files hold at most 4096 blocks, so positions fit 32 bits.
constexpr uint32_t kMaxBlocksPerFile = 4096;
inline uint32_t PacketPosition(uint32_t block, uint32_t offset) { return block << 20 | offset; }
inline uint32_t PositionBlock(uint32_t pos) { return pos >> 20; }
inline uint32_t PositionOffset(uint32_t pos) { return pos & (kBlockSize - 1); }

// rewind's per-block metadata in the private area. All fields little-endian.
struct BlockPriv {
  char magic[8];       // "RWNDBLK1"
  uint32_t linktype;   // LINKTYPE_* of every packet in the block
  uint32_t snaplen;    // snapshot length the packets were captured with
  uint32_t flags;      // kBlockFlag*
  uint32_t checksum;   // reserved for a per-block checksum (kBlockFlagChecksum)
  uint8_t reserved[40];
};
static_assert(sizeof(BlockPriv) == kBlockPrivSize);
constexpr char kBlockMagic[8] = {'R', 'W', 'N', 'D', 'B', 'L', 'K', '1'};
constexpr uint32_t kBlockFlagChecksum = 1;  // `checksum` holds the block's CRC32C (see SealBlock)
constexpr uint32_t kBlockChecksumOffset = kBlockDescSize + 20;  // of BlockPriv::checksum in the block
// rewind's own tp_status bit (set by import only; the kernel's bits end at bit 8): the record's tp_nsec holds
// a pcap file's microsecond field as stored, which libpcap reads as a signed count of microseconds, instead
// of nanoseconds. Import keeps such a field (one of a million or more, which no nanosecond fraction of 32 bits
// can hold, or one libpcap reads as negative) so that answers reproduce it; the packet's time is libpcap's.
constexpr uint32_t kStatusMicrosField = 1u << 31;
// Likewise (import only): the record's tp_nsec holds a pcap file's nanosecond field as stored, one that libpcap
// reads as a negative count of nanoseconds (2^31 or more as unsigned), kept so that answers reproduce it.
constexpr uint32_t kStatusSignedNanosField = 1u << 30;

// How a record's tp_nsec reads. Import keeps a capture file's fraction field as stored when no nanosecond
// count of 0..2^32-1 holds it; the packet's time is then what libpcap makes of the field.
enum class FractionField : uint8_t {
  kNanos,         // nanoseconds, unsigned: every captured packet, and imported ones in range
  kSignedMicros,  // a pcap microsecond field (kStatusMicrosField): time = ts_sec + (int32_t)ts_nsec µs
  kSignedNanos,   // a pcap nanosecond field (kStatusSignedNanosField): time = ts_sec + (int32_t)ts_nsec ns
};

// The block's used length, its blk_len: the descriptor, rewind's private area and the packet records; the rest
// of the block's kBlockSize bytes means nothing. kBlockSize if blk_len is out of bounds.
uint32_t BlockUsedLength(const uint8_t* block);
// What a raw block takes on disk: its used length rounded up to whole kBlockAlignment pages (at most kBlockSize),
// the rest of its kBlockSize bytes in the file a hole.
uint32_t RawBlockDiskLength(const uint8_t* block);
// Computes the block's CRC-32C over its used bytes [0, blk_len), the checksum field counted as zero, and
// stores it in BlockPriv with kBlockFlagChecksum. Called once per block, just before it is written.
void SealBlock(uint8_t* block);
// Corruption if the block carries a checksum that does not match its bytes (`size` readable bytes).
// A block without kBlockFlagChecksum passes.
Status VerifyBlockChecksum(const uint8_t* block, uint32_t size);

// A byte range [begin, end) of a raw block, e.g. the part a damaged compressed extent could not restore.
struct RawRange {
  uint32_t begin;
  uint32_t end;
};
// Makes a block whose `lost` ranges (sorted, disjoint, each starting where a record started; their bytes
// unusable) walkable again: every record whose tp_next_offset leads into a lost range is pointed past it
// (the first packet offset likewise), and num_pkts becomes the number of records left, which it returns.
// The block's checksum then fails: it is read as a salvaged block. `used` is the block's blk_len.
uint32_t BridgeLostRanges(uint8_t* block, uint32_t used, const std::vector<RawRange>& lost);

// Salvage of a raw block whose checksum failed: walks its record chain and, where a record's framing breaks
// (its header overruns the block, or its tp_next_offset leads out of it or backwards), finds the next record
// whose framing holds (a chain of kResyncRecords records that decode, or one that ends exactly at blk_len)
// and bridges the chain to it. A record that does not decode is dropped; one whose only fault is its next
// pointer is kept. `size` is the number of readable bytes. Sets num_pkts to the records left, appends the
// byte ranges skipped to *skipped, and returns the records left. The descriptor must hold (BlockReader::Open).
uint32_t BridgeBrokenRecords(uint8_t* block, uint32_t size, std::vector<RawRange>* skipped);
constexpr uint32_t kResyncRecords = 8;

// Writes TPACKET_V3 blocks into a caller-owned, kBlockSize-byte buffer.
class BlockBuilder {
 public:
  // Starts a new empty block in `buf` (kBlockSize bytes; the builder does not own it).
  void Reset(uint8_t* buf, uint32_t linktype, uint32_t snaplen, uint64_t seq);
  // Appends one packet; false if it does not fit (the block is then full). caplen <= kMaxSnapLen.
  // The timestamp is kept as given (seconds and nanoseconds; an out-of-range fraction found in a capture
  // file is kept, not normalized, so that output reproduces the input exactly); `fraction` says how
  // `ts_nsec` reads.
  bool Add(uint32_t ts_sec, uint32_t ts_nsec, uint32_t caplen, uint32_t len, const uint8_t* data,
           FractionField fraction = FractionField::kNanos);
  // Fills the block descriptor; the block is then ready to be written.
  void Finish();
  uint32_t num_packets() const { return num_packets_; }
  uint32_t linktype() const { return linktype_; }
  uint32_t bytes_used() const { return used_; }

 private:
  uint8_t* buf_ = nullptr;
  uint32_t used_ = 0;
  uint32_t last_offset_ = 0;
  uint32_t num_packets_ = 0;
  uint32_t linktype_ = 0;
  uint32_t first_sec_ = 0, first_nsec_ = 0;
  uint32_t last_sec_ = 0, last_nsec_ = 0;
};

// One packet as read back from a block: the frame as it was on the wire (a VLAN tag the kernel moved
// into the header is put back), valid until the next call on the reader.
struct PacketView {
  int64_t ts_ns = 0;       // the packet's time in ns, for ordering and time filters: ts_sec * 1e9 + ts_nsec
                           // read as `fraction` says (libpcap's time for a kept pcap field)
  uint32_t ts_sec = 0;     // the stored fields, as captured
  uint32_t ts_nsec = 0;
  FractionField fraction = FractionField::kNanos;
  uint32_t caplen = 0;
  uint32_t len = 0;        // original length on the wire
  uint32_t offset = 0;     // offset of the packet's header in the block
  const uint8_t* data = nullptr;
};

// Decodes the packet record whose tpacket3_hdr starts at `record`, with `avail` readable bytes from there.
// `scratch` (kMaxSnapLen + 8 bytes) receives the frame when a VLAN tag has to be put back. Sets
// `*next_delta` to tp_next_offset.
Status DecodePacketRecord(const uint8_t* record, uint32_t avail, uint8_t* scratch, PacketView* out,
                          uint32_t* next_delta);

// Walks the packets of one block. Validates every header against the block bounds.
class BlockReader {
 public:
  // `block` must stay valid while reading; `size` is the number of readable bytes (kBlockSize normally).
  Status Open(const uint8_t* block, uint32_t size);
  uint32_t linktype() const { return linktype_; }
  uint32_t snaplen() const { return snaplen_; }
  uint32_t num_packets() const { return num_packets_; }
  // Next packet in block order; false at the end or on error (then status() says which).
  bool Next(PacketView* out);
  // Reads the packet whose header is at `offset` (from a packet position).
  Status ReadAt(uint32_t offset, PacketView* out);
  const Status& status() const { return status_; }
  // Where Next() goes on: with Resume() after Open() on the same block bytes (read again), Next() continues
  // as if the reader had never been reopened.
  uint32_t next_offset() const { return next_offset_; }
  uint32_t seen() const { return seen_; }
  void Resume(uint32_t next_offset, uint32_t seen) {
    next_offset_ = next_offset;
    seen_ = seen;
  }

 private:
  Status Decode(uint32_t offset, PacketView* out, uint32_t* next_offset);
  // Decode() without building a Status: false where Decode() would fail (call it then for the error).
  bool DecodeFast(uint32_t offset, PacketView* out, uint32_t* next_offset);
  // A record header may start at `offset`: past the block's head, 4-aligned, and whole within size_.
  bool HeaderInBlock(uint32_t offset) const {
    return offset >= kFirstPacketOffset && offset % 4 == 0 && uint64_t{offset} + kPacketHeaderSize <= size_;
  }
  const uint8_t* block_ = nullptr;
  uint32_t size_ = 0;
  uint32_t linktype_ = 0;
  uint32_t snaplen_ = 0;
  uint32_t num_packets_ = 0;
  uint32_t next_offset_ = 0;
  uint32_t seen_ = 0;
  Status status_;
  uint8_t scratch_[kMaxSnapLen + 8];
};

}  // namespace rwd

#endif  // REWIND_INDEX_BLOCK_FORMAT_H_
