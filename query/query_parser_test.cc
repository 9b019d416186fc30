#include "query/query_parser.h"

#include <pcap/pcap.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace rwd {
namespace {

using Kind = QueryNode::Kind;

constexpr int64_t kSecond = 1000000000;
// "Now" for relative times: 2026-11-22T10:00:00Z.
constexpr int64_t kNow = 1795341600 * kSecond;

ParsedQuery Parse(std::string_view text) {
  ParsedQuery q;
  QuerySyntaxError e;
  EXPECT_TRUE(ParseQuery(text, kNow, &q, &e)) << "'" << text << "': " << e.ToString();
  return q;
}

QuerySyntaxError ParseError(std::string_view text) {
  ParsedQuery q;
  QuerySyntaxError e;
  EXPECT_FALSE(ParseQuery(text, kNow, &q, &e)) << "'" << text << "' parsed";
  EXPECT_EQ(q.root, nullptr);
  return e;
}

// The tree as a compact string: And(..,..), Or(..,..), Not(..), primitives as their text in brackets,
// time terms as Before(ns)/After(ns).
std::string Shape(const QueryNode& n) {
  switch (n.kind) {
    case Kind::kAnd: return "And(" + Shape(*n.children[0]) + "," + Shape(*n.children[1]) + ")";
    case Kind::kOr: return "Or(" + Shape(*n.children[0]) + "," + Shape(*n.children[1]) + ")";
    case Kind::kNot: return "Not(" + Shape(*n.children[0]) + ")";
    case Kind::kPrimitive: return "[" + n.text + "]";
    case Kind::kTime: return (n.before ? "Before(" : "After(") + std::to_string(n.time_ns) + ")";
  }
  return "?";
}

std::string ShapeOf(std::string_view text) {
  ParsedQuery q = Parse(text);
  if (q.root == nullptr) return "<null>";
  return Shape(*q.root);
}

using Words = std::vector<std::string>;

void CollectPrimitives(const QueryNode& n, std::vector<const QueryNode*>* out) {
  if (n.kind == Kind::kPrimitive) out->push_back(&n);
  for (const auto& c : n.children) CollectPrimitives(*c, out);
}

std::vector<const QueryNode*> Primitives(const ParsedQuery& q) {
  std::vector<const QueryNode*> out;
  if (q.root != nullptr) CollectPrimitives(*q.root, &out);
  return out;
}

TEST(QueryParser, EmptyQueryHasNoRoot) {
  for (std::string_view text : {"", " ", "  \t\r\n  "}) {
    ParsedQuery q;
    q.root = std::make_unique<QueryNode>();
    QuerySyntaxError e;
    ASSERT_TRUE(ParseQuery(text, kNow, &q, &e));
    EXPECT_EQ(q.root, nullptr);
  }
}

TEST(QueryParser, SinglePrimitive) {
  ParsedQuery q = Parse("  src host 10.0.0.1 ");
  ASSERT_NE(q.root, nullptr);
  EXPECT_EQ(q.root->kind, Kind::kPrimitive);
  EXPECT_EQ(q.root->begin, 2u);
  EXPECT_EQ(q.root->end, 19u);
  EXPECT_EQ(q.root->text, "src host 10.0.0.1");
  EXPECT_EQ(q.root->words, (Words{"src", "host", "10.0.0.1"}));
  EXPECT_TRUE(q.root->children.empty());

  q = Parse("net 10.0.0.0/8");
  EXPECT_EQ(q.root->words, (Words{"net", "10.0.0.0/8"}));
}

TEST(QueryParser, KeywordsLowerCasedInWordsOnly) {
  ParsedQuery q = Parse("SRC Host MyServer");
  EXPECT_EQ(q.root->words, (Words{"src", "host", "MyServer"}));
  EXPECT_EQ(q.root->text, "SRC Host MyServer");
}

TEST(QueryParser, AndOrEqualPrecedenceLeftAssociative) {
  EXPECT_EQ(ShapeOf("tcp or udp and icmp"), "And(Or([tcp],[udp]),[icmp])");
  EXPECT_EQ(ShapeOf("tcp and udp or icmp"), "Or(And([tcp],[udp]),[icmp])");
  EXPECT_EQ(ShapeOf("tcp or udp or icmp or arp"), "Or(Or(Or([tcp],[udp]),[icmp]),[arp])");
  EXPECT_EQ(ShapeOf("host 1.1.1.1 or host 2.2.2.2 and port 80"),
            "And(Or([host 1.1.1.1],[host 2.2.2.2]),[port 80])");

  ParsedQuery q = Parse("tcp or udp and icmp");
  const QueryNode& root = *q.root;
  ASSERT_EQ(root.children.size(), 2u);
  EXPECT_EQ(root.begin, 0u);
  EXPECT_EQ(root.end, 19u);
  EXPECT_EQ(root.text, "tcp or udp and icmp");
  const QueryNode& left = *root.children[0];
  EXPECT_EQ(left.begin, 0u);
  EXPECT_EQ(left.end, 10u);
  EXPECT_EQ(left.text, "tcp or udp");
  EXPECT_EQ(root.children[1]->begin, 15u);
  EXPECT_EQ(root.children[1]->end, 19u);
}

TEST(QueryParser, NotBindsTighterThanAndOr) {
  EXPECT_EQ(ShapeOf("not tcp and udp"), "And(Not([tcp]),[udp])");
  EXPECT_EQ(ShapeOf("tcp or not udp and icmp"), "And(Or([tcp],Not([udp])),[icmp])");
  EXPECT_EQ(ShapeOf("not not tcp"), "Not(Not([tcp]))");
  EXPECT_EQ(ShapeOf("not (tcp or udp)"), "Not(Or([tcp],[udp]))");

  ParsedQuery q = Parse("not port 22");
  EXPECT_EQ(q.root->kind, Kind::kNot);
  EXPECT_EQ(q.root->begin, 0u);
  EXPECT_EQ(q.root->end, 11u);
  EXPECT_EQ(q.root->text, "not port 22");
  ASSERT_EQ(q.root->children.size(), 1u);
  EXPECT_EQ(q.root->children[0]->begin, 4u);
}

TEST(QueryParser, Parentheses) {
  EXPECT_EQ(ShapeOf("tcp and (udp or icmp)"), "And([tcp],Or([udp],[icmp]))");
  EXPECT_EQ(ShapeOf("(tcp and udp) or (icmp and arp)"), "Or(And([tcp],[udp]),And([icmp],[arp]))");
  EXPECT_EQ(ShapeOf("((tcp or udp)) and not ((icmp))"), "And(Or([tcp],[udp]),Not([((icmp))]))");

  // A group's span and text include its parentheses.
  ParsedQuery q = Parse("tcp and (udp or icmp)");
  const QueryNode& group = *q.root->children[1];
  EXPECT_EQ(group.kind, Kind::kOr);
  EXPECT_EQ(group.begin, 8u);
  EXPECT_EQ(group.end, 21u);
  EXPECT_EQ(group.text, "(udp or icmp)");

  q = Parse("((port 53))");
  EXPECT_EQ(q.root->kind, Kind::kPrimitive);
  EXPECT_EQ(q.root->begin, 0u);
  EXPECT_EQ(q.root->end, 11u);
  EXPECT_EQ(q.root->text, "((port 53))");
  EXPECT_EQ(q.root->words, (Words{"port", "53"}));
}

TEST(QueryParser, SymbolicOperators) {
  EXPECT_EQ(ShapeOf("tcp && !udp || icmp"), "Or(And([tcp],Not([udp])),[icmp])");
  EXPECT_EQ(ShapeOf("!(tcp||udp)&&icmp"), "And(Not(Or([tcp],[udp])),[icmp])");
  EXPECT_EQ(ShapeOf("tcp&&udp"), "And([tcp],[udp])");
}

TEST(QueryParser, OperatorKeywordsAreCaseInsensitive) {
  ParsedQuery q = Parse("tcp AND NOT udp Or icmp");
  EXPECT_EQ(Shape(*q.root), "Or(And([tcp],Not([udp])),[icmp])");
  // libpcap only knows lower-case operators, so they are lower-cased in `text` (same length, same spans).
  EXPECT_EQ(q.root->text, "tcp and not udp or icmp");
  EXPECT_EQ(q.root->children[0]->children[1]->text, "not udp");
}

TEST(QueryParser, NotEqualsIsAComparison) {
  ParsedQuery q = Parse("ether[0] & 1 != 0");
  ASSERT_EQ(q.root->kind, Kind::kPrimitive);
  EXPECT_EQ(q.root->words, (Words{"ether", "[", "0", "]", "&", "1", "!=", "0"}));

  EXPECT_EQ(ShapeOf("udp[8:2]!=0&&!tcp"), "And([udp[8:2]!=0],Not([tcp]))");
  EXPECT_EQ(ShapeOf("ip[8] != 64 and not ip[8] != 128"), "And([ip[8] != 64],Not([ip[8] != 128]))");
}

TEST(QueryParser, ArithmeticPrimitives) {
  ParsedQuery q = Parse("tcp[tcpflags] & (tcp-syn|tcp-ack) != 0 and port 80");
  ASSERT_EQ(q.root->kind, Kind::kAnd);
  const QueryNode& flags = *q.root->children[0];
  EXPECT_EQ(flags.kind, Kind::kPrimitive);
  EXPECT_EQ(flags.text, "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0");
  EXPECT_EQ(flags.words, (Words{"tcp", "[", "tcpflags", "]", "&", "(", "tcp-syn", "|", "tcp-ack", ")", "!=", "0"}));
  EXPECT_EQ(q.root->children[1]->kind, Kind::kPrimitive);
  EXPECT_EQ(q.root->children[1]->text, "port 80");

  EXPECT_EQ(ShapeOf("ip[2:2] > 576 or udp"), "Or([ip[2:2] > 576],[udp])");
  // A term starting with '(' whose ')' is followed by an operator is a primitive.
  EXPECT_EQ(ShapeOf("(ip[0] & 0xf) * 4 > 20 and tcp"), "And([(ip[0] & 0xf) * 4 > 20],[tcp])");
  EXPECT_EQ(ShapeOf("((ip[0] & 0xf) << 2) >= 20"), "[((ip[0] & 0xf) << 2) >= 20]");
  EXPECT_EQ(ShapeOf("not (ip[0] & 0xf) > 5"), "Not([(ip[0] & 0xf) > 5])");
  EXPECT_EQ(ShapeOf("((ip[0] & 0xf) > 5 or udp)"), "Or([(ip[0] & 0xf) > 5],[udp])");
  // ... and so is one whose content is arithmetic.
  EXPECT_EQ(ShapeOf("(tcp-syn|tcp-ack)"), "[(tcp-syn|tcp-ack)]");
  // A parenthesized relation is a group holding a primitive.
  EXPECT_EQ(ShapeOf("tcp and (tcp[13] & 2 != 0)"), "And([tcp],[(tcp[13] & 2 != 0)])");
  EXPECT_EQ(ShapeOf("tcp port 80 and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420)"),
            "And([tcp port 80],[(tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420)])");
  EXPECT_EQ(ShapeOf("len - 14 > 100 || len<=64"), "Or([len - 14 > 100],[len<=64])");
}

TEST(QueryParser, QualifiersWithParenthesizedIdList) {
  ParsedQuery q = Parse("host (10.0.0.1 or 10.0.0.2)");
  ASSERT_EQ(q.root->kind, Kind::kPrimitive);
  EXPECT_EQ(q.root->text, "host (10.0.0.1 or 10.0.0.2)");
  EXPECT_EQ(q.root->words, (Words{"host", "(", "10.0.0.1", "or", "10.0.0.2", ")"}));

  EXPECT_EQ(ShapeOf("port (80 or 443) and tcp"), "And([port (80 or 443)],[tcp])");
  EXPECT_EQ(ShapeOf("tcp and dst port (80 || 443 || 8080)"), "And([tcp],[dst port (80 || 443 || 8080)])");
  EXPECT_EQ(ShapeOf("not host (1.1.1.1 and 2.2.2.2)"), "Not([host (1.1.1.1 and 2.2.2.2)])");
}

TEST(QueryParser, DirectionQualifierWithOperator) {
  // libpcap's `src or dst` / `src and dst` qualifiers contain a boolean keyword.
  ParsedQuery q = Parse("src or dst host 1.2.3.4 and port 22");
  EXPECT_EQ(Shape(*q.root), "And([src or dst host 1.2.3.4],[port 22])");
  EXPECT_EQ(q.root->children[0]->words, (Words{"src", "or", "dst", "host", "1.2.3.4"}));
  EXPECT_EQ(ShapeOf("ether dst and src 01:02:03:04:05:06"), "[ether dst and src 01:02:03:04:05:06]");
  EXPECT_EQ(ShapeOf("tcp or src port 1"), "Or([tcp],[src port 1])");
}

TEST(QueryParser, BareIdInheritsQualifiers) {
  ParsedQuery q = Parse("host a or b");
  ASSERT_EQ(q.root->kind, Kind::kOr);
  const QueryNode& b = *q.root->children[1];
  EXPECT_EQ(b.kind, Kind::kPrimitive);
  EXPECT_EQ(b.words, (Words{"host", "b"}));
  EXPECT_EQ(b.text, "host b");
  EXPECT_EQ(b.begin, 10u);
  EXPECT_EQ(b.end, 11u);
  EXPECT_EQ(q.root->text, "host a or b");  // libpcap applies the qualifiers itself

  q = Parse("src port 80 or 443");
  EXPECT_EQ(q.root->children[1]->words, (Words{"src", "port", "443"}));
  EXPECT_EQ(q.root->children[1]->text, "src port 443");
  q = Parse("tcp port 80 or 443");
  EXPECT_EQ(q.root->children[1]->words, (Words{"tcp", "port", "443"}));
  EXPECT_EQ(q.root->children[1]->text, "tcp port 443");

  // Chains, `and`, `not`, groups.
  EXPECT_EQ(ShapeOf("host a or b or c"), "Or(Or([host a],[host b]),[host c])");
  EXPECT_EQ(ShapeOf("host a and not b"), "And([host a],Not([host b]))");
  EXPECT_EQ(ShapeOf("port 1 or (2 and 3)"), "Or([port 1],And([port 2],[port 3]))");
  // A group is transparent, as in libpcap: the id after it inherits what was in effect before it.
  EXPECT_EQ(ShapeOf("port 1 and (tcp) and 2"), "And(And([port 1],[(tcp)]),[port 2])");
  EXPECT_EQ(ShapeOf("host a or (port 1 or 2) or b"), "Or(Or([host a],Or([port 1],[port 2])),[host b])");
  EXPECT_EQ(ShapeOf("(host a or port 1) or 2"), "Or(Or([host a],[port 1]),[2])");
  EXPECT_EQ(ShapeOf("host (a or b) or c"), "Or([host (a or b)],[host c])");
  EXPECT_EQ(ShapeOf("src or dst host a or b"), "Or([src or dst host a],[src or dst host b])");
  EXPECT_EQ(ShapeOf("ether proto \\ip or \\arp"), "Or([ether proto \\ip],[ether proto \\arp])");
  EXPECT_EQ(ShapeOf("ip proto 6 || 17"), "Or([ip proto 6],[ip proto 17])");
  EXPECT_EQ(ShapeOf("net 1.0.0.0 mask 255.0.0.0 or 2.0.0.0 mask 255.0.0.0"),
            "Or([net 1.0.0.0 mask 255.0.0.0],[net 2.0.0.0 mask 255.0.0.0])");
  EXPECT_EQ(ShapeOf("HOST a or b"), "Or([HOST a],[host b])");

  // The text of a subtree whose bare id inherits from outside the subtree carries the qualifiers.
  q = Parse("host a and not b");
  EXPECT_EQ(q.root->children[1]->text, "not host b");
  q = Parse("port 1 or (2 and 3)");
  EXPECT_EQ(q.root->children[1]->text, "(port 2 and 3)");
  EXPECT_EQ(q.root->text, "port 1 or (2 and 3)");

  // No qualifiers to inherit: the bare id is kept as written.
  q = Parse("1.2.3.4 or 5.6.7.8");
  EXPECT_EQ(q.root->children[0]->words, (Words{"1.2.3.4"}));
  EXPECT_EQ(q.root->children[1]->words, (Words{"5.6.7.8"}));
  EXPECT_EQ(q.root->children[1]->text, "5.6.7.8");
  EXPECT_EQ(ShapeOf("tcp or 80"), "Or([tcp],[80])");
  EXPECT_EQ(ShapeOf("vlan 100 or 200"), "Or([vlan 100],[200])");
  EXPECT_EQ(ShapeOf("len > 5 or 6"), "Or([len > 5],[6])");
  // Keywords are not bare ids.
  EXPECT_EQ(ShapeOf("host a or tcp"), "Or([host a],[tcp])");
  EXPECT_EQ(ShapeOf("port 53 or udp or 5353"), "Or(Or([port 53],[udp]),[5353])");
  EXPECT_EQ(ShapeOf("host a or broadcast"), "Or([host a],[broadcast])");
  // Time terms are skipped when looking for the previous primitive.
  q = Parse("host a and after 2h ago or b");
  EXPECT_EQ(q.root->children[1]->text, "host b");
}

TEST(QueryParser, StenographerForms) {
  struct Case {
    const char* query;
    const char* shape;
  };
  const Case cases[] = {
      {"host 1.2.3.4", "[host 1.2.3.4]"},
      {"net 1.2.3.0/24", "[net 1.2.3.0/24]"},
      {"net 1.2.3.0 mask 255.255.255.0", "[net 1.2.3.0 mask 255.255.255.0]"},
      {"port 80", "[port 80]"},
      {"ip proto 6", "[ip proto 6]"},
      {"tcp", "[tcp]"},
      {"udp", "[udp]"},
      {"icmp", "[icmp]"},
      {"before 2026-01-02T03:04:05Z", "Before(1767323045000000000)"},
      {"after 3h ago", "After(1795330800000000000)"},
      {"host 1.2.3.4 and port 80", "And([host 1.2.3.4],[port 80])"},
      {"host 1.2.3.4 && port 80", "And([host 1.2.3.4],[port 80])"},
      {"tcp or udp", "Or([tcp],[udp])"},
      {"tcp || udp", "Or([tcp],[udp])"},
      {"(port 80 or port 443) and net 10.0.0.0/8 and after 3h ago",
       "And(And(Or([port 80],[port 443]),[net 10.0.0.0/8]),After(1795330800000000000))"},
      {"ip proto 17 && (before 2026-01-02T03:04:05Z || after 3h ago)",
       "And([ip proto 17],Or(Before(1767323045000000000),After(1795330800000000000)))"},
  };
  for (const Case& c : cases) EXPECT_EQ(ShapeOf(c.query), c.shape) << c.query;
}

TEST(QueryParser, TimeTerms) {
  ParsedQuery q = Parse("after 2026-11-22T10:00:00Z");
  ASSERT_EQ(q.root->kind, Kind::kTime);
  EXPECT_FALSE(q.root->before);
  EXPECT_EQ(q.root->time_ns, kNow);
  EXPECT_EQ(q.root->begin, 0u);
  EXPECT_EQ(q.root->end, 26u);
  EXPECT_TRUE(q.root->children.empty());

  q = Parse("port 80 and before 30s ago");
  const QueryNode& t = *q.root->children[1];
  EXPECT_TRUE(t.before);
  EXPECT_EQ(t.time_ns, kNow - 30 * kSecond);
  EXPECT_EQ(t.begin, 12u);
  EXPECT_EQ(t.end, 26u);
  EXPECT_EQ(q.root->text, "port 80 and before 30s ago");

  EXPECT_EQ(ShapeOf("AFTER 1h30m AGO"), "After(" + std::to_string(kNow - 5400 * kSecond) + ")");
  EXPECT_EQ(ShapeOf("after 15m   \t ago and tcp"), "And(After(" + std::to_string(kNow - 900 * kSecond) + "),[tcp])");
  EXPECT_EQ(ShapeOf("(after 2h ago)"), "After(" + std::to_string(kNow - 7200 * kSecond) + ")");
  EXPECT_EQ(ShapeOf("after 2h ago&&tcp"), "And(After(" + std::to_string(kNow - 7200 * kSecond) + "),[tcp])");
  EXPECT_EQ(ShapeOf("before 2026-11-22&&tcp"), "And(Before(1795305600000000000),[tcp])");
  EXPECT_EQ(ShapeOf("not before 2026-11-22t10:00:00.25z"), "Not(Before(1795341600250000000))");
  EXPECT_EQ(ShapeOf("after 2026-11-22T10:00:00.5+01:00"), "After(1795338000500000000)");
  EXPECT_EQ(ShapeOf("after 500ms ago"), "After(" + std::to_string(kNow - kSecond / 2) + ")");
  EXPECT_EQ(ShapeOf("after 3d ago"), "After(" + std::to_string(kNow - 3 * 86400 * kSecond) + ")");
}

TEST(QueryParser, ContainsTime) {
  ParsedQuery q = Parse("(after 30s ago or before 2026-01-01) and port 80");
  ASSERT_NE(q.root, nullptr);
  EXPECT_TRUE(ContainsTime(*q.root));
  EXPECT_TRUE(ContainsTime(*q.root->children[0]));
  EXPECT_FALSE(ContainsTime(*q.root->children[1]));
  q = Parse("not (tcp and port 1)");
  EXPECT_FALSE(ContainsTime(*q.root));
  q = Parse("tcp and not after 1d ago");
  EXPECT_TRUE(ContainsTime(*q.root));
}

TEST(QueryParser, ParseTimeValueAbsolute) {
  struct Case {
    const char* text;
    int64_t ns;
  };
  const Case cases[] = {
      {"2026-11-22T10:00:00Z", 1795341600 * kSecond},
      {"2026-11-22t10:00:00z", 1795341600 * kSecond},
      {"2026-11-22", 1795305600 * kSecond},
      {"  2026-11-22  ", 1795305600 * kSecond},
      {"2026-11-22T10:00:00.5+01:00", 1795338000 * kSecond + 500000000},
      {"2026-11-22T10:00:00.123456789-05:30", 1795361400 * kSecond + 123456789},
      {"2026-11-22T10:00:00.000000001Z", 1795341600 * kSecond + 1},
      {"2026-11-22T10:00:00+00:00", 1795341600 * kSecond},
      {"2026-11-22T10:00:00-00:00", 1795341600 * kSecond},
      {"2024-02-29T23:59:59Z", 1709251199 * kSecond},
      {"2000-03-01T12:00:00Z", 951912000 * kSecond},
      {"1970-01-01T00:00:00Z", 0},
      {"1969-12-31T23:59:59Z", -kSecond},
      {"1970-01-01T00:30:00+01:00", -1800 * kSecond},
      {"2262-04-11T23:47:16Z", 9223372036 * kSecond},
  };
  for (const Case& c : cases) {
    int64_t ns = 42;
    EXPECT_TRUE(ParseTimeValue(c.text, kNow, &ns)) << c.text;
    EXPECT_EQ(ns, c.ns) << c.text;
  }
}

TEST(QueryParser, ParseTimeValueRelative) {
  struct Case {
    const char* text;
    int64_t ago_ns;
  };
  const Case cases[] = {
      {"30s ago", 30 * kSecond},          {"15m ago", 900 * kSecond},
      {"2h ago", 7200 * kSecond},         {"3d ago", 3 * 86400 * kSecond},
      {"1h30m ago", 5400 * kSecond},      {"500ms ago", kSecond / 2},
      {"1d2h3m4s5ms ago", (86400 + 7200 + 180 + 4) * kSecond + 5000000},
      {"2h    ago", 7200 * kSecond},      {"2H AGO", 7200 * kSecond},
      {" 2h\tago ", 7200 * kSecond},      {"0s ago", 0},
  };
  for (const Case& c : cases) {
    int64_t ns = 42;
    EXPECT_TRUE(ParseTimeValue(c.text, kNow, &ns)) << c.text;
    EXPECT_EQ(ns, kNow - c.ago_ns) << c.text;
  }
}

TEST(QueryParser, ParseTimeValueRejects) {
  const char* bad[] = {
      "", "   ", "2h", "ago", "2 h ago", "2hago", "h ago", "2x ago", "-2h ago", "1.5h ago", "2h ago ago",
      "tomorrow", "1700000000", "99999999999999999999s ago", "200000d ago",
      "2026-13-01", "2026-00-10", "2026-02-29", "2026-04-31", "2026-11-00", "2026-1-1", "26-11-22",
      "2026-11-22T10:00:00", "2026-11-22T10:00Z", "2026-11-22 10:00:00Z", "2026-11-22T24:00:00Z",
      "2026-11-22T10:60:00Z", "2026-11-22T10:00:60Z", "2026-11-22T10:00:00.Z",
      "2026-11-22T10:00:00.1234567890Z", "2026-11-22T10:00:00+2400", "2026-11-22T10:00:00+24:00",
      "2026-11-22T10:00:00+01:60", "2026-11-22T10:00:00Zjunk", "2026-11-22x", "9999-12-31",
      "1677-01-01", "2262-04-11T23:47:17Z",
  };
  for (const char* text : bad) {
    int64_t ns = 42;
    EXPECT_FALSE(ParseTimeValue(text, kNow, &ns)) << "'" << text << "' gave " << ns;
  }
  // now - duration must not overflow.
  int64_t ns;
  EXPECT_FALSE(ParseTimeValue("1s ago", INT64_MIN + 5, &ns));
  EXPECT_TRUE(ParseTimeValue("1s ago", 0, &ns));
  EXPECT_EQ(ns, -kSecond);
}

TEST(QueryParser, SyntaxErrors) {
  struct Case {
    std::string query;
    size_t position;
    const char* problem;  // a substring of the expected problem
  };
  const std::vector<Case> cases = {
      // Parentheses.
      {"(host 1.2.3.4", 0, "unbalanced '('"},
      {"tcp and (udp or (icmp)", 8, "unbalanced '('"},
      {"(tcp and (udp", 9, "unbalanced '('"},
      {"host (1.2.3.4 or 5.6.7.8", 5, "unbalanced '('"},
      {"host 1.2.3.4)", 12, "unexpected ')'"},
      {"(tcp))", 5, "unexpected ')'"},
      {") tcp", 0, "unexpected ')'"},
      {"()", 0, "empty parentheses"},
      {"tcp and ( )", 8, "empty parentheses"},
      // Missing operands.
      {"host a and", 10, "expected an expression after 'and'"},
      {"host a and   ", 13, "expected an expression after 'and'"},
      {"and host a", 0, "expected an expression before 'and'"},
      {"&& tcp", 0, "expected an expression before '&&'"},
      {"host a or or port 1", 10, "expected an expression after 'or', found 'or'"},
      {"host a || ", 10, "expected an expression after '||'"},
      {"tcp AND", 7, "expected an expression after 'and'"},
      {"(tcp or)", 7, "expected an expression after 'or', found ')'"},
      {"(or tcp)", 1, "expected an expression before 'or'"},
      {"not", 3, "expected an expression after 'not'"},
      {"tcp and not", 11, "expected an expression after 'not'"},
      {"tcp and !", 9, "expected an expression after '!'"},
      {"not and tcp", 4, "expected an expression after 'not', found 'and'"},
      {"host a not", 10, "expected an expression after 'not'"},
      {"(host a not) or tcp", 11, "expected an expression after 'not'"},
      // Time terms.
      {"after", 5, "expected a time after 'after'"},
      {"tcp and before   ", 17, "expected a time after 'before'"},
      {"after (tcp)", 6, "expected a time after 'after'"},
      {"(before)", 7, "expected a time after 'before'"},
      {"before tcp", 7, "expected a time after 'before', found 'tcp'"},
      {"after 2h", 8, "expected 'ago' after '2h'"},
      {"after 2h and tcp", 9, "expected 'ago' after '2h'"},
      {"after 5x ago", 7, "unknown time unit 'x'"},
      {"after 1h5y ago", 9, "unknown time unit 'y'"},
      {"after 2hours ago", 7, "unknown time unit 'hours'"},
      {"after 5 ago", 7, "missing time unit"},
      {"after 1.5h ago", 7, "fractional"},
      {"before 2026-13-01", 7, "month out of range"},
      {"before 2026-02-30", 7, "day out of range"},
      {"before 2026-11-22T24:00:00Z", 7, "hour out of range"},
      {"before 2026-11-22T10:60:00Z", 7, "minute out of range"},
      {"before 2026-11-22T10:00:61Z", 7, "second out of range"},
      {"before 2026-11-22T10:00:00", 7, "time zone"},
      {"before 2026-11-22T10:00:00+25:00", 7, "offset out of range"},
      {"before 2026-11-22T10:00:00.1234567890Z", 7, "9 fractional digits"},
      {"before 9999-12-31", 7, "out of range"},
      {"port 1 and after 2026-11-22T10:00", 17, "invalid time '2026-11-22T10:00'"},
      // Something other than and/or after a complete term.
      {"after 2h ago host a", 13, "expected 'and' or 'or' before 'host'"},
      {"(tcp) udp", 6, "expected 'and' or 'or' before 'udp'"},
      {"(after 1h ago tcp)", 14, "expected 'and' or 'or' before 'tcp'"},
      // Characters libpcap never accepts.
      {std::string("host a\x01"), 6, "unexpected character (byte 0x01)"},
      {std::string("host\x7f"), 4, "unexpected character (byte 0x7f)"},
      {std::string("port 80\0", 8), 7, "unexpected character (byte 0x00)"},
      {"host \"a\"", 5, "unexpected character '\"'"},
      {"port 80 # comment", 8, "unexpected character '#'"},
      {"host a; port 1", 6, "unexpected character ';'"},
      {"host \xc3\xa9", 5, "unexpected character (byte 0xc3)"},
  };
  for (const Case& c : cases) {
    QuerySyntaxError e = ParseError(c.query);
    EXPECT_EQ(e.position, c.position) << "'" << c.query << "': " << e.ToString();
    EXPECT_NE(e.problem.find(c.problem), std::string::npos) << "'" << c.query << "': " << e.ToString();
  }
}

TEST(QueryParser, ErrorToString) {
  QuerySyntaxError e = ParseError("(tcp");
  EXPECT_EQ(e.ToString(), "at position 0: " + e.problem);
  QuerySyntaxError manual;
  manual.position = 12;
  manual.problem = "unbalanced '('";
  EXPECT_EQ(manual.ToString(), "at position 12: unbalanced '('");
}

TEST(QueryParser, Limits) {
  // Deep nesting is refused rather than overflowing the stack.
  std::string deep = std::string(10000, '(') + "tcp" + std::string(10000, ')');
  QuerySyntaxError e = ParseError(deep);
  EXPECT_NE(e.problem.find("nested too deeply"), std::string::npos) << e.ToString();
  std::string nots;
  for (int i = 0; i < 10000; i++) nots += "not ";
  e = ParseError(nots + "tcp");
  EXPECT_NE(e.problem.find("nested too deeply"), std::string::npos) << e.ToString();
  // Moderate nesting is fine.
  std::string fine = std::string(100, '(') + "tcp" + std::string(100, ')');
  EXPECT_EQ(ShapeOf(fine), "[" + fine + "]");

  // Too many terms.
  std::string many = "port 1";
  for (int i = 2; i <= 1025; i++) many += " or " + std::to_string(i);
  e = ParseError(many);
  EXPECT_NE(e.problem.find("more than 1024 terms"), std::string::npos) << e.ToString();
  many = "port 1";
  for (int i = 2; i <= 1024; i++) many += " or " + std::to_string(i);
  ParsedQuery q = Parse(many);
  ASSERT_NE(q.root, nullptr);
  EXPECT_EQ(q.root->text, many);
  EXPECT_EQ(Primitives(q).size(), 1024u);
  EXPECT_EQ(Primitives(q).back()->text, "port 1024");
}

// Every node of every query compiles alone in libpcap, and the root's text is the query itself: the parser
// splits primitives where libpcap's grammar does and carries inherited qualifiers into subtrees.
TEST(QueryParser, LibpcapCompilesEveryNodeText) {
  const char* queries[] = {
      "host 1.2.3.4",
      "  src host 10.0.0.1 and dst port 53  ",
      "net 192.168.0.0/16 or net 10.0.0.0 mask 255.0.0.0",
      "net 10.0.0.0/8 or 172.16.0.0/12 or 192.168.0.0/16",
      "tcp port 80 or 443",
      "src port 80 or 443 or 8080",
      "host 10.0.0.1 or 10.0.0.2 and not 10.0.0.3",
      "port 1 or (2 and 3)",
      "host 1.2.3.4 and (port 80 or 443)",
      "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0 and port 80",
      "ip[2:2] > 576",
      "ether[0] & 1 != 0",
      "(ip[0] & 0xf) * 4 > 20 and tcp",
      "tcp port 80 and (tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420)",
      "not (tcp or udp) and ip",
      "icmp or icmp6",
      "ip proto 6 or ip proto 17",
      "ip proto 6 or 17",
      "ip6 and dst host ::1",
      "ether host 01:02:03:04:05:06 or ether multicast",
      "vlan 100 and host 1.2.3.4",
      "tcp && !udp || icmp",
      "port (80 or 443) and tcp",
      "host (10.0.0.1 or 10.0.0.2)",
      "src or dst host 1.2.3.4 and port 22",
      "portrange 1-1024 and not port 22",
      "less 100 or greater 1500",
      "len <= 64",
      "udp dst port 53 and udp[10] & 0x80 = 0",
      "icmp[icmptype] == icmp-echo or icmp[icmptype] == icmp-echoreply",
      "ether proto \\ip or \\arp",
      "arp or rarp",
      "((tcp) and (port 22 or port 2222))",
      "not port 22 and not port 53",
      "ip and not net 10.0.0.0/8",
      "tcp AND NOT port 22",
      "mpls and udp",
  };
  pcap_t* pcap = pcap_open_dead(DLT_EN10MB, 262144);
  ASSERT_NE(pcap, nullptr);
  for (const char* query : queries) {
    std::string_view trimmed(query);
    while (!trimmed.empty() && trimmed.front() == ' ') trimmed.remove_prefix(1);
    while (!trimmed.empty() && trimmed.back() == ' ') trimmed.remove_suffix(1);
    ParsedQuery q = Parse(query);
    ASSERT_NE(q.root, nullptr) << query;
    if (std::string_view(query).find("AND") == std::string_view::npos) {
      EXPECT_EQ(q.root->text, trimmed) << query;
    }
    std::vector<const QueryNode*> nodes = {q.root.get()};
    for (size_t i = 0; i < nodes.size(); i++) {
      for (const auto& c : nodes[i]->children) nodes.push_back(c.get());
    }
    for (const QueryNode* n : nodes) {
      ASSERT_NE(n->kind, Kind::kTime);
      bpf_program program;
      const int rc = pcap_compile(pcap, &program, n->text.c_str(), 1, PCAP_NETMASK_UNKNOWN);
      EXPECT_EQ(rc, 0) << "query '" << query << "': node text '" << n->text << "': " << pcap_geterr(pcap);
      if (rc == 0) pcap_freecode(&program);
    }
  }
  pcap_close(pcap);
}

// A filter equivalent to the tree, built only from the nodes' `text`: each subtree compiled in its own
// parentheses, so libpcap sees exactly the tree's structure.
std::string Reassemble(const QueryNode& n) {
  switch (n.kind) {
    case Kind::kAnd: return "(" + Reassemble(*n.children[0]) + ") and (" + Reassemble(*n.children[1]) + ")";
    case Kind::kOr: return "(" + Reassemble(*n.children[0]) + ") or (" + Reassemble(*n.children[1]) + ")";
    case Kind::kNot: return "not (" + Reassemble(*n.children[0]) + ")";
    default: return "(" + n.text + ")";
  }
}

// Ethernet/IPv4/TCP-or-UDP frames with addresses and ports drawn from small sets.
std::vector<std::vector<unsigned char>> SyntheticPackets(std::mt19937* rng) {
  const uint32_t addrs[] = {0x01020304, 0x0a000009, 0x02020202, 0x01010101,
                            0x0a010203, 0x01000001, 0x02000002, 0x08080808};
  const uint16_t ports[] = {1, 22, 53, 80, 443, 17, 6, 1000};
  std::vector<std::vector<unsigned char>> packets;
  for (int i = 0; i < 400; i++) {
    std::vector<unsigned char> p(14 + 20 + 20 + (*rng)() % 40, 0);
    p[12] = 0x08;  // IPv4
    unsigned char* ip = &p[14];
    const bool tcp = (*rng)() % 3 != 0;
    const size_t ip_len = p.size() - 14;
    ip[0] = 0x45;
    ip[2] = static_cast<unsigned char>(ip_len >> 8);
    ip[3] = static_cast<unsigned char>(ip_len);
    ip[8] = 64;
    ip[9] = tcp ? 6 : 17;
    const uint32_t src = addrs[(*rng)() % 8], dst = addrs[(*rng)() % 8];
    for (int k = 0; k < 4; k++) {
      ip[12 + k] = static_cast<unsigned char>(src >> (24 - 8 * k));
      ip[16 + k] = static_cast<unsigned char>(dst >> (24 - 8 * k));
    }
    unsigned char* l4 = ip + 20;
    const uint16_t sport = ports[(*rng)() % 8], dport = ports[(*rng)() % 8];
    l4[0] = static_cast<unsigned char>(sport >> 8);
    l4[1] = static_cast<unsigned char>(sport);
    l4[2] = static_cast<unsigned char>(dport >> 8);
    l4[3] = static_cast<unsigned char>(dport);
    if (tcp) {
      l4[12] = 0x50;
      l4[13] = static_cast<unsigned char>((*rng)());
    } else {
      l4[5] = 8;
    }
    packets.push_back(std::move(p));
  }
  return packets;
}

// Random queries over primitives that exercise splitting, arithmetic, id lists and bare-id inheritance.
std::string RandomQuery(std::mt19937* rng, int depth);

std::string RandomTerm(std::mt19937* rng, int depth) {
  static const char* const kPrimitives[] = {
      "host 1.2.3.4", "10.0.0.9", "2.2.2.2", "443", "80", "src port 80", "dst port 443", "tcp port 22",
      "dst or src host 1.1.1.1", "host (1.2.3.4 or 2.2.2.2)", "port (1 or 22)",
      "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0", "(ip[0] & 0xf) * 4 > 20", "ip[9]=6", "net 10.0.0.0/8",
      "net 1.0.0.0 mask 255.0.0.0", "2.0.0.0 mask 255.0.0.0", "tcp", "udp", "src host 10.0.0.9", "ip proto 6",
      "17", "len <= 64", "greater 70", "src not 10.0.0.9", "portrange 1-80", "udp dst port 53", "53"};
  const unsigned r = (*rng)() % 10;
  if (depth < 3 && r == 0) return ((*rng)() % 2 ? "not " : "!") + RandomTerm(rng, depth + 1);
  if (depth < 3 && r < 3) return "(" + RandomQuery(rng, depth + 1) + ")";
  return kPrimitives[(*rng)() % (sizeof(kPrimitives) / sizeof(kPrimitives[0]))];
}

std::string RandomQuery(std::mt19937* rng, int depth) {
  static const char* const kOperators[] = {" and ", " or ", " && ", " || ", "&&", "||"};
  std::string q = RandomTerm(rng, depth);
  const unsigned n = (*rng)() % 4;
  for (unsigned i = 0; i < n; i++) q += kOperators[(*rng)() % 6] + RandomTerm(rng, depth);
  return q;
}

// For every query libpcap accepts, the tree rebuilt from the nodes' texts matches exactly the same packets
// as the query itself: the tree has libpcap's precedence, primitive boundaries and qualifier inheritance.
TEST(QueryParser, TreeHasLibpcapSemantics) {
  std::mt19937 rng(20261122);
  const std::vector<std::vector<unsigned char>> packets = SyntheticPackets(&rng);
  std::vector<std::string> queries = {
      "host 1.2.3.4 or host 2.2.2.2 and port 80",
      "port 80 or 443 and not 10.0.0.9",
      "not tcp or udp and port 53",
      "src port 80 or 443 || 22",
      "host 1.2.3.4 or (port 22 and 80) or 2.2.2.2",
      "port 1 and (tcp) and 22",
      "tcp[tcpflags] & (tcp-syn|tcp-ack) != 0 and port 80 or udp",
      "(ip[0] & 0xf) * 4 > 20 or dst or src host 1.1.1.1 and 8.8.8.8",
      "host (1.2.3.4 or 2.2.2.2) or 10.0.0.9 and tcp",
      "net 1.0.0.0 mask 255.0.0.0 or 2.0.0.0 mask 255.0.0.0",
      "src not 10.0.0.9 and 1.2.3.4",
  };
  for (int i = 0; i < 600; i++) queries.push_back(RandomQuery(&rng, 0));

  pcap_t* pcap = pcap_open_dead(DLT_EN10MB, 262144);
  ASSERT_NE(pcap, nullptr);
  int checked = 0;
  for (const std::string& query : queries) {
    bpf_program original;
    if (pcap_compile(pcap, &original, query.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) continue;
    ParsedQuery q = Parse(query);
    if (q.root == nullptr) {
      pcap_freecode(&original);
      continue;
    }
    EXPECT_EQ(q.root->text, query);
    const std::string rebuilt = Reassemble(*q.root);
    bpf_program tree;
    if (pcap_compile(pcap, &tree, rebuilt.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
      ADD_FAILURE() << "'" << query << "' rebuilt as '" << rebuilt << "': " << pcap_geterr(pcap);
      pcap_freecode(&original);
      continue;
    }
    checked++;
    for (const auto& p : packets) {
      pcap_pkthdr header{};
      header.caplen = header.len = static_cast<bpf_u_int32>(p.size());
      const bool want = pcap_offline_filter(&original, &header, p.data()) != 0;
      const bool got = pcap_offline_filter(&tree, &header, p.data()) != 0;
      if (want != got) {
        ADD_FAILURE() << "'" << query << "' rebuilt as '" << rebuilt << "' disagrees on a packet";
        break;
      }
    }
    pcap_freecode(&original);
    pcap_freecode(&tree);
  }
  pcap_close(pcap);
  EXPECT_GE(checked, 250);  // about half the generated queries are valid filters
}

}  // namespace
}  // namespace rwd
