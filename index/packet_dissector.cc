#include "index/packet_dissector.h"

namespace rwd {

namespace {

// Every layer routine below takes (p, len): `p` points at the layer's first byte and `len` is the number of
// captured bytes from `p` to the end of the capture. A routine reads p[i] only after checking i < len, and
// hands an inner layer (p + n, len - n) only after checking n <= len. That is the whole argument for
// "never reads past data[caplen - 1]".

// Tunnel descents (IP-in-IP, GRE, VXLAN) allowed below the outermost layer. Bounds the recursion; the
// soundness invariant only concerns the outermost layer, so hitting it does not make a packet incomplete.
constexpr int kMaxTunnelDepth = 4;

// Extension headers walked in one IPv6 header chain. A longer chain overflows `protocols` anyway.
constexpr int kMaxIpv6ExtensionHeaders = PacketFields::kMaxValues;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeRarp = 0x8035;
constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88a8;
constexpr uint16_t kEtherTypeQinQOld = 0x9100;
constexpr uint16_t kEtherTypeMplsUnicast = 0x8847;
constexpr uint16_t kEtherTypeMplsMulticast = 0x8848;
constexpr uint16_t kEtherTypePppoeSession = 0x8864;
constexpr uint16_t kEtherTypeTransparentEthernet = 0x6558;  // GRE payload is an Ethernet frame
constexpr uint16_t kEtherTypeErspan2 = 0x88be;              // ERSPAN type I (no GRE sequence) or II
constexpr uint16_t kEtherTypeErspan3 = 0x22eb;
constexpr uint16_t kEtherTypePpp = 0x880b;  // PPTP (enhanced GRE) payload

constexpr uint16_t kPppIpv4 = 0x0021;
constexpr uint16_t kPppIpv6 = 0x0057;

constexpr uint8_t kIpProtoHopByHop = 0;
constexpr uint8_t kIpProtoIpip = 4;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;
constexpr uint8_t kIpProtoIpv6 = 41;
constexpr uint8_t kIpProtoRouting = 43;
constexpr uint8_t kIpProtoFragment = 44;
constexpr uint8_t kIpProtoGre = 47;
constexpr uint8_t kIpProtoAh = 51;
constexpr uint8_t kIpProtoDestOpts = 60;
constexpr uint8_t kIpProtoSctp = 132;
constexpr uint8_t kIpProtoMobility = 135;
constexpr uint8_t kIpProtoHip = 139;
constexpr uint8_t kIpProtoShim6 = 140;

constexpr uint16_t kVxlanPort = 4789;

inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

inline uint32_t Load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | static_cast<uint32_t>(p[3]);
}

inline uint32_t Load32LittleEndian(const uint8_t* p) {
  return static_cast<uint32_t>(p[3]) << 24 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[0]);
}

inline bool HasPorts(uint8_t proto) {
  return proto == kIpProtoTcp || proto == kIpProtoUdp || proto == kIpProtoSctp;
}

inline bool IsVlanTpid(uint16_t type) {
  return type == kEtherTypeVlan || type == kEtherTypeQinQ || type == kEtherTypeQinQOld;
}

// AF_INET6 as written by Linux/Solaris (10), FreeBSD/DragonFly (28), macOS (30), and the other BSDs (24).
inline bool IsAfInet6(uint32_t af) { return af == 10 || af == 24 || af == 28 || af == 30; }

// Appends `v` to an array of kMaxValues entries holding `*n`. On overflow marks the packet incomplete
// and drops the value, so an array never holds more than kMaxValues entries.
template <typename T, typename V>
inline void Append(T* values, uint8_t* n, V v, bool* incomplete) {
  if (*n < PacketFields::kMaxValues) {
    values[(*n)++] = static_cast<T>(v);
  } else {
    *incomplete = true;
  }
}

class Dissector {
 public:
  explicit Dissector(PacketFields* out) : out_(out) {}

  void Ethernet(const uint8_t* p, uint32_t len, int depth);
  // `p` follows a type field of value `type` (already recorded by the caller).
  void EtherPayload(uint16_t type, const uint8_t* p, uint32_t len, int depth);
  void Ipv4(const uint8_t* p, uint32_t len, int depth);
  void Ipv6(const uint8_t* p, uint32_t len, int depth);
  void Arp(const uint8_t* p, uint32_t len);
  void Mpls(const uint8_t* p, uint32_t len, int depth);
  void Pppoe(const uint8_t* p, uint32_t len, int depth);
  void Ppp(const uint8_t* p, uint32_t len, int depth);
  // Network layer guessed from the IP version nibble (MPLS payload, raw IP).
  void IpByVersion(const uint8_t* p, uint32_t len, int depth);

  void AddEtherType(uint16_t type) {
    Append(out_->ethertypes, &out_->num_ethertypes, type, &out_->incomplete);
  }

 private:
  // The payload of an IP header whose (final) protocol is `proto`, at tunnel depth `depth`.
  void IpPayload(uint8_t proto, const uint8_t* p, uint32_t len, int depth);
  void Gre(const uint8_t* p, uint32_t len, int depth);
  // Records the source port if p[0..1] is captured, then the destination port if p[2..3] is.
  void Ports(const uint8_t* p, uint32_t len) {
    if (len >= 2) Append(out_->ports, &out_->num_ports, Load16(p), &out_->incomplete);
    if (len >= 4) Append(out_->ports, &out_->num_ports, Load16(p + 2), &out_->incomplete);
  }
  void AddIpv4(const uint8_t* p) { Append(out_->ipv4, &out_->num_ipv4, Load32(p), &out_->incomplete); }
  void AddIpv6(const uint8_t* p) {
    if (out_->num_ipv6 < PacketFields::kMaxValues) {
      std::array<uint8_t, 16>& a = out_->ipv6[out_->num_ipv6++];
      for (int i = 0; i < 16; i++) a[i] = p[i];
    } else {
      out_->incomplete = true;
    }
  }
  void AddProtocol(uint8_t proto) { Append(out_->protocols, &out_->num_protocols, proto, &out_->incomplete); }

  PacketFields* const out_;
  bool flow_set_ = false;  // out_->flow describes the outermost IP header already
};

void Dissector::Ethernet(const uint8_t* p, uint32_t len, int depth) {
  if (len < 14) return;
  const uint16_t type = Load16(p + 12);
  AddEtherType(type);
  // A type <= 1500 is an 802.3 length: an LLC frame, no network layer we decode.
  EtherPayload(type, p + 14, len - 14, depth);
}

void Dissector::EtherPayload(uint16_t type, const uint8_t* p, uint32_t len, int depth) {
  // VLAN tags: 2 bytes of TCI, then the inner type. Each tag consumes 4 bytes, so the loop ends.
  while (IsVlanTpid(type)) {
    if (len < 2) return;
    if (out_->num_vlans == PacketFields::kMaxValues) {  // a tag stack too deep to record
      out_->incomplete = true;
      return;
    }
    Append(out_->vlans, &out_->num_vlans, Load16(p) & 0x0fff, &out_->incomplete);
    if (len < 4) return;
    type = Load16(p + 2);
    AddEtherType(type);
    p += 4;
    len -= 4;
  }
  switch (type) {
    case kEtherTypeIpv4:
      Ipv4(p, len, depth);
      break;
    case kEtherTypeIpv6:
      Ipv6(p, len, depth);
      break;
    case kEtherTypeArp:
    case kEtherTypeRarp:
      Arp(p, len);
      break;
    case kEtherTypeMplsUnicast:
    case kEtherTypeMplsMulticast:
      Mpls(p, len, depth);
      break;
    case kEtherTypePppoeSession:
      Pppoe(p, len, depth);
      break;
    default:
      break;
  }
}

void Dissector::Arp(const uint8_t* p, uint32_t len) {
  // libpcap's `host` reads these two words whatever the hardware/protocol address lengths say.
  if (len >= 18) AddIpv4(p + 14);  // sender protocol address
  if (len >= 28) AddIpv4(p + 24);  // target protocol address
}

void Dissector::Mpls(const uint8_t* p, uint32_t len, int depth) {
  // Label stack entries of 4 bytes; the bottom-of-stack bit is bit 0 of the third byte.
  for (;;) {
    if (len < 4) return;
    const bool bottom = (p[2] & 0x01) != 0;
    p += 4;
    len -= 4;
    if (bottom) break;
  }
  IpByVersion(p, len, depth);
}

void Dissector::IpByVersion(const uint8_t* p, uint32_t len, int depth) {
  if (len < 1) return;
  switch (p[0] >> 4) {
    case 4:
      AddEtherType(kEtherTypeIpv4);
      Ipv4(p, len, depth);
      break;
    case 6:
      AddEtherType(kEtherTypeIpv6);
      Ipv6(p, len, depth);
      break;
    default:
      break;
  }
}

void Dissector::Pppoe(const uint8_t* p, uint32_t len, int depth) {
  // PPPoE session header: ver/type, code, session id (2), length (2); then the PPP protocol field.
  if (len < 6) return;
  Ppp(p + 6, len - 6, depth);
}

void Dissector::Ppp(const uint8_t* p, uint32_t len, int depth) {
  // Optional address/control bytes (0xff 0x03), then a protocol field of 2 bytes, or 1 byte when
  // protocol-field compression made it odd.
  if (len >= 2 && p[0] == 0xff && p[1] == 0x03) {
    p += 2;
    len -= 2;
  }
  if (len < 1) return;
  uint16_t proto;
  if (p[0] & 0x01) {
    proto = p[0];
    p += 1;
    len -= 1;
  } else {
    if (len < 2) return;
    proto = Load16(p);
    p += 2;
    len -= 2;
  }
  if (proto == kPppIpv4) {
    AddEtherType(kEtherTypeIpv4);
    Ipv4(p, len, depth);
  } else if (proto == kPppIpv6) {
    AddEtherType(kEtherTypeIpv6);
    Ipv6(p, len, depth);
  }
}

void Dissector::Ipv4(const uint8_t* p, uint32_t len, int depth) {
  // libpcap reads the protocol at +9 and the addresses at +12/+16 without looking at the version or the
  // header length, so record them whenever captured.
  if (len >= 10) AddProtocol(p[9]);
  if (len >= 16) AddIpv4(p + 12);
  if (len >= 20) AddIpv4(p + 16);
  if (len < 10) return;
  const uint8_t version = p[0] >> 4;
  const uint32_t header_len = (p[0] & 0x0f) * 4u;  // may be < 20 in a malformed packet
  const uint16_t fragment_offset = Load16(p + 6) & 0x1fff;
  const uint8_t proto = p[9];

  const bool outermost = !flow_set_;
  if (outermost && len >= 20) {
    flow_set_ = true;
    PacketFields::Flow& flow = out_->flow;
    flow.ip_version = 4;
    for (int i = 0; i < 4; i++) {
      flow.src[i] = p[12 + i];
      flow.dst[i] = p[16 + i];
    }
    flow.protocol = proto;
  }

  // Ports: libpcap tests fragment offset 0, then loads them at 4 * IHL as found (even IHL < 5).
  if (fragment_offset != 0 || header_len > len) return;
  const uint8_t* payload = p + header_len;
  const uint32_t payload_len = len - header_len;
  if (HasPorts(proto)) {
    Ports(payload, payload_len);
    if (outermost && flow_set_ && header_len >= 20 && payload_len >= 4) {
      out_->flow.has_ports = true;
      out_->flow.src_port = Load16(payload);
      out_->flow.dst_port = Load16(payload + 2);
    }
  }
  // Inner layers only under a sane header.
  if (version != 4 || header_len < 20) return;
  IpPayload(proto, payload, payload_len, depth);
}

void Dissector::Ipv6(const uint8_t* p, uint32_t len, int depth) {
  // libpcap reads next header at +6, addresses at +8/+24, and for `port` the transport header at +40
  // when +6 says TCP/UDP/SCTP; for `ip6 proto` also +40 when +6 is a fragment header. The chain walk
  // below covers both (it records the next-header byte of each extension header it meets, and the first
  // header of the chain sits at +40), whatever the version nibble says.
  if (len >= 7) AddProtocol(p[6]);
  if (len >= 24) AddIpv6(p + 8);
  if (len >= 40) AddIpv6(p + 24);
  if (len < 7) return;

  const bool outermost = !flow_set_;
  if (outermost && len >= 40) {
    flow_set_ = true;
    PacketFields::Flow& flow = out_->flow;
    flow.ip_version = 6;
    for (int i = 0; i < 16; i++) {
      flow.src[i] = p[8 + i];
      flow.dst[i] = p[24 + i];
    }
    flow.protocol = p[6];
  }

  uint8_t next = p[6];
  uint32_t offset = 40;      // of the header `next` names; grows by at most 2048 per step, never overflows
  bool upper_layer = false;  // `next` names the upper-layer header at `offset` (not a non-first fragment)
  for (int i = 0; i <= kMaxIpv6ExtensionHeaders; i++) {
    if (offset >= len) break;  // `next`'s header is not captured (its first byte included)
    const uint8_t* h = p + offset;
    const uint32_t h_len = len - offset;
    uint32_t ext_len;
    if (next == kIpProtoHopByHop || next == kIpProtoRouting || next == kIpProtoDestOpts ||
        next == kIpProtoMobility || next == kIpProtoHip || next == kIpProtoShim6) {
      AddProtocol(h[0]);
      if (h_len < 2) break;
      ext_len = (h[1] + 1u) * 8;
    } else if (next == kIpProtoAh) {
      AddProtocol(h[0]);
      if (h_len < 2) break;
      ext_len = (h[1] + 2u) * 4;
    } else if (next == kIpProtoFragment) {
      AddProtocol(h[0]);
      if (h_len < 4) break;
      if ((Load16(h + 2) & 0xfff8) != 0) {  // not the first fragment: the rest is no header
        if (outermost && flow_set_) out_->flow.protocol = h[0];
        break;
      }
      ext_len = 8;
    } else {
      upper_layer = true;
      break;
    }
    next = h[0];
    offset += ext_len;
    if (outermost && flow_set_) out_->flow.protocol = next;
  }
  if (!upper_layer) return;

  const uint8_t* payload = p + offset;
  const uint32_t payload_len = len - offset;
  if (HasPorts(next)) {
    Ports(payload, payload_len);
    if (outermost && flow_set_ && payload_len >= 4) {
      out_->flow.has_ports = true;
      out_->flow.src_port = Load16(payload);
      out_->flow.dst_port = Load16(payload + 2);
    }
  }
  if ((p[0] >> 4) != 6) return;  // inner layers only under a sane header
  IpPayload(next, payload, payload_len, depth);
}

void Dissector::IpPayload(uint8_t proto, const uint8_t* p, uint32_t len, int depth) {
  if (depth >= kMaxTunnelDepth) return;
  switch (proto) {
    case kIpProtoIpip:
      Ipv4(p, len, depth + 1);
      break;
    case kIpProtoIpv6:
      Ipv6(p, len, depth + 1);
      break;
    case kIpProtoGre:
      Gre(p, len, depth + 1);
      break;
    case kIpProtoUdp:
      // VXLAN: UDP destination port 4789, 8-byte header with the I flag (VNI valid), then Ethernet.
      if (len >= 16 && Load16(p + 2) == kVxlanPort && (p[8] & 0x08) != 0) {
        Ethernet(p + 16, len - 16, depth + 1);
      }
      break;
    default:
      break;
  }
}

void Dissector::Gre(const uint8_t* p, uint32_t len, int depth) {
  if (len < 4) return;
  const uint16_t flags = Load16(p);
  const uint16_t type = Load16(p + 2);
  const bool checksum = (flags & 0x8000) != 0;
  const bool routing = (flags & 0x4000) != 0;
  const bool key = (flags & 0x2000) != 0;
  const bool sequence = (flags & 0x1000) != 0;
  const int version = flags & 0x0007;
  uint32_t header_len = 4;
  if (version == 0) {
    if (routing) return;  // RFC 1701 source routing: variable-length SREs, obsolete; not decoded
    if (checksum) header_len += 4;
    if (key) header_len += 4;
    if (sequence) header_len += 4;
  } else if (version == 1) {
    // Enhanced GRE (PPTP, RFC 2637): key always present, then optional sequence and acknowledgment.
    if (!key || type != kEtherTypePpp) return;
    header_len += 4;
    if (sequence) header_len += 4;
    if (flags & 0x0080) header_len += 4;
  } else {
    return;
  }
  AddEtherType(type);
  if (header_len > len) return;
  p += header_len;
  len -= header_len;
  switch (type) {
    case kEtherTypeTransparentEthernet:
      Ethernet(p, len, depth);
      break;
    case kEtherTypeErspan2:
      // Type II carries an 8-byte ERSPAN header and sets the GRE sequence bit; type I has neither.
      if (sequence) {
        if (len < 8) return;
        p += 8;
        len -= 8;
      }
      Ethernet(p, len, depth);
      break;
    case kEtherTypeErspan3: {
      // 12-byte header; its last bit (O) announces an 8-byte platform-specific subheader.
      if (len < 12) return;
      const uint32_t erspan_len = (p[11] & 0x01) ? 20 : 12;
      if (len < erspan_len) return;
      Ethernet(p + erspan_len, len - erspan_len, depth);
      break;
    }
    case kEtherTypePpp:
      Ppp(p, len, depth);
      break;
    default:
      EtherPayload(type, p, len, depth);
      break;
  }
}

}  // namespace

bool DissectorSupportsLinkType(uint32_t linktype) {
  switch (linktype) {
    case kLinkNull:
    case kLinkEthernet:
    case kLinkRawOld12:
    case kLinkRawOld14:
    case kLinkRaw:
    case kLinkLoop:
    case kLinkLinuxSll:
    case kLinkIpv4:
    case kLinkIpv6:
    case kLinkLinuxSll2:
      return true;
    default:
      return false;
  }
}

void DissectPacket(uint32_t linktype, const uint8_t* data, uint32_t caplen, PacketFields* out) {
  // Reset the counts, not the arrays: entries past a count are never read.
  out->num_ipv4 = 0;
  out->num_ipv6 = 0;
  out->num_ports = 0;
  out->num_protocols = 0;
  out->num_ethertypes = 0;
  out->num_vlans = 0;
  out->incomplete = false;
  out->flow = PacketFields::Flow();
  if (data == nullptr) caplen = 0;

  Dissector d(out);
  switch (linktype) {
    case kLinkEthernet:
      d.Ethernet(data, caplen, 0);
      break;

    case kLinkLinuxSll:
    case kLinkLinuxSll2: {
      const uint32_t type_offset = linktype == kLinkLinuxSll ? 14 : 0;
      const uint32_t header_len = linktype == kLinkLinuxSll ? 16 : 20;
      if (caplen < type_offset + 2) break;
      const uint16_t type = Load16(data + type_offset);
      d.AddEtherType(type);
      if (caplen < header_len) break;
      d.EtherPayload(type, data + header_len, caplen - header_len, 0);
      break;
    }

    case kLinkNull:
    case kLinkLoop: {
      // libpcap compares the family in the capture writer's byte order for NULL (which the packet does not
      // tell), in network order for LOOP. Accepting either order for NULL errs on the side of recording.
      if (caplen < 4) break;
      const uint32_t be = Load32(data);
      const uint32_t le = linktype == kLinkNull ? Load32LittleEndian(data) : be;
      if (be == 2 || le == 2) {
        d.AddEtherType(kEtherTypeIpv4);
        d.Ipv4(data + 4, caplen - 4, 0);
      } else if (IsAfInet6(be) || IsAfInet6(le)) {
        d.AddEtherType(kEtherTypeIpv6);
        d.Ipv6(data + 4, caplen - 4, 0);
      }
      break;
    }

    case kLinkRaw:
    case kLinkRawOld12:
    case kLinkRawOld14:
      d.IpByVersion(data, caplen, 0);
      break;

    case kLinkIpv4:
      // libpcap treats every packet of this link type as IPv4, whatever its version nibble.
      d.AddEtherType(kEtherTypeIpv4);
      d.Ipv4(data, caplen, 0);
      break;

    case kLinkIpv6:
      d.AddEtherType(kEtherTypeIpv6);
      d.Ipv6(data, caplen, 0);
      break;

    default:
      out->incomplete = true;
      break;
  }
}

}  // namespace rwd
