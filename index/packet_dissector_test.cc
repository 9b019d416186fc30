#include "index/packet_dissector.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

using Bytes = std::vector<uint8_t>;
using Addr6 = std::array<uint8_t, 16>;

// ---------------------------------------------------------------------------------------------------------
// Frame building.

void Put8(Bytes* b, uint8_t v) { b->push_back(v); }
void Put16(Bytes* b, uint16_t v) {
  b->push_back(v >> 8);
  b->push_back(v & 0xff);
}
void Put32(Bytes* b, uint32_t v) {
  Put16(b, v >> 16);
  Put16(b, v & 0xffff);
}
void PutAll(Bytes* b, const Bytes& x) { b->insert(b->end(), x.begin(), x.end()); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) PutAll(&b, p);
  return b;
}

constexpr uint32_t Ip4(int a, int b, int c, int d) {
  return static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 | static_cast<uint32_t>(c) << 8 |
         static_cast<uint32_t>(d);
}

Addr6 Ip6(const char* s) {
  Addr6 a{};
  EXPECT_EQ(1, inet_pton(AF_INET6, s, a.data())) << s;
  return a;
}

std::string Ip4String(uint32_t a) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
  return buf;
}

std::string Ip6String(const uint8_t* a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a, buf, sizeof(buf));
  return buf;
}

Bytes Ethernet(uint16_t type) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  Put16(&b, type);
  return b;
}

Bytes VlanTag(uint16_t tci, uint16_t inner_type) {
  Bytes b;
  Put16(&b, tci);
  Put16(&b, inner_type);
  return b;
}

struct Ipv4Options {
  uint8_t version = 4;
  uint8_t ihl = 5;        // the header is max(ihl, 5) * 4 bytes long whatever this says
  uint16_t fragment = 0;  // flags and fragment offset field
};

Bytes Ipv4(uint8_t proto, uint32_t src, uint32_t dst, Ipv4Options o = {}) {
  Bytes b;
  Put8(&b, static_cast<uint8_t>(o.version << 4 | o.ihl));
  Put8(&b, 0);        // TOS
  Put16(&b, 0);       // total length (the dissector does not use it)
  Put16(&b, 0x1234);  // id
  Put16(&b, o.fragment);
  Put8(&b, 64);  // TTL
  Put8(&b, proto);
  Put16(&b, 0);  // checksum
  Put32(&b, src);
  Put32(&b, dst);
  for (int i = 5; i < o.ihl; i++) Put32(&b, 0x01010101);  // NOP options
  return b;
}

Bytes Ipv6(uint8_t next, const Addr6& src, const Addr6& dst) {
  Bytes b = {0x60, 0, 0, 0, 0, 0, next, 64};
  b.insert(b.end(), src.begin(), src.end());
  b.insert(b.end(), dst.begin(), dst.end());
  return b;
}

// A generic IPv6 extension header (hop-by-hop, routing, destination options) of (len8 + 1) * 8 bytes.
Bytes Ipv6Extension(uint8_t next, uint8_t len8) {
  Bytes b = {next, len8};
  b.resize((len8 + 1) * 8, 0);
  return b;
}

Bytes Ipv6Fragment(uint8_t next, uint16_t offset8, bool more) {
  Bytes b = {next, 0};
  Put16(&b, static_cast<uint16_t>(offset8 << 3 | (more ? 1 : 0)));
  Put32(&b, 0xabcd);
  return b;
}

// Authentication header: payload length in 4-byte units minus 2.
Bytes Ipv6Ah(uint8_t next) {
  Bytes b = {next, 4};  // (4 + 2) * 4 = 24 bytes
  b.resize(24, 0xaa);
  return b;
}

Bytes Udp(uint16_t sport, uint16_t dport) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  Put16(&b, 8);
  Put16(&b, 0);
  return b;
}

Bytes Tcp(uint16_t sport, uint16_t dport) {
  Bytes b;
  Put16(&b, sport);
  Put16(&b, dport);
  Put32(&b, 1000);
  Put32(&b, 0);
  Put16(&b, 0x5002);  // data offset 5, SYN
  Put16(&b, 65535);
  Put32(&b, 0);
  return b;
}

Bytes Arp(uint16_t op, uint32_t sender, uint32_t target) {
  Bytes b;
  Put16(&b, 1);       // hardware: Ethernet
  Put16(&b, 0x0800);  // protocol: IPv4
  Put8(&b, 6);
  Put8(&b, 4);
  Put16(&b, op);
  for (int i = 0; i < 6; i++) Put8(&b, 0x02);
  Put32(&b, sender);
  for (int i = 0; i < 6; i++) Put8(&b, 0);
  Put32(&b, target);
  return b;
}

Bytes Gre(uint16_t flags, uint16_t type) {
  Bytes b;
  Put16(&b, flags);
  Put16(&b, type);
  if (flags & 0x8000) Put32(&b, 0xc5c50000);                    // checksum + reserved
  if (flags & 0x2000) Put32(&b, 0x00006b6b);                    // key
  if (flags & 0x1000) Put32(&b, 7);                             // sequence
  if ((flags & 0x0007) == 1 && (flags & 0x0080)) Put32(&b, 6);  // PPTP acknowledgment
  return b;
}

Bytes Vxlan(uint32_t vni) {
  Bytes b = {0x08, 0, 0, 0};
  Put32(&b, vni << 8);
  return b;
}

Bytes Mpls(uint32_t label, bool bottom) {
  Bytes b;
  Put32(&b, label << 12 | (bottom ? 0x100 : 0) | 64);
  return b;
}

Bytes Payload(size_t n) { return Bytes(n, 0x5a); }

Bytes Sll(uint16_t protocol) {
  Bytes b;
  Put16(&b, 0);  // packet type: to us
  Put16(&b, 1);  // ARPHRD_ETHER
  Put16(&b, 6);
  for (int i = 0; i < 8; i++) Put8(&b, i < 6 ? 0x02 : 0);
  Put16(&b, protocol);
  return b;
}

Bytes Sll2(uint16_t protocol) {
  Bytes b;
  Put16(&b, protocol);
  Put16(&b, 0);  // reserved
  Put32(&b, 3);  // interface index
  Put16(&b, 1);  // ARPHRD_ETHER
  Put8(&b, 0);   // packet type
  Put8(&b, 6);
  for (int i = 0; i < 8; i++) Put8(&b, i < 6 ? 0x02 : 0);
  return b;
}

Bytes NullHeader(uint32_t af, bool big_endian) {
  Bytes b;
  if (big_endian) {
    Put32(&b, af);
  } else {
    for (int i = 0; i < 4; i++) Put8(&b, (af >> (8 * i)) & 0xff);
  }
  return b;
}

// ---------------------------------------------------------------------------------------------------------
// Running the dissector on bytes placed right before an inaccessible page, so that a read past caplen
// faults even without AddressSanitizer.

class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity) {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_ = (capacity + page_ - 1) / page_ * page_;
    void* m = mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t*>(m);
    if (mprotect(base_ + size_, page_, PROT_NONE) != 0) std::abort();
  }
  ~GuardedBuffer() { munmap(base_, size_ + page_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  size_t capacity() const { return size_; }
  // Copies `n` bytes so that the last one is the last accessible byte.
  const uint8_t* Place(const uint8_t* data, size_t n) {
    if (n > size_) std::abort();
    uint8_t* p = base_ + size_ - n;
    if (n > 0) std::memcpy(p, data, n);
    return p;
  }

 private:
  uint8_t* base_;
  size_t size_;
  size_t page_;
};

GuardedBuffer* Guard() {
  static GuardedBuffer* buffer = new GuardedBuffer(512 * 1024);
  return buffer;
}

PacketFields Dissect(uint32_t linktype, const Bytes& frame, size_t caplen) {
  PacketFields f;
  DissectPacket(linktype, Guard()->Place(frame.data(), caplen), static_cast<uint32_t>(caplen), &f);
  return f;
}

PacketFields Dissect(uint32_t linktype, const Bytes& frame) { return Dissect(linktype, frame, frame.size()); }

// Field accessors giving printable vectors for EXPECT_EQ.
std::vector<std::string> Ipv4s(const PacketFields& f) {
  std::vector<std::string> v;
  for (int i = 0; i < f.num_ipv4; i++) v.push_back(Ip4String(f.ipv4[i]));
  return v;
}
std::vector<std::string> Ipv6s(const PacketFields& f) {
  std::vector<std::string> v;
  for (int i = 0; i < f.num_ipv6; i++) v.push_back(Ip6String(f.ipv6[i].data()));
  return v;
}
std::vector<int> Ports(const PacketFields& f) { return std::vector<int>(f.ports, f.ports + f.num_ports); }
std::vector<int> Protocols(const PacketFields& f) {
  return std::vector<int>(f.protocols, f.protocols + f.num_protocols);
}
std::vector<int> EtherTypes(const PacketFields& f) {
  return std::vector<int>(f.ethertypes, f.ethertypes + f.num_ethertypes);
}
std::vector<int> Vlans(const PacketFields& f) { return std::vector<int>(f.vlans, f.vlans + f.num_vlans); }

using S = std::vector<std::string>;
using I = std::vector<int>;

const uint32_t kA = Ip4(10, 0, 0, 1);
const uint32_t kB = Ip4(192, 168, 1, 2);
const uint32_t kC = Ip4(172, 16, 0, 3);
const uint32_t kD = Ip4(8, 8, 4, 4);

// ---------------------------------------------------------------------------------------------------------
// The frames used below, by name, so the truncation test can run every one of them.

struct NamedFrame {
  const char* name;
  uint32_t linktype;
  Bytes bytes;
};

std::vector<NamedFrame> AllFrames() {
  const Addr6 s6 = Ip6("2001:db8::1");
  const Addr6 d6 = Ip6("2001:db8::2");
  std::vector<NamedFrame> v;
  v.push_back({"eth_ipv4_tcp", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(6, kA, kB), Tcp(40000, 443), Payload(10)})});
  v.push_back({"eth_ipv6_udp", kLinkEthernet, Cat({Ethernet(0x86dd), Ipv6(17, s6, d6), Udp(5353, 53)})});
  v.push_back({"eth_8023_llc", kLinkEthernet, Cat({Ethernet(0x0026), {0x42, 0x42, 0x03}, Payload(35)})});
  v.push_back({"eth_arp", kLinkEthernet, Cat({Ethernet(0x0806), Arp(1, kA, kB)})});
  v.push_back({"eth_rarp", kLinkEthernet, Cat({Ethernet(0x8035), Arp(3, kC, kD)})});
  v.push_back({"eth_vlan", kLinkEthernet,
               Cat({Ethernet(0x8100), VlanTag(0x2064, 0x0800), Ipv4(17, kA, kB), Udp(1234, 53)})});
  v.push_back({"eth_qinq_88a8", kLinkEthernet,
               Cat({Ethernet(0x88a8), VlanTag(200, 0x8100), VlanTag(0xf12c, 0x86dd), Ipv6(6, s6, d6),
                    Tcp(22, 50000)})});
  v.push_back({"eth_qinq_9100", kLinkEthernet,
               Cat({Ethernet(0x9100), VlanTag(7, 0x8100), VlanTag(8, 0x0806), Arp(2, kC, kD)})});
  v.push_back({"eth_mpls2_ipv4", kLinkEthernet,
               Cat({Ethernet(0x8847), Mpls(16, false), Mpls(17, true), Ipv4(6, kC, kD), Tcp(80, 1025)})});
  v.push_back({"eth_mpls_ipv6", kLinkEthernet,
               Cat({Ethernet(0x8848), Mpls(99, true), Ipv6(17, s6, d6), Udp(123, 123)})});
  v.push_back({"eth_pppoe_ipv4", kLinkEthernet,
               Cat({Ethernet(0x8864),
                    {0x11, 0x00, 0x00, 0x01, 0x00, 0x30, 0x00, 0x21},
                    Ipv4(17, kA, kD),
                    Udp(68, 67)})});
  v.push_back(
      {"ipv4_first_fragment", kLinkEthernet,
       Cat({Ethernet(0x0800), Ipv4(17, kA, kB, {.fragment = 0x2000}), Udp(1111, 2222), Payload(16)})});
  v.push_back({"ipv4_later_fragment", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(17, kA, kB, {.fragment = 0x00b9}), Payload(24)})});
  v.push_back({"ipv4_ihl0", kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(6, kA, kB, {.ihl = 0}), Tcp(1, 2)})});
  v.push_back({"ipv4_ihl3_ipip", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(4, kA, kB, {.ihl = 3}), Ipv4(6, kC, kD), Tcp(1, 2)})});
  v.push_back(
      {"ipv4_options", kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(6, kA, kB, {.ihl = 7}), Tcp(8080, 9090)})});
  v.push_back(
      {"ipv4_version6", kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(6, kA, kB, {.version = 6}), Tcp(5, 6)})});
  v.push_back({"ipv6_ext_chain", kLinkEthernet,
               Cat({Ethernet(0x86dd), Ipv6(0, s6, d6), Ipv6Extension(60, 0), Ipv6Extension(43, 1),
                    Ipv6Extension(51, 0), Ipv6Ah(6), Tcp(993, 60000)})});
  v.push_back({"ipv6_first_fragment", kLinkEthernet,
               Cat({Ethernet(0x86dd), Ipv6(44, s6, d6), Ipv6Fragment(17, 0, true), Udp(53, 3333)})});
  v.push_back({"ipv6_later_fragment", kLinkEthernet,
               Cat({Ethernet(0x86dd), Ipv6(44, s6, d6), Ipv6Fragment(17, 100, false), Payload(16)})});
  v.push_back(
      {"ipip", kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(4, kA, kB), Ipv4(6, kC, kD), Tcp(1000, 2000)})});
  v.push_back(
      {"6in4", kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(41, kA, kB), Ipv6(17, s6, d6), Udp(3000, 4000)})});
  v.push_back({"4in6", kLinkEthernet,
               Cat({Ethernet(0x86dd), Ipv6(4, s6, d6), Ipv4(132, kC, kD), Udp(36412, 36412)})});
  v.push_back({"gre_csum_key_seq_ipv4", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(47, kA, kB), Gre(0xb000, 0x0800), Ipv4(17, kC, kD), Udp(7, 9)})});
  v.push_back(
      {"gre_ipv6_over_ipv6", kLinkEthernet,
       Cat({Ethernet(0x86dd), Ipv6(47, s6, d6), Gre(0x2000, 0x86dd), Ipv6(6, d6, s6), Tcp(443, 5555)})});
  v.push_back({"gre_teb_vlan", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(47, kA, kB), Gre(0x0000, 0x6558), Ethernet(0x8100),
                    VlanTag(42, 0x0800), Ipv4(1, kC, kD), Payload(8)})});
  v.push_back({"gre_pptp_ppp", kLinkEthernet,
               Cat({Ethernet(0x0800),
                    Ipv4(47, kA, kB),
                    Gre(0x3081, 0x880b),
                    {0xff, 0x03, 0x00, 0x21},
                    Ipv4(6, kC, kD),
                    Tcp(1723, 1724)})});
  v.push_back({"gre_erspan2", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(47, kA, kB), Gre(0x1000, 0x88be), Payload(8), Ethernet(0x0800),
                    Ipv4(17, kC, kD), Udp(514, 514)})});
  v.push_back({"vxlan", kLinkEthernet,
               Cat({Ethernet(0x0800), Ipv4(17, kA, kB), Udp(45149, 4789), Vxlan(100), Ethernet(0x0800),
                    Ipv4(6, kC, kD), Tcp(80, 8080)})});
  v.push_back({"sll_ipv4", kLinkLinuxSll, Cat({Sll(0x0800), Ipv4(6, kA, kB), Tcp(1, 2)})});
  v.push_back({"sll_arp", kLinkLinuxSll, Cat({Sll(0x0806), Arp(1, kC, kD)})});
  v.push_back({"sll2_ipv6", kLinkLinuxSll2, Cat({Sll2(0x86dd), Ipv6(17, s6, d6), Udp(546, 547)})});
  v.push_back({"null_le_ipv4", kLinkNull, Cat({NullHeader(2, false), Ipv4(17, kA, kB), Udp(9, 10)})});
  v.push_back({"null_be_ipv6", kLinkNull, Cat({NullHeader(30, true), Ipv6(6, s6, d6), Tcp(11, 12)})});
  v.push_back({"loop_ipv4", kLinkLoop, Cat({NullHeader(2, true), Ipv4(6, kA, kB), Tcp(13, 14)})});
  v.push_back({"raw_ipv4", kLinkRaw, Cat({Ipv4(17, kA, kB), Udp(15, 16)})});
  v.push_back({"raw_ipv6", kLinkRaw, Cat({Ipv6(6, s6, d6), Tcp(17, 18)})});
  v.push_back({"linktype_ipv4", kLinkIpv4, Cat({Ipv4(17, kC, kD), Udp(19, 20)})});
  v.push_back({"linktype_ipv6", kLinkIpv6, Cat({Ipv6(17, s6, d6), Udp(21, 22)})});
  return v;
}

const Bytes& Frame(const char* name) {
  static const std::vector<NamedFrame>* frames = new std::vector<NamedFrame>(AllFrames());
  for (const NamedFrame& f : *frames) {
    if (std::strcmp(f.name, name) == 0) return f.bytes;
  }
  std::abort();
}

// ---------------------------------------------------------------------------------------------------------

TEST(PacketDissector, SupportedLinkTypes) {
  for (uint32_t lt : {0u, 1u, 12u, 14u, 101u, 108u, 113u, 228u, 229u, 276u}) {
    EXPECT_TRUE(DissectorSupportsLinkType(lt)) << lt;
  }
  for (uint32_t lt : {2u, 9u, 105u, 107u, 127u, 239u, 274u, 0x300000e5u, 0xffffffffu}) {
    EXPECT_FALSE(DissectorSupportsLinkType(lt)) << lt;
  }
}

TEST(PacketDissector, UnknownLinkTypeIsIncompleteAndResetsFields) {
  PacketFields f;
  const Bytes& frame = Frame("eth_ipv4_tcp");
  DissectPacket(kLinkEthernet, frame.data(), frame.size(), &f);
  ASSERT_EQ(2, f.num_ipv4);
  ASSERT_FALSE(f.incomplete);
  DissectPacket(127, frame.data(), frame.size(), &f);  // radiotap
  EXPECT_TRUE(f.incomplete);
  EXPECT_EQ(0, f.num_ipv4);
  EXPECT_EQ(0, f.num_ipv6);
  EXPECT_EQ(0, f.num_ports);
  EXPECT_EQ(0, f.num_protocols);
  EXPECT_EQ(0, f.num_ethertypes);
  EXPECT_EQ(0, f.num_vlans);
  EXPECT_EQ(0, f.flow.ip_version);
  // And back: a supported packet clears `incomplete`.
  DissectPacket(kLinkEthernet, frame.data(), frame.size(), &f);
  EXPECT_FALSE(f.incomplete);
  DissectPacket(kLinkEthernet, nullptr, 0, &f);
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(0, f.num_ethertypes);
}

TEST(PacketDissector, EthernetIpv4Tcp) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_ipv4_tcp"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(0, f.num_ipv6);
  EXPECT_EQ(I({40000, 443}), Ports(f));
  EXPECT_EQ(I({6}), Protocols(f));
  EXPECT_EQ(I({0x0800}), EtherTypes(f));
  EXPECT_EQ(0, f.num_vlans);
  EXPECT_EQ(4, f.flow.ip_version);
  EXPECT_EQ(10, f.flow.src[0]);
  EXPECT_EQ(1, f.flow.src[3]);
  EXPECT_EQ(192, f.flow.dst[0]);
  EXPECT_EQ(2, f.flow.dst[3]);
  EXPECT_EQ(6, f.flow.protocol);
  EXPECT_TRUE(f.flow.has_ports);
  EXPECT_EQ(40000, f.flow.src_port);
  EXPECT_EQ(443, f.flow.dst_port);
}

TEST(PacketDissector, EthernetIpv6Udp) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_ipv6_udp"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(0, f.num_ipv4);
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({5353, 53}), Ports(f));
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_EQ(I({0x86dd}), EtherTypes(f));
  EXPECT_EQ(6, f.flow.ip_version);
  EXPECT_EQ(Ip6("2001:db8::1"), f.flow.src);
  EXPECT_EQ(Ip6("2001:db8::2"), f.flow.dst);
  EXPECT_EQ(17, f.flow.protocol);
  EXPECT_TRUE(f.flow.has_ports);
  EXPECT_EQ(5353, f.flow.src_port);
  EXPECT_EQ(53, f.flow.dst_port);
}

TEST(PacketDissector, Ethernet8023FrameHasNoNetworkLayer) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_8023_llc"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x0026}), EtherTypes(f));  // the length field, as found
  EXPECT_EQ(0, f.num_ipv4);
  EXPECT_EQ(0, f.num_protocols);
  EXPECT_EQ(0, f.flow.ip_version);
}

TEST(PacketDissector, ArpAndRarpAddresses) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_arp"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));  // sender, target
  EXPECT_EQ(I({0x0806}), EtherTypes(f));
  EXPECT_EQ(0, f.num_ports);
  EXPECT_EQ(0, f.num_protocols);
  EXPECT_EQ(0, f.flow.ip_version);

  f = Dissect(kLinkEthernet, Frame("eth_rarp"));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({0x8035}), EtherTypes(f));

  // Exactly the captured words: the sender address alone when the target's is cut off.
  f = Dissect(kLinkEthernet, Frame("eth_arp"), 14 + 27);
  EXPECT_EQ(S({"10.0.0.1"}), Ipv4s(f));
}

TEST(PacketDissector, Vlan) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_vlan"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({100}), Vlans(f));  // TCI 0x2064: priority 1, VLAN 100
  EXPECT_EQ(I({0x8100, 0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({1234, 53}), Ports(f));
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_EQ(4, f.flow.ip_version);
}

TEST(PacketDissector, QinQ) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_qinq_88a8"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({200, 300}), Vlans(f));  // 0xf12c: priority 7, DEI 1, VLAN 300
  EXPECT_EQ(I({0x88a8, 0x8100, 0x86dd}), EtherTypes(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({22, 50000}), Ports(f));

  f = Dissect(kLinkEthernet, Frame("eth_qinq_9100"));
  EXPECT_EQ(I({7, 8}), Vlans(f));
  EXPECT_EQ(I({0x9100, 0x8100, 0x0806}), EtherTypes(f));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
}

TEST(PacketDissector, TooManyVlanTagsIsIncomplete) {
  auto stacked = [](int tags) {
    Bytes b = Ethernet(0x8100);
    for (int i = 0; i < tags; i++)
      PutAll(&b, VlanTag(static_cast<uint16_t>(i + 1), i + 1 < tags ? 0x8100 : 0x0800));
    PutAll(&b, Ipv4(17, kA, kB));
    PutAll(&b, Udp(1, 2));
    return b;
  };
  // 15 tags: 15 VLAN IDs and 16 ethertypes, which fit.
  PacketFields f = Dissect(kLinkEthernet, stacked(15));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(15, f.num_vlans);
  EXPECT_EQ(16, f.num_ethertypes);
  EXPECT_EQ(15, f.vlans[14]);
  EXPECT_EQ(2, f.num_ipv4);
  // 17 tags cannot be recorded.
  f = Dissect(kLinkEthernet, stacked(17));
  EXPECT_TRUE(f.incomplete);
  EXPECT_EQ(PacketFields::kMaxValues, f.num_vlans);
  EXPECT_EQ(PacketFields::kMaxValues, f.num_ethertypes);
  for (int i = 0; i < PacketFields::kMaxValues; i++) EXPECT_EQ(i + 1, f.vlans[i]);
}

TEST(PacketDissector, TooManyProtocolsIsIncomplete) {
  const Addr6 s6 = Ip6("2001:db8::1");
  Bytes b = Cat({Ethernet(0x86dd), Ipv6(60, s6, s6)});
  for (int i = 0; i < 20; i++) PutAll(&b, Ipv6Extension(i + 1 < 20 ? 60 : 6, 0));
  PutAll(&b, Tcp(1, 2));
  PacketFields f = Dissect(kLinkEthernet, b);
  EXPECT_TRUE(f.incomplete);
  EXPECT_EQ(PacketFields::kMaxValues, f.num_protocols);
  for (int i = 0; i < PacketFields::kMaxValues; i++) EXPECT_EQ(60, f.protocols[i]);
  EXPECT_EQ(2, f.num_ipv6);  // the fixed header is recorded all the same
}

TEST(PacketDissector, Mpls) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_mpls2_ipv4"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x8847, 0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({80, 1025}), Ports(f));
  EXPECT_EQ(I({6}), Protocols(f));
  EXPECT_EQ(4, f.flow.ip_version);

  f = Dissect(kLinkEthernet, Frame("eth_mpls_ipv6"));
  EXPECT_EQ(I({0x8848, 0x86dd}), EtherTypes(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({123, 123}), Ports(f));

  // A pseudowire control word (first nibble 0) is not guessed at.
  f = Dissect(
      kLinkEthernet,
      Cat({Ethernet(0x8847), Mpls(5, true), {0, 0, 0, 0}, Ethernet(0x0800), Ipv4(6, kA, kB), Tcp(1, 2)}));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x8847}), EtherTypes(f));
  EXPECT_EQ(0, f.num_ipv4);

  // A label stack without bottom-of-stack runs to the end of the capture, harmlessly.
  f = Dissect(kLinkEthernet, Cat({Ethernet(0x8847), Mpls(1, false), Mpls(2, false), Mpls(3, false)}));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(0, f.num_ipv4);
}

TEST(PacketDissector, PppoeSession) {
  PacketFields f = Dissect(kLinkEthernet, Frame("eth_pppoe_ipv4"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x8864, 0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"10.0.0.1", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({68, 67}), Ports(f));
}

TEST(PacketDissector, Ipv4FragmentsOnlyFirstHasPorts) {
  PacketFields f = Dissect(kLinkEthernet, Frame("ipv4_first_fragment"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({1111, 2222}), Ports(f));
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_TRUE(f.flow.has_ports);

  f = Dissect(kLinkEthernet, Frame("ipv4_later_fragment"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(0, f.num_ports);
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_EQ(4, f.flow.ip_version);
  EXPECT_EQ(17, f.flow.protocol);
  EXPECT_FALSE(f.flow.has_ports);
}

TEST(PacketDissector, Ipv4PortsAtHeaderLengthAsFound) {
  // IHL 0: libpcap loads the "ports" at offset 0 of the IP header (0x4000 0x0014 here).
  PacketFields f = Dissect(kLinkEthernet, Frame("ipv4_ihl0"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({0x4000, 0x0000}), Ports(f));
  EXPECT_FALSE(f.flow.has_ports);  // not a sane transport header

  // IHL 3: ports read at offset 12 (the source address), and no descent into the "inner" packet.
  f = Dissect(kLinkEthernet, Frame("ipv4_ihl3_ipip"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({4}), Protocols(f));
  EXPECT_EQ(0, f.num_ports);  // protocol 4 has no ports
  f = Dissect(kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(17, kA, kB, {.ihl = 3}), Udp(1, 2)}));
  EXPECT_EQ(I({10 << 8 | 0, 0 << 8 | 1}), Ports(f));

  // Options: IHL 7 puts the transport header at 28.
  f = Dissect(kLinkEthernet, Frame("ipv4_options"));
  EXPECT_EQ(I({8080, 9090}), Ports(f));
  EXPECT_TRUE(f.flow.has_ports);
}

TEST(PacketDissector, Ipv4WithWrongVersionStillRecordsFixedOffsets) {
  PacketFields f = Dissect(kLinkEthernet, Frame("ipv4_version6"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({6}), Protocols(f));
  EXPECT_EQ(I({5, 6}), Ports(f));
  EXPECT_EQ(0, f.num_ipv6);
}

TEST(PacketDissector, Ipv6ExtensionHeaderChain) {
  PacketFields f = Dissect(kLinkEthernet, Frame("ipv6_ext_chain"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0, 60, 43, 51, 6}), Protocols(f));
  EXPECT_EQ(I({993, 60000}), Ports(f));
  EXPECT_EQ(6, f.flow.protocol);
  EXPECT_TRUE(f.flow.has_ports);
  EXPECT_EQ(993, f.flow.src_port);
}

TEST(PacketDissector, Ipv6Fragments) {
  PacketFields f = Dissect(kLinkEthernet, Frame("ipv6_first_fragment"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({44, 17}), Protocols(f));
  EXPECT_EQ(I({53, 3333}), Ports(f));
  EXPECT_EQ(17, f.flow.protocol);

  f = Dissect(kLinkEthernet, Frame("ipv6_later_fragment"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({44, 17}), Protocols(f));  // `ip6 proto 17` reads the fragment header's next header
  EXPECT_EQ(0, f.num_ports);
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(17, f.flow.protocol);
  EXPECT_FALSE(f.flow.has_ports);

  // The fragment header's next header is recorded as soon as its first byte is captured.
  f = Dissect(kLinkEthernet, Frame("ipv6_later_fragment"), 14 + 41);
  EXPECT_EQ(I({44, 17}), Protocols(f));
}

TEST(PacketDissector, IpInIpTunnels) {
  PacketFields f = Dissect(kLinkEthernet, Frame("ipip"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({4, 6}), Protocols(f));
  EXPECT_EQ(I({1000, 2000}), Ports(f));
  EXPECT_EQ(4, f.flow.ip_version);  // the outer header
  EXPECT_EQ(10, f.flow.src[0]);
  EXPECT_EQ(4, f.flow.protocol);
  EXPECT_FALSE(f.flow.has_ports);

  f = Dissect(kLinkEthernet, Frame("6in4"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({41, 17}), Protocols(f));
  EXPECT_EQ(I({3000, 4000}), Ports(f));
  EXPECT_EQ(4, f.flow.ip_version);

  f = Dissect(kLinkEthernet, Frame("4in6"));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({4, 132}), Protocols(f));
  EXPECT_EQ(I({36412, 36412}), Ports(f));
  EXPECT_EQ(6, f.flow.ip_version);
  EXPECT_EQ(4, f.flow.protocol);
}

TEST(PacketDissector, TunnelNestingIsBounded) {
  // Ten IPv4-in-IPv4 layers: the outermost and four inner ones are decoded, which is not incomplete.
  Bytes b = Ethernet(0x0800);
  for (int i = 0; i < 10; i++) PutAll(&b, Ipv4(i + 1 < 10 ? 4 : 6, Ip4(10, 0, 0, i), Ip4(10, 1, 0, i)));
  PutAll(&b, Tcp(1, 2));
  PacketFields f = Dissect(kLinkEthernet, b);
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(10, f.num_ipv4);
  EXPECT_EQ("10.1.0.4", Ip4String(f.ipv4[9]));
  EXPECT_EQ(I({4, 4, 4, 4, 4}), Protocols(f));
  EXPECT_EQ(0, f.num_ports);
}

TEST(PacketDissector, GreTunnels) {
  // Checksum, key and sequence present: 16 bytes of GRE header.
  PacketFields f = Dissect(kLinkEthernet, Frame("gre_csum_key_seq_ipv4"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({47, 17}), Protocols(f));
  EXPECT_EQ(I({7, 9}), Ports(f));
  EXPECT_EQ(I({0x0800, 0x0800}), EtherTypes(f));
  EXPECT_EQ(47, f.flow.protocol);

  f = Dissect(kLinkEthernet, Frame("gre_ipv6_over_ipv6"));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2", "2001:db8::2", "2001:db8::1"}), Ipv6s(f));
  EXPECT_EQ(I({47, 6}), Protocols(f));
  EXPECT_EQ(I({443, 5555}), Ports(f));
  EXPECT_EQ(I({0x86dd, 0x86dd}), EtherTypes(f));

  // Transparent Ethernet bridging, with a VLAN tag inside.
  f = Dissect(kLinkEthernet, Frame("gre_teb_vlan"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({42}), Vlans(f));
  EXPECT_EQ(I({0x0800, 0x6558, 0x8100, 0x0800}), EtherTypes(f));
  EXPECT_EQ(I({47, 1}), Protocols(f));

  // PPTP: enhanced GRE (version 1) with key, sequence and acknowledgment, then PPP.
  f = Dissect(kLinkEthernet, Frame("gre_pptp_ppp"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({1723, 1724}), Ports(f));
  EXPECT_EQ(I({0x0800, 0x880b, 0x0800}), EtherTypes(f));

  // ERSPAN type II: an 8-byte header, then the mirrored Ethernet frame.
  f = Dissect(kLinkEthernet, Frame("gre_erspan2"));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({514, 514}), Ports(f));

  // A GRE version this dissector does not know: the outer layer only.
  f = Dissect(kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(47, kA, kB), Gre(0x0002, 0x0800), Ipv4(6, kC, kD)}));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
}

TEST(PacketDissector, Vxlan) {
  PacketFields f = Dissect(kLinkEthernet, Frame("vxlan"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2", "172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({45149, 4789, 80, 8080}), Ports(f));
  EXPECT_EQ(I({17, 6}), Protocols(f));
  EXPECT_EQ(I({0x0800, 0x0800}), EtherTypes(f));
  EXPECT_EQ(17, f.flow.protocol);
  EXPECT_EQ(4789, f.flow.dst_port);

  // Port 4789 as the source only is not VXLAN.
  f = Dissect(kLinkEthernet, Cat({Ethernet(0x0800), Ipv4(17, kA, kB), Udp(4789, 5000), Vxlan(1),
                                  Ethernet(0x0800), Ipv4(6, kC, kD)}));
  EXPECT_EQ(2, f.num_ipv4);
}

TEST(PacketDissector, LinuxCooked) {
  PacketFields f = Dissect(kLinkLinuxSll, Frame("sll_ipv4"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  EXPECT_EQ(I({1, 2}), Ports(f));

  f = Dissect(kLinkLinuxSll, Frame("sll_arp"));
  EXPECT_EQ(I({0x0806}), EtherTypes(f));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));

  f = Dissect(kLinkLinuxSll2, Frame("sll2_ipv6"));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(I({0x86dd}), EtherTypes(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({546, 547}), Ports(f));

  // The SLL protocol field is recorded as is, even when not a network layer we decode.
  f = Dissect(kLinkLinuxSll, Cat({Sll(0x0004), Payload(20)}));
  EXPECT_EQ(I({0x0004}), EtherTypes(f));
  EXPECT_EQ(0, f.num_ipv4);
}

TEST(PacketDissector, NullLoopbackAcceptsBothByteOrders) {
  const Bytes v4 = Cat({Ipv4(17, kA, kB), Udp(9, 10)});
  const Bytes v6 = Cat({Ipv6(6, Ip6("::1"), Ip6("::1")), Tcp(11, 12)});
  for (bool big_endian : {false, true}) {
    PacketFields f = Dissect(kLinkNull, Cat({NullHeader(2, big_endian), v4}));
    EXPECT_FALSE(f.incomplete);
    EXPECT_EQ(I({0x0800}), EtherTypes(f)) << big_endian;
    EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f)) << big_endian;
    EXPECT_EQ(I({9, 10}), Ports(f)) << big_endian;
    for (uint32_t af : {10u, 24u, 28u, 30u}) {
      f = Dissect(kLinkNull, Cat({NullHeader(af, big_endian), v6}));
      EXPECT_EQ(I({0x86dd}), EtherTypes(f)) << af << " " << big_endian;
      EXPECT_EQ(S({"::1", "::1"}), Ipv6s(f)) << af << " " << big_endian;
      EXPECT_EQ(I({11, 12}), Ports(f)) << af << " " << big_endian;
    }
  }
  // Another family: no network layer, and nothing is claimed to be missing.
  PacketFields f = Dissect(kLinkNull, Cat({NullHeader(7, false), v4}));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(0, f.num_ethertypes);
  EXPECT_EQ(0, f.num_ipv4);
}

TEST(PacketDissector, LoopIsBigEndian) {
  PacketFields f = Dissect(kLinkLoop, Frame("loop_ipv4"));
  EXPECT_EQ(I({0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f));
  f = Dissect(kLinkLoop, Cat({NullHeader(24, true), Ipv6(17, Ip6("::1"), Ip6("::2")), Udp(1, 2)}));
  EXPECT_EQ(I({0x86dd}), EtherTypes(f));
  EXPECT_EQ(S({"::1", "::2"}), Ipv6s(f));
  f = Dissect(kLinkLoop, Cat({NullHeader(2, false), Ipv4(17, kA, kB)}));
  EXPECT_FALSE(f.incomplete);
  EXPECT_EQ(0, f.num_ipv4);
}

TEST(PacketDissector, RawIpByVersionNibble) {
  for (uint32_t lt : {kLinkRaw, kLinkRawOld12, kLinkRawOld14}) {
    PacketFields f = Dissect(lt, Frame("raw_ipv4"));
    EXPECT_FALSE(f.incomplete) << lt;
    EXPECT_EQ(I({0x0800}), EtherTypes(f)) << lt;
    EXPECT_EQ(S({"10.0.0.1", "192.168.1.2"}), Ipv4s(f)) << lt;
    EXPECT_EQ(I({15, 16}), Ports(f)) << lt;
    f = Dissect(lt, Frame("raw_ipv6"));
    EXPECT_EQ(I({0x86dd}), EtherTypes(f)) << lt;
    EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f)) << lt;
    EXPECT_EQ(I({17, 18}), Ports(f)) << lt;
    f = Dissect(lt, Cat({Ipv4(17, kA, kB, {.version = 5}), Udp(1, 2)}));
    EXPECT_FALSE(f.incomplete) << lt;
    EXPECT_EQ(0, f.num_ethertypes) << lt;
    EXPECT_EQ(0, f.num_ipv4) << lt;
  }
}

TEST(PacketDissector, LinktypeIpv4AndIpv6IgnoreVersionNibble) {
  PacketFields f = Dissect(kLinkIpv4, Frame("linktype_ipv4"));
  EXPECT_EQ(I({0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({19, 20}), Ports(f));
  // libpcap treats every LINKTYPE_IPV4 packet as IPv4.
  f = Dissect(kLinkIpv4, Cat({Ipv4(17, kC, kD, {.version = 6}), Udp(19, 20)}));
  EXPECT_EQ(I({0x0800}), EtherTypes(f));
  EXPECT_EQ(S({"172.16.0.3", "8.8.4.4"}), Ipv4s(f));
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_EQ(I({19, 20}), Ports(f));

  f = Dissect(kLinkIpv6, Frame("linktype_ipv6"));
  EXPECT_EQ(I({0x86dd}), EtherTypes(f));
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({21, 22}), Ports(f));
  Bytes v6 = Frame("linktype_ipv6");
  v6[0] = 0x40;
  f = Dissect(kLinkIpv6, v6);
  EXPECT_EQ(S({"2001:db8::1", "2001:db8::2"}), Ipv6s(f));
  EXPECT_EQ(I({17}), Protocols(f));
  EXPECT_EQ(I({21, 22}), Ports(f));
}

// Every prefix of every frame: no read past the prefix (the guard page faults), and what is recorded is,
// array by array, a prefix of what the whole frame yields.
TEST(PacketDissector, EveryTruncationStaysInBoundsAndRecordsAPrefix) {
  for (const NamedFrame& frame : AllFrames()) {
    const PacketFields full = Dissect(frame.linktype, frame.bytes);
    EXPECT_FALSE(full.incomplete) << frame.name;
    for (size_t n = 0; n <= frame.bytes.size(); n++) {
      const PacketFields f = Dissect(frame.linktype, frame.bytes, n);
      SCOPED_TRACE(std::string(frame.name) + " caplen " + std::to_string(n));
      EXPECT_FALSE(f.incomplete);
      auto expect_prefix = [](const auto& part, const auto& whole, const char* what) {
        ASSERT_LE(part.size(), whole.size()) << what;
        for (size_t i = 0; i < part.size(); i++) EXPECT_EQ(whole[i], part[i]) << what << "[" << i << "]";
      };
      expect_prefix(Ipv4s(f), Ipv4s(full), "ipv4");
      expect_prefix(Ipv6s(f), Ipv6s(full), "ipv6");
      expect_prefix(Ports(f), Ports(full), "ports");
      expect_prefix(Protocols(f), Protocols(full), "protocols");
      expect_prefix(EtherTypes(f), EtherTypes(full), "ethertypes");
      expect_prefix(Vlans(f), Vlans(full), "vlans");
      if (f.flow.ip_version != 0) {
        EXPECT_EQ(full.flow.ip_version, f.flow.ip_version);
        EXPECT_EQ(full.flow.src, f.flow.src);
        EXPECT_EQ(full.flow.dst, f.flow.dst);
      }
    }
  }
  // Random bytes under every link type, at every length: only the guard page is checked here.
  uint32_t seed = 12345;
  Bytes noise(600);
  for (int round = 0; round < 200; round++) {
    for (uint8_t& b : noise) {
      seed = seed * 1103515245 + 12345;
      b = static_cast<uint8_t>(seed >> 16);
    }
    // Make the common dispatch values likely so that deeper code runs.
    noise[0] = static_cast<uint8_t>(round % 3 == 0 ? 0x45 : round % 3 == 1 ? 0x60 : noise[0]);
    noise[12] = round % 2 ? 0x08 : 0x86;
    noise[13] = round % 2 ? 0x00 : 0xdd;
    for (uint32_t lt : {0u, 1u, 12u, 101u, 108u, 113u, 228u, 229u, 276u}) {
      for (size_t n = 0; n <= noise.size(); n += 7) Dissect(lt, noise, n);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Real captures.

std::filesystem::path SharedPcaps() {
#ifdef REWIND_SHARED_PCAPS
  return std::filesystem::path(REWIND_SHARED_PCAPS);
#else
  // index/packet_dissector_test.cc -> the repository root -> ../shared/pcaps
  std::filesystem::path root =
      std::filesystem::absolute(std::filesystem::path(__FILE__)).parent_path().parent_path();
  return root / ".." / "shared" / "pcaps";
#endif
}

struct Capture {
  std::vector<pcap_pkthdr> headers;
  std::vector<Bytes> packets;
};

TEST(PacketDissector, RealQinQCapture) {
  const std::filesystem::path file = SharedPcaps() / "zeek" / "q-in-q.pcap";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " not found";
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
  ASSERT_NE(nullptr, p) << errbuf;
  ASSERT_EQ(DLT_EN10MB, pcap_datalink(p));
  std::vector<PacketFields> fields;
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) {
    PacketFields f;
    DissectPacket(kLinkEthernet, data, h->caplen, &f);
    fields.push_back(f);
  }
  pcap_close(p);
  ASSERT_EQ(5u, fields.size());
  for (const PacketFields& f : fields) {
    EXPECT_FALSE(f.incomplete);
    EXPECT_EQ(I({13, 10}), Vlans(f));
  }
  // 172.19.51.37.47808 > 172.19.51.63.47808: UDP
  EXPECT_EQ(I({0x8100, 0x8100, 0x0800}), EtherTypes(fields[0]));
  EXPECT_EQ(S({"172.19.51.37", "172.19.51.63"}), Ipv4s(fields[0]));
  EXPECT_EQ(I({47808, 47808}), Ports(fields[0]));
  EXPECT_EQ(I({17}), Protocols(fields[0]));
  // 193.1.186.60.9875 > 224.2.127.254.9875: UDP
  EXPECT_EQ(S({"193.1.186.60", "224.2.127.254"}), Ipv4s(fields[2]));
  EXPECT_EQ(I({9875, 9875}), Ports(fields[2]));
  EXPECT_EQ(4, fields[2].flow.ip_version);
  EXPECT_EQ(193, fields[2].flow.src[0]);
  // ARP, Request who-has 128.2.46.148 tell 128.2.46.227
  EXPECT_EQ(I({0x8100, 0x8100, 0x0806}), EtherTypes(fields[4]));
  EXPECT_EQ(S({"128.2.46.227", "128.2.46.148"}), Ipv4s(fields[4]));
  EXPECT_EQ(0, fields[4].flow.ip_version);
}

// Checks the soundness invariant against libpcap itself: for values read at the offsets libpcap's
// primitives read (whether or not the dissector understood the packet), a match of the compiled filter
// must mean the value was recorded. Each packet is also tried truncated at several lengths.
class LibpcapOracle {
 public:
  explicit LibpcapOracle(pcap_t* p) : pcap_(p) {}
  ~LibpcapOracle() {
    for (auto& [filter, prog] : cache_) {
      if (prog.bf_insns != nullptr) pcap_freecode(&prog);
    }
  }
  // False when the filter does not compile for this link type (it then matches nothing).
  bool Matches(const std::string& filter, const pcap_pkthdr& h, const uint8_t* data) {
    auto it = cache_.find(filter);
    if (it == cache_.end()) {
      bpf_program prog{};
      if (pcap_compile(pcap_, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) prog = bpf_program{};
      it = cache_.emplace(filter, prog).first;
    }
    if (it->second.bf_insns == nullptr) return false;
    return pcap_offline_filter(&it->second, &h, data) != 0;
  }

 private:
  pcap_t* pcap_;
  std::map<std::string, bpf_program> cache_;
};

// The offset of the network layer libpcap assumes for a DLT (pcap_datalink values, not LINKTYPE_*).
int NetworkOffset(int dlt) {
  switch (dlt) {
    case DLT_EN10MB:
      return 14;
    case DLT_LINUX_SLL:
      return 16;
    case DLT_LINUX_SLL2:
      return 20;
    case DLT_NULL:
    case DLT_LOOP:
      return 4;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      return 0;
    default:
      return -1;
  }
}

struct OracleStats {
  long packets = 0;
  long checks = 0;
  long matches = 0;
};

// Returns the number of soundness violations found in `file` (and reports the first few).
int CrossCheckFile(const std::filesystem::path& file, int max_packets, OracleStats* stats) {
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(file.c_str(), errbuf);
  if (p == nullptr) return 0;  // unreadable on purpose (see the set's README)
  const int dlt = pcap_datalink(p);
  const int net = NetworkOffset(dlt);
  if (net < 0 || !DissectorSupportsLinkType(static_cast<uint32_t>(dlt))) {
    pcap_close(p);
    return 0;
  }
  int violations = 0;
  {
    LibpcapOracle oracle(p);
    pcap_pkthdr* hdr;
    const u_char* pkt;
    int index = 0;
    while (index < max_packets && pcap_next_ex(p, &hdr, &pkt) == 1) {
      index++;
      stats->packets++;
      // Lengths to try: the whole capture, and cuts through the fields libpcap reads.
      std::vector<uint32_t> lengths = {hdr->caplen};
      const uint32_t ihl = hdr->caplen > static_cast<uint32_t>(net) ? (pkt[net] & 0x0f) * 4u : 20u;
      for (uint32_t cut : {7u, 10u, 14u, 18u, 22u, 26u, 38u, 41u, 42u, 43u, ihl + 1, ihl + 3}) {
        if (net + cut < hdr->caplen) lengths.push_back(net + cut);
      }
      for (uint32_t caplen : lengths) {
        pcap_pkthdr h = *hdr;
        h.caplen = caplen;
        const uint8_t* data = Guard()->Place(pkt, caplen);
        PacketFields f;
        DissectPacket(static_cast<uint32_t>(dlt), data, caplen, &f);
        if (f.incomplete) continue;
        auto fail = [&](const std::string& filter, const std::string& why) {
          if (++violations <= 5) {
            ADD_FAILURE() << file << " packet " << index << " caplen " << caplen << " (of " << hdr->caplen
                          << "): libpcap matches `" << filter << "` but " << why;
          }
        };
        auto check = [&](const std::string& filter, bool recorded, const std::string& why) {
          stats->checks++;
          if (oracle.Matches(filter, h, data)) {
            stats->matches++;
            if (!recorded) fail(filter, why);
          }
        };
        auto in = [](const auto* values, int n, auto v) {
          for (int i = 0; i < n; i++) {
            if (values[i] == v) return true;
          }
          return false;
        };
        auto load16 = [&](uint32_t off) { return static_cast<uint16_t>(data[off] << 8 | data[off + 1]); };
        // IPv4 addresses: IP source/destination, ARP sender/target protocol addresses.
        for (uint32_t off : {12u, 16u, 14u, 24u}) {
          if (net + off + 4 > caplen) continue;
          const uint32_t a = static_cast<uint32_t>(load16(net + off)) << 16 | load16(net + off + 2);
          check("host " + Ip4String(a), in(f.ipv4, f.num_ipv4, a), "ipv4 lacks " + Ip4String(a));
        }
        // IPv6 addresses.
        for (uint32_t off : {8u, 24u}) {
          if (net + off + 16 > caplen) continue;
          const std::string s = Ip6String(data + net + off);
          bool recorded = false;
          for (int i = 0; i < f.num_ipv6; i++) {
            recorded |= std::memcmp(f.ipv6[i].data(), data + net + off, 16) == 0;
          }
          check("host " + s, recorded, "ipv6 lacks " + s);
        }
        // Ports: IPv4 transport at 4 * IHL, IPv6 at 40.
        for (uint32_t off : {ihl, ihl + 2, 40u, 42u}) {
          if (net + off + 2 > caplen) continue;
          const uint16_t port = load16(net + off);
          check("port " + std::to_string(port), in(f.ports, f.num_ports, port),
                "ports lack " + std::to_string(port));
        }
        // Protocols: IPv4 +9, IPv6 +6 and +40 (after a fragment header).
        for (uint32_t off : {9u, 6u, 40u}) {
          if (net + off + 1 > caplen) continue;
          const uint8_t proto = data[net + off];
          check("ip proto " + std::to_string(proto) + " or ip6 proto " + std::to_string(proto),
                in(f.protocols, f.num_protocols, proto), "protocols lack " + std::to_string(proto));
        }
        // Network-layer types.
        static const std::pair<const char*, uint16_t> kTypes[] = {
            {"ip", 0x0800}, {"ip6", 0x86dd}, {"arp", 0x0806}, {"rarp", 0x8035}};
        for (const auto& [filter, type] : kTypes) {
          check(filter, in(f.ethertypes, f.num_ethertypes, type), std::string("ethertypes lack ") + filter);
        }
        check("tcp", in(f.protocols, f.num_protocols, uint8_t{6}), "protocols lack 6");
        check("udp", in(f.protocols, f.num_protocols, uint8_t{17}), "protocols lack 17");
        check("icmp", in(f.protocols, f.num_protocols, uint8_t{1}), "protocols lack 1");
        check("sctp", in(f.protocols, f.num_protocols, uint8_t{132}), "protocols lack 132");
        // The outermost VLAN ID.
        if (dlt == DLT_EN10MB && caplen >= 16) {
          const uint16_t vlan = load16(14) & 0x0fff;
          check("vlan " + std::to_string(vlan), in(f.vlans, f.num_vlans, vlan),
                "vlans lack " + std::to_string(vlan));
        }
      }
    }
  }
  pcap_close(p);
  return violations;
}

TEST(PacketDissector, AgreesWithLibpcapOnRealCaptures) {
  const std::filesystem::path dir = SharedPcaps();
  if (!std::filesystem::exists(dir / "MANIFEST.tsv")) GTEST_SKIP() << dir << " not found";
  std::vector<std::string> files = {
      "zeek/q-in-q.pcap",
      "zeek/mpls-in-vlan.pcap",
      "arkime/dot1ad.pcap",
      "tcpdump/802.1ad_QinQ.pcap",
      "tcpdump/various_gre.pcap",
      "libpcap/vxlan.pcap",
      "libpcap/ipv6_ext_headers.pcap",
      "zeek/tunnels__4in4.pcap",
      "zeek/tunnels__6in4.pcap",
      "ndpi/6in4tunnel.pcap",
      "ndpi/dns_fragmented.pcap",
      "zeek/ipv4__fragmented-1.pcap",
      "zeek/ipv6-fragmented-dns.pcap",
      "arkime/sctp-www.pcap",
      "zeek/linuxsll-arp.pcap",
      "tcpdump/forces2.pcap",
      "zeek/linux_dlt_sll2.pcap",
      "dnscap/sll2.pcap",
      "tcpdump/quic_handshake_truncated.pcap",
      "zeek/radius__radius_localhost.pcap",
      "tcpdump/LINKTYPE_RAW_ipv6.pcap",
      "zeek/rotation.pcap",
      "tcpdump/LINKTYPE_IPV4_invalid.pcap",
      "suricata/detect-ipopts.pcap",
      "tcpdump/LINKTYPE_IPV6.pcap",
      "tcpdump/ipv6-next-header-oobr-2.pcap",
  };
  // REWIND_DISSECTOR_ALL_PCAPS=1 checks every capture of the set instead (slow).
  if (const char* all = std::getenv("REWIND_DISSECTOR_ALL_PCAPS"); all != nullptr && all[0] == '1') {
    files.clear();
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && ext != ".tsv" && ext != ".md") {
        files.push_back(std::filesystem::relative(entry.path(), dir).string());
      }
    }
  }
  OracleStats stats;
  int checked_files = 0;
  for (const std::string& name : files) {
    const std::filesystem::path file = dir / name;
    if (!std::filesystem::exists(file)) {
      ADD_FAILURE() << file << " is missing";
      continue;
    }
    checked_files++;
    EXPECT_EQ(0, CrossCheckFile(file, 2000, &stats)) << file;
  }
  std::printf("cross-checked %d files, %ld packets, %ld filter runs, %ld matches\n", checked_files,
              stats.packets, stats.checks, stats.matches);
  EXPECT_GT(stats.matches, 1000);  // the comparison did compare something
}

}  // namespace
}  // namespace rwd
