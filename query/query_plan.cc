#include "query/query_plan.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "index/index_format.h"
#include "index/packet_dissector.h"
#include "index/posting_list.h"

namespace rwd {

struct QueryPlan::Expr {
  enum Kind { kAll, kKeys, kAnd, kOr } kind = kAll;
  std::vector<std::pair<std::string, std::string>> ranges;  // kKeys: union of key ranges [first, last]
  std::string label;
  std::vector<std::shared_ptr<const Expr>> children;
};

namespace {

using Expr = QueryPlan::Expr;
using ExprPtr = std::shared_ptr<const Expr>;

ExprPtr All() { return std::make_shared<Expr>(); }

ExprPtr Keys(std::vector<std::pair<std::string, std::string>> ranges, std::string label) {
  auto e = std::make_shared<Expr>();
  e->kind = Expr::kKeys;
  e->ranges = std::move(ranges);
  e->label = std::move(label);
  return e;
}

ExprPtr Key(const std::string& k, std::string label) { return Keys({{k, k}}, std::move(label)); }

ExprPtr Combine(Expr::Kind kind, ExprPtr a, ExprPtr b) {
  if (kind == Expr::kAnd) {
    if (a->kind == Expr::kAll) return b;
    if (b->kind == Expr::kAll) return a;
  } else {
    if (a->kind == Expr::kAll || b->kind == Expr::kAll) return All();
  }
  auto e = std::make_shared<Expr>();
  e->kind = kind;
  e->children = {std::move(a), std::move(b)};
  return e;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The digits of s from `from` on, in `base` (at least one digit, every one valid, the value at most `max`).
bool ParseDigits(const std::string& s, size_t from, uint32_t base, uint32_t max, uint32_t* v) {
  if (from >= s.size()) return false;
  uint64_t n = 0;
  for (size_t i = from; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t d = std::isdigit(c) ? c - '0' : std::isxdigit(c) ? std::tolower(c) - 'a' + 10 : 99;
    if (d >= base) return false;
    n = n * base + d;
    if (n > max) return false;
  }
  *v = static_cast<uint32_t>(n);
  return true;
}

// A number as libpcap's scanner reads one (its NUM token: ports, protocols, VLAN IDs, prefix lengths): "0x..."
// is hex, any other leading 0 makes it octal ("port 0120" is port 80; "port 089" is refused), else decimal.
bool ParseNumber(const std::string& s, uint32_t max, uint32_t* v) {
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) return ParseDigits(s, 2, 16, max, v);
  if (s.size() > 1 && s[0] == '0') return ParseDigits(s, 1, 8, max, v);
  return ParseDigits(s, 0, 10, max, v);
}

// Decimal digits only: what libpcap makes of the parts of a dotted address and the ends of a port range.
bool ParseDecimal(const std::string& s, uint32_t max, uint32_t* v) { return ParseDigits(s, 0, 10, max, v); }

bool ParseIpv4(const std::string& s, uint32_t* addr) {
  in_addr a;
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *addr = ntohl(a.s_addr);
  return true;
}

bool ParseIpv6(const std::string& s, uint8_t out[16]) {
  return s.find(':') != std::string::npos && inet_pton(AF_INET6, s.c_str(), out) == 1;
}

// libpcap's network forms: "a.b.c.d/len", "a.b.c/len", "a.b" (a partial address implies its length).
bool ParseIpv4Net(const std::string& s, uint32_t* lo, uint32_t* hi) {
  std::string addr = s;
  int len = -1;
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    uint32_t l;
    if (!ParseNumber(s.substr(slash + 1), 32, &l)) return false;
    len = static_cast<int>(l);
    addr = s.substr(0, slash);
  }
  uint32_t v = 0;
  int parts = 0;
  size_t start = 0;
  while (start <= addr.size()) {
    size_t dot = addr.find('.', start);
    std::string part = addr.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    uint32_t p;
    // A lone number is libpcap's NUM (`net 010` is 8.0.0.0/8); the parts of a dotted one are decimal.
    bool lone = parts == 0 && dot == std::string::npos;
    if (!(lone ? ParseNumber(part, 255, &p) : ParseDecimal(part, 255, &p)) || parts == 4) return false;
    v = v << 8 | p;
    ++parts;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  v <<= 8 * (4 - parts);
  if (len < 0) len = 8 * parts;
  uint32_t mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  *lo = v & mask;
  *hi = *lo | ~mask;
  return true;
}

bool ParseIpv6Net(const std::string& s, uint8_t lo[16], uint8_t hi[16]) {
  size_t slash = s.find('/');
  uint32_t len = 128;
  if (slash != std::string::npos && !ParseNumber(s.substr(slash + 1), 128, &len)) return false;
  if (!ParseIpv6(s.substr(0, slash), lo)) return false;
  for (int i = 0; i < 16; ++i) {
    int bits = static_cast<int>(len) - 8 * i;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    lo[i] &= mask;
    hi[i] = lo[i] | static_cast<uint8_t>(~mask);
  }
  return true;
}

ExprPtr HostExpr(const std::string& value) {
  uint32_t a4;
  uint8_t a6[16];
  if (ParseIpv4(value, &a4)) return Key(Ipv4Key(a4), "ipv4 " + value);
  if (ParseIpv6(value, a6)) return Key(Ipv6Key(a6), "ipv6 " + value);
  return All();  // a host name: libpcap resolves it; scan rather than guess
}

ExprPtr EthertypesExpr(std::initializer_list<uint16_t> types, const std::string& name) {
  std::vector<std::pair<std::string, std::string>> r;
  for (uint16_t t : types) r.emplace_back(EthertypeKey(t), EthertypeKey(t));
  return Keys(std::move(r), name);
}

// The addresses [lo, hi] of an IPv4 or IPv6 `net`. A prefix of length 0 tests no address bits, and libpcap's
// optimizer drops the address loads with it: it matches every packet of the network types, even one cut short
// before its addresses (which the index does not hold).
ExprPtr Ipv4NetExpr(uint32_t lo, uint32_t hi, const std::string& name) {
  if (lo == 0 && hi == UINT32_MAX) return EthertypesExpr({0x0800, 0x0806, 0x8035}, name);
  return Keys({{Ipv4Key(lo), Ipv4Key(hi)}}, name);
}
ExprPtr Ipv6NetExpr(const uint8_t lo[16], const uint8_t hi[16], const std::string& name) {
  if (std::all_of(lo, lo + 16, [](uint8_t b) { return b == 0; }) &&
      std::all_of(hi, hi + 16, [](uint8_t b) { return b == 0xff; })) {
    return EthertypesExpr({0x86dd}, name);
  }
  return Keys({{Ipv6Key(lo), Ipv6Key(hi)}}, name);
}

ExprPtr NetExpr(const std::vector<std::string>& w, size_t i) {
  if (i >= w.size()) return All();
  if (i + 3 == w.size() && Lower(w[i + 1]) == "mask") {
    uint32_t a, m;
    if (!ParseIpv4(w[i], &a) || !ParseIpv4(w[i + 2], &m)) return All();
    return Ipv4NetExpr(a & m, (a & m) | ~m, "ipv4 net " + w[i] + " mask " + w[i + 2]);
  }
  if (i + 1 != w.size()) return All();
  uint32_t lo, hi;
  if (ParseIpv4Net(w[i], &lo, &hi)) return Ipv4NetExpr(lo, hi, "ipv4 net " + w[i]);
  uint8_t lo6[16], hi6[16];
  if (ParseIpv6Net(w[i], lo6, hi6)) return Ipv6NetExpr(lo6, hi6, "ipv6 net " + w[i]);
  return All();
}

ExprPtr ProtocolExpr(uint32_t proto, const std::string& name) {
  return Key(ProtocolKey(static_cast<uint8_t>(proto)), "proto " + name);
}

// The index lookup for one libpcap primitive, or All() when the index does not hold what it tests.
ExprPtr PrimitiveExpr(const std::vector<std::string>& words) {
  std::vector<std::string> w;
  for (const auto& x : words) w.push_back(Lower(x));
  if (w.empty()) return All();
  if (w.size() == 1) {
    const std::string& k = w[0];
    if (k == "tcp") return ProtocolExpr(6, "tcp");
    if (k == "udp") return ProtocolExpr(17, "udp");
    if (k == "sctp") return ProtocolExpr(132, "sctp");
    if (k == "icmp") return ProtocolExpr(1, "icmp");
    if (k == "icmp6") return ProtocolExpr(58, "icmp6");
    if (k == "igmp") return ProtocolExpr(2, "igmp");
    if (k == "ip") return EthertypesExpr({0x0800}, "ip");
    if (k == "ip6") return EthertypesExpr({0x86dd}, "ip6");
    if (k == "arp") return EthertypesExpr({0x0806}, "arp");
    if (k == "rarp") return EthertypesExpr({0x8035}, "rarp");
    if (k == "vlan") return EthertypesExpr({0x8100, 0x88a8, 0x9100}, "vlan");
    if (k == "mpls") return EthertypesExpr({0x8847, 0x8848}, "mpls");
    return HostExpr(words[0]);  // a bare address means `host`
  }
  size_t i = 0;
  // Protocol qualifier.
  static const char* kProtoQualifiers[] = {"ip", "ip6", "arp", "rarp", "tcp", "udp", "sctp"};
  if (std::find(std::begin(kProtoQualifiers), std::end(kProtoQualifiers), w[0]) != std::end(kProtoQualifiers)) {
    i = 1;
  }
  if (i < w.size() && w[i] == "vlan") {
    uint32_t id;
    if (i + 2 == w.size() && ParseNumber(w[i + 1], 4095, &id)) {
      return Key(VlanKey(static_cast<uint16_t>(id)), "vlan " + w[i + 1]);
    }
    return All();
  }
  if (i < w.size() && (w[i] == "proto") && i + 2 == w.size()) {
    uint32_t p;
    if (ParseNumber(w[i + 1], 255, &p) && (i == 0 || w[0] == "ip" || w[0] == "ip6")) return ProtocolExpr(p, w[i + 1]);
    return All();
  }
  // Direction qualifier.
  if (i < w.size() && (w[i] == "src" || w[i] == "dst")) {
    ++i;
    if (i + 1 < w.size() && (w[i] == "or" || w[i] == "and") && (w[i + 1] == "src" || w[i + 1] == "dst")) i += 2;
  }
  if (i >= w.size()) return All();
  const std::string& type = w[i];
  if (type == "host" && i + 2 == w.size()) {
    if (w[0] == "tcp" || w[0] == "udp" || w[0] == "sctp") return All();  // not a libpcap form
    return HostExpr(words[i + 1]);
  }
  if (type == "net") return NetExpr(words, i + 1);
  if (type == "port" && i + 2 == w.size()) {
    uint32_t p;
    if (ParseNumber(w[i + 1], 65535, &p)) return Key(PortKey(static_cast<uint16_t>(p)), "port " + w[i + 1]);
    return All();  // a service name
  }
  if (type == "portrange" && i + 2 == w.size()) {
    size_t dash = w[i + 1].find('-');
    uint32_t a, b;
    if (dash != std::string::npos && ParseDecimal(w[i + 1].substr(0, dash), 65535, &a) &&
        ParseDecimal(w[i + 1].substr(dash + 1), 65535, &b)) {
      if (a > b) std::swap(a, b);
      return Keys({{PortKey(static_cast<uint16_t>(a)), PortKey(static_cast<uint16_t>(b))}}, "portrange " + w[i + 1]);
    }
    return All();
  }
  if (i + 1 == w.size() && i > 0 && (w[i - 1] == "src" || w[i - 1] == "dst")) {
    return HostExpr(words[i]);  // `src 10.0.0.1` == `src host 10.0.0.1`
  }
  return All();
}

// After `mpls`, `pppoes`, `geneve` or `vxlan`, libpcap reads the following primitives at shifted offsets
// without checking what is there, so they may match bytes the dissector does not record as those values.
// `vlan` shifts them too; that is harmless while `vlan` must match for the whole query to match (only `and`
// above it), since the shifted reads then land on the tagged frame's inner headers, which the dissector
// records — but under `or` or `not` the shifted reads also apply to frames without a tag.
bool ShiftsOffsetsBlindly(const QueryNode* q, bool under_or_not) {
  if (q->kind == QueryNode::Kind::kPrimitive) {
    for (const auto& w : q->words) {
      std::string l = Lower(w);
      if (l == "mpls" || l == "pppoes" || l == "geneve" || l == "vxlan") return true;
      if (l == "vlan" && under_or_not) return true;
    }
  }
  bool below = under_or_not || q->kind == QueryNode::Kind::kOr || q->kind == QueryNode::Kind::kNot;
  for (const auto& c : q->children) {
    if (ShiftsOffsetsBlindly(c.get(), below)) return true;
  }
  return false;
}

ExprPtr BuildExpr(const QueryNode* q) {
  switch (q->kind) {
    case QueryNode::Kind::kAnd:
      return Combine(Expr::kAnd, BuildExpr(q->children[0].get()), BuildExpr(q->children[1].get()));
    case QueryNode::Kind::kOr:
      return Combine(Expr::kOr, BuildExpr(q->children[0].get()), BuildExpr(q->children[1].get()));
    case QueryNode::Kind::kNot:
    case QueryNode::Kind::kTime:
      return All();
    case QueryNode::Kind::kPrimitive:
      return PrimitiveExpr(q->words);
  }
  return All();
}

TimeRange Intersect(TimeRange a, TimeRange b) { return {std::max(a.lo, b.lo), std::min(a.hi, b.hi)}; }

TimeRange Hull(TimeRange a, TimeRange b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
}

TimeRange BuildTime(const QueryNode* q) {
  TimeRange all;
  switch (q->kind) {
    case QueryNode::Kind::kTime:
      if (q->before) all.hi = q->time_ns;
      else all.lo = q->time_ns;
      return all;
    case QueryNode::Kind::kAnd:
      return Intersect(BuildTime(q->children[0].get()), BuildTime(q->children[1].get()));
    case QueryNode::Kind::kOr:
      return Hull(BuildTime(q->children[0].get()), BuildTime(q->children[1].get()));
    case QueryNode::Kind::kNot: {
      const QueryNode* c = q->children[0].get();
      if (c->kind == QueryNode::Kind::kTime) {
        if (c->before) all.lo = c->time_ns;
        else all.hi = c->time_ns;
      }
      return all;
    }
    case QueryNode::Kind::kPrimitive:
      return all;
  }
  return all;
}

// Approximate bytes of posting lists an expression reads.
uint64_t EstimateBytes(const Expr& e, const IndexView& index) {
  switch (e.kind) {
    case Expr::kAll:
      return std::numeric_limits<uint64_t>::max();
    case Expr::kKeys: {
      uint64_t sum = 0;
      for (const auto& [first, last] : e.ranges) sum += index.EstimateBytes(first, last);
      return sum;
    }
    case Expr::kAnd:
      return std::min(EstimateBytes(*e.children[0], index), EstimateBytes(*e.children[1], index));
    case Expr::kOr: {
      uint64_t a = EstimateBytes(*e.children[0], index), b = EstimateBytes(*e.children[1], index);
      return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
    }
  }
  return 0;
}

// The number of keys in [first, last] if both have the same type byte and length and it is at most `max`;
// else 0.
uint64_t SmallRangeSize(const std::string& first, const std::string& last, uint64_t max) {
  if (first.size() != last.size() || first.empty() || first[0] != last[0] || first.size() > 9) return 0;
  uint64_t a = 0, b = 0;
  for (size_t i = 1; i < first.size(); ++i) {
    a = a << 8 | static_cast<uint8_t>(first[i]);
    b = b << 8 | static_cast<uint8_t>(last[i]);
  }
  if (b < a || b - a >= max) return 0;
  return b - a + 1;
}

bool ExprMayMatch(const Expr& e, const std::function<bool(const std::string& key)>& may_contain) {
  switch (e.kind) {
    case Expr::kAll:
      return true;
    case Expr::kKeys:
      for (const auto& [first, last] : e.ranges) {
        if (first == last) {
          if (may_contain(first)) return true;
          continue;
        }
        uint64_t n = SmallRangeSize(first, last, 256);
        if (n == 0) return true;
        std::string key = first;
        for (uint64_t i = 0; i < n; ++i) {
          if (may_contain(key)) return true;
          for (size_t j = key.size() - 1; j > 0; --j) {  // next key: big-endian increment
            if (++reinterpret_cast<uint8_t&>(key[j]) != 0) break;
          }
        }
      }
      return false;
    case Expr::kAnd:
      return ExprMayMatch(*e.children[0], may_contain) && ExprMayMatch(*e.children[1], may_contain);
    case Expr::kOr:
      return ExprMayMatch(*e.children[0], may_contain) || ExprMayMatch(*e.children[1], may_contain);
  }
  return true;
}

Status Evaluate(const Expr& e, const IndexView& index, std::vector<uint32_t>* out) {
  switch (e.kind) {
    case Expr::kAll:
      return Status::InvalidArgument("internal: All inside an index expression");
    case Expr::kKeys: {
      for (const auto& [first, last] : e.ranges) {
        Status s = index.LookupRange(first, last, out);
        if (!s.ok()) return s;
      }
      if (e.ranges.size() > 1) NormalizePositions(out);
      return Status::OK();
    }
    case Expr::kAnd: {
      // Cheapest side first; an empty side ends it; a side that costs far more than the other is skipped.
      const Expr* first = e.children[0].get();
      const Expr* second = e.children[1].get();
      uint64_t c1 = EstimateBytes(*first, index), c2 = EstimateBytes(*second, index);
      if (c2 < c1) std::swap(first, second), std::swap(c1, c2);
      std::vector<uint32_t> a, b;
      Status s = Evaluate(*first, index, &a);
      if (!s.ok()) return s;
      constexpr uint64_t kSkipAbove = 64 * 1024;
      if (a.empty() || (c2 > kSkipAbove && c2 / 4 > c1)) {
        *out = std::move(a);
        return Status::OK();
      }
      s = Evaluate(*second, index, &b);
      if (!s.ok()) return s;
      *out = IntersectPositions(a, b);
      return Status::OK();
    }
    case Expr::kOr: {
      std::vector<uint32_t> a, b;
      Status s = Evaluate(*e.children[0], index, &a);
      if (s.ok()) s = Evaluate(*e.children[1], index, &b);
      if (!s.ok()) return s;
      *out = UnionPositions(a, b);
      return Status::OK();
    }
  }
  return Status::OK();
}

std::string DescribeExpr(const Expr& e) {
  switch (e.kind) {
    case Expr::kAll: return "all";
    case Expr::kKeys: return e.label;
    case Expr::kAnd:
    case Expr::kOr:
      return std::string(e.kind == Expr::kAnd ? "and(" : "or(") + DescribeExpr(*e.children[0]) + ", " +
             DescribeExpr(*e.children[1]) + ")";
  }
  return "";
}

}  // namespace

QueryPlan QueryPlan::Build(const QueryNode* root) {
  QueryPlan plan;
  plan.expr_ = root && !ShiftsOffsetsBlindly(root, false) ? BuildExpr(root) : All();
  if (root) plan.time_ = BuildTime(root);
  return plan;
}

bool QueryPlan::uses_index() const { return expr_->kind != Expr::kAll; }

Status QueryPlan::Candidates(const IndexView& index, FileCandidates* out) const {
  *out = FileCandidates();
  if (!uses_index()) {
    out->all = true;
    return Status::OK();
  }
  Status s = Evaluate(*expr_, index, &out->positions);
  if (!s.ok()) return s;
  std::vector<uint32_t> incomplete;
  s = index.Lookup(IncompleteKey(), &incomplete);
  if (!s.ok()) return s;
  if (!incomplete.empty()) out->positions = UnionPositions(out->positions, incomplete);
  const auto& blocks = index.blocks();
  for (uint32_t b = 0; b < blocks.size(); ++b) {
    if (blocks[b].packets > 0 && !DissectorSupportsLinkType(blocks[b].linktype)) out->whole_blocks.push_back(b);
  }
  return Status::OK();
}

bool QueryPlan::MayMatch(const std::function<bool(const std::string& key)>& may_contain) const {
  return ExprMayMatch(*expr_, may_contain);
}

std::string QueryPlan::Describe() const {
  std::string t = "time [";
  t += time_.lo == std::numeric_limits<int64_t>::min() ? "-inf" : std::to_string(time_.lo);
  t += ", ";
  t += time_.hi == std::numeric_limits<int64_t>::max() ? "+inf" : std::to_string(time_.hi);
  return t + ") index: " + DescribeExpr(*expr_);
}

}  // namespace rwd
