// CommandLine: parses `--flag value`, `--flag=value` and bare `--switch` arguments of one subcommand,
// keeping positional arguments in order. Not thread-safe.
#ifndef REWIND_WEB_COMMAND_LINE_H_
#define REWIND_WEB_COMMAND_LINE_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "index/status.h"

namespace rwd {

// Parses a non-negative decimal integer: digits only (no sign, no spaces), at most 2^64 - 1. The one rule
// for counts given as flags, in configs, and in HTTP parameters and headers.
bool ParseDecimalUint(const std::string& text, uint64_t* out);

class CommandLine {
 public:
  // `value_flags` take a value; `switches` do not. Anything else starting with "--" is an error, and so is a
  // positional argument unless `takes_positional`. "-h" is "--help" where "help" is a switch.
  static Result<CommandLine> Parse(int argc, char** argv, const std::set<std::string>& value_flags,
                                   const std::set<std::string>& switches, bool takes_positional = true);
  bool Has(const std::string& flag) const { return values_.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& fallback = "") const;
  // Parses an unsigned integer flag; InvalidArgument names the flag.
  Status GetUint(const std::string& flag, uint64_t fallback, uint64_t* out) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace rwd

#endif  // REWIND_WEB_COMMAND_LINE_H_
