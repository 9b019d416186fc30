// QueryPlan: turns a parsed query into (1) the time range that can hold matches and (2) an expression over
// index lookups that yields, per packet file, a superset of the matching packets. Primitives the index holds
// (host, net, port, portrange, proto, tcp/udp/icmp/..., ip/ip6/arp, vlan) become lookups; everything else,
// and any negation, means "every packet in range". Exactness comes later, from PacketFilter.
// Immutable after Build(); thread-safe.
#ifndef REWIND_QUERY_QUERY_PLAN_H_
#define REWIND_QUERY_QUERY_PLAN_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "index/index_reader.h"
#include "index/status.h"
#include "query/query_parser.h"

namespace rwd {

// Half-open [lo, hi) in ns since the epoch.
struct TimeRange {
  int64_t lo = std::numeric_limits<int64_t>::min();
  int64_t hi = std::numeric_limits<int64_t>::max();
  bool Overlaps(int64_t min_ts, int64_t max_ts) const { return max_ts >= lo && min_ts < hi; }
  bool empty() const { return lo >= hi; }
};

// What to read of one packet file.
struct FileCandidates {
  bool all = false;                     // every packet of every block in the time range
  std::vector<uint32_t> positions;      // else: these packets (sorted) ...
  std::vector<uint32_t> whole_blocks;   // ... plus every packet of these blocks (link types not indexed)
};

class QueryPlan {
 public:
  // `root` may be null (match everything).
  static QueryPlan Build(const QueryNode* root);

  const TimeRange& time_range() const { return time_; }
  bool uses_index() const;
  // Of an AND, the side whose lists are cheaper is read first; the other side is not read at all when its lists
  // are much larger (the candidates stay a superset; the filter decides).
  Status Candidates(const IndexView& index, FileCandidates* out) const;
  // False only if `may_contain` (asked about posting-list keys, e.g. by a file's key filter) proves that the
  // index expression selects no packet of the file. Ranges of more than 256 keys are not enumerated (true).
  bool MayMatch(const std::function<bool(const std::string& key)>& may_contain) const;
  // A one-line description, e.g. "time [..) index: and(ipv4 10.0.0.1, port 53)".
  std::string Describe() const;

  struct Expr;  // index expression; defined in the .cc

 private:
  TimeRange time_;
  std::shared_ptr<const Expr> expr_;
};

}  // namespace rwd

#endif  // REWIND_QUERY_QUERY_PLAN_H_
