#include "index/index_format.h"

#include <cstring>

#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/posting_list.h"

namespace rwd {
namespace {

void PutBig(std::string* s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

template <typename T>
void PutFixed(std::string* s, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));  // little-endian host (x86-64, arm64)
  s->append(buf, sizeof(T));
}

template <typename T>
bool GetFixed(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(v, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}

std::string TypedKey(IndexKeyType type, uint64_t v, int bytes) {
  std::string k(1, static_cast<char>(type));
  PutBig(&k, v, bytes);
  return k;
}

}  // namespace

std::string SummaryKey() { return std::string(1, static_cast<char>(kKeySummary)); }
std::string BlockKey(uint32_t block) { return TypedKey(kKeyBlock, block, 4); }
std::string Ipv4Key(uint32_t addr) { return TypedKey(kKeyIpv4, addr, 4); }
std::string Ipv6Key(const uint8_t addr[16]) {
  std::string k(1, static_cast<char>(kKeyIpv6));
  k.append(reinterpret_cast<const char*>(addr), 16);
  return k;
}
std::string PortKey(uint16_t port) { return TypedKey(kKeyPort, port, 2); }
std::string ProtocolKey(uint8_t proto) { return TypedKey(kKeyProtocol, proto, 1); }
std::string EthertypeKey(uint16_t type) { return TypedKey(kKeyEthertype, type, 2); }
std::string VlanKey(uint16_t vlan) { return TypedKey(kKeyVlan, vlan, 2); }
std::string IncompleteKey() { return std::string(1, static_cast<char>(kKeyIncomplete)); }

std::string FileSummary::Encode() const {
  std::string s;
  PutFixed(&s, version);
  PutFixed(&s, packets);
  PutFixed(&s, captured_bytes);
  PutFixed(&s, wire_bytes);
  PutFixed(&s, blocks);
  PutFixed(&s, file_bytes);
  PutFixed(&s, min_ts_ns);
  PutFixed(&s, max_ts_ns);
  PutVarint32(&s, static_cast<uint32_t>(linktypes.size()));
  for (uint32_t l : linktypes) PutVarint32(&s, l);
  return s;
}

Status FileSummary::Decode(std::string_view in, FileSummary* out) {
  *out = FileSummary();
  if (!GetFixed(&in, &out->version)) return Status::Corruption("short file summary");
  if (out->version != kIndexFormatVersion) {
    return Status::Corruption("unsupported index format version " + std::to_string(out->version));
  }
  if (!GetFixed(&in, &out->packets) || !GetFixed(&in, &out->captured_bytes) ||
      !GetFixed(&in, &out->wire_bytes) || !GetFixed(&in, &out->blocks) || !GetFixed(&in, &out->file_bytes) ||
      !GetFixed(&in, &out->min_ts_ns) || !GetFixed(&in, &out->max_ts_ns)) {
    return Status::Corruption("short file summary");
  }
  const char* p = in.data();
  const char* limit = p + in.size();
  uint32_t n = 0;
  if (!GetVarint32(&p, limit, &n) || n > in.size()) return Status::Corruption("bad link type list");
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t l = 0;
    if (!GetVarint32(&p, limit, &l)) return Status::Corruption("bad link type list");
    out->linktypes.push_back(l);
  }
  return Status::OK();
}

std::string BlockEntry::Encode() const {
  std::string s;
  PutFixed(&s, file_offset);
  PutFixed(&s, disk_length);
  PutFixed(&s, packets);
  PutFixed(&s, min_ts_ns);
  PutFixed(&s, max_ts_ns);
  PutFixed(&s, linktype);
  PutFixed(&s, flags);
  return s;
}

Status BlockEntry::Decode(std::string_view in, BlockEntry* out) {
  if (!GetFixed(&in, &out->file_offset) || !GetFixed(&in, &out->disk_length) ||
      !GetFixed(&in, &out->packets) || !GetFixed(&in, &out->min_ts_ns) || !GetFixed(&in, &out->max_ts_ns) ||
      !GetFixed(&in, &out->linktype) || !GetFixed(&in, &out->flags)) {
    return Status::Corruption("short block entry");
  }
  return Status::OK();
}

uint64_t ExtentStride(uint32_t disk_length, uint32_t flags) {
  return flags & kBlockFlagZstd ? disk_length : kBlockSize;
}

}  // namespace rwd
