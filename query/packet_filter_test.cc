#include "query/packet_filter.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "query/query_parser.h"
#include "index/test_frames.h"

namespace rwd {
namespace {

using test_frames::Put16;
using test_frames::Put32;
using test_frames::Append;
using test_frames::Ip4;
using test_frames::Eth;
using test_frames::Tag;

using Bytes = std::vector<uint8_t>;

constexpr int64_t kSecond = 1000000000;
constexpr int64_t kNow = int64_t{1795341600} * kSecond;  // 2026-11-22T10:00:00Z
constexpr int64_t kT = int64_t{1767225600} * kSecond;    // 2026-01-01T00:00:00Z





Bytes Ipv4(uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  Bytes l4;
  Put16(&l4, sport);
  Put16(&l4, dport);
  if (proto == 6) {
    Put32(&l4, 1);
    Put32(&l4, 0);
    l4.insert(l4.end(), {0x50, 0x12, 0x72, 0x10, 0, 0, 0, 0});  // SYN+ACK
  } else {
    Put16(&l4, 8);
    Put16(&l4, 0);
  }
  Bytes b = {0x45, 0};
  Put16(&b, static_cast<uint16_t>(20 + l4.size()));
  b.insert(b.end(), {0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0});
  Put32(&b, src);
  Put32(&b, dst);
  Append(&b, l4);
  return b;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Append(&b, p);
  return b;
}

struct Frame {
  Bytes bytes;
  int64_t ts_ns;
  PacketView View() const {
    PacketView v;
    v.data = bytes.data();
    v.caplen = v.len = static_cast<uint32_t>(bytes.size());
    v.ts_ns = ts_ns;
    v.ts_sec = static_cast<uint32_t>(ts_ns / kSecond);
    v.ts_nsec = static_cast<uint32_t>(ts_ns % kSecond);
    return v;
  }
};

const Frame kTcp80 = {Cat({Eth(0x0800), Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 2), 40000, 80)}), kT};
const Frame kTcp81 = {Cat({Eth(0x0800), Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 2), 40000, 81)}), kT};
const Frame kUdp80 = {Cat({Eth(0x0800), Ipv4(17, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 2), 40000, 80)}), kT};
const Frame kVlanTcp = {Cat({Eth(0x8100), Tag(100, 0x0800), Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 9), 1, 2)}), kT};
const Frame kQinQ = {
    Cat({Eth(0x88a8), Tag(200, 0x8100), Tag(300, 0x0800), Ipv4(17, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 9), 53, 53)}), kT};

Frame At(Frame f, int64_t ts) {
  f.ts_ns = ts;
  return f;
}

// Owns the parsed query for as long as the filter needs it.
class Filter {
 public:
  Filter(const std::string& text, bool vlan_fold = true) {
    QuerySyntaxError e;
    EXPECT_TRUE(ParseQuery(text, kNow, &q_, &e)) << text << ": " << e.ToString();
    filter_ = std::make_unique<PacketFilter>(q_.root.get(), vlan_fold);
  }
  bool Matches(const Frame& f, uint32_t linktype = 1) { return filter_->Matches(linktype, f.View()); }
  PacketFilter& get() { return *filter_; }

 private:
  ParsedQuery q_;
  std::unique_ptr<PacketFilter> filter_;
};

TEST(PacketFilter, BpfPartsAreExact) {
  Filter f("tcp port 80");
  EXPECT_TRUE(f.Matches(kTcp80));
  EXPECT_FALSE(f.Matches(kUdp80)) << "port 80 but UDP";
  EXPECT_FALSE(f.Matches(kTcp81));
  Filter src("src host 10.0.0.2");
  EXPECT_FALSE(src.Matches(kTcp80)) << "10.0.0.2 is the destination";
  Filter dst("dst host 10.0.0.2 and dst port 80");
  EXPECT_TRUE(dst.Matches(kTcp80));
  Filter flags("tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)");
  EXPECT_TRUE(flags.Matches(kTcp80));
  EXPECT_FALSE(flags.Matches(kUdp80));
  Filter neg("not tcp");
  EXPECT_FALSE(neg.Matches(kTcp80));
  EXPECT_TRUE(neg.Matches(kUdp80));
}

TEST(PacketFilter, NullRootMatchesEverything) {
  PacketFilter f(nullptr, false);
  EXPECT_TRUE(f.Matches(1, kTcp80.View()));
  EXPECT_TRUE(f.Matches(147, kUdp80.View()));
  EXPECT_TRUE(f.Validate({}).ok());
  ParsedQuery empty;
  QuerySyntaxError e;
  ASSERT_TRUE(ParseQuery("   ", kNow, &empty, &e));
  PacketFilter g(empty.root.get(), true);
  EXPECT_TRUE(g.Matches(1, kQinQ.View()));
}

TEST(PacketFilter, TimeTerms) {
  Filter after("after 2026-01-01T00:00:00Z");
  Filter before("before 2026-01-01T00:00:00Z");
  // after T: ts >= T; before T: ts < T. Exactly T is "after", one nanosecond earlier is "before".
  EXPECT_TRUE(after.Matches(At(kTcp80, kT)));
  EXPECT_FALSE(before.Matches(At(kTcp80, kT)));
  EXPECT_FALSE(after.Matches(At(kTcp80, kT - 1)));
  EXPECT_TRUE(before.Matches(At(kTcp80, kT - 1)));
  EXPECT_TRUE(after.Matches(At(kTcp80, kT + 1)));
  EXPECT_FALSE(before.Matches(At(kTcp80, kT + 1)));
  Filter not_after("not after 2026-01-01T00:00:00Z");
  EXPECT_FALSE(not_after.Matches(At(kTcp80, kT)));
  EXPECT_TRUE(not_after.Matches(At(kTcp80, kT - 1)));
  // Sub-second precision.
  Filter frac("after 2026-01-01T00:00:00.25Z");
  EXPECT_FALSE(frac.Matches(At(kTcp80, kT + kSecond / 4 - 1)));
  EXPECT_TRUE(frac.Matches(At(kTcp80, kT + kSecond / 4)));
  // Relative times are taken from the parse-time "now".
  Filter recent("after 1h ago");
  EXPECT_TRUE(recent.Matches(At(kTcp80, kNow - 3600 * kSecond)));
  EXPECT_FALSE(recent.Matches(At(kTcp80, kNow - 3600 * kSecond - 1)));
}

TEST(PacketFilter, TimeAndBpfMixed) {
  Filter f("tcp or before 2026-01-01");
  EXPECT_TRUE(f.Matches(At(kUdp80, kT - 1))) << "UDP, but early";
  EXPECT_FALSE(f.Matches(At(kUdp80, kT))) << "UDP, not early";
  EXPECT_TRUE(f.Matches(At(kTcp80, kT + 100 * kSecond))) << "TCP, late";
  Filter g("tcp and after 2026-01-01 and port 80");
  EXPECT_TRUE(g.Matches(At(kTcp80, kT)));
  EXPECT_FALSE(g.Matches(At(kTcp80, kT - 1)));
  EXPECT_FALSE(g.Matches(At(kTcp81, kT)));
  EXPECT_FALSE(g.Matches(At(kUdp80, kT)));
  Filter h("(after 2026-01-01 and before 2026-01-02) or udp");
  EXPECT_TRUE(h.Matches(At(kTcp80, kT + 3600 * kSecond)));
  EXPECT_FALSE(h.Matches(At(kTcp80, kT + 86400 * kSecond)));
  EXPECT_TRUE(h.Matches(At(kUdp80, kT + 86400 * kSecond)));
}

TEST(PacketFilter, VlanFold) {
  Filter fold("host 10.0.0.9", true);
  Filter exact("host 10.0.0.9", false);
  // tcpdump does not look inside the tag for `host`; with vlan_fold rewind does.
  EXPECT_FALSE(exact.Matches(kVlanTcp));
  EXPECT_TRUE(fold.Matches(kVlanTcp));
  EXPECT_FALSE(exact.Matches(kQinQ));
  EXPECT_TRUE(fold.Matches(kQinQ)) << "all tags are removed";
  // Untagged frames are unaffected either way.
  Filter fold2("host 10.0.0.2", true);
  EXPECT_TRUE(fold2.Matches(kTcp80));
  EXPECT_FALSE(Filter("host 10.0.0.9", true).Matches(kTcp80));
  // The tcpdump form matches with or without folding.
  EXPECT_TRUE(Filter("vlan and host 10.0.0.9", false).Matches(kVlanTcp));
  EXPECT_TRUE(Filter("vlan 100 and host 10.0.0.9", true).Matches(kVlanTcp));
  EXPECT_FALSE(Filter("vlan 101 and host 10.0.0.9", false).Matches(kVlanTcp));
  // Folding keeps what tcpdump matches: `vlan 100` on the tagged frame.
  EXPECT_TRUE(Filter("vlan 100", true).Matches(kVlanTcp));
  // Ports and protocols inside the tag.
  EXPECT_TRUE(Filter("udp port 53", true).Matches(kQinQ));
  EXPECT_FALSE(Filter("udp port 53", false).Matches(kQinQ));
  // Folding is for Ethernet only.
  EXPECT_FALSE(fold.Matches(kVlanTcp, 113)) << "not an Ethernet link type";
}

TEST(PacketFilter, AndChainKeepsVlanOffsetShiftAcrossTimeTerms) {
  // `vlan and after T and host X`: libpcap's `vlan` shifts the offsets of `host`, so both must be compiled
  // together even though a time term sits between them.
  Filter f("vlan and after 2026-01-01 and host 10.0.0.9", false);
  EXPECT_TRUE(f.Matches(At(kVlanTcp, kT)));
  EXPECT_FALSE(f.Matches(At(kVlanTcp, kT - 1)));
  EXPECT_FALSE(f.Matches(At(kTcp80, kT)));
}

TEST(PacketFilter, OtherLinkTypes) {
  // Raw IPv4 (LINKTYPE_RAW): the same query, compiled for that link type.
  Bytes raw = Ipv4(6, Ip4(10, 0, 0, 1), Ip4(10, 0, 0, 2), 40000, 80);
  Frame r{raw, kT};
  Filter f("host 10.0.0.2 and tcp port 80");
  EXPECT_TRUE(f.Matches(r, 101));
  EXPECT_FALSE(f.Matches(r, 1)) << "as Ethernet these bytes are something else";
  EXPECT_TRUE(f.get().inapplicable().empty());
  // A query that cannot be compiled for a link type never matches its packets, and says why.
  Filter e("ether src 00:1b:21:0d:0e:0f");
  EXPECT_TRUE(e.Matches(kTcp80, 1));
  EXPECT_FALSE(e.Matches(r, 101));
  ASSERT_EQ(e.get().inapplicable().count(101), 1u);
  EXPECT_FALSE(e.get().inapplicable().at(101).empty());
  EXPECT_EQ(e.get().inapplicable().count(1), 0u);
}

TEST(PacketFilter, TruncatedFrameDoesNotMatchBeyondCaplen) {
  Frame f = kTcp80;
  PacketView v = f.View();
  v.caplen = 30;  // cut inside the IP header, before the destination address
  Filter host("dst host 10.0.0.2");
  EXPECT_FALSE(host.get().Matches(1, v));
  Filter ip("ip");
  EXPECT_TRUE(ip.get().Matches(1, v));
}

TEST(PacketFilter, ValidateNamesThePositionOfTheBadPrimitive) {
  struct Case {
    const char* query;
    size_t position;
  } cases[] = {
      {"tcp and hots 1.2.3.4", 8},
      {"hots 1.2.3.4", 0},
      {"tcp and (port 80 or hots 1.2.3.4)", 20},
      {"after 2026-01-01 and hots 1.2.3.4", 21},
      {"port 80 or before 2026-01-01 or port 99999", 32},
  };
  for (const auto& c : cases) {
    Filter f(c.query);
    Status s = f.get().Validate({});
    ASSERT_FALSE(s.ok()) << c.query;
    EXPECT_EQ(s.code(), Status::kInvalidArgument) << c.query;
    const std::string prefix = "at position " + std::to_string(c.position) + ": ";
    EXPECT_EQ(s.message().substr(0, prefix.size()), prefix) << c.query << " -> " << s.message();
    EXPECT_GT(s.message().size(), prefix.size()) << "libpcap's message follows";
  }
  EXPECT_TRUE(Filter("tcp and host 1.2.3.4").get().Validate({}).ok());
  EXPECT_TRUE(Filter("tcp and after 2026-01-01").get().Validate({1}).ok());
}

TEST(PacketFilter, ValidateAcceptsAQueryValidForAnyOfTheLinkTypes) {
  // 802.11 frame types only exist on 802.11 (LINKTYPE_IEEE802_11 = 105).
  Filter wlan("type mgt");
  EXPECT_FALSE(wlan.get().Validate({}).ok()) << "Ethernet is assumed";
  EXPECT_FALSE(wlan.get().Validate({1, 101}).ok());
  EXPECT_TRUE(wlan.get().Validate({105}).ok());
  EXPECT_TRUE(wlan.get().Validate({1, 105}).ok());
  // Ethernet addresses exist on Ethernet but not on raw IP.
  Filter ether("ether host 00:1b:21:0d:0e:0f");
  EXPECT_TRUE(ether.get().Validate({}).ok());
  EXPECT_FALSE(ether.get().Validate({101}).ok());
  EXPECT_TRUE(ether.get().Validate({101, 1}).ok());
  Status s = ether.get().Validate({101});
  EXPECT_EQ(s.message().rfind("at position 0: ", 0), 0u) << s.message();
}

}  // namespace
}  // namespace rwd

namespace rwd {
namespace {

// "port first or port first+1 or ... port last", with `glue` between the terms.
std::string PortChain(int first, int last, const std::string& glue = " or ") {
  std::string q;
  for (int p = first; p <= last; ++p) q += (q.empty() ? "" : glue) + "port " + std::to_string(p);
  return q;
}

// The verdicts of libpcap's own program for the whole expression, as tcpdump has them.
std::vector<bool> WholeProgramMatches(const std::string& text, const std::vector<const Frame*>& frames) {
  bpf_program prog;
  std::string err;
  EXPECT_TRUE(CompileBpf(text, 1, &prog, &err)) << err;
  std::vector<bool> m;
  for (const Frame* f : frames) {
    PacketView v = f->View();
    m.push_back(bpf_filter(prog.bf_insns, v.data, v.len, v.caplen) != 0);
  }
  pcap_freecode(&prog);
  return m;
}

TEST(PacketFilter, AThousandTermQueryIsSplitIntoSmallPrograms) {
  Filter in(PortChain(1, 1000));
  ASSERT_TRUE(in.get().Validate({1}).ok());
  EXPECT_TRUE(in.Matches(kTcp80));
  EXPECT_TRUE(in.Matches(kUdp80));
  Filter out(PortChain(1001, 2000));
  ASSERT_TRUE(out.get().Validate({1}).ok());
  EXPECT_FALSE(out.Matches(kTcp80));
  Filter negated("not (" + PortChain(1, 1000) + ")");
  ASSERT_TRUE(negated.get().Validate({1}).ok());
  EXPECT_FALSE(negated.Matches(kTcp80));
  Filter both("tcp and (" + PortChain(70, 1000) + ") and after 2025-01-01");
  ASSERT_TRUE(both.get().Validate({1}).ok());
  EXPECT_TRUE(both.Matches(kTcp80));
  EXPECT_FALSE(both.Matches(kUdp80));
}

TEST(PacketFilter, SplitProgramsAgreeWithTheWholeProgram) {
  // Just above the split threshold, where libpcap still compiles the whole expression in reasonable time.
  const std::vector<std::string> queries = {
      PortChain(60, 100),
      "tcp and (" + PortChain(60, 100) + ")",
      PortChain(60, 100) + " and udp",
      "host 10.0.0.2 and " + PortChain(60, 100),
      "(" + PortChain(60, 80) + ") and not (" + PortChain(81, 100) + ")",
      PortChain(82, 120) + " or vlan 100 or port 80",
      PortChain(60, 100, " and not "),
  };
  const std::vector<const Frame*> frames = {&kTcp80, &kTcp81, &kUdp80, &kVlanTcp, &kQinQ};
  for (const std::string& q : queries) {
    Filter exact(q, /*vlan_fold=*/false);
    ASSERT_TRUE(exact.get().Validate({1}).ok()) << q;
    std::vector<bool> want = WholeProgramMatches(q, frames);
    for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(exact.Matches(*frames[i]), want[i]) << q << " frame " << i;
  }
}

TEST(PacketFilter, RefusesQueriesTooLargeToCompile) {
  Filter after_vlan("vlan and (" + PortChain(1, 100) + ")");
  Status s = after_vlan.get().Validate({1});
  EXPECT_EQ(s.code(), Status::kInvalidArgument);
  EXPECT_NE(s.message().find("at position 0: too many terms after a vlan"), std::string::npos) << s.message();
  // Beyond 1,024 terms the parser refuses the query before any filter is built (PacketFilter's own bound,
  // kMaxPrimitives, is above that).
  ParsedQuery huge;
  QuerySyntaxError e;
  EXPECT_FALSE(ParseQuery(PortChain(1, 5000), kNow, &huge, &e));
  EXPECT_NE(e.ToString().find("more than 1024 terms"), std::string::npos) << e.ToString();
  Filter largest(PortChain(1, 1024));
  EXPECT_TRUE(largest.get().Validate({1}).ok());
  EXPECT_TRUE(largest.Matches(kTcp80));
}

}  // namespace
}  // namespace rwd
