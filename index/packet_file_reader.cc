#include "index/packet_file_reader.h"

#include "index/block_codec.h"

#include <fcntl.h>
#include <linux/if_packet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rwd {
namespace {

constexpr uint32_t kPacketReadSize = 2048;  // first read for a single packet; most frames fit

// A raw block's BlockEntry: no other flag, and a length of whole pages up to kBlockSize, at least its head.
bool RawExtentLengthHolds(const BlockEntry& block) {
  return block.flags == 0 && block.disk_length >= kBlockAlignment && block.disk_length <= kBlockSize &&
         block.disk_length % kBlockAlignment == 0;
}

}  // namespace

PacketFileReader::~PacketFileReader() {
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<PacketFileReader>> PacketFileReader::Open(const std::string& path) {
  std::unique_ptr<PacketFileReader> r(new PacketFileReader());
  r->path_ = path;
  // O_NONBLOCK: opening a FIFO named like a packet file must not wait for a writer (no effect on files).
  r->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (r->fd_ < 0) return Status::FromErrno("opening " + path, errno);
  struct stat st;
  if (fstat(r->fd_, &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Status::Corruption(path + " is not a regular file");
  r->size_ = static_cast<uint64_t>(st.st_size);
  r->scratch_.reset(new uint8_t[kMaxSnapLen + 8]);
  return r;
}

Status PacketFileReader::PreadFully(uint8_t* buf, uint32_t len, uint64_t offset, uint32_t* got) {
  *got = 0;
  while (*got < len) {
    ssize_t n = pread(fd_, buf + *got, len - *got, static_cast<off_t>(offset + *got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("reading " + path_, errno);
    if (n == 0) break;
    *got += static_cast<uint32_t>(n);
  }
  bytes_read_ += *got;
  return Status::OK();
}

Status PacketFileReader::ReadBlock(const BlockEntry& block, BlockReader* reader, std::string* unverified) {
  if (unverified != nullptr) unverified->clear();
  std::string where = path_ + " block at offset " + std::to_string(block.file_offset);
  // Not zero-filled: every byte a reader is opened on was read or decompressed into it just before.
  if (!block_) {
    block_ = NewAlignedBuffer(kBlockSize);
    if (!block_) return Status::IOError(where + ": out of memory");
  }
  uint32_t got = 0;
  Status s;
  if (block.flags & kBlockFlagZstd) {
    if (block.disk_length > kMaxExtentSize) return Status::Corruption(where + ": bad extent length");
    if (cached_offset_ != block.file_offset) {
      cached_offset_ = UINT64_MAX;
      if (!extent_) {
        extent_ = NewAlignedBuffer(kMaxExtentSize);
        if (!extent_) return Status::IOError(where + ": out of memory");
      }
      s = PreadFully(extent_.get(), block.disk_length, block.file_offset, &got);
      if (!s.ok()) return s;
      s = DecompressExtent(extent_.get(), got, block_.get(), &cached_used_, &cached_lost_);
      if (!s.ok()) return Status::Corruption(where + ": " + s.message());
      cached_offset_ = block.file_offset;
      cached_verified_ = false;
    }
    got = cached_used_;
    // The packets of one compressed block read one by one (ReadPacket) check its checksum once.
    if (cached_verified_) return reader->Open(block_.get(), got);
    if (!cached_lost_.empty()) {
      // Frames of the extent are damaged: the block's checksum cannot hold. The records of its intact frames
      // (each frame checked by its own CRC) are served in salvage, bridged over the lost ones.
      std::string what = where + ": " + LostDescription();
      if (unverified == nullptr) return Status::Corruption(what);
      s = reader->Open(block_.get(), got);
      if (!s.ok()) return Status::Corruption(where + ": " + s.message());
      *unverified = what;
      return s;
    }
  } else {
    if (!RawExtentLengthHolds(block)) return Status::Corruption(where + ": unsupported block encoding");
    cached_offset_ = UINT64_MAX;
    s = PreadFully(block_.get(), block.disk_length, block.file_offset, &got);
    if (!s.ok()) return s;
    if (got < kFirstPacketOffset) return Status::Corruption(where + ": block is missing");
  }
  s = VerifyBlockChecksum(block_.get(), got);
  if (!s.ok() && unverified != nullptr && !(block.flags & kBlockFlagZstd) && reader->Open(block_.get(), got).ok()) {
    // Salvage: the descriptor holds, so the walk serves the records whose framing holds, bridged over any
    // whose framing breaks.
    tpacket_block_desc desc;
    std::memcpy(&desc, block_.get(), sizeof(desc));
    uint32_t listed = desc.hdr.bh1.num_pkts;
    std::vector<RawRange> skipped;
    uint32_t kept = BridgeBrokenRecords(block_.get(), got, &skipped);
    *unverified = where + ": " + s.message();
    if (!skipped.empty()) {
      uint32_t bytes = 0;
      for (const RawRange& r : skipped) bytes += r.end - r.begin;
      *unverified += " and broken record framing (" + std::to_string(skipped.size()) + " stretch(es), " +
                     std::to_string(bytes) + " bytes from offset " + std::to_string(skipped.front().begin) +
                     ", skipped; " + std::to_string(kept) + " of the " + std::to_string(listed) +
                     " records the block lists are kept)";
    }
    return reader->Open(block_.get(), got);
  }
  if (s.ok()) s = reader->Open(block_.get(), got);
  if (!s.ok()) return Status::Corruption(where + ": " + s.message());
  if (cached_offset_ == block.file_offset) cached_verified_ = true;
  return s;
}

bool PacketFileReader::InLostRange(uint32_t offset) const {
  for (const RawRange& r : cached_lost_) {
    if (offset >= r.begin && offset < r.end) return true;
  }
  return false;
}

std::string PacketFileReader::LostDescription() const {
  uint32_t bytes = 0;
  for (const RawRange& r : cached_lost_) bytes += r.end - r.begin;
  tpacket_block_desc desc;
  std::memcpy(&desc, block_.get(), sizeof(desc));
  return std::to_string(cached_lost_.size()) + " zstd frame(s) damaged (raw bytes " +
         std::to_string(cached_lost_.front().begin) + "-" + std::to_string(cached_lost_.back().end) + ", " +
         std::to_string(bytes) + " bytes); the intact frames hold " + std::to_string(desc.hdr.bh1.num_pkts) + " packets";
}

void PacketFileReader::ReleaseBuffers() {
  block_.reset();
  extent_.reset();
  std::vector<uint8_t>().swap(packet_);
  cached_offset_ = UINT64_MAX;
  cached_lost_.clear();
}

void PacketFileReader::Prefetch(const BlockEntry& block, uint32_t offset, uint32_t length) {
  if (block.flags & kBlockFlagZstd) {
    offset = 0;
    length = block.disk_length;
  }
  posix_fadvise(fd_, static_cast<off_t>(block.file_offset + offset), length, POSIX_FADV_WILLNEED);
}

PacketFileReader::Start PacketFileReader::StartAt(uint64_t offset) {
  uint8_t head[kBlockAlignment];
  uint32_t got = 0;
  if (!PreadFully(head, sizeof(head), offset, &got).ok() || got < kCompressedHeaderSize) return Start::kNothing;
  if (IsCompressedExtent(head)) return CompressedExtentLength(head) != 0 ? Start::kExtent : Start::kNothing;
  if (std::memcmp(head + kBlockDescSize, kBlockMagic, sizeof(kBlockMagic)) == 0) return Start::kExtent;
  for (uint32_t i = 0; i < got; ++i) {
    if (head[i] != 0) return Start::kNothing;
  }
  return Start::kZeros;
}

Status PacketFileReader::ReadExtentAt(uint64_t file_offset, BlockReader* reader, uint32_t* disk_length,
                                      uint32_t* flags, std::string* unverified) {
  uint8_t head[kCompressedHeaderSize];
  uint32_t got = 0;
  Status s = PreadFully(head, sizeof(head), file_offset, &got);
  if (!s.ok()) return s;
  if (got < sizeof(head)) return Status::Corruption("extent header cut short");
  BlockEntry e;
  e.file_offset = file_offset;
  if (IsCompressedExtent(head)) {
    e.disk_length = CompressedExtentLength(head);
    e.flags = kBlockFlagZstd;
    if (e.disk_length == 0) return Status::Corruption("bad compressed block header");
  } else {
    // What the writer wrote of it (its used bytes, whole pages), or all of it where blk_len is out of bounds.
    e.disk_length = RawBlockDiskLength(head);
  }
  if (file_offset + e.disk_length > size_) return Status::Corruption("extent runs past the end of the file");
  *disk_length = e.disk_length;
  *flags = e.flags;
  cached_offset_ = UINT64_MAX;
  return ReadBlock(e, reader, unverified);
}

Status PacketFileReader::ReadPacket(const BlockEntry& block, uint32_t offset, PacketView* out) {
  if (block.flags & kBlockFlagZstd) {
    // Positions are offsets in the raw block: decompress it (cached for the next packets of this block).
    BlockReader reader;
    std::string salvaged;  // frames lost: the packets of the intact ones are still served
    Status s = ReadBlock(block, &reader, &salvaged);
    if (!s.ok()) return s;
    if (!salvaged.empty() && InLostRange(offset)) {
      return Status::Corruption(path_ + " packet at block offset " + std::to_string(block.file_offset) + "+" +
                                std::to_string(offset) + ": in a damaged part of a compressed block (" + salvaged + ")");
    }
    s = reader.ReadAt(offset, out);
    if (!s.ok()) return Status::Corruption(path_ + ": " + s.message());
    // The reader's VLAN scratch buffer dies with it: copy such a frame out.
    if (out->data < block_.get() || out->data >= block_.get() + kBlockSize) {
      packet_.assign(out->data, out->data + out->caplen);
      out->data = packet_.data();
    }
    return s;
  }
  if (!RawExtentLengthHolds(block)) {
    return Status::Corruption(path_ + ": unsupported block encoding at offset " + std::to_string(block.file_offset));
  }
  if (offset < kFirstPacketOffset || offset >= block.disk_length) {
    return Status::Corruption(path_ + ": bad packet offset");
  }
  uint32_t avail_in_block = block.disk_length - offset;
  uint32_t want = avail_in_block < kPacketReadSize ? avail_in_block : kPacketReadSize;
  packet_.resize(want);
  uint32_t got = 0;
  Status s = PreadFully(packet_.data(), want, block.file_offset + offset, &got);
  if (!s.ok()) return s;
  uint32_t delta = 0;
  s = DecodePacketRecord(packet_.data(), got, scratch_.get(), out, &delta);
  if (!s.ok() && got == want && want < avail_in_block) {
    // A large frame: read the rest of the record.
    uint32_t header_and_frame = 0;
    if (got >= kPacketHeaderSize) {
      uint32_t snaplen, mac16;
      std::memcpy(&snaplen, packet_.data() + 12, 4);
      uint16_t mac;
      std::memcpy(&mac, packet_.data() + 24, 2);
      mac16 = mac;
      header_and_frame = mac16 + snaplen;
    }
    if (header_and_frame > got && header_and_frame <= avail_in_block) {
      packet_.resize(header_and_frame);
      uint32_t more = 0;
      s = PreadFully(packet_.data() + got, header_and_frame - got, block.file_offset + offset + got, &more);
      if (!s.ok()) return s;
      s = DecodePacketRecord(packet_.data(), got + more, scratch_.get(), out, &delta);
    }
  }
  if (!s.ok()) return Status::Corruption(path_ + " packet at block offset " + std::to_string(block.file_offset) + "+" +
                                         std::to_string(offset) + ": " + s.message());
  out->offset = offset;
  return s;
}

}  // namespace rwd
