// QueryParser: parses rewind's query language — tcpdump/libpcap filter syntax extended with Stenographer's
// time terms `before T` and `after T` — into a boolean tree whose leaves are libpcap primitives and time
// terms. Pure functions; thread-safe.
//
// Grammar (as libpcap and Stenographer): `and`/`&&` and `or`/`||` have equal precedence and associate left to
// right; `not`/`!` binds tighter; parentheses group. Keywords are case-insensitive. A primitive is everything
// between two boolean operators (its text is handed to libpcap unchanged); a bare id after an operator
// inherits the qualifiers of the primitive before it, as in libpcap (`host a or b` == `host a or host b`).
// Time: RFC 3339 (`2026-11-22T10:00:00Z`, `2026-11-22T10:00:00.5+01:00`), a date (`2026-11-22`, midnight
// UTC), or relative (`30s ago`, `5m ago`, `2h ago`, `3d ago`, `1h30m ago`, also `ms`). `after T` matches
// packets with timestamp >= T, `before T` those with timestamp < T.
#ifndef REWIND_QUERY_QUERY_PARSER_H_
#define REWIND_QUERY_QUERY_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rwd {

struct QueryNode {
  enum class Kind { kAnd, kOr, kNot, kPrimitive, kTime };
  Kind kind = Kind::kPrimitive;
  // kAnd/kOr: exactly two (the tree is left-associative: `a and b or c` is Or(And(a, b), c)); kNot: one.
  std::vector<std::unique_ptr<QueryNode>> children;
  // Byte span [begin, end) of this node in the query text; a parenthesized group's span includes its parens.
  size_t begin = 0;
  size_t end = 0;
  // For every kind but kTime: libpcap-compilable text of this subtree, valid when the subtree holds no time
  // term: the verbatim source of its span, except that a bare-id primitive gets its inherited qualifiers
  // ("host b" for the `b` of `host a or b`).
  std::string text;
  // kPrimitive: its tokens, qualifiers included, lower-cased keywords kept as written otherwise
  // (`src host 10.0.0.1` -> {"src", "host", "10.0.0.1"}; `net 10.0.0.0/8` -> {"net", "10.0.0.0/8"};
  // `tcp[tcpflags] & tcp-syn != 0` -> its tokens). For a bare id: the inherited qualifiers then the id.
  std::vector<std::string> words;
  // kTime:
  bool before = false;  // true: `before T` (ts < T); false: `after T` (ts >= T)
  int64_t time_ns = 0;  // T in nanoseconds since the Unix epoch, UTC
};

struct QuerySyntaxError {
  size_t position = 0;  // byte offset in the query text where the problem is
  std::string problem;  // e.g. "unbalanced '('", "expected a time after 'after'"
  std::string ToString() const;  // "at position N: problem"
};

struct ParsedQuery {
  std::unique_ptr<QueryNode> root;  // null for an empty (all-whitespace) query: matches every packet
};

// Parses `text`; relative times are taken back from `now_ns`. Returns false and fills `*error` on a
// malformed query. Does not call libpcap: primitives are checked later by compiling them.
bool ParseQuery(std::string_view text, int64_t now_ns, ParsedQuery* out, QuerySyntaxError* error);

// True if the subtree contains a kTime node.
bool ContainsTime(const QueryNode& node);

// Parses a time value as accepted after `before`/`after` (without the keyword); `ago` included for
// relative ones ("2h ago"). Returns false if it is not a valid time.
bool ParseTimeValue(std::string_view text, int64_t now_ns, int64_t* time_ns);

}  // namespace rwd

#endif  // REWIND_QUERY_QUERY_PARSER_H_
