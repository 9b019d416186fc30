#include "capture/pcapng_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace rwd {

namespace {

constexpr uint32_t kSectionHeaderBlock = 0x0A0D0D0A;
constexpr uint32_t kInterfaceBlock = 1;
constexpr uint32_t kPacketBlock = 2;  // obsolete
constexpr uint32_t kSimplePacketBlock = 3;
constexpr uint32_t kEnhancedPacketBlock = 6;

constexpr uint16_t kOptEnd = 0;
constexpr uint16_t kOptTsResol = 9;
constexpr uint16_t kOptTsOffset = 14;

constexpr size_t kInitialBuffer = 256 * 1024;

// Smallest total length of each parsed block type: header 8 + fixed fields + trailer 4.
uint32_t MinBlockLength(uint32_t type) {
  switch (type) {
    case kSectionHeaderBlock: return 28;  // BOM 4, version 4, section length 8
    case kInterfaceBlock: return 20;      // link type 2, reserved 2, snaplen 4
    case kPacketBlock: return 32;         // if 2, drops 2, ts 8, caplen 4, len 4
    case kSimplePacketBlock: return 16;   // len 4
    case kEnhancedPacketBlock: return 32; // if 4, ts 8, caplen 4, len 4
    default: return 12;
  }
}

const char* BlockName(uint32_t type) {
  switch (type) {
    case kSectionHeaderBlock: return "section header block";
    case kInterfaceBlock: return "interface description block";
    case kPacketBlock: return "packet block";
    case kSimplePacketBlock: return "simple packet block";
    case kEnhancedPacketBlock: return "enhanced packet block";
    default: return "block";
  }
}

std::string Hex32(uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof s, "0x%08x", v);
  return s;
}

bool IsSectionHeader(const uint8_t* p) {
  return p[0] == 0x0A && p[1] == 0x0D && p[2] == 0x0D && p[3] == 0x0A;
}

// Byte-order magic 0x1A2B3C4D: 1 = little-endian, 2 = big-endian, 0 = neither.
int ByteOrder(const uint8_t* p) {
  if (p[0] == 0x4D && p[1] == 0x3C && p[2] == 0x2B && p[3] == 0x1A) return 1;
  if (p[0] == 0x1A && p[1] == 0x2B && p[2] == 0x3C && p[3] == 0x4D) return 2;
  return 0;
}

}  // namespace

PcapngReader::PcapngReader(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}

PcapngReader::~PcapngReader() {
  if (file_ != nullptr) std::fclose(file_);
}

Result<std::unique_ptr<PcapngReader>> PcapngReader::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return Status::FromErrno("open " + path, errno);
  std::setvbuf(f, nullptr, _IONBF, 0);  // we buffer ourselves
  std::unique_ptr<PcapngReader> r(new PcapngReader(f, path));
  if (!r->Fill(12)) {
    if (!r->status_.ok()) return r->status_;
    return Status::InvalidArgument(path + ": not a pcapng file (shorter than a section header block)");
  }
  const uint8_t* p = r->buf_.data() + r->pos_;
  if (!IsSectionHeader(p) || ByteOrder(p + 8) == 0) {
    return Status::InvalidArgument(path + ": not a pcapng file (no section header block at the start)");
  }
  return r;
}

bool PcapngReader::Fill(size_t n) {
  if (end_ - pos_ >= n) return true;
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  while (end_ < n) {
    if (eof_) return false;
    if (end_ == buf_.size()) {
      // Reads go kInitialBuffer at a time or more; beyond that the buffer grows geometrically, so a damaged
      // length costs at most twice the bytes the file really holds.
      buf_.resize(std::max(kInitialBuffer, std::min(n, buf_.size() * 2)));
    }
    size_t want = buf_.size() - end_;
    size_t got = std::fread(buf_.data() + end_, 1, want, file_);
    end_ += got;
    if (got < want) {
      if (std::ferror(file_)) {
        status_ = Status::FromErrno(path_ + ": read at offset " + std::to_string(file_pos_ + end_), errno);
        done_ = true;
        return false;
      }
      if (std::feof(file_)) eof_ = true;
    }
  }
  return true;
}

bool PcapngReader::Discard(uint64_t n) {
  while (n > 0) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, end_ - pos_));
    pos_ += take;
    file_pos_ += take;
    n -= take;
    if (n == 0) break;
    pos_ = end_ = 0;  // buffer drained; refill from the start
    if (!Fill(1)) return false;
  }
  return true;
}

bool PcapngReader::Fail(uint64_t at, const std::string& problem) {
  status_ = Status::Corruption("pcapng offset " + std::to_string(at) + ": " + problem);
  done_ = true;
  return false;
}

bool PcapngReader::Truncated(uint64_t at, uint32_t type, uint64_t need) {
  if (!status_.ok()) return false;  // a read error, already reported
  uint64_t have = file_pos_ + (end_ - pos_) - at;
  return Fail(at, std::string("file ends inside a ") + BlockName(type) + " (" + std::to_string(have) +
                      " of " + std::to_string(need) + " bytes present)");
}

uint16_t PcapngReader::Get16(const uint8_t* p) const {
  return big_endian_ ? static_cast<uint16_t>(p[0] << 8 | p[1]) : static_cast<uint16_t>(p[1] << 8 | p[0]);
}

uint32_t PcapngReader::Get32(const uint8_t* p) const {
  if (big_endian_) {
    return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
           static_cast<uint32_t>(p[2]) << 8 | p[3];
  }
  return static_cast<uint32_t>(p[3]) << 24 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[1]) << 8 | p[0];
}

uint64_t PcapngReader::Get64(const uint8_t* p) const {
  uint64_t a = Get32(p), b = Get32(p + 4);
  return big_endian_ ? (a << 32 | b) : (b << 32 | a);
}

bool PcapngReader::ParseSectionHeader(const uint8_t* b, uint32_t len) {
  uint16_t major = Get16(b + 12), minor = Get16(b + 14);
  if (major != 1) {
    return Fail(offset_, "unsupported pcapng version " + std::to_string(major) + "." + std::to_string(minor));
  }
  interfaces_.clear();
  return true;
}

bool PcapngReader::ParseInterface(const uint8_t* b, uint32_t len) {
  Interface ifc;
  ifc.linktype = Get16(b + 8);
  ifc.snaplen = Get32(b + 12);
  const std::string where = "interface description block " + std::to_string(interfaces_.size());
  uint32_t p = 16;
  const uint32_t stop = len - 4;
  while (stop - p >= 4) {  // len and p are multiples of 4
    uint16_t code = Get16(b + p), olen = Get16(b + p + 2);
    if (code == kOptEnd) break;
    uint32_t padded = (static_cast<uint32_t>(olen) + 3) & ~3u;
    if (padded > stop - p - 4) {
      return Fail(offset_, where + ": option " + std::to_string(code) + " of length " + std::to_string(olen) +
                               " runs past the block");
    }
    const uint8_t* v = b + p + 4;
    if (code == kOptTsResol) {
      if (olen != 1) return Fail(offset_, where + ": if_tsresol of length " + std::to_string(olen));
      uint8_t r = v[0];
      if (r & 0x80) {
        if ((r & 0x7f) > 63) return Fail(offset_, where + ": if_tsresol 2^-" + std::to_string(r & 0x7f));
        ifc.units_per_sec = uint64_t{1} << (r & 0x7f);
      } else {
        if (r > 19) return Fail(offset_, where + ": if_tsresol 10^-" + std::to_string(r));
        ifc.units_per_sec = 1;
        for (int i = 0; i < r; ++i) ifc.units_per_sec *= 10;
      }
    } else if (code == kOptTsOffset) {
      if (olen != 8) return Fail(offset_, where + ": if_tsoffset of length " + std::to_string(olen));
      ifc.ts_offset = static_cast<int64_t>(Get64(v));
    }
    p += 4 + padded;
  }
  interfaces_.push_back(ifc);
  return true;
}

void PcapngReader::SetTimestamp(const Interface& ifc, uint64_t units, Packet* out) const {
  uint64_t sec = units / ifc.units_per_sec;
  uint64_t frac = units % ifc.units_per_sec;
  // frac < units_per_sec <= 10^19, so the product needs 128 bits. Rounds down, like libpcap.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(frac) * 1000000000u;
  out->ts_nsec = static_cast<uint32_t>(scaled / ifc.units_per_sec);
  __int128 s = static_cast<__int128>(sec) + ifc.ts_offset;
  s = std::clamp<__int128>(s, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
  out->ts_sec = static_cast<int64_t>(s);
}

bool PcapngReader::Next(Packet* out) {
  while (!done_) {
    const uint64_t at = file_pos_;
    offset_ = at;
    if (!Fill(8)) {
      if (!status_.ok()) return false;
      if (end_ == pos_) {  // clean end between blocks
        done_ = true;
        return false;
      }
      return Truncated(at, 0, 8);
    }
    uint32_t type;
    if (IsSectionHeader(buf_.data() + pos_)) {
      type = kSectionHeaderBlock;
      if (!Fill(12)) return Truncated(at, type, 12);
      int order = ByteOrder(buf_.data() + pos_ + 8);
      if (order == 0) {
        return Fail(at, "section header block: bad byte-order magic " + Hex32(Get32(buf_.data() + pos_ + 8)));
      }
      big_endian_ = order == 2;
    } else {
      type = Get32(buf_.data() + pos_);
    }
    const uint32_t len = Get32(buf_.data() + pos_ + 4);
    if (len < MinBlockLength(type) || len % 4 != 0) {
      return Fail(at, std::string(BlockName(type)) + " (type " + Hex32(type) + "): bad total length " +
                          std::to_string(len));
    }
    const bool parsed = type == kSectionHeaderBlock || type == kInterfaceBlock || type == kPacketBlock ||
                        type == kSimplePacketBlock || type == kEnhancedPacketBlock;
    if (!parsed) {  // stream past it, checking only the trailer
      if (!Discard(len - 4) || !Fill(4)) return Truncated(at, type, len);
      uint32_t trailer = Get32(buf_.data() + pos_);
      if (trailer != len) {
        return Fail(at, "block (type " + Hex32(type) + "): trailing length " + std::to_string(trailer) +
                            " differs from leading length " + std::to_string(len));
      }
      pos_ += 4;
      file_pos_ += 4;
      continue;
    }
    if (len > kMaxBlockBytes) {
      return Fail(at, std::string(BlockName(type)) + ": total length " + std::to_string(len) +
                          " exceeds the limit of " + std::to_string(kMaxBlockBytes));
    }
    if (!Fill(len)) return Truncated(at, type, len);
    const uint8_t* b = buf_.data() + pos_;
    uint32_t trailer = Get32(b + len - 4);
    if (trailer != len) {
      return Fail(at, std::string(BlockName(type)) + ": trailing length " + std::to_string(trailer) +
                          " differs from leading length " + std::to_string(len));
    }
    bool is_packet = false;
    switch (type) {
      case kSectionHeaderBlock:
        if (!ParseSectionHeader(b, len)) return false;
        break;
      case kInterfaceBlock:
        if (!ParseInterface(b, len)) return false;
        break;
      case kSimplePacketBlock: {
        if (interfaces_.empty()) {
          return Fail(at, "simple packet block but the section describes no interface");
        }
        const Interface& ifc = interfaces_[0];
        uint32_t plen = Get32(b + 8);
        uint32_t caplen = std::min(plen, len - 16);
        if (ifc.snaplen != 0) caplen = std::min(caplen, ifc.snaplen);
        out->interface_id = 0;
        out->linktype = ifc.linktype;
        out->snaplen = ifc.snaplen;
        out->ts_sec = 0;
        out->ts_nsec = 0;
        out->caplen = std::min(caplen, kMaxCaplen);
        out->len = plen;
        out->data = b + 12;
        is_packet = true;
        break;
      }
      case kPacketBlock:
      case kEnhancedPacketBlock: {
        uint32_t id = type == kPacketBlock ? Get16(b + 8) : Get32(b + 8);
        if (id >= interfaces_.size()) {
          return Fail(at, std::string(BlockName(type)) + ": interface " + std::to_string(id) +
                              " not described (the section has " + std::to_string(interfaces_.size()) + ")");
        }
        const Interface& ifc = interfaces_[id];
        uint32_t caplen = Get32(b + 20), plen = Get32(b + 24);
        if (uint64_t{28} + caplen + 4 > len) {
          return Fail(at, std::string(BlockName(type)) + ": captured length " + std::to_string(caplen) +
                              " runs past the block of length " + std::to_string(len));
        }
        out->interface_id = id;
        out->linktype = ifc.linktype;
        out->snaplen = ifc.snaplen;
        SetTimestamp(ifc, uint64_t{Get32(b + 12)} << 32 | Get32(b + 16), out);
        out->caplen = std::min(caplen, kMaxCaplen);
        out->len = std::max(plen, caplen);
        out->data = b + 28;
        is_packet = true;
        break;
      }
    }
    pos_ += len;
    file_pos_ += len;
    offset_ = file_pos_;
    if (is_packet) return true;
  }
  return false;
}

}  // namespace rwd
