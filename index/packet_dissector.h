// PacketDissector: decodes a captured frame into the values the index stores (addresses, ports, IP
// protocols, network-layer types, VLAN IDs). The one dissector shared by capture, import and query.
// Stateless free function; thread-safe.
//
// Invariant the query planner relies on (soundness): for the link types it supports, the dissector records
// at least every value that a libpcap filter primitive (`host`, `net`, `port`, `proto`/`ip proto`/`ip6 proto`,
// `tcp`/`udp`/`icmp`/`sctp`, `ip`/`ip6`/`arp`, `vlan N`) reads at the outermost layer, at the same offsets
// libpcap reads them, whenever those bytes lie within the captured length. It records more (inner headers of
// VLAN/QinQ, MPLS, IPv6 extension chains, IP-in-IP, GRE and VXLAN tunnels), never less. Where it cannot keep
// that promise (unsupported link type, more values than fit) it sets `incomplete`, and the planner then treats
// the packet as a candidate for every lookup.
#ifndef REWIND_INDEX_PACKET_DISSECTOR_H_
#define REWIND_INDEX_PACKET_DISSECTOR_H_

#include <array>
#include <cstdint>

namespace rwd {

// LINKTYPE_* values (pcap file link types) the dissector understands.
enum LinkType : uint32_t {
  kLinkNull = 0,        // BSD loopback: 4-byte address family in the writer's byte order
  kLinkEthernet = 1,
  kLinkRawOld12 = 12,   // raw IP (DLT_RAW on most platforms)
  kLinkRawOld14 = 14,   // raw IP (DLT_RAW on OpenBSD)
  kLinkRaw = 101,       // raw IPv4 or IPv6, by version nibble
  kLinkLoop = 108,      // OpenBSD loopback: 4-byte address family, big-endian
  kLinkLinuxSll = 113,
  kLinkIpv4 = 228,
  kLinkIpv6 = 229,
  kLinkLinuxSll2 = 276,
};

// True if the dissector decodes this link type (otherwise Dissect() sets `incomplete`).
bool DissectorSupportsLinkType(uint32_t linktype);

struct PacketFields {
  static constexpr int kMaxValues = 16;

  // IPv4 addresses as host-order integers (a.b.c.d == a<<24 | b<<16 | c<<8 | d). Outer layer first:
  // for the outermost IPv4 header ipv4[0] is its source and ipv4[1] its destination. Includes ARP/RARP
  // sender and target protocol addresses (read at ARP offsets 14 and 24, as libpcap does).
  uint8_t num_ipv4 = 0;
  uint32_t ipv4[kMaxValues];
  // IPv6 addresses in network byte order, outer first (source, then destination).
  uint8_t num_ipv6 = 0;
  std::array<uint8_t, 16> ipv6[kMaxValues];
  // TCP/UDP/SCTP ports (host order), source then destination, of every transport header found.
  uint8_t num_ports = 0;
  uint16_t ports[kMaxValues];
  // IP protocol numbers: the IPv4 protocol field, and for IPv6 every next-header value along the chain
  // (fixed header, extension headers, final transport protocol).
  uint8_t num_protocols = 0;
  uint8_t protocols[kMaxValues];
  // Network-layer types as ethertypes, outermost first: the Ethernet/SLL type field as found (including
  // 0x8100/0x88a8/0x9100 for VLAN tags and 0x8847/0x8848 for MPLS), then each inner one. Link types without
  // an ethertype map theirs: BSD loopback AF_INET -> 0x0800, AF_INET6 (10, 24, 28, 30) -> 0x86DD; raw IP by
  // version nibble.
  uint8_t num_ethertypes = 0;
  uint16_t ethertypes[kMaxValues];
  // 802.1Q / 802.1ad VLAN IDs (12 bits), outer first.
  uint8_t num_vlans = 0;
  uint16_t vlans[kMaxValues];

  // Set when the dissector cannot promise the soundness invariant above for this packet.
  bool incomplete = false;

  // A one-line summary of the outermost IP flow, for previews. ip_version 0 means no IP header found.
  struct Flow {
    uint8_t ip_version = 0;
    std::array<uint8_t, 16> src{};  // IPv4 uses the first 4 bytes
    std::array<uint8_t, 16> dst{};
    uint8_t protocol = 0;
    bool has_ports = false;
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
  } flow;
};

// Decodes `caplen` bytes of a frame of link type `linktype` into `*out` (which it resets first).
// Never reads past data[caplen - 1]; never fails (a malformed packet yields what could be read).
void DissectPacket(uint32_t linktype, const uint8_t* data, uint32_t caplen, PacketFields* out);

}  // namespace rwd

#endif  // REWIND_INDEX_PACKET_DISSECTOR_H_
