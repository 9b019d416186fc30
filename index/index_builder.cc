#include "index/index_builder.h"

#include <leveldb/env.h>
#include <leveldb/options.h>
#include <leveldb/table_builder.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "index/block_format.h"
#include "index/key_filter.h"
#include "index/packet_dissector.h"
#include "index/store_layout.h"

namespace rwd {
namespace {

Status FromLevelDb(const leveldb::Status& s, const std::string& context) {
  if (s.ok()) return Status::OK();
  if (s.IsCorruption()) return Status::Corruption(context + ": " + s.ToString());
  if (s.ToString().find("No space left") != std::string::npos) return Status::NoSpace(context + ": " + s.ToString());
  return Status::IOError(context + ": " + s.ToString());
}

// Adds every (key, list) of `map` to `out` sorted by key.
template <typename Map, typename KeyFn>
void AddSorted(const Map& map, KeyFn key_fn, std::vector<std::pair<std::string, const PostingListBuilder*>>* out) {
  size_t start = out->size();
  for (const auto& [value, list] : map) out->emplace_back(key_fn(value), &list);
  std::sort(out->begin() + start, out->end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
}

}  // namespace

size_t IndexBuilder::Ipv6Hash::operator()(const std::array<uint8_t, 16>& a) const {
  uint64_t x, y;
  std::memcpy(&x, a.data(), 8);
  std::memcpy(&y, a.data() + 8, 8);
  return std::hash<uint64_t>()(x * 0x9e3779b97f4a7c15ULL ^ y);
}

IndexBuilder::IndexBuilder() : ports_(65536), vlans_(4096) {}
IndexBuilder::~IndexBuilder() = default;

Status IndexBuilder::AddBlock(uint32_t block, uint64_t file_offset, uint32_t disk_length, const uint8_t* data,
                              uint32_t flags) {
  if (block >= kMaxBlocksPerFile) return Status::InvalidArgument("packet file exceeds the block limit");
  BlockReader reader;
  BlockEntry entry;
  entry.file_offset = file_offset;
  entry.disk_length = disk_length;
  entry.flags = flags;
  Status s = reader.Open(data, kBlockSize);
  if (s.ok()) {
    entry.linktype = reader.linktype();
    PacketView pkt;
    PacketFields f;
    bool supported = DissectorSupportsLinkType(entry.linktype);
    while (reader.Next(&pkt)) {
      uint32_t pos = PacketPosition(block, pkt.offset);
      if (entry.packets == 0 || pkt.ts_ns < entry.min_ts_ns) entry.min_ts_ns = pkt.ts_ns;
      if (entry.packets == 0 || pkt.ts_ns > entry.max_ts_ns) entry.max_ts_ns = pkt.ts_ns;
      ++entry.packets;
      summary_.captured_bytes += pkt.caplen;
      summary_.wire_bytes += pkt.len;
      if (!supported) continue;  // the whole block is a candidate for every lookup (see QueryPlan)
      DissectPacket(entry.linktype, pkt.data, pkt.caplen, &f);
      for (int i = 0; i < f.num_ipv4; ++i) ipv4_[f.ipv4[i]].Add(pos);
      for (int i = 0; i < f.num_ipv6; ++i) ipv6_[f.ipv6[i]].Add(pos);
      for (int i = 0; i < f.num_ports; ++i) ports_[f.ports[i]].Add(pos);
      for (int i = 0; i < f.num_protocols; ++i) protocols_[f.protocols[i]].Add(pos);
      for (int i = 0; i < f.num_ethertypes; ++i) {
        uint16_t t = f.ethertypes[i];
        CachedEthertype& c = ethertype_cache_[(t * 0x9e3779b1u) >> (32 - kEthertypeCacheBits)];
        if (c.list == nullptr || c.type != t) {
          c.type = t;
          c.list = &ethertypes_[t];
        }
        c.list->Add(pos);
      }
      for (int i = 0; i < f.num_vlans; ++i) vlans_[f.vlans[i] & 0xfff].Add(pos);
      if (f.incomplete) incomplete_.Add(pos);
    }
    s = reader.status();
  }
  if (entry.packets > 0) {
    if (summary_.packets == 0 || entry.min_ts_ns < summary_.min_ts_ns) summary_.min_ts_ns = entry.min_ts_ns;
    if (summary_.packets == 0 || entry.max_ts_ns > summary_.max_ts_ns) summary_.max_ts_ns = entry.max_ts_ns;
    summary_.packets += entry.packets;
    auto& lt = summary_.linktypes;
    if (std::find(lt.begin(), lt.end(), entry.linktype) == lt.end()) {
      lt.push_back(entry.linktype);
      std::sort(lt.begin(), lt.end());
    }
  }
  // A block is recorded even when damaged, so block numbers stay file offsets / kBlockSize.
  blocks_.resize(block);
  blocks_.push_back(entry);
  summary_.blocks = static_cast<uint32_t>(blocks_.size());
  if (!s.ok()) return Status::Corruption("block " + std::to_string(block) + ": " + s.message());
  return Status::OK();
}

Status IndexBuilder::LookupRange(const std::string& first, const std::string& last, uint32_t max_block,
                                 std::vector<uint32_t>* out) const {
  std::vector<uint32_t> got;
  Status status;
  auto take = [&](const PostingListBuilder& list) {
    if (list.size() == 0 || !status.ok()) return;
    size_t start = got.size();
    status = DecodePostingList(list.Encode(), &got);
    while (got.size() > start && PositionBlock(got.back()) >= max_block) got.pop_back();
  };
  auto in_range = [&](const std::string& key) { return key >= first && key <= last; };
  // Numeric value of a key's bytes after the type byte (keys of at most 8 value bytes).
  auto value = [](const std::string& key, size_t bytes) {
    uint64_t v = 0;
    for (size_t i = 1; i <= bytes; ++i) v = v << 8 | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0);
    return v;
  };
  if (first.empty() || last.empty()) return Status::OK();
  uint8_t type = static_cast<uint8_t>(first[0]);
  switch (type) {
    case kKeyIpv4:
      if (first == last && first.size() == 5) {
        if (const PostingListBuilder* l = ipv4_.Find(static_cast<uint32_t>(value(first, 4)))) take(*l);
      } else {
        ipv4_.ForEach([&](uint32_t a, const PostingListBuilder& l) {
          if (in_range(Ipv4Key(a))) take(l);
        });
      }
      break;
    case kKeyIpv6:
      for (const auto& [a, l] : ipv6_) {
        if (in_range(Ipv6Key(a.data()))) take(l);
      }
      break;
    case kKeyPort:
    case kKeyVlan: {
      const std::vector<PostingListBuilder>& lists = type == kKeyPort ? ports_ : vlans_;
      uint64_t lo = value(first, 2), hi = static_cast<uint8_t>(last[0]) == type ? value(last, 2) : 0xffff;
      for (uint64_t v = lo; v <= hi && v < lists.size(); ++v) take(lists[v]);
      break;
    }
    case kKeyProtocol: {
      uint64_t lo = value(first, 1), hi = static_cast<uint8_t>(last[0]) == type ? value(last, 1) : 0xff;
      for (uint64_t v = lo; v <= hi && v < protocols_.size(); ++v) take(protocols_[v]);
      break;
    }
    case kKeyEthertype:
      for (const auto& [t, l] : ethertypes_) {
        if (in_range(EthertypeKey(t))) take(l);
      }
      break;
    case kKeyIncomplete:
      take(incomplete_);
      break;
    default:
      break;
  }
  if (!status.ok()) return status;
  NormalizePositions(&got);
  if (out->empty()) {
    *out = std::move(got);
  } else {
    *out = UnionPositions(*out, got);
  }
  return Status::OK();
}

size_t IndexBuilder::memory() const {
  size_t m = sizeof(*this) + blocks_.capacity() * sizeof(BlockEntry);
  ipv4_.ForEach([&m](uint32_t, const PostingListBuilder& v) { m += v.memory() + 16; });
  for (const auto& [k, v] : ipv6_) m += v.memory() + 32;
  for (const auto& p : ports_) m += p.memory();
  for (const auto& v : vlans_) m += v.memory();
  for (const auto& p : protocols_) m += p.memory();
  return m;
}

Status IndexBuilder::Finish(const std::string& path, uint64_t file_bytes) {
  summary_.file_bytes = file_bytes;
  std::vector<std::pair<std::string, const PostingListBuilder*>> lists;
  {
    size_t start = lists.size();
    ipv4_.ForEach([&lists](uint32_t a, const PostingListBuilder& v) { lists.emplace_back(Ipv4Key(a), &v); });
    std::sort(lists.begin() + start, lists.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  AddSorted(ipv6_, [](const std::array<uint8_t, 16>& a) { return Ipv6Key(a.data()); }, &lists);
  for (uint32_t p = 0; p < ports_.size(); ++p) {
    if (ports_[p].size() > 0) lists.emplace_back(PortKey(static_cast<uint16_t>(p)), &ports_[p]);
  }
  for (int p = 0; p < 256; ++p) {
    if (protocols_[p].size() > 0) lists.emplace_back(ProtocolKey(static_cast<uint8_t>(p)), &protocols_[p]);
  }
  AddSorted(ethertypes_, [](uint16_t t) { return EthertypeKey(t); }, &lists);
  for (uint32_t v = 0; v < vlans_.size(); ++v) {
    if (vlans_[v].size() > 0) lists.emplace_back(VlanKey(static_cast<uint16_t>(v)), &vlans_[v]);
  }
  if (incomplete_.size() > 0) lists.emplace_back(IncompleteKey(), &incomplete_);

  leveldb::Env* env = leveldb::Env::Default();
  std::string tmp = path + ".tmp";
  leveldb::WritableFile* raw_file = nullptr;
  leveldb::Status ls = env->NewWritableFile(tmp, &raw_file);
  if (!ls.ok()) return FromLevelDb(ls, "creating index " + tmp);
  std::unique_ptr<leveldb::WritableFile> file(raw_file);
  leveldb::Options options;
  options.compression = leveldb::kSnappyCompression;
  leveldb::TableBuilder table(options, file.get());
  table.Add(SummaryKey(), summary_.Encode());
  for (uint32_t i = 0; i < blocks_.size(); ++i) table.Add(BlockKey(i), blocks_[i].Encode());
  std::vector<uint64_t> hashes;
  hashes.reserve(lists.size());
  unfiltered_ = incomplete_.size() > 0;
  for (const auto& [key, list] : lists) {
    table.Add(key, list->Encode());
    if (list != &incomplete_) hashes.push_back(KeyFilterHash(key));
  }
  for (const BlockEntry& b : blocks_) {
    if (b.packets > 0 && !DissectorSupportsLinkType(b.linktype)) unfiltered_ = true;
  }
  key_filter_ = BuildKeyFilter(hashes);
  ls = table.Finish();
  table_bytes_ = table.FileSize();
  if (ls.ok()) ls = file->Sync();
  if (ls.ok()) ls = file->Close();
  if (!ls.ok()) {
    env->RemoveFile(tmp);
    return FromLevelDb(ls, "writing index " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    env->RemoveFile(tmp);
    return Status::FromErrno("renaming index to " + path, err);
  }
  // Durable before the catalog record that calls the file complete (start-up repair leaves complete files
  // alone: one whose table's name a power loss took back would stay hidden).
  return SyncParentDirectory(path);
}

}  // namespace rwd
