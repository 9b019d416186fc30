#include "index/block_format.h"

#include "index/crc32c.h"

#include <linux/if_packet.h>

#include <cstddef>
#include <algorithm>
#include <cstring>
#include <string>

namespace rwd {
namespace {

static_assert(sizeof(tpacket_block_desc) == kBlockDescSize);
static_assert(sizeof(tpacket3_hdr) == kPacketHeaderSize);

// Import places the frame right after the packet header (the kernel puts a sockaddr_ll and padding in
// between); readers follow tp_mac and tp_next_offset, so both layouts read the same.
constexpr uint32_t kImportMacOffset = kPacketHeaderSize;
constexpr uint32_t kImportAlign = 8;

uint32_t AlignUp(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

namespace {

uint32_t UsedLength(const uint8_t* block) {
  uint32_t blk_len;
  std::memcpy(&blk_len, block + offsetof(tpacket_block_desc, hdr.bh1.blk_len), 4);
  return blk_len;
}

uint32_t BlockCrc(const uint8_t* block, uint32_t used) {
  static const uint8_t kZero[4] = {0, 0, 0, 0};
  uint32_t crc = Crc32c(block, kBlockChecksumOffset);
  crc = Crc32cExtend(crc, kZero, 4);
  return Crc32cExtend(crc, block + kBlockChecksumOffset + 4, used - (kBlockChecksumOffset + 4));
}

}  // namespace

uint32_t BlockUsedLength(const uint8_t* block) {
  uint32_t used = UsedLength(block);
  return used < kFirstPacketOffset || used > kBlockSize ? kBlockSize : used;
}

uint32_t RawBlockDiskLength(const uint8_t* block) { return AlignUp(BlockUsedLength(block), kBlockAlignment); }

void SealBlock(uint8_t* block) {
  uint32_t used = BlockUsedLength(block);
  BlockPriv priv;
  std::memcpy(&priv, block + kBlockDescSize, sizeof(priv));
  priv.flags |= kBlockFlagChecksum;  // the flag is covered by the checksum: set it first
  std::memcpy(block + kBlockDescSize + offsetof(BlockPriv, flags), &priv.flags, 4);
  uint32_t crc = BlockCrc(block, used);
  std::memcpy(block + kBlockChecksumOffset, &crc, 4);
}

Status VerifyBlockChecksum(const uint8_t* block, uint32_t size) {
  if (size < kFirstPacketOffset) return Status::Corruption("block shorter than its header");
  BlockPriv priv;
  std::memcpy(&priv, block + kBlockDescSize, sizeof(priv));
  if (!(priv.flags & kBlockFlagChecksum)) return Status::OK();
  uint32_t used = UsedLength(block);
  if (used < kFirstPacketOffset || used > size) return Status::Corruption("block length out of bounds");
  uint32_t crc = BlockCrc(block, used);
  if (crc != priv.checksum) return Status::Corruption("block checksum mismatch");
  return Status::OK();
}

void BlockBuilder::Reset(uint8_t* buf, uint32_t linktype, uint32_t snaplen, uint64_t seq) {
  buf_ = buf;
  linktype_ = linktype;
  num_packets_ = 0;
  used_ = kFirstPacketOffset;
  last_offset_ = 0;
  std::memset(buf_, 0, kFirstPacketOffset);
  auto* desc = reinterpret_cast<tpacket_block_desc*>(buf_);
  desc->version = TPACKET_V3;
  desc->offset_to_priv = kBlockDescSize;
  desc->hdr.bh1.offset_to_first_pkt = kFirstPacketOffset;
  desc->hdr.bh1.seq_num = seq;
  BlockPriv priv{};
  std::memcpy(priv.magic, kBlockMagic, sizeof(priv.magic));
  priv.linktype = linktype;
  priv.snaplen = snaplen;
  std::memcpy(buf_ + kBlockDescSize, &priv, sizeof(priv));
}

bool BlockBuilder::Add(uint32_t ts_sec, uint32_t ts_nsec, uint32_t caplen, uint32_t len, const uint8_t* data,
                       FractionField fraction) {
  if (caplen > kMaxSnapLen) return false;
  uint32_t offset = used_;
  uint32_t end = AlignUp(offset + kImportMacOffset + caplen, kImportAlign);
  if (end > kBlockSize) return false;
  tpacket3_hdr hdr{};
  hdr.tp_sec = ts_sec;
  hdr.tp_nsec = ts_nsec;
  hdr.tp_snaplen = caplen;
  hdr.tp_len = len;
  hdr.tp_status = TP_STATUS_USER | (fraction == FractionField::kSignedMicros  ? kStatusMicrosField
                                    : fraction == FractionField::kSignedNanos ? kStatusSignedNanosField
                                                                              : 0);
  hdr.tp_mac = kImportMacOffset;
  hdr.tp_net = kImportMacOffset;
  std::memcpy(buf_ + offset, &hdr, sizeof(hdr));
  if (caplen > 0) std::memcpy(buf_ + offset + kImportMacOffset, data, caplen);
  // Zero the alignment padding so blocks are deterministic.
  std::memset(buf_ + offset + kImportMacOffset + caplen, 0, end - (offset + kImportMacOffset + caplen));
  if (num_packets_ > 0) {
    uint32_t delta = offset - last_offset_;
    std::memcpy(buf_ + last_offset_, &delta, sizeof(delta));  // tp_next_offset of the previous packet
  } else {
    first_sec_ = ts_sec;
    first_nsec_ = ts_nsec;
  }
  last_sec_ = ts_sec;
  last_nsec_ = ts_nsec;
  last_offset_ = offset;
  used_ = end;
  ++num_packets_;
  return true;
}

void BlockBuilder::Finish() {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(buf_);
  desc->hdr.bh1.block_status = TP_STATUS_USER;
  desc->hdr.bh1.num_pkts = num_packets_;
  desc->hdr.bh1.blk_len = used_;
  desc->hdr.bh1.ts_first_pkt.ts_sec = first_sec_;
  desc->hdr.bh1.ts_first_pkt.ts_nsec = first_nsec_;
  desc->hdr.bh1.ts_last_pkt.ts_sec = last_sec_;
  desc->hdr.bh1.ts_last_pkt.ts_nsec = last_nsec_;
  // Zero the unused tail so a block's bytes depend only on its packets.
  std::memset(buf_ + used_, 0, kBlockSize - used_);
}

uint32_t BridgeLostRanges(uint8_t* block, uint32_t used, const std::vector<RawRange>& lost) {
  // Where a walk that reached `offset` goes on: past every lost range that offset falls in; 0 at the end.
  auto skip = [&](uint32_t offset) -> uint32_t {
    for (const RawRange& r : lost) {
      if (offset >= r.begin && offset < r.end) offset = r.end;
    }
    return used < kPacketHeaderSize || offset > used - kPacketHeaderSize ? 0 : offset;
  };
  auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
  uint32_t first = skip(desc->hdr.bh1.offset_to_first_pkt);
  desc->hdr.bh1.offset_to_first_pkt = first == 0 ? std::max(used, kFirstPacketOffset) : first;
  uint32_t count = 0;
  for (uint32_t at = first; at != 0;) {
    tpacket3_hdr hdr;
    std::memcpy(&hdr, block + at, sizeof(hdr));
    ++count;
    uint32_t next = hdr.tp_next_offset == 0 || hdr.tp_next_offset > used - at ? 0 : skip(at + hdr.tp_next_offset);
    if (next != 0 && next <= at) next = 0;  // never backwards (an intact record does not point so)
    uint32_t delta = next == 0 ? 0 : next - at;
    std::memcpy(block + at + offsetof(tpacket3_hdr, tp_next_offset), &delta, sizeof(delta));
    at = next;
  }
  desc->hdr.bh1.num_pkts = count;
  return count;
}

namespace {

// True if a record header at `at` decodes within `used` bytes (its frame fits); sets *end to where its frame
// ends and *next to where its next pointer leads: 0 for none, UINT32_MAX if it leads out of the block or
// into this record's own frame.
bool RecordHolds(const uint8_t* block, uint32_t used, uint32_t at, uint32_t* next, uint32_t* end) {
  if (at < kFirstPacketOffset || at % 4 != 0 || used < kPacketHeaderSize || at > used - kPacketHeaderSize) return false;
  tpacket3_hdr hdr;
  std::memcpy(&hdr, block + at, sizeof(hdr));
  uint64_t frame_end = uint64_t{at} + hdr.tp_mac + hdr.tp_snaplen;
  if (hdr.tp_mac < kPacketHeaderSize || hdr.tp_snaplen > kMaxSnapLen || frame_end > used) return false;
  *end = static_cast<uint32_t>(frame_end);
  *next = hdr.tp_next_offset == 0 ? 0 : at + hdr.tp_next_offset;
  if (hdr.tp_next_offset != 0 && (hdr.tp_next_offset > used - at || *next < frame_end)) *next = UINT32_MAX;
  return true;
}

// Where the kernel and BlockBuilder put the record after one whose frame ends at `end`: the next 8-byte
// boundary (16 accepted as well).
bool FollowsFrame(uint32_t next, uint32_t end) { return next == AlignUp(end, 8) || next == AlignUp(end, 16); }
bool EndsBlock(uint32_t end, uint32_t used) { return FollowsFrame(used, end); }

// True if a chain that starts at `at` holds for kResyncRecords records, or to a last record whose frame ends
// where the block's used bytes do, each record starting where the one before it ends.
bool ChainHolds(const uint8_t* block, uint32_t used, uint32_t at) {
  for (uint32_t n = 0; n < kResyncRecords; ++n) {
    uint32_t next = 0, end = 0;
    if (!RecordHolds(block, used, at, &next, &end)) return false;
    if (next == 0) return EndsBlock(end, used);
    if (next == UINT32_MAX || !FollowsFrame(next, end)) return false;
    at = next;
  }
  return true;
}

void SetNextOffset(uint8_t* block, uint32_t at, uint32_t next) {
  uint32_t delta = next == 0 ? 0 : next - at;
  std::memcpy(block + at + offsetof(tpacket3_hdr, tp_next_offset), &delta, sizeof(delta));
}

}  // namespace

uint32_t BridgeBrokenRecords(uint8_t* block, uint32_t size, std::vector<RawRange>* skipped) {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
  uint32_t used = std::min(desc->hdr.bh1.blk_len, size);
  uint32_t count = 0;
  uint32_t prev = 0;  // the last record kept (0: none yet)
  uint32_t at = desc->hdr.bh1.offset_to_first_pkt;
  while (at != 0) {
    uint32_t next = 0, end = 0;
    bool holds = RecordHolds(block, used, at, &next, &end);
    uint32_t next_next = 0, next_end = 0;
    bool last = holds && next == 0 && EndsBlock(end, used);
    // The next pointer is trusted where it leads to the record after this frame (and that one decodes), or,
    // when the frame's length disagrees with it (a damaged snaplen), where a whole chain holds from it.
    bool linked = holds && next != 0 && next != UINT32_MAX &&
                  (FollowsFrame(next, end) ? RecordHolds(block, used, next, &next_next, &next_end)
                                           : ChainHolds(block, used, next));
    if (last || linked) {
      ++count;
      prev = at;
      at = next;
      continue;
    }
    // Broken here: a record that decodes keeps its frame (only its pointer failed, or it ends the chain before
    // the block's end); search from after it, or from after the header that did not decode, for the next
    // record whose chain holds.
    uint32_t from = holds ? AlignUp(end, 8) : (at < kFirstPacketOffset ? kFirstPacketOffset : at + 8);
    if (holds) {
      ++count;
      prev = at;
    }
    uint32_t found = 0;
    for (uint32_t x = AlignUp(from, 8); used >= kPacketHeaderSize && x <= used - kPacketHeaderSize; x += 8) {
      if (ChainHolds(block, used, x)) {
        found = x;
        break;
      }
    }
    uint32_t skip_from = holds ? AlignUp(end, 8) : at;
    uint32_t skip_to = found == 0 ? used : found;
    if (skip_to > skip_from && skipped != nullptr) skipped->push_back({skip_from, skip_to});
    if (prev == 0) desc->hdr.bh1.offset_to_first_pkt = found == 0 ? std::max(used, kFirstPacketOffset) : found;
    else SetNextOffset(block, prev, found);
    at = found;
  }
  desc->hdr.bh1.num_pkts = count;
  return count;
}

Status BlockReader::Open(const uint8_t* block, uint32_t size) {
  block_ = block;
  size_ = size;
  seen_ = 0;
  status_ = Status::OK();
  if (size < kFirstPacketOffset) return status_ = Status::Corruption("block shorter than its header");
  tpacket_block_desc desc;
  std::memcpy(&desc, block, sizeof(desc));
  BlockPriv priv;
  std::memcpy(&priv, block + kBlockDescSize, sizeof(priv));
  if (std::memcmp(priv.magic, kBlockMagic, sizeof(kBlockMagic)) != 0) {
    return status_ = Status::Corruption("block has no rewind header (bad magic)");
  }
  const auto& h = desc.hdr.bh1;
  if (h.offset_to_first_pkt < kFirstPacketOffset || h.blk_len > size ||
      (h.num_pkts > 0 && h.offset_to_first_pkt >= h.blk_len)) {
    return status_ = Status::Corruption("block descriptor out of bounds (blk_len " +
                                        std::to_string(h.blk_len) + ")");
  }
  linktype_ = priv.linktype;
  snaplen_ = priv.snaplen;
  num_packets_ = h.num_pkts;
  size_ = h.blk_len;
  next_offset_ = h.offset_to_first_pkt;
  return status_;
}

namespace {

// DecodePacketRecord without a Status on the way: null, or what is wrong. The walk over a block calls this
// once per packet, where building and moving a Status cost more than the decoding.
inline const char* DecodeRecord(const uint8_t* record, uint32_t avail, uint8_t* scratch, PacketView* out,
                                uint32_t* next_delta) {
  if (avail < kPacketHeaderSize) return "packet header cut off";
  tpacket3_hdr hdr;
  std::memcpy(&hdr, record, sizeof(hdr));
  uint64_t frame_end = uint64_t{hdr.tp_mac} + hdr.tp_snaplen;
  if (hdr.tp_mac < kPacketHeaderSize || frame_end > avail || hdr.tp_snaplen > kMaxSnapLen) {
    return "packet overruns its block";
  }
  out->fraction = (hdr.tp_status & kStatusMicrosField)        ? FractionField::kSignedMicros
                  : (hdr.tp_status & kStatusSignedNanosField) ? FractionField::kSignedNanos
                                                              : FractionField::kNanos;
  int64_t frac = out->fraction == FractionField::kNanos ? int64_t{hdr.tp_nsec} : int64_t{static_cast<int32_t>(hdr.tp_nsec)};
  out->ts_ns = int64_t{hdr.tp_sec} * 1000000000 + (out->fraction == FractionField::kSignedMicros ? frac * 1000 : frac);
  out->ts_sec = hdr.tp_sec;
  out->ts_nsec = hdr.tp_nsec;
  out->caplen = hdr.tp_snaplen;
  out->len = hdr.tp_len;
  out->data = record + hdr.tp_mac;
  if ((hdr.tp_status & TP_STATUS_VLAN_VALID) && hdr.tp_snaplen >= 12) {
    // The kernel stripped an 802.1Q tag into the header: put it back after the MAC addresses.
    uint16_t tpid = (hdr.tp_status & TP_STATUS_VLAN_TPID_VALID) ? hdr.hv1.tp_vlan_tpid : 0x8100;
    uint16_t tci = static_cast<uint16_t>(hdr.hv1.tp_vlan_tci);
    std::memcpy(scratch, out->data, 12);
    scratch[12] = tpid >> 8;
    scratch[13] = tpid & 0xff;
    scratch[14] = tci >> 8;
    scratch[15] = tci & 0xff;
    std::memcpy(scratch + 16, out->data + 12, hdr.tp_snaplen - 12);
    out->data = scratch;
    out->caplen += 4;
    out->len += 4;
  }
  *next_delta = hdr.tp_next_offset;
  return nullptr;
}

}  // namespace

Status DecodePacketRecord(const uint8_t* record, uint32_t avail, uint8_t* scratch, PacketView* out,
                          uint32_t* next_delta) {
  if (const char* error = DecodeRecord(record, avail, scratch, out, next_delta)) return Status::Corruption(error);
  return Status::OK();
}

inline bool BlockReader::DecodeFast(uint32_t offset, PacketView* out, uint32_t* next_offset) {
  uint32_t delta = 0;
  if (!HeaderInBlock(offset) || DecodeRecord(block_ + offset, size_ - offset, scratch_, out, &delta) != nullptr) {
    return false;
  }
  out->offset = offset;
  *next_offset = delta == 0 ? 0 : offset + delta;
  return true;
}

Status BlockReader::Decode(uint32_t offset, PacketView* out, uint32_t* next_offset) {
  if (DecodeFast(offset, out, next_offset)) return Status::OK();
  if (!HeaderInBlock(offset)) {
    return Status::Corruption("packet header at offset " + std::to_string(offset) + " out of bounds");
  }
  uint32_t delta = 0;
  return Status::Corruption("packet at offset " + std::to_string(offset) + ": " +
                            DecodeRecord(block_ + offset, size_ - offset, scratch_, out, &delta));
}

bool BlockReader::Next(PacketView* out) {
  if (!status_.ok() || seen_ >= num_packets_) return false;
  if (next_offset_ == 0) {
    status_ = Status::Corruption("block ends after " + std::to_string(seen_) + " of " +
                                 std::to_string(num_packets_) + " packets");
    return false;
  }
  uint32_t next = 0;
  if (!DecodeFast(next_offset_, out, &next)) {
    status_ = Decode(next_offset_, out, &next);
    return false;
  }
  if (next != 0 && next <= next_offset_) {
    status_ = Status::Corruption("packet chain goes backwards at offset " + std::to_string(next_offset_));
    return false;
  }
  next_offset_ = next;
  ++seen_;
  // The next record's header and first bytes, asked for while the caller works on this one: records are a
  // few cache lines apart and the block was written long enough ago to have left the cache.
  if (next != 0 && next + 128 <= size_) {
    __builtin_prefetch(block_ + next);
    __builtin_prefetch(block_ + next + 64);
  }
  return true;
}

Status BlockReader::ReadAt(uint32_t offset, PacketView* out) {
  uint32_t next = 0;
  return Decode(offset, out, &next);
}

}  // namespace rwd
