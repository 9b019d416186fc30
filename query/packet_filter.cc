#include "query/packet_filter.h"

#include <cctype>
#include <cstring>
#include <mutex>

#include "index/link_type.h"

namespace rwd {
namespace {

// pcap_compile is not reentrant in older libpcaps; serialize it.
std::mutex compile_mu;

bool IsVlanType(uint16_t t) { return t == 0x8100 || t == 0x88a8 || t == 0x9100; }

// Program keys with this bit are for packets whose BSD loopback header was written by a host of the other
// byte order (see ProgramKey).
constexpr uint32_t kSwappedHeader = 0x80000000u;

// A handle for compiling as tcpdump -r does: libpcap compiles some primitives differently for a capture file
// than for a live capture (on BSD loopback, DLT_NULL/DLT_LOOP, `ip6` means the address families of every
// BSD, 24, 28 and 30, in a file; only the local AF_INET6, 10 on Linux, live), and for DLT_NULL in the file's
// byte order. So the handle reads an empty capture file of `dlt` from memory, in the other byte order if
// `swapped`; pcap_open_dead() if that fails.
pcap_t* OpenCompileHandle(int dlt, bool swapped) {
  struct {
    uint32_t magic = 0xa1b2c3d4;
    uint16_t major = 2, minor = 4;
    int32_t thiszone = 0;
    uint32_t sigfigs = 0, snaplen = kMaxSnapLen, linktype = 0;
  } header;
  header.linktype = static_cast<uint32_t>(dlt);
  if (swapped) {
    header.magic = __builtin_bswap32(header.magic);
    header.major = __builtin_bswap16(header.major);
    header.minor = __builtin_bswap16(header.minor);
    header.snaplen = __builtin_bswap32(header.snaplen);
    header.linktype = __builtin_bswap32(header.linktype);
  }
  char errbuf[PCAP_ERRBUF_SIZE];
  if (FILE* f = fmemopen(&header, sizeof(header), "r")) {
    if (pcap_t* p = pcap_fopen_offline(f, errbuf)) return p;  // owns f now
    fclose(f);
  }
  return pcap_open_dead(dlt, kMaxSnapLen);
}

// The key of the programs for `pkt`: its link type, with kSwappedHeader for a BSD loopback header (DLT_NULL,
// DLT_ENC) in the other byte order. Such a header holds the address family in the byte order of the host that
// wrote the capture, and tcpdump compiles for the file's order; a stored block does not say which order its
// file had, but the family does: a small number, it reads below 2^16 only in the writer's order (0 reads the
// same either way).
uint32_t ProgramKey(uint32_t linktype, const PacketView& pkt) {
  if ((linktype != 0 && linktype != 109) || pkt.caplen < 4) return linktype;
  uint32_t native;
  std::memcpy(&native, pkt.data, 4);
  return native > 0xffff && __builtin_bswap32(native) <= 0xffff ? linktype | kSwappedHeader : linktype;
}

}  // namespace

bool CompileBpf(const std::string& expr, uint32_t linktype, bpf_program* prog, std::string* error) {
  std::lock_guard<std::mutex> l(compile_mu);
  pcap_t* p = OpenCompileHandle(LinktypeToDlt(linktype & ~kSwappedHeader), (linktype & kSwappedHeader) != 0);
  if (p == nullptr) {
    *error = "libpcap cannot open a handle for link type " + std::to_string(linktype);
    return false;
  }
  // Netmask 0, as `tcpdump -r` passes when it reads a file: `ip broadcast` then means destination
  // 255.255.255.255 or 0.0.0.0 instead of being refused.
  bool ok = pcap_compile(p, prog, expr.c_str(), 1, 0) == 0;
  if (!ok) *error = pcap_geterr(p);
  pcap_close(p);
  return ok;
}

struct PacketFilter::Program {
  bool usable = false;
  bpf_program prog{};
  std::string error;  // libpcap's reason when not usable
  ~Program() {
    if (usable) pcap_freecode(&prog);
  }
};

struct PacketFilter::Node {
  enum Kind { kTrue, kBpf, kTime, kAnd, kOr, kNot } kind = kTrue;
  std::string bpf_text;
  size_t position = 0;
  bool before = false;
  int64_t time_ns = 0;
  std::vector<std::unique_ptr<Node>> children;
  std::map<uint32_t, std::unique_ptr<Program>> programs;  // by link type
};


namespace {

// Collects the operands of a chain of And nodes that contain time terms.
void FlattenAnd(const QueryNode* q, std::vector<const QueryNode*>* out) {
  if (q->kind == QueryNode::Kind::kAnd && ContainsTime(*q)) {
    for (const auto& c : q->children) FlattenAnd(c.get(), out);
  } else {
    out->push_back(q);
  }
}

// Collects the operands of a left-to-right chain of `kind` nodes (`a or b or c` is Or(Or(a, b), c)).
void FlattenChain(const QueryNode* q, QueryNode::Kind kind, std::vector<const QueryNode*>* out) {
  std::vector<const QueryNode*> right;  // iterative: a chain of thousands of terms is a tree that deep
  while (q->kind == kind) {
    right.push_back(q->children[1].get());
    q = q->children[0].get();
  }
  out->push_back(q);
  for (auto it = right.rbegin(); it != right.rend(); ++it) {
    if ((*it)->kind == kind) {
      FlattenChain(*it, kind, out);  // a parenthesized chain of the same connective
    } else {
      out->push_back(*it);
    }
  }
}

size_t CountPrimitives(const QueryNode& q) {
  size_t n = 0;
  std::vector<const QueryNode*> stack = {&q};
  while (!stack.empty()) {
    const QueryNode* x = stack.back();
    stack.pop_back();
    if (x->kind == QueryNode::Kind::kPrimitive) ++n;
    for (const auto& c : x->children) stack.push_back(c.get());
  }
  return n;
}

// True if a primitive of `q` makes libpcap read the primitives after it at other offsets.
bool ShiftsLaterOffsets(const QueryNode& q) {
  std::vector<const QueryNode*> stack = {&q};
  while (!stack.empty()) {
    const QueryNode* x = stack.back();
    stack.pop_back();
    for (const auto& w : x->words) {
      std::string l;
      for (char c : w) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (l == "vlan" || l == "mpls" || l == "pppoes" || l == "geneve" || l == "vxlan") return true;
    }
    for (const auto& c : x->children) stack.push_back(c.get());
  }
  return false;
}

}  // namespace

PacketFilter::PacketFilter(const QueryNode* root, bool vlan_fold) : root_(root), vlan_fold_(vlan_fold) {
  tree_ = root ? Build(root) : std::make_unique<Node>();
  size_t primitives = root ? CountPrimitives(*root) : 0;
  if (primitives > kMaxPrimitives) {
    build_error_ = Status::InvalidArgument("at position 0: too many terms (" + std::to_string(primitives) +
                                           "; at most " + std::to_string(kMaxPrimitives) + ")");
  }
}

PacketFilter::~PacketFilter() = default;

std::unique_ptr<PacketFilter::Node> PacketFilter::Build(const QueryNode* q) {
  auto n = std::make_unique<Node>();
  n->position = q->begin;
  if (!ContainsTime(*q)) return BuildLibpcap({q}, QueryNode::Kind::kAnd);
  switch (q->kind) {
    case QueryNode::Kind::kTime:
      n->kind = Node::kTime;
      n->before = q->before;
      n->time_ns = q->time_ns;
      return n;
    case QueryNode::Kind::kNot:
      n->kind = Node::kNot;
      n->children.push_back(Build(q->children[0].get()));
      return n;
    case QueryNode::Kind::kOr:
      n->kind = Node::kOr;
      for (const auto& c : q->children) n->children.push_back(Build(c.get()));
      return n;
    case QueryNode::Kind::kAnd: {
      // Keep the libpcap operands of an And chain together in one program, in their order, so that
      // libpcap's left-to-right effects (`vlan` shifting later offsets) stay as tcpdump has them.
      n->kind = Node::kAnd;
      std::vector<const QueryNode*> operands;
      FlattenAnd(q, &operands);
      std::vector<const QueryNode*> libpcap_operands;
      for (const QueryNode* o : operands) {
        if (ContainsTime(*o)) {
          n->children.push_back(Build(o));
        } else {
          libpcap_operands.push_back(o);
        }
      }
      if (!libpcap_operands.empty()) {
        n->children.insert(n->children.begin(), BuildLibpcap(libpcap_operands, QueryNode::Kind::kAnd));
      }
      return n;
    }
    case QueryNode::Kind::kPrimitive:
      break;
  }
  return BuildLibpcap({q}, QueryNode::Kind::kAnd);
}

std::unique_ptr<PacketFilter::Node> PacketFilter::BpfLeaf(const std::vector<const QueryNode*>& operands,
                                                          QueryNode::Kind connective) {
  auto n = std::make_unique<Node>();
  n->kind = Node::kBpf;
  n->position = operands.front()->begin;
  if (operands.size() == 1) {
    n->bpf_text = operands.front()->text;
    return n;
  }
  const char* op = connective == QueryNode::Kind::kOr ? " or " : " and ";
  for (const QueryNode* o : operands) {
    if (!n->bpf_text.empty()) n->bpf_text += op;
    n->bpf_text += "(" + o->text + ")";
  }
  return n;
}

std::unique_ptr<PacketFilter::Node> PacketFilter::BuildLibpcap(const std::vector<const QueryNode*>& operands,
                                                               QueryNode::Kind connective) {
  size_t total = 0;
  for (const QueryNode* o : operands) total += CountPrimitives(*o);
  if (total <= kMaxPrimitivesPerProgram) return BpfLeaf(operands, connective);
  if (operands.size() == 1 && operands.front()->kind == QueryNode::Kind::kNot) {
    auto n = std::make_unique<Node>();
    n->kind = Node::kNot;
    n->position = operands.front()->begin;
    n->children.push_back(BuildLibpcap({operands.front()->children[0].get()}, QueryNode::Kind::kAnd));
    return n;
  }
  // Too large for one program: split the chain of operands into programs of a few primitives each, evaluated
  // in order. Exact while no operand shifts libpcap's offsets for the ones after it; from the first that
  // does, the rest of the chain stays one program.
  std::vector<const QueryNode*> chain;
  if (operands.size() == 1 && (operands.front()->kind == QueryNode::Kind::kAnd ||
                               operands.front()->kind == QueryNode::Kind::kOr)) {
    connective = operands.front()->kind;
    FlattenChain(operands.front(), connective, &chain);
  } else {
    chain = operands;
  }
  auto n = std::make_unique<Node>();
  n->kind = connective == QueryNode::Kind::kOr ? Node::kOr : Node::kAnd;
  n->position = chain.front()->begin;
  std::vector<const QueryNode*> group;
  size_t group_primitives = 0;
  auto close_group = [&] {
    if (!group.empty()) n->children.push_back(BpfLeaf(group, connective));
    group.clear();
    group_primitives = 0;
  };
  for (size_t i = 0; i < chain.size(); ++i) {
    const QueryNode* o = chain[i];
    if (ShiftsLaterOffsets(*o)) {
      close_group();
      std::vector<const QueryNode*> rest(chain.begin() + static_cast<long>(i), chain.end());
      size_t rest_primitives = 0;
      for (const QueryNode* r : rest) rest_primitives += CountPrimitives(*r);
      if (rest_primitives > kMaxPrimitivesPerProgram && build_error_.ok()) {
        build_error_ = Status::InvalidArgument(
            "at position " + std::to_string(o->begin) + ": too many terms after a vlan/mpls/pppoes/geneve/vxlan term (" +
            std::to_string(rest_primitives) + "; at most " + std::to_string(kMaxPrimitivesPerProgram) +
            "): libpcap compiles them as one program and its optimizer would take minutes");
      }
      n->children.push_back(BpfLeaf(rest, connective));
      return n;
    }
    size_t p = CountPrimitives(*o);
    if (p > kPrimitivesPerChunk) {
      close_group();
      n->children.push_back(BuildLibpcap({o}, QueryNode::Kind::kAnd));
      continue;
    }
    if (group_primitives + p > kPrimitivesPerChunk) close_group();
    group.push_back(o);
    group_primitives += p;
  }
  close_group();
  return n;
}

Status PacketFilter::Validate(const std::vector<uint32_t>& linktypes) {
  if (!build_error_.ok()) return build_error_;
  std::vector<uint32_t> lts = linktypes;
  if (lts.empty()) lts.push_back(1);  // Ethernet
  // Find every BPF leaf; each must compile for at least one link type. The programs compiled here are the
  // ones Matches() runs: each leaf is compiled at most once per link type.
  std::vector<Node*> stack = {tree_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& c : n->children) stack.push_back(c.get());
    if (n->kind != Node::kBpf) continue;
    std::string first_error;
    bool ok = false;
    for (uint32_t lt : lts) {
      const Program& prog = ProgramFor(n, lt);
      if (prog.usable) {
        ok = true;
        break;
      }
      if (first_error.empty()) first_error = prog.error;
    }
    if (ok) continue;
    // Name the first primitive libpcap rejects on its own, else the whole part.
    size_t position = n->position;
    if (root_ != nullptr) {
      std::vector<const QueryNode*> qs = {root_};
      std::vector<const QueryNode*> prims;
      while (!qs.empty()) {
        const QueryNode* q = qs.back();
        qs.pop_back();
        if (q->kind == QueryNode::Kind::kPrimitive) prims.push_back(q);
        for (auto it = q->children.rbegin(); it != q->children.rend(); ++it) qs.push_back(it->get());
      }
      for (const QueryNode* p : prims) {
        if (p->begin < n->position) continue;
        bool prim_ok = false;
        std::string err;
        for (uint32_t lt : lts) {
          bpf_program prog;
          if (CompileBpf(p->text, lt, &prog, &err)) {
            pcap_freecode(&prog);
            prim_ok = true;
            break;
          }
        }
        if (!prim_ok) {
          position = p->begin;
          first_error = err;
          break;
        }
      }
    }
    return Status::InvalidArgument("at position " + std::to_string(position) + ": " + first_error);
  }
  return Status::OK();
}

const PacketFilter::Program& PacketFilter::ProgramFor(Node* n, uint32_t linktype) {
  auto& slot = n->programs[linktype];
  if (!slot) {
    slot = std::make_unique<Program>();
    slot->usable = CompileBpf(n->bpf_text, linktype, &slot->prog, &slot->error);
  }
  return *slot;
}

bool PacketFilter::Eval(Node& n, uint32_t linktype, const PacketView& pkt) {
  switch (n.kind) {
    case Node::kTrue:
      return true;
    case Node::kTime:
      return n.before ? pkt.ts_ns < n.time_ns : pkt.ts_ns >= n.time_ns;
    case Node::kNot:
      return !Eval(*n.children[0], linktype, pkt);
    case Node::kAnd:
      for (const auto& c : n.children) {
        if (!Eval(*c, linktype, pkt)) return false;
      }
      return true;
    case Node::kOr:
      for (const auto& c : n.children) {
        if (Eval(*c, linktype, pkt)) return true;
      }
      return false;
    case Node::kBpf: {
      const Program& prog = ProgramFor(&n, linktype);
      if (!prog.usable) {
        inapplicable_.emplace(linktype & ~kSwappedHeader, prog.error);
        return false;
      }
      return bpf_filter(prog.prog.bf_insns, pkt.data, pkt.len, pkt.caplen) != 0;
    }
  }
  return false;
}

bool PacketFilter::Matches(uint32_t linktype, const PacketView& pkt) {
  if (!build_error_.ok()) return false;
  if (Eval(*tree_, ProgramKey(linktype, pkt), pkt)) return true;
  if (!vlan_fold_ || linktype != 1 || pkt.caplen < 18) return false;
  uint16_t type = static_cast<uint16_t>(pkt.data[12] << 8 | pkt.data[13]);
  if (!IsVlanType(type)) return false;
  // Remove every outer VLAN tag and try again.
  uint32_t off = 12;
  while (off + 4 + 2 <= pkt.caplen && IsVlanType(static_cast<uint16_t>(pkt.data[off] << 8 | pkt.data[off + 1]))) {
    off += 4;
  }
  untagged_.resize(pkt.caplen);
  std::memcpy(untagged_.data(), pkt.data, 12);
  std::memcpy(untagged_.data() + 12, pkt.data + off, pkt.caplen - off);
  PacketView stripped = pkt;
  stripped.data = untagged_.data();
  stripped.caplen = pkt.caplen - (off - 12);
  // The frame's length stays its length on the wire: `less`, `greater` and `len` see the tagged frame, as
  // tcpdump does (folding is for addresses, ports and protocols).
  stripped.len = pkt.len;
  return Eval(*tree_, linktype, stripped);
}

}  // namespace rwd
