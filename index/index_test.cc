// Tests of index_format, index_builder and index_reader together: blocks of hand-built frames are indexed,
// written as a table and read back.
#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/block_codec.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/index_format.h"
#include "index/index_reader.h"
#include "index/index_repair.h"
#include "index/packet_file_reader.h"
#include "index/posting_list.h"
#include "index/test_temp_dir.h"
#include "leveldb/env.h"
#include "leveldb/options.h"
#include "leveldb/table_builder.h"
#include "index/test_frames.h"

namespace rwd {
namespace {

using test_frames::Put16;
using test_frames::Put32;
using test_frames::Append;
using test_frames::Ip4;
using test_frames::Ip6;
using test_frames::Eth;
using test_frames::Tag;

using Bytes = std::vector<uint8_t>;
using Positions = std::vector<uint32_t>;

// ---------------------------------------------------------------------------------------------------------
// Frames.






Bytes L4(uint16_t sport, uint16_t dport, uint8_t proto) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  if (proto == 6) {
    Put32(&b, 1);                     // seq
    Put32(&b, 0);                     // ack
    b.insert(b.end(), {0x50, 0x02});  // offset 5, SYN
    b.insert(b.end(), {0x72, 0x10, 0, 0, 0, 0});
  } else {
    Put16(&b, 8);
    Put16(&b, 0);
  }
  return b;
}

Bytes Ipv4(uint8_t proto, uint32_t src, uint32_t dst, const Bytes& payload) {
  Bytes b = {0x45, 0};
  Put16(&b, static_cast<uint16_t>(20 + payload.size()));
  b.insert(b.end(), {0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0});
  Put32(&b, src);
  Put32(&b, dst);
  Append(&b, payload);
  return b;
}

Bytes Ipv6(uint8_t next, const std::array<uint8_t, 16>& src, const std::array<uint8_t, 16>& dst, const Bytes& payload) {
  Bytes b = {0x60, 0, 0, 0};
  Put16(&b, static_cast<uint16_t>(payload.size()));
  b.push_back(next);
  b.push_back(64);
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  Append(&b, payload);
  return b;
}

Bytes Arp(uint32_t sender, uint32_t target) {
  Bytes b = {0, 1, 0x08, 0x00, 6, 4, 0, 1, 0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c};
  Put32(&b, sender);
  b.insert(b.end(), {0, 0, 0, 0, 0, 0});
  Put32(&b, target);
  return b;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Append(&b, p);
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// A small packet file's worth of blocks, with the position every packet got.

struct TestPacket {
  uint32_t sec, nsec;
  Bytes frame;
  uint32_t len = 0;  // 0: frame size
};

struct TestBlock {
  uint32_t linktype;
  std::vector<TestPacket> packets;
};

struct BuiltBlock {
  AlignedBuffer data;
  std::vector<uint32_t> positions;
};

BuiltBlock BuildBlock(uint32_t number, const TestBlock& tb) {
  BuiltBlock out;
  out.data = NewAlignedBuffer(kBlockSize);
  BlockBuilder b;
  b.Reset(out.data.get(), tb.linktype, 65535, number);
  for (const TestPacket& p : tb.packets) {
    uint32_t offset = b.bytes_used();
    uint32_t caplen = static_cast<uint32_t>(p.frame.size());
    EXPECT_TRUE(b.Add(p.sec, p.nsec, caplen, p.len ? p.len : caplen, p.frame.data()));
    out.positions.push_back(PacketPosition(number, offset));
  }
  b.Finish();
  return out;
}

const auto kA1 = Ip6("2001:db8::1");
const auto kA2 = Ip6("2001:db8::2");
const auto kA3 = Ip6("2001:db8:1::99");

constexpr uint32_t kBase = 1700000000;

std::vector<TestBlock> Corpus() {
  std::vector<TestBlock> blocks(5);
  // Block 0: Ethernet. Timestamps go backwards inside the block.
  blocks[0].linktype = 1;
  blocks[0].packets = {
      {kBase + 10, 500, Cat({Eth(0x0800), Ipv4(6, Ip4(10, 1, 2, 3), Ip4(10, 1, 2, 4), L4(1234, 80, 6))})},
      {kBase + 11, 0, Cat({Eth(0x0800), Ipv4(17, Ip4(10, 1, 2, 200), Ip4(192, 168, 0, 1), L4(5353, 53, 17))}), 1500},
      {kBase + 5, 999999999, Cat({Eth(0x86dd), Ipv6(6, kA1, kA2, L4(443, 50000, 6))})},
      {kBase + 12, 1,
       Cat({Eth(0x8100), Tag(100, 0x0800), Ipv4(17, Ip4(10, 9, 9, 9), Ip4(10, 1, 2, 3), L4(53, 1000, 17))})},
      {kBase + 13, 2, Cat({Eth(0x0806), Arp(Ip4(10, 1, 2, 5), Ip4(10, 1, 2, 6))})},
  };
  // Block 1: Ethernet, with QinQ, a cut-off frame and a frame the dissector cannot fully record.
  blocks[1].linktype = 1;
  Bytes deep = Eth(0x8100);
  for (int i = 0; i < 16; ++i) Append(&deep, Tag(7, 0x8100));
  Append(&deep, Tag(7, 0x0800));
  Append(&deep, Ipv4(6, Ip4(10, 77, 0, 1), Ip4(10, 77, 0, 2), L4(1, 2, 6)));
  blocks[1].packets = {
      {kBase + 20, 0, Cat({Eth(0x0800), Ipv4(6, Ip4(10, 1, 3, 1), Ip4(10, 1, 2, 3), L4(80, 2000, 6))})},
      {kBase + 21, 0,
       Cat({Eth(0x88a8), Tag(200, 0x8100), Tag(300, 0x0800),
            Ipv4(1, Ip4(172, 16, 0, 1), Ip4(172, 16, 0, 2), {8, 0, 0, 0})})},
      {kBase + 22, 0, Bytes{0x00, 0x1b, 0x21, 0x0a, 0x0b, 0x0c, 0x00, 0x1b, 0x21, 0x0d}, 60},
      {kBase + 23, 0, deep},
  };
  // Block 2: raw IP (LINKTYPE_RAW), IPv6 and IPv4.
  blocks[2].linktype = 101;
  blocks[2].packets = {
      {kBase + 30, 0, Ipv4(17, Ip4(10, 1, 2, 3), Ip4(8, 8, 8, 8), L4(40000, 53, 17))},
      {kBase + 31, 0, Ipv6(17, kA3, kA1, L4(53, 53, 17))},
  };
  // Block 3: a link type the dissector does not decode (LINKTYPE_USER0); bytes that look like 10.1.2.3.
  blocks[3].linktype = 147;
  blocks[3].packets = {
      {kBase + 40, 0, Cat({Eth(0x0800), Ipv4(6, Ip4(10, 1, 2, 3), Ip4(10, 1, 2, 3), L4(80, 80, 6))})},
      {kBase + 1, 0, Bytes{1, 2, 3}},
  };
  // Block 4: empty, of yet another link type (must not appear among the summary's link types).
  blocks[4].linktype = 228;
  return blocks;
}

struct BuiltFile {
  std::vector<std::vector<uint32_t>> pos;  // pos[block][i]
  std::string index_path;
};

BuiltFile BuildIndexFile(const std::string& dir, IndexBuilder* builder, uint64_t file_bytes) {
  BuiltFile f;
  std::vector<TestBlock> corpus = Corpus();
  for (uint32_t b = 0; b < corpus.size(); ++b) {
    BuiltBlock bb = BuildBlock(b, corpus[b]);
    Status s = builder->AddBlock(b, uint64_t{b} * kBlockSize, kBlockSize, bb.data.get());
    EXPECT_TRUE(s.ok()) << s.ToString();
    f.pos.push_back(bb.positions);
  }
  f.index_path = dir + "/00000000001700000000";
  Status s = builder->Finish(f.index_path, file_bytes);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

Positions Sorted(Positions v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---------------------------------------------------------------------------------------------------------
// index_format

TEST(IndexKeys, Encodings) {
  EXPECT_EQ(SummaryKey(), std::string("\x01", 1));
  EXPECT_EQ(BlockKey(0x01020304), std::string("\x02\x01\x02\x03\x04", 5));
  EXPECT_EQ(Ipv4Key(Ip4(10, 1, 2, 3)), std::string("\x10\x0a\x01\x02\x03", 5));
  EXPECT_EQ(Ipv6Key(kA1.data()), std::string("\x11", 1) + std::string(reinterpret_cast<const char*>(kA1.data()), 16));
  EXPECT_EQ(PortKey(0x1f90), std::string("\x20\x1f\x90", 3));
  EXPECT_EQ(ProtocolKey(17), std::string("\x30\x11", 2));
  EXPECT_EQ(EthertypeKey(0x86dd), std::string("\x31\x86\xdd", 3));
  EXPECT_EQ(VlanKey(4095), std::string("\x40\x0f\xff", 3));
  EXPECT_EQ(IncompleteKey(), std::string("\x7f", 1));
}

TEST(IndexKeys, BytewiseOrderFollowsValueOrder) {
  const uint32_t v4[] = {0,
                         1,
                         0xff,
                         0x100,
                         Ip4(10, 0, 0, 0),
                         Ip4(10, 0, 0, 255),
                         Ip4(10, 0, 1, 0),
                         Ip4(127, 255, 255, 255),
                         Ip4(128, 0, 0, 0),
                         0xffffffff};
  for (size_t i = 0; i + 1 < std::size(v4); ++i) {
    EXPECT_LT(Ipv4Key(v4[i]), Ipv4Key(v4[i + 1])) << v4[i] << " vs " << v4[i + 1];
  }
  const uint16_t ports[] = {0, 1, 255, 256, 0x7fff, 0x8000, 65535};
  for (size_t i = 0; i + 1 < std::size(ports); ++i) EXPECT_LT(PortKey(ports[i]), PortKey(ports[i + 1]));
  for (uint32_t b : {0u, 255u, 256u, 4095u}) EXPECT_LT(BlockKey(b), BlockKey(b + 1));
  // Type order: a range over one type never reaches into another.
  uint8_t ff[16];
  std::memset(ff, 0xff, 16);
  uint8_t zero[16] = {};
  EXPECT_LT(SummaryKey(), BlockKey(0));
  EXPECT_LT(BlockKey(0xffffffff), Ipv4Key(0));
  EXPECT_LT(Ipv4Key(0xffffffff), Ipv6Key(zero));
  EXPECT_LT(Ipv6Key(ff), PortKey(0));
  EXPECT_LT(PortKey(65535), ProtocolKey(0));
  EXPECT_LT(ProtocolKey(255), EthertypeKey(0));
  EXPECT_LT(EthertypeKey(0xffff), VlanKey(0));
  EXPECT_LT(VlanKey(0xffff), IncompleteKey());
}

TEST(IndexKeys, Ipv4NetworkIsAContiguousKeyRange) {
  // Every address of 10.1.2.0/24 lies within [key(lo), key(hi)], and the neighbours outside do not.
  const std::string lo = Ipv4Key(Ip4(10, 1, 2, 0)), hi = Ipv4Key(Ip4(10, 1, 2, 255));
  for (uint32_t a = Ip4(10, 1, 2, 0); a <= Ip4(10, 1, 2, 255); ++a) {
    std::string k = Ipv4Key(a);
    ASSERT_TRUE(k >= lo && k <= hi) << a;
  }
  for (uint32_t a : {Ip4(10, 1, 1, 255), Ip4(10, 1, 3, 0), Ip4(10, 2, 2, 5), Ip4(9, 1, 2, 5), Ip4(11, 1, 2, 5)}) {
    std::string k = Ipv4Key(a);
    EXPECT_FALSE(k >= lo && k <= hi) << a;
  }
  // Also IPv6 /64 and port ranges.
  auto p = Ip6("2001:db8::ffff"), q = Ip6("2001:db8:0:1::");
  auto lo6 = Ip6("2001:db8::"), hi6 = Ip6("2001:db8::ffff:ffff:ffff:ffff");
  EXPECT_TRUE(Ipv6Key(p.data()) >= Ipv6Key(lo6.data()) && Ipv6Key(p.data()) <= Ipv6Key(hi6.data()));
  EXPECT_FALSE(Ipv6Key(q.data()) >= Ipv6Key(lo6.data()) && Ipv6Key(q.data()) <= Ipv6Key(hi6.data()));
  EXPECT_TRUE(PortKey(1024) > PortKey(1023) && PortKey(1024) < PortKey(1025));
}

TEST(FileSummary, RoundTrip) {
  FileSummary s;
  s.packets = 123456789012ull;
  s.captured_bytes = 1ull << 40;
  s.wire_bytes = (1ull << 40) + 7;
  s.blocks = 4096;
  s.file_bytes = 4294967296ull;
  s.min_ts_ns = -5;
  s.max_ts_ns = 0x7fffffffffffffffll;
  s.linktypes = {0, 1, 101, 276, 0xffffffff};
  std::string enc = s.Encode();
  FileSummary d;
  d.linktypes = {99};  // must be replaced, not appended to
  ASSERT_TRUE(FileSummary::Decode(enc, &d).ok());
  EXPECT_EQ(d.version, kIndexFormatVersion);
  EXPECT_EQ(d.packets, s.packets);
  EXPECT_EQ(d.captured_bytes, s.captured_bytes);
  EXPECT_EQ(d.wire_bytes, s.wire_bytes);
  EXPECT_EQ(d.blocks, s.blocks);
  EXPECT_EQ(d.file_bytes, s.file_bytes);
  EXPECT_EQ(d.min_ts_ns, s.min_ts_ns);
  EXPECT_EQ(d.max_ts_ns, s.max_ts_ns);
  EXPECT_EQ(d.linktypes, s.linktypes);
  EXPECT_EQ(d.Encode(), enc);

  FileSummary empty;
  ASSERT_TRUE(FileSummary::Decode(empty.Encode(), &d).ok());
  EXPECT_EQ(d.packets, 0u);
  EXPECT_TRUE(d.linktypes.empty());
}

TEST(FileSummary, TruncatedOrWrongVersionFails) {
  FileSummary s;
  s.packets = 3;
  s.linktypes = {1, 300};  // 300 takes a two-byte varint
  std::string enc = s.Encode();
  for (size_t n = 0; n < enc.size(); ++n) {
    FileSummary d;
    Status st = FileSummary::Decode(std::string_view(enc.data(), n), &d);
    EXPECT_EQ(st.code(), Status::kCorruption) << "prefix of " << n << " of " << enc.size() << " bytes";
  }
  std::string bad = enc;
  bad[0] = 2;  // version 2
  FileSummary d;
  Status st = FileSummary::Decode(bad, &d);
  EXPECT_EQ(st.code(), Status::kCorruption);
  EXPECT_NE(st.message().find("version"), std::string::npos) << st.message();
  // A link-type count larger than the rest of the input.
  FileSummary t;
  std::string huge = t.Encode();
  huge.back() = 0x7f;  // count 127, no entries
  EXPECT_EQ(FileSummary::Decode(huge, &d).code(), Status::kCorruption);
}

TEST(BlockEntry, RoundTripAndTruncation) {
  BlockEntry e;
  e.file_offset = 4095ull * kBlockSize;
  e.disk_length = kBlockSize;
  e.packets = 123;
  e.min_ts_ns = 1;
  e.max_ts_ns = -1;
  e.linktype = 276;
  e.flags = 0x80000001;
  std::string enc = e.Encode();
  EXPECT_EQ(enc.size(), 8u + 4 + 4 + 8 + 8 + 4 + 4);
  BlockEntry d;
  ASSERT_TRUE(BlockEntry::Decode(enc, &d).ok());
  EXPECT_EQ(d.file_offset, e.file_offset);
  EXPECT_EQ(d.disk_length, e.disk_length);
  EXPECT_EQ(d.packets, e.packets);
  EXPECT_EQ(d.min_ts_ns, e.min_ts_ns);
  EXPECT_EQ(d.max_ts_ns, e.max_ts_ns);
  EXPECT_EQ(d.linktype, e.linktype);
  EXPECT_EQ(d.flags, e.flags);
  for (size_t n = 0; n < enc.size(); ++n) {
    BlockEntry t;
    EXPECT_EQ(BlockEntry::Decode(std::string_view(enc.data(), n), &t).code(), Status::kCorruption) << n;
  }
}

// ---------------------------------------------------------------------------------------------------------
// index_builder + index_reader

// A FIFO named like an index or a packet file is refused at once, never opened for reading (that would wait
// for a writer forever).
TEST(Readers, RefuseAFifoWithoutWaiting) {
  TempDir dir;
  std::string fifo = dir.path() + "/00000000000000000001";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto index = IndexReader::Open(fifo);
  ASSERT_FALSE(index.ok());
  EXPECT_NE(index.status().message().find("not a regular file"), std::string::npos) << index.status().ToString();
  auto packets = PacketFileReader::Open(fifo);
  ASSERT_FALSE(packets.ok());
  EXPECT_NE(packets.status().message().find("not a regular file"), std::string::npos) << packets.status().ToString();
}

class IndexFile : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = BuildIndexFile(dir_.path(), &builder_, 5 * uint64_t{kBlockSize});
    auto r = IndexReader::Open(file_.index_path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    reader_ = std::move(*r);
  }
  Positions Lookup(const std::string& key) {
    Positions out;
    Status s = reader_->Lookup(key, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  Positions Range(const std::string& a, const std::string& b) {
    Positions out;
    Status s = reader_->LookupRange(a, b, &out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  uint32_t P(int block, int i) const { return file_.pos[block][i]; }

  TempDir dir_;
  IndexBuilder builder_;
  BuiltFile file_;
  std::unique_ptr<IndexReader> reader_;
};

TEST_F(IndexFile, PositionsAreBlockAndRecordOffset) {
  EXPECT_EQ(P(0, 0), PacketPosition(0, kFirstPacketOffset));
  EXPECT_EQ(P(1, 0), 1u << 20 | kFirstPacketOffset);
  EXPECT_EQ(PositionBlock(P(2, 1)), 2u);
  EXPECT_EQ(PositionOffset(P(0, 1)), kFirstPacketOffset + ((kPacketHeaderSize + 54 + 7) & ~7u));
}

TEST_F(IndexFile, Summary) {
  const FileSummary& s = reader_->summary();
  std::vector<TestBlock> corpus = Corpus();
  uint64_t packets = 0, captured = 0, wire = 0;
  for (const TestBlock& b : corpus) {
    for (const TestPacket& p : b.packets) {
      ++packets;
      captured += p.frame.size();
      wire += p.len ? p.len : p.frame.size();
    }
  }
  EXPECT_EQ(s.version, kIndexFormatVersion);
  EXPECT_EQ(s.packets, packets);
  EXPECT_EQ(s.packets, 13u);
  EXPECT_EQ(s.captured_bytes, captured);
  EXPECT_EQ(s.wire_bytes, wire);
  EXPECT_EQ(s.blocks, 5u);
  EXPECT_EQ(s.file_bytes, 5 * uint64_t{kBlockSize});
  EXPECT_EQ(s.min_ts_ns, int64_t{kBase + 1} * 1000000000);  // block 3, not indexed but counted
  EXPECT_EQ(s.max_ts_ns, int64_t{kBase + 40} * 1000000000);
  EXPECT_EQ(s.linktypes, (std::vector<uint32_t>{1, 101, 147}));
  // The builder's own summary matches what was stored.
  EXPECT_EQ(builder_.summary().Encode(), s.Encode());
  EXPECT_GT(reader_->table_bytes(), 0u);
  EXPECT_EQ(reader_->table_bytes(), std::filesystem::file_size(file_.index_path));
}

TEST_F(IndexFile, BlockDirectory) {
  const auto& b = reader_->blocks();
  ASSERT_EQ(b.size(), 5u);
  const uint32_t packets[] = {5, 4, 2, 2, 0};
  const uint32_t linktypes[] = {1, 1, 101, 147, 228};
  for (uint32_t i = 0; i < 5; ++i) {
    EXPECT_EQ(b[i].file_offset, uint64_t{i} * kBlockSize) << i;
    EXPECT_EQ(b[i].disk_length, kBlockSize) << i;
    EXPECT_EQ(b[i].packets, packets[i]) << i;
    EXPECT_EQ(b[i].linktype, linktypes[i]) << i;
    EXPECT_EQ(b[i].flags, 0u) << i;
  }
  // Min and max, not first and last: block 0 goes backwards to kBase + 5.999999999.
  EXPECT_EQ(b[0].min_ts_ns, int64_t{kBase + 5} * 1000000000 + 999999999);
  EXPECT_EQ(b[0].max_ts_ns, int64_t{kBase + 13} * 1000000000 + 2);
  EXPECT_EQ(b[1].min_ts_ns, int64_t{kBase + 20} * 1000000000);
  EXPECT_EQ(b[1].max_ts_ns, int64_t{kBase + 23} * 1000000000);
  EXPECT_EQ(b[3].min_ts_ns, int64_t{kBase + 1} * 1000000000);
  EXPECT_EQ(b[3].max_ts_ns, int64_t{kBase + 40} * 1000000000);
}

TEST_F(IndexFile, Ipv4Lookups) {
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 1, 2, 3))), Sorted({P(0, 0), P(0, 3), P(1, 0), P(2, 0)}));
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 1, 2, 4))), Positions({P(0, 0)}));
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(192, 168, 0, 1))), Positions({P(0, 1)}));
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 9, 9, 9))), Positions({P(0, 3)})) << "inside a VLAN tag";
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 1, 2, 5))), Positions({P(0, 4)})) << "ARP sender";
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 1, 2, 6))), Positions({P(0, 4)})) << "ARP target";
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(172, 16, 0, 2))), Positions({P(1, 1)})) << "inside QinQ";
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(8, 8, 8, 8))), Positions({P(2, 0)})) << "raw IP";
  // Absent keys.
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 1, 2, 7))), Positions());
  EXPECT_EQ(Lookup(Ipv4Key(0)), Positions());
  EXPECT_EQ(Lookup(Ipv4Key(0xffffffff)), Positions());
}

TEST_F(IndexFile, Ipv6Lookups) {
  EXPECT_EQ(Lookup(Ipv6Key(kA1.data())), Sorted({P(0, 2), P(2, 1)}));
  EXPECT_EQ(Lookup(Ipv6Key(kA2.data())), Positions({P(0, 2)}));
  EXPECT_EQ(Lookup(Ipv6Key(kA3.data())), Positions({P(2, 1)}));
  auto absent = Ip6("2001:db8::3");
  EXPECT_EQ(Lookup(Ipv6Key(absent.data())), Positions());
  // A /48 range.
  auto lo = Ip6("2001:db8::"), hi = Ip6("2001:db8:0:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(Range(Ipv6Key(lo.data()), Ipv6Key(hi.data())), Positions({P(0, 2), P(2, 1)}));
  auto lo1 = Ip6("2001:db8:1::"), hi1 = Ip6("2001:db8:1:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(Range(Ipv6Key(lo1.data()), Ipv6Key(hi1.data())), Positions({P(2, 1)}));
}

TEST_F(IndexFile, PortProtocolEthertypeVlanLookups) {
  EXPECT_EQ(Lookup(PortKey(53)), Sorted({P(0, 1), P(0, 3), P(2, 0), P(2, 1)}));
  EXPECT_EQ(Lookup(PortKey(80)), Sorted({P(0, 0), P(1, 0)}));
  EXPECT_EQ(Lookup(PortKey(50000)), Positions({P(0, 2)}));
  EXPECT_EQ(Lookup(PortKey(8080)), Positions());
  EXPECT_EQ(Range(PortKey(1000), PortKey(2000)), Sorted({P(0, 0), P(0, 3), P(1, 0)}));  // 1234, 1000, 2000

  EXPECT_EQ(Lookup(ProtocolKey(6)), Sorted({P(0, 0), P(0, 2), P(1, 0)}));
  EXPECT_EQ(Lookup(ProtocolKey(17)), Sorted({P(0, 1), P(0, 3), P(2, 0), P(2, 1)}));
  EXPECT_EQ(Lookup(ProtocolKey(1)), Positions({P(1, 1)}));
  EXPECT_EQ(Lookup(ProtocolKey(132)), Positions());

  EXPECT_EQ(Lookup(EthertypeKey(0x86dd)), Sorted({P(0, 2), P(2, 1)}));
  EXPECT_EQ(Lookup(EthertypeKey(0x0806)), Positions({P(0, 4)}));
  EXPECT_EQ(Lookup(EthertypeKey(0x88a8)), Positions({P(1, 1)}));
  EXPECT_EQ(Lookup(EthertypeKey(0x8100)), Sorted({P(0, 3), P(1, 1), P(1, 3)}));
  EXPECT_EQ(Lookup(EthertypeKey(0x0800)), Sorted({P(0, 0), P(0, 1), P(0, 3), P(1, 0), P(1, 1), P(2, 0)}));

  EXPECT_EQ(Lookup(VlanKey(100)), Positions({P(0, 3)}));
  EXPECT_EQ(Lookup(VlanKey(200)), Positions({P(1, 1)}));
  EXPECT_EQ(Lookup(VlanKey(300)), Positions({P(1, 1)}));
  EXPECT_EQ(Lookup(VlanKey(7)), Positions({P(1, 3)}));
  EXPECT_EQ(Lookup(VlanKey(101)), Positions());
}

TEST_F(IndexFile, IncompletePackets) {
  // 17 stacked tags: more than the dissector can record. It stops at the 17th tag, so the inner IPv4
  // header is not in the lists; the packet is listed as incomplete instead (a candidate for every lookup).
  EXPECT_EQ(Lookup(IncompleteKey()), Positions({P(1, 3)}));
  EXPECT_EQ(Lookup(Ipv4Key(Ip4(10, 77, 0, 1))), Positions());
  EXPECT_EQ(Lookup(VlanKey(7)), Positions({P(1, 3)}));
}

TEST_F(IndexFile, NothingFromUnsupportedLinkTypeBlocks) {
  // Block 3 (LINKTYPE_USER0) holds an Ethernet/IPv4 frame of 10.1.2.3, port 80, but is not indexed.
  Positions all = Range(std::string(1, '\x10'), std::string(1, '\x7f') + std::string(8, '\xff'));
  for (uint32_t p : all) EXPECT_NE(PositionBlock(p), 3u) << p;
  EXPECT_FALSE(all.empty());
}

TEST_F(IndexFile, RangeOverANetwork) {
  EXPECT_EQ(Range(Ipv4Key(Ip4(10, 1, 2, 0)), Ipv4Key(Ip4(10, 1, 2, 255))),
            Sorted({P(0, 0), P(0, 1), P(0, 3), P(0, 4), P(1, 0), P(2, 0)}));
  EXPECT_EQ(Range(Ipv4Key(Ip4(10, 1, 3, 0)), Ipv4Key(Ip4(10, 1, 3, 255))), Positions({P(1, 0)}));
  EXPECT_EQ(Range(Ipv4Key(Ip4(11, 0, 0, 0)), Ipv4Key(Ip4(11, 255, 255, 255))), Positions());
  EXPECT_EQ(Range(Ipv4Key(Ip4(10, 1, 2, 7)), Ipv4Key(Ip4(10, 1, 2, 199))), Positions());
  // The whole IPv4 space: every packet with an IPv4 address (ARP included), nothing from IPv6 keys.
  EXPECT_EQ(Range(Ipv4Key(0), Ipv4Key(0xffffffff)),
            Sorted({P(0, 0), P(0, 1), P(0, 3), P(0, 4), P(1, 0), P(1, 1), P(2, 0)}));
  // An empty range (first > last).
  EXPECT_EQ(Range(Ipv4Key(Ip4(10, 1, 2, 255)), Ipv4Key(Ip4(10, 1, 2, 0))), Positions());
}

TEST_F(IndexFile, LookupAppendsSortedAndDeduplicated) {
  Positions out;
  ASSERT_TRUE(reader_->Lookup(PortKey(80), &out).ok());
  ASSERT_TRUE(reader_->Lookup(ProtocolKey(6), &out).ok());
  EXPECT_EQ(out, Sorted({P(0, 0), P(0, 2), P(1, 0)}));
}

TEST_F(IndexFile, FinishLeavesNoTemporaryFile) {
  EXPECT_TRUE(std::filesystem::exists(file_.index_path));
  EXPECT_FALSE(std::filesystem::exists(file_.index_path + ".tmp"));
}

TEST(IndexBuilder, DamagedBlockIsRecordedUpToTheDamage) {
  TempDir dir;
  IndexBuilder b;
  std::vector<TestBlock> corpus = Corpus();
  BuiltBlock good = BuildBlock(0, corpus[0]);
  ASSERT_TRUE(b.AddBlock(0, 0, kBlockSize, good.data.get()).ok());
  // Block 1: the third packet's header points out of the block.
  BuiltBlock bad = BuildBlock(1, corpus[0]);
  uint32_t off2 = PositionOffset(bad.positions[2]);
  uint32_t bogus = kBlockSize;
  std::memcpy(bad.data.get() + off2, &bogus, 4);  // tp_next_offset
  Status s = b.AddBlock(1, kBlockSize, kBlockSize, bad.data.get());
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
  // Block 2: no rewind header at all.
  BuiltBlock junk = BuildBlock(2, corpus[1]);
  std::memset(junk.data.get() + kBlockDescSize, 0, 8);
  EXPECT_EQ(b.AddBlock(2, 2 * uint64_t{kBlockSize}, kBlockSize, junk.data.get()).code(), Status::kCorruption);
  EXPECT_EQ(b.summary().blocks, 3u);
  EXPECT_EQ(b.summary().packets, 5u + 3u);
  ASSERT_TRUE(b.Finish(dir.path() + "/idx", 3 * uint64_t{kBlockSize}).ok());

  auto r = IndexReader::Open(dir.path() + "/idx");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)->blocks().size(), 3u);
  EXPECT_EQ((*r)->blocks()[1].packets, 3u);
  EXPECT_EQ((*r)->blocks()[2].packets, 0u);
  EXPECT_EQ((*r)->blocks()[2].file_offset, 2 * uint64_t{kBlockSize});
  Positions out;
  ASSERT_TRUE((*r)->Lookup(Ipv4Key(Ip4(10, 1, 2, 3)), &out).ok());
  // 10.1.2.3 is in packets 0 and 3 of block 0, but only packet 0 of the damaged copy was read (and packets
  // 1 and 2 of it do not hold it).
  EXPECT_EQ(out, Sorted({good.positions[0], good.positions[3], bad.positions[0]}));
}

// A packet file in `dir` for the repair tests (its index beside it), opened for writing in *fd (-1: failed).
StoreFile NewRepairFile(const TempDir& dir, int* fd) {
  StoreFile f;
  f.packet_path = dir.path() + "/00000000001700000000";
  f.index_path = f.packet_path + ".idx";
  *fd = open(f.packet_path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  return f;
}

// What a crash leaves: written blocks, then the rest of the preallocated file never written. Repair keeps
// every good block (also past a block zeroed in place), salvages a block that fails only its checksum, and
// cuts the unwritten tail off.
TEST(IndexRepair, SkipsThePreallocatedTailAndKeepsBlocksAfterAZeroedOne) {
  TempDir dir;
  int fd = -1;
  StoreFile f = NewRepairFile(dir, &fd);
  ASSERT_GE(fd, 0);
  std::vector<TestBlock> corpus = Corpus();
  uint64_t packets = 0;
  for (uint32_t b = 0; b < corpus.size(); ++b) {
    BuiltBlock bb = BuildBlock(b, corpus[b]);
    SealBlock(bb.data.get());  // as the writer does
    if (b == 1) std::memset(bb.data.get(), 0, kBlockSize);  // written, but zeros: damaged in place
    else packets += corpus[b].packets.size();
    if (b == 2) {  // one flipped byte in the last packet's frame: fails the checksum, framing intact
      uint32_t used;
      std::memcpy(&used, bb.data.get() + 20, 4);  // tpacket_block_desc.hdr.bh1.blk_len
      bb.data.get()[used - 1] ^= 0x40;
    }
    ASSERT_EQ(pwrite(fd, bb.data.get(), kBlockSize, static_cast<off_t>(b) * kBlockSize), ssize_t{kBlockSize});
  }
  ASSERT_EQ(fallocate(fd, 0, 0, 64 << 20), 0);
  close(fd);
  RepairResult r;
  Status s = RepairPacketFile(f, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Blocks 0, 2 (salvaged) and 3 (block 4 holds no packet, and what follows it was never written).
  EXPECT_EQ(r.blocks_kept, 3u);
  EXPECT_EQ(r.blocks_salvaged, 1u);
  ASSERT_EQ(r.salvage_notes.size(), 1u);
  EXPECT_NE(r.salvage_notes[0].find("block at offset 2097152: block checksum mismatch: indexed 2 of 2 packets"),
            std::string::npos) << r.salvage_notes[0];
  EXPECT_EQ(r.blocks_damaged, 1u);
  EXPECT_EQ(r.packets, packets);
  EXPECT_EQ(r.bytes_dropped, (64u - 4) << 20);
  EXPECT_NE(r.note.find("never written"), std::string::npos) << r.note;
  EXPECT_EQ(std::filesystem::file_size(f.packet_path), 4u << 20);
  // Blocks 0 and 3 verified: the rest of their megabyte past what they use is given back; the zeroed block
  // and the salvaged one keep theirs.
  struct stat st;
  ASSERT_EQ(stat(f.packet_path.c_str(), &st), 0);
  EXPECT_LE(st.st_blocks * 512, (2u << 20) + 64 * 1024);
  auto index = IndexReader::Open(f.index_path);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->summary().packets, packets);
}

// What a crash leaves of a file written the way capture writes raw blocks, each only as far as it is used at
// 1 MiB strides, without preallocation (so the file ends inside its last block): repair keeps every block,
// records each block's written length, and gives the file the rest of its last block (a hole), as sealing
// would have.
TEST(IndexRepair, KeepsRawBlocksWrittenAsFarAsUsed) {
  TempDir dir;
  int fd = -1;
  StoreFile f = NewRepairFile(dir, &fd);
  ASSERT_GE(fd, 0);
  std::vector<TestBlock> corpus = Corpus();
  uint64_t packets = 0;
  std::vector<uint32_t> written;
  for (uint32_t b = 0; b < corpus.size(); ++b) {
    if (corpus[b].packets.empty()) continue;  // a capture never writes an empty block
    BuiltBlock bb = BuildBlock(b, corpus[b]);
    SealBlock(bb.data.get());
    uint32_t len = RawBlockDiskLength(bb.data.get());
    ASSERT_LT(len, kBlockSize);
    off_t at = static_cast<off_t>(written.size()) * kBlockSize;
    ASSERT_EQ(pwrite(fd, bb.data.get(), len, at), static_cast<ssize_t>(len));
    packets += corpus[b].packets.size();
    written.push_back(len);
  }
  close(fd);
  ASSERT_GE(written.size(), 3u);
  uint64_t size = std::filesystem::file_size(f.packet_path);
  ASSERT_LT(size, written.size() * uint64_t{kBlockSize});
  RepairResult r;
  Status s = RepairPacketFile(f, &r);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r.blocks_kept, written.size());
  EXPECT_EQ(r.blocks_damaged, 0u);
  EXPECT_EQ(r.packets, packets);
  EXPECT_EQ(r.bytes_dropped, 0u);
  auto index = IndexReader::Open(f.index_path);
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->summary().packets, packets);
  auto reader = PacketFileReader::Open(f.packet_path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  uint64_t read_back = 0;
  size_t i = 0;
  for (const BlockEntry& e : (*index)->blocks()) {
    ASSERT_LT(i, written.size());
    EXPECT_EQ(e.disk_length, written[i++]);
    BlockReader br;
    ASSERT_TRUE((*reader)->ReadBlock(e, &br).ok());
    PacketView pv;
    while (br.Next(&pv)) ++read_back;
    ASSERT_TRUE(br.status().ok()) << br.status().ToString();
  }
  EXPECT_EQ(read_back, packets);
  EXPECT_EQ(std::filesystem::file_size(f.packet_path), written.size() * uint64_t{kBlockSize})
      << "the last block's stride restored";
}

// A compressed file without its index: damage inside one extent (its data, or its header's length) costs
// that extent only; repair finds the next extent after it and keeps every later one.
// The blocks of `corpus`, `copies` times over, each compressed (zstd 3) into an extent, the extents back to
// back as a packet file holds them; *starts gets where each begins.
std::string CompressedExtents(const std::vector<TestBlock>& corpus, int copies, std::vector<uint64_t>* starts) {
  std::string file;
  BlockCompressor compressor(3);
  AlignedBuffer out = NewAlignedBuffer(kMaxExtentSize);
  for (int copy = 0; copy < copies; ++copy) {
    for (uint32_t b = 0; b < corpus.size(); ++b) {
      BuiltBlock bb = BuildBlock(static_cast<uint32_t>(starts->size()), corpus[b]);
      SealBlock(bb.data.get());
      uint32_t n = compressor.Compress(bb.data.get(), out.get());
      EXPECT_GT(n, 0u);
      starts->push_back(file.size());
      file.append(reinterpret_cast<const char*>(out.get()), n);
    }
  }
  return file;
}

TEST(IndexRepair, CompressedFileResynchronisesAfterADamagedExtent) {
  std::vector<TestBlock> corpus = Corpus();
  corpus.resize(4);  // the blocks with packets
  for (int damage : {0, 1}) {  // 0: a flipped bit in extent 0's data; 1: extent 1's header says a wrong length
    TempDir dir;
    StoreFile f;
    f.packet_path = dir.path() + "/00000000001700000000";
    f.index_path = dir.path() + "/00000000001700000000.idx";
    std::vector<uint64_t> starts;
    std::string file = CompressedExtents(corpus, 3, &starts);  // 12 extents
    if (damage == 0) file[starts[0] + kCompressedHeaderSize + 10] ^= 0x08;
    else file[starts[1] + 9] ^= 0x10;  // compressed_len + 4096: the length it names leads into extent 2
    std::ofstream(f.packet_path, std::ios::binary).write(file.data(), static_cast<std::streamsize>(file.size()));
    RepairResult r;
    Status s = RepairPacketFile(f, &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(r.blocks_kept, 11u) << "damage " << damage << ": " << r.note;
    EXPECT_EQ(r.blocks_damaged, 1u) << r.note;
    uint64_t want = 0;
    for (size_t i = 0; i < starts.size(); ++i) want += i == static_cast<size_t>(damage) ? 0 : corpus[i % 4].packets.size();
    EXPECT_EQ(r.packets, want);
    EXPECT_EQ(r.bytes_dropped, 0u);
  }
}

// Power lost with several compressed extents in flight: one was never written (zeros, as preallocated)
// while later ones landed. Compressed extents start on any page, not on block boundaries: the walk must find
// every landed extent after the gap (not skip to the next 1 MiB), and must not cut them off as a tail.
TEST(IndexRepair, CompressedFileKeepsExtentsThatLandedAfterAnUnwrittenOne) {
  std::vector<TestBlock> corpus = Corpus();
  corpus.resize(4);  // the blocks with packets
  for (int unwritten : {1, 9}) {
    TempDir dir;
    StoreFile f;
    f.packet_path = dir.path() + "/00000000001700000000";
    f.index_path = dir.path() + "/00000000001700000000.idx";
    std::vector<uint64_t> starts;
    std::string file = CompressedExtents(corpus, 3, &starts);  // 12 extents
    uint64_t end = static_cast<size_t>(unwritten) + 1 < starts.size() ? starts[unwritten + 1] : file.size();
    std::fill(file.begin() + static_cast<long>(starts[unwritten]), file.begin() + static_cast<long>(end), '\0');
    std::ofstream(f.packet_path, std::ios::binary).write(file.data(), static_cast<std::streamsize>(file.size()));
    RepairResult r;
    Status s = RepairPacketFile(f, &r);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(r.blocks_kept, 11u) << "extent " << unwritten << " unwritten: " << r.note;
    uint64_t want = 0;
    for (size_t i = 0; i < starts.size(); ++i) want += i == static_cast<size_t>(unwritten) ? 0 : corpus[i % 4].packets.size();
    EXPECT_EQ(r.packets, want);
    EXPECT_EQ(r.bytes_dropped, 0u) << "landed extents after the gap are kept on disk";
    struct stat st;
    ASSERT_EQ(stat(f.packet_path.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), file.size());
  }
}

// A compressed block with one damaged zstd frame, its packets read one by one: those of the intact frames come
// back exactly, each of the damaged frame's is Corruption; a whole-block read salvages the same set.
TEST(PacketFileReader, CompressedBlockWithADamagedFrame) {
  TempDir dir;
  AlignedBuffer raw = NewAlignedBuffer(kBlockSize);
  BlockBuilder b;
  b.Reset(raw.get(), 1, 65535, 0);
  std::vector<uint32_t> offsets;
  std::vector<Bytes> frames;
  for (uint32_t i = 0;; ++i) {
    Bytes f = test_frames::NumberedUdpFrame(i, 900);
    uint32_t at = b.bytes_used();
    if (!b.Add(kBase + i, 0, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()), f.data())) break;
    offsets.push_back(at);
    frames.push_back(std::move(f));
  }
  b.Finish();
  SealBlock(raw.get());
  BlockCompressor compressor(3);
  AlignedBuffer out = NewAlignedBuffer(kMaxExtentSize);
  uint32_t n = compressor.Compress(raw.get(), out.get());
  ASSERT_GT(n, 0u);
  uint16_t nframes, head;
  std::memcpy(&nframes, out.get() + 20, 2);
  std::memcpy(&head, out.get() + 22, 2);
  uint32_t f0, f1_raw, f0_raw;
  std::memcpy(&f0, out.get() + kCompressedHeaderSize, 4);
  std::memcpy(&f0_raw, out.get() + kCompressedHeaderSize + 4, 4);
  std::memcpy(&f1_raw, out.get() + kCompressedHeaderSize + 16, 4);
  out.get()[kCompressedHeaderSize + nframes * 12 + head + f0 + 9] ^= 0x80;  // inside frame 2
  uint32_t lost_begin = head + f0_raw, lost_end = lost_begin + f1_raw;
  std::string path = dir.path() + "/00000000001700000000";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(out.get()), n);
  BlockEntry e;
  e.disk_length = n;
  e.flags = kBlockFlagZstd;
  auto reader = PacketFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  size_t served = 0;
  for (size_t i = 0; i < offsets.size(); ++i) {
    PacketView p;
    Status s = (*reader)->ReadPacket(e, offsets[i], &p);
    if (offsets[i] >= lost_begin && offsets[i] < lost_end) {
      EXPECT_EQ(s.code(), Status::kCorruption) << i;
      continue;
    }
    ASSERT_TRUE(s.ok()) << i << ": " << s.ToString();
    EXPECT_EQ(Bytes(p.data, p.data + p.caplen), frames[i]);
    ++served;
  }
  EXPECT_GT(served, 0u);
  EXPECT_LT(served, offsets.size());
  BlockReader br;
  EXPECT_EQ((*reader)->ReadBlock(e, &br).code(), Status::kCorruption);
  std::string unverified;
  ASSERT_TRUE((*reader)->ReadBlock(e, &br, &unverified).ok());
  EXPECT_NE(unverified.find("1 zstd frame(s) damaged"), std::string::npos) << unverified;
  PacketView p;
  size_t walked = 0;
  while (br.Next(&p)) {
    EXPECT_TRUE(p.offset < lost_begin || p.offset >= lost_end);
    ++walked;
  }
  EXPECT_TRUE(br.status().ok()) << br.status().ToString();
  EXPECT_EQ(walked, served);
}

// Packets of a compressed block read one by one (ReadPacket, as a sparse lookup does): each answers its own
// packet; a block whose raw checksum fails (the compressed bytes intact) is refused on every read, not only
// the first (the decompressed block is cached between reads, its verification only once it held).
TEST(PacketFileReader, CompressedBlockPacketByPacket) {
  TempDir dir;
  std::vector<TestBlock> corpus = Corpus();
  const TestBlock& tb = corpus[0];
  BlockCompressor compressor(3);
  AlignedBuffer out = NewAlignedBuffer(kMaxExtentSize);
  std::string file;
  std::vector<BlockEntry> entries;
  std::vector<std::vector<uint32_t>> positions;
  for (int b = 0; b < 2; ++b) {  // block 0 intact, block 1 with a raw byte flipped after sealing
    BuiltBlock bb = BuildBlock(static_cast<uint32_t>(b), tb);
    SealBlock(bb.data.get());
    if (b == 1) {
      uint32_t used;
      std::memcpy(&used, bb.data.get() + 20, 4);  // tpacket_block_desc.hdr.bh1.blk_len
      bb.data.get()[used - 1] ^= 0x40;
    }
    uint32_t n = compressor.Compress(bb.data.get(), out.get());
    ASSERT_GT(n, 0u);
    BlockEntry e;
    e.file_offset = file.size();
    e.disk_length = n;
    e.flags = kBlockFlagZstd;
    entries.push_back(e);
    positions.push_back(bb.positions);
    file.append(reinterpret_cast<const char*>(out.get()), n);
  }
  std::string path = dir.path() + "/00000000001700000000";
  std::ofstream(path, std::ios::binary).write(file.data(), static_cast<std::streamsize>(file.size()));
  auto reader = PacketFileReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < tb.packets.size(); ++i) {
      PacketView p;
      Status s = (*reader)->ReadPacket(entries[0], positions[0][i] & 0xfffff, &p);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(p.ts_sec, tb.packets[i].sec);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.data), p.caplen),
                std::string(tb.packets[i].frame.begin(), tb.packets[i].frame.end()));
    }
    for (size_t i = 0; i < tb.packets.size(); ++i) {
      PacketView p;
      EXPECT_EQ((*reader)->ReadPacket(entries[1], positions[1][i] & 0xfffff, &p).code(), Status::kCorruption) << i;
    }
  }
}

TEST(IndexBuilder, RejectsBlockNumbersBeyondTheFileLimit) {
  IndexBuilder b;
  BuiltBlock bb = BuildBlock(0, Corpus()[0]);
  EXPECT_EQ(b.AddBlock(kMaxBlocksPerFile, 0, kBlockSize, bb.data.get()).code(), Status::kInvalidArgument);
  EXPECT_EQ(b.summary().blocks, 0u);
  EXPECT_EQ(b.summary().packets, 0u);
}

TEST(IndexBuilder, EmptyFile) {
  TempDir dir;
  IndexBuilder b;
  ASSERT_TRUE(b.Finish(dir.path() + "/empty", 0).ok());
  auto r = IndexReader::Open(dir.path() + "/empty");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->summary().packets, 0u);
  EXPECT_EQ((*r)->summary().blocks, 0u);
  EXPECT_TRUE((*r)->blocks().empty());
  Positions out;
  ASSERT_TRUE((*r)->LookupRange(Ipv4Key(0), IncompleteKey() + std::string(16, '\xff'), &out).ok());
  EXPECT_TRUE(out.empty());
}

TEST(IndexBuilder, FinishIntoAMissingDirectoryFails) {
  TempDir dir;
  IndexBuilder b;
  Status s = b.Finish(dir.path() + "/no/such/dir/idx", 0);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/no"));
}

// ---------------------------------------------------------------------------------------------------------
// Damaged tables.

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Everything a reader can tell about a table, as one string; empty if any step fails.
std::string Dump(const std::string& path, Status* status) {
  auto r = IndexReader::Open(path);
  if (!r.ok()) {
    *status = r.status();
    return "";
  }
  std::string d = (*r)->summary().Encode();
  for (const BlockEntry& e : (*r)->blocks()) d += e.Encode();
  auto lookup = [&](const std::string& a, const std::string& b) {
    Positions out;
    Status s = (*r)->LookupRange(a, b, &out);
    if (!s.ok() && status->ok()) *status = s;
    d += '|';
    d += std::to_string(out.size());
    for (uint32_t p : out) {
      d += ',';
      d += std::to_string(p);
    }
  };
  const std::string types = std::string("\x10\x11\x20\x30\x31\x40\x7f", 7);
  for (char t : types) lookup(std::string(1, t), std::string(1, t) + std::string(16, '\xff'));
  lookup(Ipv4Key(Ip4(10, 1, 2, 3)), Ipv4Key(Ip4(10, 1, 2, 3)));
  lookup(PortKey(53), PortKey(53));
  return status->ok() ? d : "";
}

class DamagedIndex : public ::testing::Test {
 protected:
  void SetUp() override {
    IndexBuilder b;
    file_ = BuildIndexFile(dir_.path(), &b, 5 * uint64_t{kBlockSize});
    original_ = ReadFile(file_.index_path);
    Status s;
    expected_ = Dump(file_.index_path, &s);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ASSERT_FALSE(expected_.empty());
    damaged_ = dir_.path() + "/damaged";
  }
  TempDir dir_;
  BuiltFile file_;
  std::string original_, expected_, damaged_;
};

TEST_F(DamagedIndex, FlippedBytesInTheMiddleAreCorruption) {
  std::string data = original_;
  size_t mid = data.size() / 2;
  for (size_t i = mid - 4; i < mid + 4; ++i) data[i] ^= 0x5a;
  WriteFile(damaged_, data);
  Status s;
  std::string got = Dump(damaged_, &s);
  EXPECT_FALSE(s.ok()) << "damage went unnoticed";
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
}

TEST_F(DamagedIndex, EveryFlippedByteIsDetectedOrHarmless) {
  // Whatever single byte is damaged, the reader either reports an error or returns exactly the original
  // contents (bytes no reader looks at, like the footer padding); it never crashes or returns wrong data.
  int detected = 0, harmless = 0;
  for (size_t i = 0; i < original_.size(); ++i) {
    std::string data = original_;
    data[i] ^= 0xff;
    WriteFile(damaged_, data);
    Status s;
    std::string got = Dump(damaged_, &s);
    if (!s.ok()) {
      ++detected;
    } else {
      ++harmless;
      ASSERT_EQ(got, expected_) << "byte " << i << " of " << original_.size() << " changed the answers silently";
    }
  }
  EXPECT_GT(detected, static_cast<int>(original_.size() * 3 / 4)) << harmless << " harmless flips";
}

TEST_F(DamagedIndex, TruncatedTableFailsToOpen) {
  for (size_t keep : {size_t{0}, size_t{1}, size_t{47}, size_t{48}, original_.size() / 2, original_.size() - 1}) {
    WriteFile(damaged_, original_.substr(0, keep));
    auto r = IndexReader::Open(damaged_);
    EXPECT_FALSE(r.ok()) << "kept " << keep << " of " << original_.size() << " bytes";
  }
}

TEST_F(DamagedIndex, AFooterNamingAHugeBlockIsCorruption) {
  // Found by index_reader_fuzz: a 51-byte file whose footer names an index block of 2^49 bytes, which
  // LevelDB allocated before reading (std::bad_alloc, i.e. a crash outside ASan).
  const std::string found("\xf0\x02\xd3\x48\x08\x57\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff"
                          "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xc3\xf7\x00\x00\x00"
                          "\x00\x57\xfb\x80\x8b\x24\x75\x47\xdb", 51);
  WriteFile(damaged_, found);
  auto r = IndexReader::Open(damaged_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::kCorruption) << r.status().ToString();
  // The same in a real table: its footer's index handle rewritten to name 2^49 bytes at offset 0.
  std::string data = original_;
  std::string footer(40, '\0');
  size_t at = 0;
  auto varint = [&](uint64_t v) {
    while (v >= 128) footer[at++] = static_cast<char>(v | 128), v >>= 7;
    footer[at++] = static_cast<char>(v);
  };
  varint(0), varint(1), varint(0), varint(uint64_t{1} << 49);  // metaindex (0, 1), index (0, 2^49)
  data.replace(data.size() - 48, 40, footer);
  WriteFile(damaged_, data);
  r = IndexReader::Open(damaged_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("damaged footer"), std::string::npos) << r.status().ToString();
}

TEST_F(DamagedIndex, GarbageAndMissingFiles) {
  EXPECT_FALSE(IndexReader::Open(dir_.path() + "/does-not-exist").ok());
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 31 + 7);
  WriteFile(damaged_, garbage);
  EXPECT_FALSE(IndexReader::Open(damaged_).ok());
  // A directory is not a table.
  EXPECT_FALSE(IndexReader::Open(dir_.path()).ok());
}

// Tables that are valid LevelDB tables but not valid indexes, written with LevelDB directly.
Status WriteTable(const std::string& path, const std::vector<std::pair<std::string, std::string>>& kvs) {
  leveldb::Env* env = leveldb::Env::Default();
  leveldb::WritableFile* raw = nullptr;
  leveldb::Status ls = env->NewWritableFile(path, &raw);
  if (!ls.ok()) return Status::IOError(ls.ToString());
  std::unique_ptr<leveldb::WritableFile> file(raw);
  leveldb::Options options;
  leveldb::TableBuilder t(options, file.get());
  for (const auto& [k, v] : kvs) t.Add(k, v);
  ls = t.Finish();
  if (ls.ok()) ls = file->Close();
  return ls.ok() ? Status::OK() : Status::IOError(ls.ToString());
}

std::string EncodedSummary(uint32_t blocks) {
  FileSummary s;
  s.blocks = blocks;
  s.packets = 1;
  s.linktypes = {1};
  return s.Encode();
}

std::string EncodedList(std::initializer_list<uint32_t> v) {
  PostingListBuilder b;
  for (uint32_t p : v) b.Add(p);
  return b.Encode();
}

TEST(IndexReader, RejectsStructurallyInvalidTables) {
  TempDir dir;
  const std::string path = dir.path() + "/t";
  BlockEntry e;
  e.packets = 1;
  e.linktype = 1;
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> kvs;
  } cases[] = {
      {"no summary", {{BlockKey(0), e.Encode()}, {Ipv4Key(1), EncodedList({112})}}},
      {"empty table", {}},
      {"summary of another version", {{SummaryKey(), std::string("\x02\0\0\0", 4) + std::string(56, '\0') + '\0'}}},
      {"short summary", {{SummaryKey(), std::string(10, '\0')}}},
      {"directory shorter than the summary says", {{SummaryKey(), EncodedSummary(2)}, {BlockKey(0), e.Encode()}}},
      {"directory with a gap",
       {{SummaryKey(), EncodedSummary(2)}, {BlockKey(0), e.Encode()}, {BlockKey(2), e.Encode()}}},
      {"short block entry", {{SummaryKey(), EncodedSummary(1)}, {BlockKey(0), e.Encode().substr(0, 10)}}},
  };
  for (const Case& c : cases) {
    ASSERT_TRUE(WriteTable(path, c.kvs).ok());
    auto r = IndexReader::Open(path);
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), Status::kCorruption) << c.what << ": " << r.status().ToString();
  }
  // And a well-formed one opens.
  ASSERT_TRUE(WriteTable(path, {{SummaryKey(), EncodedSummary(1)}, {BlockKey(0), e.Encode()}}).ok());
  EXPECT_TRUE(IndexReader::Open(path).ok());
}

TEST(IndexReader, BadPostingListIsCorruptionAtLookup) {
  TempDir dir;
  const std::string path = dir.path() + "/t";
  BlockEntry e;
  e.packets = 2;
  ASSERT_TRUE(WriteTable(path, {{SummaryKey(), EncodedSummary(1)},
                                {BlockKey(0), e.Encode()},
                                {Ipv4Key(1), EncodedList({112, 200})},
                                {Ipv4Key(2), EncodedList({112}) + "x"},         // trailing byte
                                {Ipv4Key(3), std::string("\x02\x70\x00", 3)}})  // zero delta
                  .ok());
  auto r = IndexReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Positions out;
  EXPECT_TRUE((*r)->Lookup(Ipv4Key(1), &out).ok());
  EXPECT_EQ(out, Positions({112, 200}));
  out.clear();
  EXPECT_EQ((*r)->Lookup(Ipv4Key(2), &out).code(), Status::kCorruption);
  out.clear();
  EXPECT_EQ((*r)->Lookup(Ipv4Key(3), &out).code(), Status::kCorruption);
  out.clear();
  EXPECT_EQ((*r)->LookupRange(Ipv4Key(0), Ipv4Key(10), &out).code(), Status::kCorruption);
}

}  // namespace
}  // namespace rwd
