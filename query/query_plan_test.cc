#include "query/query_plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "index/block_format.h"
#include "index/index_builder.h"
#include "index/index_format.h"
#include "index/index_reader.h"
#include "index/test_temp_dir.h"
#include "query/packet_filter.h"
#include "query/query_parser.h"
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

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kNow = int64_t{1795341600} * kSecond;   // 2026-11-22T10:00:00Z
constexpr int64_t kJan1 = int64_t{1767225600} * kSecond;  // 2026-01-01T00:00:00Z
constexpr int64_t kJan2 = int64_t{1767312000} * kSecond;  // 2026-01-02T00:00:00Z
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

ParsedQuery Parse(const std::string& text) {
  ParsedQuery q;
  QuerySyntaxError e;
  EXPECT_TRUE(ParseQuery(text, kNow, &q, &e)) << text << ": " << e.ToString();
  return q;
}

struct Planned {
  ParsedQuery query;  // the plan may refer to nothing in it, but keep it alive anyway
  QueryPlan plan;
};

Planned Plan(const std::string& text) {
  Planned p;
  p.query = Parse(text);
  p.plan = QueryPlan::Build(p.query.root.get());
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Which queries use the index.

TEST(QueryPlan, IndexedPrimitives) {
  struct Case {
    const char* query;
    const char* describe;
  } cases[] = {
      {"host 10.1.2.3", "time [-inf, +inf) index: ipv4 10.1.2.3"},
      {"net 10.0.0.0/8", "time [-inf, +inf) index: ipv4 net 10.0.0.0/8"},
      {"port 53", "time [-inf, +inf) index: port 53"},
      {"tcp", "time [-inf, +inf) index: proto tcp"},
      {"udp", "time [-inf, +inf) index: proto udp"},
      {"host 2001:db8::1", "time [-inf, +inf) index: ipv6 2001:db8::1"},
      {"src host 10.0.0.1", "time [-inf, +inf) index: ipv4 10.0.0.1"},
      {"dst 10.0.0.1", "time [-inf, +inf) index: ipv4 10.0.0.1"},
      {"10.0.0.1", "time [-inf, +inf) index: ipv4 10.0.0.1"},
      {"tcp port 80", "time [-inf, +inf) index: port 80"},
      {"ip proto 47", "time [-inf, +inf) index: proto 47"},
      {"vlan 100", "time [-inf, +inf) index: vlan 100"},
      {"portrange 6000-6010", "time [-inf, +inf) index: portrange 6000-6010"},
      {"net 10.1.2.0 mask 255.255.255.0", "time [-inf, +inf) index: ipv4 net 10.1.2.0 mask 255.255.255.0"},
      {"host 10.0.0.1 and tcp[13] & 2 != 0", "time [-inf, +inf) index: ipv4 10.0.0.1"},
      {"host 10.0.0.1 and port 53", "time [-inf, +inf) index: and(ipv4 10.0.0.1, port 53)"},
      {"host 10.0.0.1 or port 53", "time [-inf, +inf) index: or(ipv4 10.0.0.1, port 53)"},
      {"tcp and not port 80", "time [-inf, +inf) index: proto tcp"},
      {"host 10.0.0.1 and after 2026-01-01", "time [1767225600000000000, +inf) index: ipv4 10.0.0.1"},
  };
  for (const auto& c : cases) {
    Planned p = Plan(c.query);
    EXPECT_TRUE(p.plan.uses_index()) << c.query;
    EXPECT_EQ(p.plan.Describe(), c.describe) << c.query;
  }
}

TEST(QueryPlan, UnindexedQueries) {
  const char* queries[] = {
      "not host 1.2.3.4",                   // negation
      "host a.example.com",                 // a name: libpcap resolves it
      "host 10.0.0.1 or tcp[13] & 2 != 0",  // or with an unindexed side
      "mpls and host 10.0.0.1",             // libpcap reads host at shifted offsets after mpls
      "pppoes and host 10.0.0.1",
      "vxlan and port 53",
      "host 10.0.0.1 and (mpls or tcp)",
      "ether host 00:11:22:33:44:55",
      "port http",  // a service name
      "tcp[13] & 2 != 0",
      "less 100",
      "after 2026-01-01",                   // time only
      "after 2026-01-01 or host 10.0.0.1",  // or with a time term
      "not (host 10.0.0.1 and port 53)",
  };
  for (const char* q : queries) {
    Planned p = Plan(q);
    EXPECT_FALSE(p.plan.uses_index()) << q << ": " << p.plan.Describe();
    EXPECT_NE(p.plan.Describe().find("index: all"), std::string::npos) << q << ": " << p.plan.Describe();
  }
  QueryPlan all = QueryPlan::Build(nullptr);
  EXPECT_FALSE(all.uses_index());
  EXPECT_EQ(all.time_range().lo, kMin);
  EXPECT_EQ(all.time_range().hi, kMax);
  EXPECT_EQ(all.Describe(), "time [-inf, +inf) index: all");
}

// ---------------------------------------------------------------------------------------------------------
// Time ranges.

TEST(QueryPlan, TimeRanges) {
  struct Case {
    const char* query;
    int64_t lo, hi;
  } cases[] = {
      {"after 2026-01-01", kJan1, kMax},
      {"before 2026-01-02", kMin, kJan2},
      {"after 2026-01-01 and before 2026-01-02", kJan1, kJan2},
      {"before 2026-01-02 and tcp and after 2026-01-01", kJan1, kJan2},
      {"after 2026-01-01 or host 10.0.0.1", kMin, kMax},  // the host side can match at any time
      {"(after 2026-01-01 and before 2026-01-02) or (after 2026-01-03 and before 2026-01-04)", kJan1,
       kJan1 + 3 * 86400 * kSecond},
      {"not after 2026-01-01", kMin, kJan1},   // ts < T
      {"not before 2026-01-02", kJan2, kMax},  // ts >= T
      {"not (after 2026-01-01 and before 2026-01-02)", kMin, kMax},
      {"tcp and not (after 2026-01-01)", kMin, kJan1},
      {"after 1h ago", kNow - 3600 * kSecond, kMax},
      {"host 10.0.0.1", kMin, kMax},
      {"after 2026-01-01 and after 2026-01-02", kJan2, kMax},
      {"after 2026-01-01 or after 2026-01-02", kJan1, kMax},
  };
  for (const auto& c : cases) {
    Planned p = Plan(c.query);
    EXPECT_EQ(p.plan.time_range().lo, c.lo) << c.query;
    EXPECT_EQ(p.plan.time_range().hi, c.hi) << c.query;
    EXPECT_FALSE(p.plan.time_range().empty()) << c.query;
  }
}

TEST(QueryPlan, ContradictoryTimesGiveAnEmptyRange) {
  Planned p = Plan("after 2026-01-02 and before 2026-01-01");
  EXPECT_TRUE(p.plan.time_range().empty());
  // An empty side of an `or` does not widen the other.
  p = Plan("(after 2026-01-02 and before 2026-01-01) or (after 2026-01-01 and before 2026-01-02)");
  EXPECT_EQ(p.plan.time_range().lo, kJan1);
  EXPECT_EQ(p.plan.time_range().hi, kJan2);
}

TEST(QueryPlan, TimeRangeOverlaps) {
  TimeRange r{100, 200};
  EXPECT_TRUE(r.Overlaps(100, 100));
  EXPECT_TRUE(r.Overlaps(199, 199));
  EXPECT_FALSE(r.Overlaps(200, 300)) << "hi is exclusive";
  EXPECT_FALSE(r.Overlaps(0, 99));
  EXPECT_TRUE(r.Overlaps(0, 100));
  EXPECT_TRUE(r.Overlaps(0, 1000));
  EXPECT_FALSE(r.empty());
  EXPECT_TRUE((TimeRange{5, 5}).empty());
  EXPECT_TRUE(TimeRange().Overlaps(kMin, kMin));
}

// ---------------------------------------------------------------------------------------------------------
// Candidates from a real index file.






Bytes L4(uint16_t sport, uint16_t dport, uint8_t proto) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  if (proto == 6) {
    Put32(&b, 1);
    Put32(&b, 0);
    b.insert(b.end(), {0x50, 0x02, 0x72, 0x10, 0, 0, 0, 0});
  } else {
    Put16(&b, 8);
    Put16(&b, 0);
  }
  return b;
}

Bytes Ipv4(uint8_t proto, uint32_t src, uint32_t dst, const Bytes& payload, int total_length = -1) {
  Bytes b = {0x45, 0};
  Put16(&b, static_cast<uint16_t>(total_length >= 0 ? total_length : 20 + static_cast<int>(payload.size())));
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

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Append(&b, p);
  return b;
}

struct TestBlock {
  uint32_t linktype;
  std::vector<Bytes> frames;
};

// Builds the blocks, indexes them into `path`, and returns every packet's position (pos[block][i]).
std::vector<Positions> BuildIndex(const std::string& path, const std::vector<TestBlock>& blocks) {
  std::vector<Positions> pos;
  IndexBuilder builder;
  AlignedBuffer buf = NewAlignedBuffer(kBlockSize);
  for (uint32_t b = 0; b < blocks.size(); ++b) {
    BlockBuilder bb;
    bb.Reset(buf.get(), blocks[b].linktype, 65535, b);
    pos.emplace_back();
    uint32_t i = 0;
    for (const Bytes& f : blocks[b].frames) {
      uint32_t offset = bb.bytes_used();
      EXPECT_TRUE(bb.Add(1767225600 + b * 100 + i, 0, static_cast<uint32_t>(f.size()), static_cast<uint32_t>(f.size()),
                         f.data()));
      pos.back().push_back(PacketPosition(b, offset));
      ++i;
    }
    bb.Finish();
    Status s = builder.AddBlock(b, uint64_t{b} * kBlockSize, kBlockSize, buf.get());
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  Status s = builder.Finish(path, blocks.size() * uint64_t{kBlockSize});
  EXPECT_TRUE(s.ok()) << s.ToString();
  return pos;
}

Bytes DeepVlanFrame() {
  // 17 stacked tags: more values than the dissector records, so the packet is indexed as incomplete.
  Bytes deep = Eth(0x8100);
  for (int i = 0; i < 16; ++i) Append(&deep, Tag(9, 0x8100));
  Append(&deep, Tag(9, 0x0800));
  Append(&deep, Ipv4(6, Ip4(10, 0, 0, 200), Ip4(10, 0, 0, 201), L4(1, 2, 6)));
  return deep;
}

class Candidates : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<TestBlock> blocks(4);
    blocks[0].linktype = 1;
    blocks[0].frames = {
        Cat({Eth(0x0800), Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 2), L4(1234, 80, 6))}),
        Cat({Eth(0x0800), Ipv4(17, Ip4(10, 0, 0, 3), Ip4(10, 0, 0, 1), L4(5000, 53, 17))}),
        Cat({Eth(0x86dd), Ipv6(17, Ip6("2001:db8::1"), Ip6("2001:db8::2"), L4(5000, 53, 17))}),
        Cat({Eth(0x8100), Tag(100, 0x0800), Ipv4(6, Ip4(10, 0, 0, 4), Ip4(10, 0, 0, 5), L4(80, 443, 6))}),
        Cat({Eth(0x0800), Ipv4(6, Ip4(192, 168, 1, 1), Ip4(10, 0, 0, 1), L4(22, 6000, 6))}),
    };
    // LINKTYPE_USER0: not decoded by the dissector, so not in the index at all.
    blocks[1].linktype = 147;
    blocks[1].frames = {Cat({Eth(0x0800), Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 1), L4(80, 80, 6))}), Bytes(30, 1)};
    blocks[2].linktype = 1;
    blocks[2].frames = {
        DeepVlanFrame(),
        Cat({Eth(0x0800), Ipv4(17, Ip4(10, 0, 0, 2), Ip4(10, 0, 0, 9), L4(53, 7000, 17))}),
    };
    // An empty block of an unsupported link type: nothing to read there.
    blocks[3].linktype = 147;
    blocks_ = blocks;
    path_ = dir_.path() + "/idx";
    pos_ = BuildIndex(path_, blocks);
    auto r = IndexReader::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    index_ = std::move(*r);
  }

  FileCandidates Get(const std::string& query) {
    Planned p = Plan(query);
    FileCandidates c;
    c.whole_blocks = {99};  // must be reset
    Status s = p.plan.Candidates(*index_, &c);
    EXPECT_TRUE(s.ok()) << query << ": " << s.ToString();
    return c;
  }

  // Expected positions for an indexed query: `hits` plus the incomplete packet.
  Positions With(std::initializer_list<std::pair<int, int>> hits) {
    Positions v = {P(2, 0)};
    for (auto [b, i] : hits) v.push_back(P(b, i));
    std::sort(v.begin(), v.end());
    return v;
  }

  uint32_t P(int b, int i) const { return pos_[b][i]; }

  TempDir dir_;
  std::vector<TestBlock> blocks_;
  std::string path_;
  std::vector<Positions> pos_;
  std::unique_ptr<IndexReader> index_;
};

TEST_F(Candidates, SingleLookups) {
  struct Case {
    const char* query;
    Positions want;
  } cases[] = {
      {"host 10.0.0.1", With({{0, 0}, {0, 1}, {0, 4}})},
      {"src host 10.0.0.1", With({{0, 0}, {0, 1}, {0, 4}})},  // a superset: direction is left to the filter
      {"port 53", With({{0, 1}, {0, 2}, {2, 1}})},
      {"tcp", With({{0, 0}, {0, 3}, {0, 4}})},
      {"udp", With({{0, 1}, {0, 2}, {2, 1}})},
      {"ip6", With({{0, 2}})},
      {"host 2001:db8::2", With({{0, 2}})},
      {"vlan 100", With({{0, 3}})},
      {"vlan", With({{0, 3}})},
      {"net 10.0.0.0/29", With({{0, 0}, {0, 1}, {0, 3}, {0, 4}, {2, 1}})},
      {"net 10.0.0.8/29", With({{2, 1}})},
      {"net 192.168", With({{0, 4}})},
      {"portrange 50-60", With({{0, 1}, {0, 2}, {2, 1}})},
      {"host 10.0.0.77", With({})},
      {"port 9", With({})},
      // Numbers as libpcap's scanner reads them: a leading 0 is octal, 0x hex; the ends of a port range and the
      // parts of a dotted address are decimal.
      {"port 065", With({{0, 1}, {0, 2}, {2, 1}})},   // 53
      {"port 0x35", With({{0, 1}, {0, 2}, {2, 1}})},  // 53
      {"port 0120", With({{0, 0}, {0, 3}})},           // 80
      {"udp port 53", With({{0, 1}, {0, 2}, {2, 1}})},
      {"ip proto 021", With({{0, 1}, {0, 2}, {2, 1}})},  // 17
      {"vlan 0144", With({{0, 3}})},                     // 100
      {"portrange 050-060", With({{0, 1}, {0, 2}, {2, 1}})},
      {"net 012", With({{0, 0}, {0, 1}, {0, 3}, {0, 4}, {2, 1}})},  // 10.0.0.0/8
      {"net 010.0.0.0/29", With({{0, 0}, {0, 1}, {0, 3}, {0, 4}, {2, 1}})},
      {"net 10.0.0.8/035", With({{2, 1}})},  // /29
      // A prefix of length 0 matches every packet of the network type, addresses or not.
      {"net 0.0.0.0/0", With({{0, 0}, {0, 1}, {0, 3}, {0, 4}, {2, 1}})},
      {"net 0.0.0.0 mask 0.0.0.0", With({{0, 0}, {0, 1}, {0, 3}, {0, 4}, {2, 1}})},
      {"net ::/0", With({{0, 2}})},
  };
  for (const auto& c : cases) {
    FileCandidates got = Get(c.query);
    EXPECT_FALSE(got.all) << c.query;
    EXPECT_EQ(got.positions, c.want) << c.query;
    EXPECT_EQ(got.whole_blocks, std::vector<uint32_t>({1})) << c.query;
  }
}

// `vlan` under `or` shifts libpcap's later reads even for untagged frames, so the index cannot answer it.
TEST_F(Candidates, VlanUnderOrScansEverything) {
  EXPECT_TRUE(Get("vlan 100 or ip6").all);
  EXPECT_TRUE(Get("not vlan and host 10.0.0.1").all);
  EXPECT_FALSE(Get("vlan 100 and host 10.0.0.1").all);
}

TEST_F(Candidates, AndOrCombinations) {
  struct Case {
    const char* query;
    Positions want;
  } cases[] = {
      {"host 10.0.0.1 and port 53", With({{0, 1}})},
      {"host 10.0.0.1 or port 53", With({{0, 0}, {0, 1}, {0, 2}, {0, 4}, {2, 1}})},
      {"host 10.0.0.1 and tcp", With({{0, 0}, {0, 4}})},
      {"(host 10.0.0.1 or host 10.0.0.4) and tcp", With({{0, 0}, {0, 3}, {0, 4}})},
      {"tcp and not port 80", With({{0, 0}, {0, 3}, {0, 4}})},  // the negation is left to the filter
      {"host 10.0.0.1 and tcp[13] & 2 != 0", With({{0, 0}, {0, 1}, {0, 4}})},
      {"udp and (port 53 or port 7000) and host 10.0.0.9", With({{2, 1}})},
      {"host 10.0.0.1 and host 10.0.0.9", With({})},
      {"port 53 and after 2026-01-01", With({{0, 1}, {0, 2}, {2, 1}})},  // time is handled elsewhere
      {"vlan 100 and tcp", With({{0, 3}})},
  };
  for (const auto& c : cases) {
    FileCandidates got = Get(c.query);
    EXPECT_FALSE(got.all) << c.query;
    EXPECT_EQ(got.positions, c.want) << c.query;
    EXPECT_EQ(got.whole_blocks, std::vector<uint32_t>({1})) << c.query;
  }
}

TEST_F(Candidates, UnindexedQueriesReadEverything) {
  for (const char* q :
       {"not host 10.0.0.1", "host 10.0.0.1 or tcp[13] & 2 != 0", "mpls and host 10.0.0.1", "after 2026-01-01"}) {
    FileCandidates got = Get(q);
    EXPECT_TRUE(got.all) << q;
    EXPECT_TRUE(got.positions.empty()) << q;
    EXPECT_TRUE(got.whole_blocks.empty()) << q;
  }
}

TEST_F(Candidates, EveryMatchingPacketIsACandidate) {
  // Soundness against the exact filter: every packet PacketFilter matches must be read, i.e. be among the
  // positions, or in a whole block, or the plan reads everything.
  const char* queries[] = {"host 10.0.0.1",
                           "port 53",
                           "tcp",
                           "udp and host 10.0.0.2",
                           "vlan 100",
                           "host 10.0.0.200",
                           "net 10.0.0.0/24 and tcp",
                           "ip6 or port 22",
                           "vlan",
                           "host 10.0.0.1 and not udp",
                           "portrange 79-81"};
  for (const char* q : queries) {
    Planned p = Plan(q);
    FileCandidates c;
    ASSERT_TRUE(p.plan.Candidates(*index_, &c).ok()) << q;
    PacketFilter filter(p.query.root.get(), /*vlan_fold=*/true);
    int matched = 0;
    for (uint32_t b = 0; b < blocks_.size(); ++b) {
      for (uint32_t i = 0; i < blocks_[b].frames.size(); ++i) {
        const Bytes& f = blocks_[b].frames[i];
        PacketView v;
        v.data = f.data();
        v.caplen = v.len = static_cast<uint32_t>(f.size());
        // Unsupported link types are matched as Ethernet here: the point is that they are read at all.
        if (!filter.Matches(1, v)) continue;
        ++matched;
        const bool read = c.all || std::binary_search(c.positions.begin(), c.positions.end(), P(b, i)) ||
                          std::find(c.whole_blocks.begin(), c.whole_blocks.end(), b) != c.whole_blocks.end();
        EXPECT_TRUE(read) << q << ": packet " << i << " of block " << b << " matches but is not a candidate";
      }
    }
    EXPECT_GT(matched, 0) << q << ": the query should match something";
  }
}

// ---------------------------------------------------------------------------------------------------------
// libpcap shifts the offsets of every primitive after `vlan` (as after `mpls`), whether or not the `vlan`
// test matched. Under `or`/`not` it then reads host/port at +4 in untagged frames.

TEST(QueryPlanSoundness, VlanShiftsLaterPrimitivesEvenWhenItDoesNotMatch) {
  // An untagged IPv4/TCP frame whose IP total length is 0x0800 and whose TCP ports (bytes 34..37 of the
  // frame) read 10.0.0.1: libpcap's `vlan or host 10.0.0.1` looks for the ethertype at 16 and the
  // addresses at 30 and 34, and matches. The frame's real addresses are 10.0.0.7 and 10.0.0.8.
  Bytes frame = Cat({Eth(0x0800), Ipv4(6, Ip4(10, 0, 0, 7), Ip4(10, 0, 0, 8), L4(0x0a00, 0x0001, 6), 0x0800)});
  TempDir dir;
  std::vector<TestBlock> blocks(1);
  blocks[0].linktype = 1;
  blocks[0].frames = {frame};
  std::vector<Positions> pos = BuildIndex(dir.path() + "/idx", blocks);
  auto index = IndexReader::Open(dir.path() + "/idx");
  ASSERT_TRUE(index.ok());

  PacketView view;
  view.data = frame.data();
  view.caplen = view.len = static_cast<uint32_t>(frame.size());
  for (const char* q : {"vlan or host 10.0.0.1", "not vlan and host 10.0.0.1", "vlan 5 or host 10.0.0.1"}) {
    Planned p = Plan(q);
    PacketFilter filter(p.query.root.get(), /*vlan_fold=*/false);
    ASSERT_TRUE(filter.Matches(1, view)) << q << ": libpcap (and so tcpdump) matches this frame";
  }

  for (const char* q : {"vlan or host 10.0.0.1", "not vlan and host 10.0.0.1", "vlan 5 or host 10.0.0.1"}) {
    Planned p = Plan(q);
    FileCandidates c;
    ASSERT_TRUE(p.plan.Candidates(**index, &c).ok());
    const bool candidate = c.all || std::binary_search(c.positions.begin(), c.positions.end(), pos[0][0]);
    EXPECT_TRUE(candidate) << q << ": " << p.plan.Describe();
  }
}

}  // namespace
}  // namespace rwd
