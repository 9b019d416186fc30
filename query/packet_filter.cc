#include "query/packet_filter.h"

#include <cstring>
#include <mutex>

#include "index/link_type.h"

namespace rwd {
namespace {

// pcap_compile is not reentrant in older libpcaps; serialize it.
std::mutex compile_mu;

bool IsVlanType(uint16_t t) { return t == 0x8100 || t == 0x88a8 || t == 0x9100; }

}  // namespace

bool CompileBpf(const std::string& expr, uint32_t linktype, bpf_program* prog, std::string* error) {
  std::lock_guard<std::mutex> l(compile_mu);
  pcap_t* p = pcap_open_dead(LinktypeToDlt(linktype), kMaxSnapLen);
  if (p == nullptr) {
    *error = "libpcap cannot open a handle for link type " + std::to_string(linktype);
    return false;
  }
  bool ok = pcap_compile(p, prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0;
  if (!ok) *error = pcap_geterr(p);
  pcap_close(p);
  return ok;
}

struct PacketFilter::Program {
  bool usable = false;
  bpf_program prog{};
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

PacketFilter::PacketFilter(const QueryNode* root, bool vlan_fold) : root_(root), vlan_fold_(vlan_fold) {
  tree_ = root ? Build(root) : std::make_unique<Node>();
}

PacketFilter::~PacketFilter() = default;

namespace {

// Collects the operands of a chain of And nodes that contain time terms.
void FlattenAnd(const QueryNode* q, std::vector<const QueryNode*>* out) {
  if (q->kind == QueryNode::Kind::kAnd && ContainsTime(*q)) {
    for (const auto& c : q->children) FlattenAnd(c.get(), out);
  } else {
    out->push_back(q);
  }
}

}  // namespace

std::unique_ptr<PacketFilter::Node> PacketFilter::Build(const QueryNode* q) {
  auto n = std::make_unique<Node>();
  n->position = q->begin;
  if (!ContainsTime(*q)) {
    n->kind = Node::kBpf;
    n->bpf_text = q->text;
    return n;
  }
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
      std::string joined;
      size_t position = 0;
      for (const QueryNode* o : operands) {
        if (ContainsTime(*o)) {
          n->children.push_back(Build(o));
        } else {
          if (joined.empty()) position = o->begin;
          joined += joined.empty() ? "(" + o->text + ")" : " and (" + o->text + ")";
        }
      }
      if (!joined.empty()) {
        auto b = std::make_unique<Node>();
        b->kind = Node::kBpf;
        b->bpf_text = joined;
        b->position = position;
        n->children.insert(n->children.begin(), std::move(b));
      }
      return n;
    }
    case QueryNode::Kind::kPrimitive:
      break;
  }
  n->kind = Node::kBpf;
  n->bpf_text = q->text;
  return n;
}

Status PacketFilter::Validate(const std::vector<uint32_t>& linktypes) const {
  std::vector<uint32_t> lts = linktypes;
  if (lts.empty()) lts.push_back(1);  // Ethernet
  // Find every BPF leaf; each must compile for at least one link type.
  std::vector<const Node*> stack = {tree_.get()};
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    for (const auto& c : n->children) stack.push_back(c.get());
    if (n->kind != Node::kBpf) continue;
    std::string first_error;
    bool ok = false;
    for (uint32_t lt : lts) {
      bpf_program prog;
      std::string err;
      if (CompileBpf(n->bpf_text, lt, &prog, &err)) {
        pcap_freecode(&prog);
        ok = true;
        break;
      }
      if (first_error.empty()) first_error = err;
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

bool PacketFilter::Eval(const Node& n, uint32_t linktype, const PacketView& pkt) {
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
      auto& slot = const_cast<Node&>(n).programs[linktype];
      if (!slot) {
        slot = std::make_unique<Program>();
        std::string err;
        slot->usable = CompileBpf(n.bpf_text, linktype, &slot->prog, &err);
        if (!slot->usable) inapplicable_.emplace(linktype, err);
      }
      if (!slot->usable) return false;
      return bpf_filter(slot->prog.bf_insns, pkt.data, pkt.len, pkt.caplen) != 0;
    }
  }
  return false;
}

bool PacketFilter::Matches(uint32_t linktype, const PacketView& pkt) {
  if (Eval(*tree_, linktype, pkt)) return true;
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
  stripped.len = pkt.len >= off - 12 ? pkt.len - (off - 12) : stripped.caplen;
  return Eval(*tree_, linktype, stripped);
}

}  // namespace rwd
