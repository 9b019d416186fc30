// QueryParser implementation. Three passes over the query text:
//   1. Tokenize: byte-positioned tokens; rejects characters libpcap can never accept.
//   2. Balance check: every '(' has a matching ')' (so later passes may assume matched parens).
//   3. Recursive descent over the tokens, building the tree; then every node's `text` is filled in.
//
// The parser never interprets a primitive's contents beyond what it needs to find where the primitive ends
// and which qualifiers a following bare id inherits: checking primitives is libpcap's job.
#include "query/query_parser.h"

#include <cstdio>
#include <utility>

namespace rwd {

namespace {

// Limits that bound recursion depth (parser, destructor, text pass) and the size of the per-node `text`
// strings (a left-deep chain of N terms carries O(N^2) bytes of text in total).
constexpr size_t kMaxNesting = 256;  // nested '(' and 'not' around one term
constexpr size_t kMaxTerms = 1024;   // primitives plus time terms in one query

enum class TokenKind {
  kWord,   // identifier, number, address, libpcap keyword, escaped name (`\tcp`)
  kOp,     // arithmetic/relational/bracket punctuation: [ ] & | + - * / % ^ << >> = == != < <= > >=
  kAnd,    // `and` (any case) or `&&`
  kOr,     // `or` (any case) or `||`
  kNot,    // `not` (any case) or `!` not followed by '='
  kOpen,   // (
  kClose,  // )
};

struct Token {
  TokenKind kind;
  size_t begin;  // byte span [begin, end) in the query text; never empty
  size_t end;
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char ToLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ToLower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    if (ToLower(a[i]) != ToLower(b[i])) return false;
  }
  return true;
}

// A word starts with one of these (libpcap IDs start alphanumeric; '.' and ':' start IPv6/odd forms; '$'
// starts an ARCnet address) and continues with these plus '-' and '/' (`tcp-syn`, `10.0.0.0/8`).
bool IsWordStart(char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '.' || c == ':' || c == '$'; }
bool IsWordChar(char c) { return IsWordStart(c) || c == '-' || c == '/'; }

template <size_t N>
bool InList(const std::string_view (&list)[N], std::string_view lower_word) {
  for (std::string_view w : list) {
    if (w == lower_word) return true;
  }
  return false;
}

// libpcap protocol qualifiers (grammar symbol `pname`): may start a `head` such as `tcp port`.
constexpr std::string_view kProtoQualifiers[] = {
    "link", "ether", "ppp", "slip", "fddi", "tr", "wlan", "arp", "rarp", "ip", "sctp", "tcp",
    "udp", "icmp", "igmp", "igrp", "pim", "vrrp", "carp", "radio", "ip6", "icmp6", "ah", "esp",
    "atalk", "aarp", "decnet", "lat", "sca", "moprc", "mopdl", "iso", "esis", "es-is", "isis", "is-is",
    "l1", "l2", "iih", "lsp", "snp", "csnp", "psnp", "clnp", "stp", "ipx", "netbeui"};
// Direction qualifiers.
constexpr std::string_view kDirQualifiers[] = {
    "src", "dst", "ra", "ta", "addr1", "addr2", "addr3", "addr4", "address1", "address2", "address3",
    "address4"};
// Address-type qualifiers (and `proto`/`protochain`, which take an id the same way).
constexpr std::string_view kTypeQualifiers[] = {"host", "net", "port", "portrange", "gateway", "proto",
                                                "protochain"};
// Every other libpcap keyword: never an id, so never a bare id that inherits qualifiers.
constexpr std::string_view kOtherKeywords[] = {
    "mask", "type", "subtype", "dir", "direction", "less", "greater", "byte", "broadcast", "multicast",
    "and", "or", "not", "len", "length", "inbound", "outbound", "ifindex", "vlan", "mpls", "pppoed",
    "pppoes", "geneve", "vxlan", "lane", "llc", "metac", "bcc", "oam", "oamf4", "oamf4ec", "oamf4sc", "sc",
    "ilmic", "vpi", "vci", "connectmsg", "metaconnect", "on", "ifname", "rset", "ruleset", "rnr",
    "rulenum", "srnr", "subrulenum", "reason", "action", "fisu", "lssu", "lsu", "msu", "hfisu", "hlssu",
    "hmsu", "sio", "opc", "dpc", "sls", "hsio", "hopc", "hdpc", "hsls", "before", "after", "ago"};

bool IsQualifier(std::string_view lower) {
  return InList(kProtoQualifiers, lower) || InList(kDirQualifiers, lower) || InList(kTypeQualifiers, lower);
}

bool IsReserved(std::string_view lower) { return IsQualifier(lower) || InList(kOtherKeywords, lower); }

// libpcap's named numbers (`tcpflags`, `tcp-syn`, `icmp-echo`, ...). Ids, not keywords, but lower-cased
// in `words` like keywords.
bool IsNamedNumber(std::string_view lower) {
  if (lower == "tcpflags" || lower == "icmptype" || lower == "icmpcode" || lower == "icmp6type" ||
      lower == "icmp6code") {
    return true;
  }
  return lower.starts_with("tcp-") || lower.starts_with("icmp-") || lower.starts_with("icmp6-");
}

// An id word: something libpcap reads as a name, number or address (not a keyword, not punctuation).
bool IsIdWord(std::string_view word) {
  if (word.empty()) return false;
  if (word[0] == '\\') return word.size() > 1;
  if (!IsWordStart(word[0])) return false;
  return !IsReserved(Lower(word));
}

bool Tokenize(std::string_view text, std::vector<Token>* tokens, QuerySyntaxError* error) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const char c = text[i];
    const unsigned char uc = static_cast<unsigned char>(c);
    if (IsSpace(c)) {
      i++;
      continue;
    }
    const char next = i + 1 < n ? text[i + 1] : '\0';
    TokenKind kind = TokenKind::kOp;
    size_t len = 1;
    if (c == '(') {
      kind = TokenKind::kOpen;
    } else if (c == ')') {
      kind = TokenKind::kClose;
    } else if (c == '&') {
      if (next == '&') kind = TokenKind::kAnd, len = 2;
    } else if (c == '|') {
      if (next == '|') kind = TokenKind::kOr, len = 2;
    } else if (c == '!') {
      if (next == '=') {
        len = 2;
      } else {
        kind = TokenKind::kNot;
      }
    } else if (c == '<' || c == '>') {
      if (next == c || next == '=') len = 2;
    } else if (c == '=') {
      if (next == '=') len = 2;
    } else if (c == '+' || c == '-' || c == '*' || c == '/' || c == '%' || c == '^' || c == '[' ||
               c == ']') {
      // single-character operator
    } else if (c == '\\') {
      // libpcap's escaped name: a backslash and everything up to whitespace, '!', '(' or ')'.
      kind = TokenKind::kWord;
      size_t j = i + 1;
      while (j < n && !IsSpace(text[j]) && text[j] != '!' && text[j] != '(' && text[j] != ')' &&
             static_cast<unsigned char>(text[j]) > 0x20 && static_cast<unsigned char>(text[j]) < 0x7f) {
        j++;
      }
      len = j - i;
    } else if (IsWordStart(c)) {
      size_t j = i + 1;
      while (j < n && IsWordChar(text[j])) j++;
      len = j - i;
      std::string_view word = text.substr(i, len);
      if (EqualsIgnoreCase(word, "and")) {
        kind = TokenKind::kAnd;
      } else if (EqualsIgnoreCase(word, "or")) {
        kind = TokenKind::kOr;
      } else if (EqualsIgnoreCase(word, "not")) {
        kind = TokenKind::kNot;
      } else {
        kind = TokenKind::kWord;
      }
    } else {
      error->position = i;
      if (uc >= 0x21 && uc < 0x7f) {
        error->problem = std::string("unexpected character '") + c + "'";
      } else {
        char buf[64];
        std::snprintf(buf, sizeof(buf), "unexpected character (byte 0x%02x)", uc);
        error->problem = buf;
      }
      return false;
    }
    tokens->push_back(Token{kind, i, i + len});
    i += len;
  }
  return true;
}

// ---- Time values ----

constexpr int64_t kNanosPerSecond = 1000000000;

bool ReadDigits(std::string_view s, size_t at, size_t count, int* out) {
  if (at + count > s.size()) return false;
  int v = 0;
  for (size_t i = at; i < at + count; i++) {
    if (!IsDigit(s[i])) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeapYear(y)) ? 29 : kDays[m - 1];
}

// Days from 1970-01-01 to the given proleptic Gregorian date (negative before it).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// True if `s` starts like a date (YYYY-), so a failure to parse it is reported as a bad date.
bool LooksLikeDate(std::string_view s) {
  int unused;
  return s.size() >= 5 && ReadDigits(s, 0, 4, &unused) && s[4] == '-';
}

// Parses `YYYY-MM-DD` (midnight UTC) or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)` (T and Z
// in either case, fraction of 1 to 9 digits). On failure sets *why.
bool ParseAbsoluteTime(std::string_view s, int64_t* ns, std::string* why) {
  int year, month, day;
  if (!ReadDigits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' || !ReadDigits(s, 5, 2, &month) ||
      s[7] != '-' || !ReadDigits(s, 8, 2, &day)) {
    *why = "expected YYYY-MM-DD";
    return false;
  }
  if (month < 1 || month > 12) {
    *why = "month out of range";
    return false;
  }
  if (day < 1 || day > DaysInMonth(year, month)) {
    *why = "day out of range";
    return false;
  }
  int hour = 0, minute = 0, second = 0;
  int64_t fraction_ns = 0;
  int64_t offset_seconds = 0;
  if (s.size() > 10) {
    if (s[10] != 'T' && s[10] != 't') {
      *why = "expected 'T' after the date";
      return false;
    }
    if (!ReadDigits(s, 11, 2, &hour) || s.size() < 19 || s[13] != ':' || !ReadDigits(s, 14, 2, &minute) ||
        s[16] != ':' || !ReadDigits(s, 17, 2, &second)) {
      *why = "expected hh:mm:ss after 'T'";
      return false;
    }
    if (hour > 23) {
      *why = "hour out of range";
      return false;
    }
    if (minute > 59) {
      *why = "minute out of range";
      return false;
    }
    if (second > 59) {
      *why = "second out of range";
      return false;
    }
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
      i++;
      size_t digits = 0;
      int64_t scale = kNanosPerSecond;
      while (i < s.size() && IsDigit(s[i])) {
        if (++digits > 9) {
          *why = "more than 9 fractional digits";
          return false;
        }
        scale /= 10;
        fraction_ns += (s[i] - '0') * scale;
        i++;
      }
      if (digits == 0) {
        *why = "expected digits after '.'";
        return false;
      }
    }
    if (i >= s.size()) {
      *why = "missing time zone (Z, +hh:mm or -hh:mm)";
      return false;
    }
    if (s[i] == 'Z' || s[i] == 'z') {
      i++;
    } else if (s[i] == '+' || s[i] == '-') {
      int oh, om;
      if (!ReadDigits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
          !ReadDigits(s, i + 4, 2, &om)) {
        *why = "expected hh:mm in the time zone offset";
        return false;
      }
      if (oh > 23 || om > 59) {
        *why = "time zone offset out of range";
        return false;
      }
      offset_seconds = (s[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      i += 6;
    } else {
      *why = "missing time zone (Z, +hh:mm or -hh:mm)";
      return false;
    }
    if (i != s.size()) {
      *why = "unexpected text after the time zone";
      return false;
    }
  }
  // Local time minus its offset is UTC. Cannot overflow: |seconds| < 10^4 years * 3.2e7 s.
  const int64_t seconds =
      DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset_seconds;
  int64_t result;
  if (__builtin_mul_overflow(seconds, kNanosPerSecond, &result) ||
      __builtin_add_overflow(result, fraction_ns, &result)) {
    *why = "out of range (years 1677 to 2262)";
    return false;
  }
  *ns = result;
  return true;
}

// Parses a duration `<n><unit>[<n><unit>...]` with units ms, s, m, h, d (any case). On failure sets *why and
// *offset (byte offset in `s` of the problem).
bool ParseDuration(std::string_view s, int64_t* ns, size_t* offset, std::string* why) {
  if (s.empty()) {
    *offset = 0;
    *why = "empty duration";
    return false;
  }
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    if (!IsDigit(s[i])) {
      *offset = i;
      *why = std::string("unexpected '") + s[i] + "' in duration '" + std::string(s) + "'";
      return false;
    }
    const size_t digits_begin = i;
    int64_t amount = 0;
    while (i < s.size() && IsDigit(s[i])) {
      if (__builtin_mul_overflow(amount, 10, &amount) || __builtin_add_overflow(amount, s[i] - '0', &amount)) {
        *offset = digits_begin;
        *why = "duration '" + std::string(s) + "' is too large";
        return false;
      }
      i++;
    }
    const size_t unit_begin = i;
    while (i < s.size() && IsAlpha(s[i])) i++;
    const std::string unit = Lower(s.substr(unit_begin, i - unit_begin));
    int64_t unit_ns;
    if (unit == "ms") {
      unit_ns = 1000000;
    } else if (unit == "s") {
      unit_ns = kNanosPerSecond;
    } else if (unit == "m") {
      unit_ns = 60 * kNanosPerSecond;
    } else if (unit == "h") {
      unit_ns = 3600 * kNanosPerSecond;
    } else if (unit == "d") {
      unit_ns = 86400 * kNanosPerSecond;
    } else if (unit.empty()) {
      *offset = unit_begin;
      if (unit_begin < s.size() && s[unit_begin] == '.') {
        *why = "fractional durations are not supported: '" + std::string(s) + "'";
      } else {
        *why = "missing time unit after '" + std::string(s.substr(digits_begin, unit_begin - digits_begin)) +
               "' (use ms, s, m, h or d)";
      }
      return false;
    } else {
      *offset = unit_begin;
      *why = "unknown time unit '" + std::string(s.substr(unit_begin, i - unit_begin)) +
             "' (use ms, s, m, h or d)";
      return false;
    }
    int64_t part;
    if (__builtin_mul_overflow(amount, unit_ns, &part) || __builtin_add_overflow(total, part, &total)) {
      *offset = digits_begin;
      *why = "duration '" + std::string(s) + "' is too large";
      return false;
    }
  }
  *ns = total;
  return true;
}

// ---- Parser ----

// A bare-id primitive that inherited qualifiers: its token span, the text that replaces it, and where the
// primitive it inherited from begins. A subtree that contains the source keeps the verbatim text (libpcap
// carries the qualifiers over itself); a subtree that does not gets `replacement` spliced in.
struct Expansion {
  size_t begin;
  size_t end;
  std::string replacement;
  size_t source_begin;
};

class Parser {
 public:
  Parser(std::string_view text, int64_t now_ns) : text_(text), now_ns_(now_ns) {}

  bool Parse(ParsedQuery* out, QuerySyntaxError* error) {
    out->root.reset();
    if (!Tokenize(text_, &tokens_, &error_) || !CheckBalance()) {
      *error = error_;
      return false;
    }
    if (tokens_.empty()) return true;
    std::unique_ptr<QueryNode> root = ParseExpr();
    if (root != nullptr && pos_ < tokens_.size()) {
      ExpectedOperator();
      root.reset();
    }
    if (root == nullptr) {
      *error = error_;
      return false;
    }
    BuildNormalizedText();
    FillText(root.get());
    out->root = std::move(root);
    return true;
  }

 private:
  std::nullptr_t Fail(size_t position, std::string problem) {
    error_.position = position;
    error_.problem = std::move(problem);
    return nullptr;
  }

  std::string_view TokenText(size_t i) const {
    return text_.substr(tokens_[i].begin, tokens_[i].end - tokens_[i].begin);
  }
  bool IsKind(size_t i, TokenKind kind) const { return i < tokens_.size() && tokens_[i].kind == kind; }
  bool IsWord(size_t i, std::string_view lower) const {
    return IsKind(i, TokenKind::kWord) && EqualsIgnoreCase(TokenText(i), lower);
  }
  bool IsBinaryOperator(size_t i) const { return IsKind(i, TokenKind::kAnd) || IsKind(i, TokenKind::kOr); }
  // Quoted token text for messages; boolean keywords lower-cased.
  std::string Quoted(size_t i) const {
    const TokenKind k = tokens_[i].kind;
    std::string t(TokenText(i));
    if (k == TokenKind::kAnd || k == TokenKind::kOr || k == TokenKind::kNot) t = Lower(t);
    return "'" + t + "'";
  }
  size_t PositionOf(size_t i) const { return i < tokens_.size() ? tokens_[i].begin : text_.size(); }

  // Matches parentheses over the whole token stream. Afterwards match_[i] is the index of the ')' closing
  // the '(' at token i.
  bool CheckBalance() {
    match_.assign(tokens_.size(), 0);
    std::vector<size_t> open;
    for (size_t i = 0; i < tokens_.size(); i++) {
      if (tokens_[i].kind == TokenKind::kOpen) {
        open.push_back(i);
      } else if (tokens_[i].kind == TokenKind::kClose) {
        if (open.empty()) {
          error_.position = tokens_[i].begin;
          error_.problem = "unexpected ')' with no matching '('";
          return false;
        }
        match_[open.back()] = i;
        open.pop_back();
      }
    }
    if (!open.empty()) {
      error_.position = tokens_[open.back()].begin;
      error_.problem = "unbalanced '(': it is never closed";
      return false;
    }
    return true;
  }

  std::nullptr_t ExpectedOperator() {
    return Fail(tokens_[pos_].begin, "expected 'and' or 'or' before " + Quoted(pos_));
  }

  // expr := term { (and|or) term }, left-associative, equal precedence.
  std::unique_ptr<QueryNode> ParseExpr() {
    std::unique_ptr<QueryNode> left = ParseTerm();
    if (left == nullptr) return nullptr;
    while (IsBinaryOperator(pos_)) {
      const bool is_and = tokens_[pos_].kind == TokenKind::kAnd;
      pos_++;
      std::unique_ptr<QueryNode> right = ParseTerm();
      if (right == nullptr) return nullptr;
      auto node = std::make_unique<QueryNode>();
      node->kind = is_and ? QueryNode::Kind::kAnd : QueryNode::Kind::kOr;
      node->begin = left->begin;
      node->end = right->end;
      node->children.push_back(std::move(left));
      node->children.push_back(std::move(right));
      left = std::move(node);
    }
    return left;
  }

  // Reports that a term was expected at pos_ but is missing.
  std::nullptr_t MissingOperand() {
    const size_t where = PositionOf(pos_);
    const bool at_end = pos_ >= tokens_.size();
    if (pos_ > 0) {
      const TokenKind prev = tokens_[pos_ - 1].kind;
      if (prev == TokenKind::kAnd || prev == TokenKind::kOr || prev == TokenKind::kNot) {
        return Fail(where, "expected an expression after " + Quoted(pos_ - 1) +
                               (at_end ? std::string() : ", found " + Quoted(pos_)));
      }
      if (prev == TokenKind::kOpen && !at_end && tokens_[pos_].kind == TokenKind::kClose) {
        return Fail(tokens_[pos_ - 1].begin, "empty parentheses");
      }
    }
    if (at_end) return Fail(where, "expected an expression");
    return Fail(where, "expected an expression before " + Quoted(pos_));
  }

  // term := (not|!) term | '(' expr ')' | time-term | primitive
  std::unique_ptr<QueryNode> ParseTerm() {
    if (pos_ >= tokens_.size() || IsBinaryOperator(pos_) || IsKind(pos_, TokenKind::kClose)) {
      return MissingOperand();
    }
    const Token& t = tokens_[pos_];
    if (t.kind == TokenKind::kNot) {
      if (nesting_ >= kMaxNesting) return Fail(t.begin, "query is nested too deeply");
      pos_++;
      nesting_++;
      std::unique_ptr<QueryNode> child = ParseTerm();
      nesting_--;
      if (child == nullptr) return nullptr;
      auto node = std::make_unique<QueryNode>();
      node->kind = QueryNode::Kind::kNot;
      node->begin = t.begin;
      node->end = child->end;
      node->children.push_back(std::move(child));
      return node;
    }
    if (t.kind == TokenKind::kOpen) {
      if (OpenStartsPrimitive(pos_)) return ParsePrimitive();
      return ParseGroup();
    }
    if (IsWord(pos_, "before") || IsWord(pos_, "after")) return ParseTime();
    return ParsePrimitive();
  }

  bool IsArithmeticOp(size_t i) const {
    if (!IsKind(i, TokenKind::kOp)) return false;
    const std::string_view op = TokenText(i);
    return op == "&" || op == "|" || op == "+" || op == "-" || op == "*" || op == "/" || op == "%" ||
           op == "^" || op == "<<" || op == ">>";
  }
  bool IsRelationalOp(size_t i) const {
    if (!IsKind(i, TokenKind::kOp)) return false;
    const std::string_view op = TokenText(i);
    return op == "=" || op == "==" || op == "!=" || op == "<" || op == "<=" || op == ">" || op == ">=";
  }

  // A term starting with the '(' at token `open` is part of an arithmetic primitive (rather than a boolean
  // group) if its ')' is followed by an arithmetic or relational operator (`(ip[0] & 0xf) * 4 > 20`), or if
  // its content is arithmetic: no boolean operator, no relation, at least one arithmetic operator.
  bool OpenStartsPrimitive(size_t open) const {
    const size_t close = match_[open];
    if (IsArithmeticOp(close + 1) || IsRelationalOp(close + 1)) return true;
    bool arithmetic = false;
    for (size_t i = open + 1; i < close; i++) {
      const TokenKind k = tokens_[i].kind;
      if (k == TokenKind::kAnd || k == TokenKind::kOr || k == TokenKind::kNot || IsRelationalOp(i)) return false;
      if (IsArithmeticOp(i)) arithmetic = true;
    }
    return arithmetic;
  }

  // '(' expr ')': the node of the inner expression, its span widened to include the parentheses.
  std::unique_ptr<QueryNode> ParseGroup() {
    const size_t open = pos_;
    const size_t close = match_[open];
    if (close == open + 1) return Fail(tokens_[open].begin, "empty parentheses");
    if (nesting_ >= kMaxNesting) return Fail(tokens_[open].begin, "query is nested too deeply");
    pos_++;
    nesting_++;
    // As in libpcap, a group is transparent to qualifier inheritance: its first bare id inherits from before
    // the '(' and the id after the ')' inherits what was in effect before the '(' (`port 1 and (tcp) and 2`
    // is `port 2`; `(host a or port 1) or 2` has nothing to inherit).
    std::vector<std::string> saved_qualifiers = previous_qualifiers_;
    const size_t saved_begin = previous_begin_;
    std::unique_ptr<QueryNode> inner = ParseExpr();
    previous_qualifiers_ = std::move(saved_qualifiers);
    previous_begin_ = saved_begin;
    nesting_--;
    if (inner == nullptr) return nullptr;
    // The inner expression stops at a ')' (its primitives never cross one at their own depth 0) or at a
    // token that cannot continue an expression.
    if (pos_ != close) return ExpectedOperator();
    pos_++;
    inner->begin = tokens_[open].begin;
    inner->end = tokens_[close].end;
    return inner;
  }

  bool CountTerm(size_t position) {
    if (++terms_ > kMaxTerms) {
      Fail(position, "query has more than " + std::to_string(kMaxTerms) + " terms");
      return false;
    }
    return true;
  }

  // `before T` / `after T`. T is read from the raw text: the chunk after the keyword up to whitespace, a
  // parenthesis, '&' or '|'; a relative duration must then be followed by the word `ago`.
  std::unique_ptr<QueryNode> ParseTime() {
    const Token& kw = tokens_[pos_];
    if (!CountTerm(kw.begin)) return nullptr;
    const bool before = EqualsIgnoreCase(TokenText(pos_), "before");
    const std::string keyword = before ? "before" : "after";
    size_t p = kw.end;
    while (p < text_.size() && IsSpace(text_[p])) p++;
    size_t e = p;
    while (e < text_.size() && !IsSpace(text_[e]) && text_[e] != '(' && text_[e] != ')' && text_[e] != '&' &&
           text_[e] != '|') {
      e++;
    }
    if (e == p) return Fail(p, "expected a time after '" + keyword + "'");
    const std::string_view chunk = text_.substr(p, e - p);
    // First token after the chunk. Tokens never straddle the chunk's end: the characters that end it are
    // separators or start tokens of their own.
    size_t next = pos_ + 1;
    while (next < tokens_.size() && tokens_[next].begin < e) next++;

    auto node = std::make_unique<QueryNode>();
    node->kind = QueryNode::Kind::kTime;
    node->before = before;
    node->begin = kw.begin;
    std::string why;
    if (LooksLikeDate(chunk)) {
      if (!ParseAbsoluteTime(chunk, &node->time_ns, &why)) {
        return Fail(p, "invalid time '" + std::string(chunk) + "': " + why);
      }
      node->end = e;
      pos_ = next;
      return node;
    }
    if (!IsDigit(chunk[0])) {
      return Fail(p, "expected a time after '" + keyword + "', found '" + std::string(chunk) + "'");
    }
    int64_t duration;
    size_t offset;
    if (!ParseDuration(chunk, &duration, &offset, &why)) return Fail(p + offset, why);
    if (!IsWord(next, "ago")) {
      return Fail(PositionOf(next), "expected 'ago' after '" + std::string(chunk) + "'");
    }
    if (__builtin_sub_overflow(now_ns_, duration, &node->time_ns)) {
      return Fail(p, "time '" + std::string(chunk) + " ago' is out of range");
    }
    node->end = tokens_[next].end;
    pos_ = next + 1;
    return node;
  }

  // True if the and/or at token `op`, inside the primitive starting at `start`, is part of a libpcap
  // direction qualifier `src or dst` / `dst and src` (possibly after protocol qualifiers, `ether src or dst`).
  bool JoinsDirection(size_t start, size_t op) const {
    if (op == start || !IsKind(op + 1, TokenKind::kWord) || !IsKind(op - 1, TokenKind::kWord)) return false;
    const std::string a = Lower(TokenText(op - 1));
    const std::string b = Lower(TokenText(op + 1));
    if (!((a == "src" && b == "dst") || (a == "dst" && b == "src"))) return false;
    for (size_t i = start; i + 1 < op; i++) {
      if (!IsKind(i, TokenKind::kWord) || !InList(kProtoQualifiers, Lower(TokenText(i)))) return false;
    }
    return true;
  }

  bool IsIdToken(size_t i) const { return IsKind(i, TokenKind::kWord) && IsIdWord(TokenText(i)); }

  // The word a token contributes to QueryNode::words: keywords and boolean operators lower-cased.
  std::string WordOf(size_t i) const {
    const std::string_view t = TokenText(i);
    const TokenKind k = tokens_[i].kind;
    if (k == TokenKind::kAnd || k == TokenKind::kOr || k == TokenKind::kNot) return Lower(t);
    if (k == TokenKind::kWord && t[0] != '\\') {
      std::string lower = Lower(t);
      if (IsReserved(lower) || IsNamedNumber(lower)) return lower;
    }
    return std::string(t);
  }

  // The qualifiers a following bare id inherits from a primitive with these words: its leading run of
  // qualifier keywords, if followed by an id or '(', possibly negated (`tcp port 80` -> {tcp, port};
  // `host (a or b)` -> {host}; `src not 10.0.0.1` -> {src}); empty if the primitive is not of the form
  // `qualifiers [not] id...` (`tcp`, `len > 5`, `vlan 100`).
  static std::vector<std::string> QualifiersOf(const std::vector<std::string>& words) {
    size_t k = 0;
    while (k < words.size() && (IsQualifier(words[k]) || words[k] == "and" || words[k] == "or" ||
                                words[k] == "&&" || words[k] == "||")) {
      k++;
    }
    size_t id = k;
    while (id < words.size() && (words[id] == "not" || words[id] == "!")) id++;
    if (k == 0 || id == words.size() || !(words[id] == "(" || IsIdWord(words[id]))) return {};
    return std::vector<std::string>(words.begin(), words.begin() + k);
  }

  // A primitive: the maximal run of tokens from pos_ up to a boolean and/or at its own parenthesis depth 0,
  // a ')' closing an enclosing group, or the end. Brackets and parentheses inside belong to it.
  std::unique_ptr<QueryNode> ParsePrimitive() {
    const size_t start = pos_;
    if (!CountTerm(tokens_[start].begin)) return nullptr;
    size_t j = start;
    int depth = 0;
    while (j < tokens_.size()) {
      const TokenKind k = tokens_[j].kind;
      if (k == TokenKind::kOpen) {
        depth++;
      } else if (k == TokenKind::kClose) {
        if (depth == 0) break;
        depth--;
      } else if ((k == TokenKind::kAnd || k == TokenKind::kOr) && depth == 0) {
        if (!JoinsDirection(start, j)) break;
        j++;  // also take the src/dst after the operator
      } else if (k == TokenKind::kNot && depth == 0) {
        // libpcap accepts `not` inside a primitive (`host not a`), but never with nothing after it.
        if (j + 1 >= tokens_.size() || IsBinaryOperator(j + 1) || IsKind(j + 1, TokenKind::kClose)) {
          pos_ = j + 1;
          return MissingOperand();
        }
      }
      j++;
    }
    auto node = std::make_unique<QueryNode>();
    node->kind = QueryNode::Kind::kPrimitive;
    node->begin = tokens_[start].begin;
    node->end = tokens_[j - 1].end;
    for (size_t i = start; i < j; i++) node->words.push_back(WordOf(i));

    // Bare id (`b`, or `a mask b`) after a primitive with qualifiers: inherit them, as libpcap does.
    const size_t count = j - start;
    const bool bare = (count == 1 && IsIdToken(start)) ||
                      (count == 3 && IsIdToken(start) && IsWord(start + 1, "mask") && IsIdToken(start + 2));
    if (bare && !previous_qualifiers_.empty()) {
      std::string replacement;
      for (const std::string& q : previous_qualifiers_) replacement += q + " ";
      replacement += text_.substr(node->begin, node->end - node->begin);
      expansions_.push_back(Expansion{node->begin, node->end, std::move(replacement), previous_begin_});
      node->words.insert(node->words.begin(), previous_qualifiers_.begin(), previous_qualifiers_.end());
    }
    previous_qualifiers_ = QualifiersOf(node->words);
    previous_begin_ = node->begin;
    pos_ = j;
    return node;
  }

  // normalized_ is the query text with every boolean-operator keyword lower-cased (same length, so byte
  // positions are unchanged): keywords are case-insensitive here but libpcap only knows `and`/`or`/`not`.
  void BuildNormalizedText() {
    normalized_ = std::string(text_);
    for (const Token& t : tokens_) {
      if (t.kind == TokenKind::kAnd || t.kind == TokenKind::kOr || t.kind == TokenKind::kNot) {
        for (size_t i = t.begin; i < t.end; i++) normalized_[i] = ToLower(normalized_[i]);
      }
    }
  }

  // Sets `text` on every node of the subtree: normalized_[begin, end) with the replacement of each
  // expansion inside the span whose source primitive lies before the span.
  void FillText(QueryNode* node) {
    std::string text;
    size_t cursor = node->begin;
    for (const Expansion& x : expansions_) {
      if (x.begin < node->begin || x.end > node->end || x.source_begin >= node->begin) continue;
      text.append(normalized_, cursor, x.begin - cursor);
      text += x.replacement;
      cursor = x.end;
    }
    text.append(normalized_, cursor, node->end - cursor);
    node->text = std::move(text);
    for (auto& child : node->children) FillText(child.get());
  }

  const std::string_view text_;
  const int64_t now_ns_;
  std::vector<Token> tokens_;
  std::vector<size_t> match_;  // for each '(' token, the index of its ')'
  size_t pos_ = 0;             // next unconsumed token
  size_t nesting_ = 0;         // enclosing 'not's and groups of the term being parsed
  size_t terms_ = 0;
  // Bare-id inheritance, as libpcap's grammar passes qualifiers along: the qualifiers of the last primitive
  // parsed at this group level or, before the first one, those in effect before the enclosing '('
  // (empty: nothing to inherit), and where that primitive begins. `not` and time terms leave it unchanged.
  std::vector<std::string> previous_qualifiers_;
  size_t previous_begin_ = 0;
  std::vector<Expansion> expansions_;  // in source order
  std::string normalized_;
  QuerySyntaxError error_;
};

}  // namespace

std::string QuerySyntaxError::ToString() const {
  return "at position " + std::to_string(position) + ": " + problem;
}

bool ParseQuery(std::string_view text, int64_t now_ns, ParsedQuery* out, QuerySyntaxError* error) {
  Parser parser(text, now_ns);
  return parser.Parse(out, error);
}

bool ContainsTime(const QueryNode& node) {
  std::vector<const QueryNode*> stack = {&node};
  while (!stack.empty()) {
    const QueryNode* n = stack.back();
    stack.pop_back();
    if (n->kind == QueryNode::Kind::kTime) return true;
    for (const auto& child : n->children) stack.push_back(child.get());
  }
  return false;
}

bool ParseTimeValue(std::string_view text, int64_t now_ns, int64_t* time_ns) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  if (text.empty()) return false;
  std::string why;
  if (LooksLikeDate(text)) return ParseAbsoluteTime(text, time_ns, &why);
  // Relative: <duration> <whitespace> ago
  size_t space = text.size();
  while (space > 0 && !IsSpace(text[space - 1])) space--;
  if (space == 0 || !EqualsIgnoreCase(text.substr(space), "ago")) return false;
  std::string_view duration_text = text.substr(0, space);
  while (!duration_text.empty() && IsSpace(duration_text.back())) duration_text.remove_suffix(1);
  int64_t duration;
  size_t offset;
  if (!ParseDuration(duration_text, &duration, &offset, &why)) return false;
  return !__builtin_sub_overflow(now_ns, duration, time_ns);
}

}  // namespace rwd
