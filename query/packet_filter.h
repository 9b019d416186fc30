// PacketFilter: decides exactly whether one packet matches a query. The query's libpcap parts are compiled
// to BPF per link type (the same compiler tcpdump uses) and its time terms are checked against the packet
// timestamp. With `vlan_fold`, a VLAN-tagged Ethernet frame also matches when the frame with its tags
// removed matches — the one documented difference from tcpdump (host/net/port/proto see inside VLANs; the
// length primitives less, greater and len keep the tagged frame's length).
// A query too large for libpcap's optimizer (whose time grows steeply with the terms of one program: ~1 s of
// CPU for 64 `port` terms, minutes for 1,000) is compiled as a chain of small programs instead, evaluated in
// order; a query that cannot be split that way, or is larger than kMaxPrimitives, is refused by Validate().
// Not thread-safe (caches programs per link type); use one per query.
#ifndef REWIND_QUERY_PACKET_FILTER_H_
#define REWIND_QUERY_PACKET_FILTER_H_

#include <pcap/pcap.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "index/block_format.h"
#include "index/status.h"
#include "query/query_parser.h"

namespace rwd {

class PacketFilter {
 public:
  // `root` (may be null: match all) must outlive the filter.
  PacketFilter(const QueryNode* root, bool vlan_fold);
  ~PacketFilter();
  PacketFilter(const PacketFilter&) = delete;
  PacketFilter& operator=(const PacketFilter&) = delete;

  // Most primitives in one libpcap program; larger chains of and/or are split into programs of at most
  // kPrimitivesPerChunk primitives.
  static constexpr size_t kMaxPrimitivesPerProgram = 32;
  static constexpr size_t kPrimitivesPerChunk = 16;
  // Most primitives in a query.
  static constexpr size_t kMaxPrimitives = 4096;

  // Checks that libpcap accepts every libpcap part of the query for at least one of `linktypes`
  // (Ethernet if empty), keeping the programs for Matches(). On failure: InvalidArgument "at position N:
  // <libpcap's message>", or the query is too large to compile.
  Status Validate(const std::vector<uint32_t>& linktypes);
  bool Matches(uint32_t linktype, const PacketView& pkt);
  // Link types the query could not be compiled for (their packets never match), with libpcap's reason.
  const std::map<uint32_t, std::string>& inapplicable() const { return inapplicable_; }

 private:
  struct Node;
  struct Program;
  std::unique_ptr<Node> Build(const QueryNode* q);
  // The node for time-free `operands` joined by `connective` (kAnd or kOr): one BPF program, or a chain of
  // programs when they hold more than kMaxPrimitivesPerProgram primitives.
  std::unique_ptr<Node> BuildLibpcap(const std::vector<const QueryNode*>& operands, QueryNode::Kind connective);
  static std::unique_ptr<Node> BpfLeaf(const std::vector<const QueryNode*>& operands, QueryNode::Kind connective);
  // The leaf's program for `linktype`, compiled on first use; unusable if libpcap refused it.
  const Program& ProgramFor(Node* n, uint32_t linktype);
  bool Eval(Node& n, uint32_t linktype, const PacketView& pkt);
  const QueryNode* root_;
  bool vlan_fold_;
  std::unique_ptr<Node> tree_;
  Status build_error_;  // the query is too large to compile
  std::map<uint32_t, std::string> inapplicable_;
  std::vector<uint8_t> untagged_;
};

// Compiles `expr` for `linktype` with libpcap, as tcpdump -r compiles it for a capture file of that link type.
// On failure returns false and sets `*error`.
bool CompileBpf(const std::string& expr, uint32_t linktype, bpf_program* prog, std::string* error);

}  // namespace rwd

#endif  // REWIND_QUERY_PACKET_FILTER_H_
