// PacketFilter: decides exactly whether one packet matches a query. The query's libpcap parts are compiled
// to BPF per link type (the same compiler tcpdump uses) and its time terms are checked against the packet
// timestamp. With `vlan_fold`, a VLAN-tagged Ethernet frame also matches when the frame with its tags
// removed matches — the one documented difference from tcpdump (host/net/port/proto see inside VLANs).
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

  // Checks that libpcap accepts every libpcap part of the query for at least one of `linktypes`
  // (Ethernet if empty). On failure: InvalidArgument "at position N: <libpcap's message>".
  Status Validate(const std::vector<uint32_t>& linktypes) const;
  bool Matches(uint32_t linktype, const PacketView& pkt);
  // Link types the query could not be compiled for (their packets never match), with libpcap's reason.
  const std::map<uint32_t, std::string>& inapplicable() const { return inapplicable_; }

 private:
  struct Node;
  struct Program;
  std::unique_ptr<Node> Build(const QueryNode* q);
  bool Eval(const Node& n, uint32_t linktype, const PacketView& pkt);
  const QueryNode* root_;
  bool vlan_fold_;
  std::unique_ptr<Node> tree_;
  std::map<uint32_t, std::string> inapplicable_;
  std::vector<uint8_t> untagged_;
};

// Compiles `expr` for `linktype` with libpcap. On failure returns false and sets `*error`.
bool CompileBpf(const std::string& expr, uint32_t linktype, bpf_program* prog, std::string* error);

}  // namespace rwd

#endif  // REWIND_QUERY_PACKET_FILTER_H_
