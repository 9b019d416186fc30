#include "web/command_line.h"

#include <cerrno>
#include <cstdlib>

namespace rwd {

Result<CommandLine> CommandLine::Parse(int argc, char** argv, const std::set<std::string>& value_flags,
                                       const std::set<std::string>& switches, bool takes_positional) {
  CommandLine cl;
  bool only_positional = false;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (!only_positional && a == "-h" && switches.count("help")) a = "--help";
    if (only_positional || a.size() < 2 || a[0] != '-' || (a[1] != '-' && a != "-v" && a != "-q")) {
      if (!takes_positional) return Status::InvalidArgument("unexpected argument '" + a + "'");
      cl.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positional = true;
      continue;
    }
    std::string name = a[1] == '-' ? a.substr(2) : a.substr(1);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (switches.count(name)) {
      if (has_value) return Status::InvalidArgument("--" + name + " takes no value");
      cl.values_[name] = "1";
    } else if (value_flags.count(name)) {
      if (!has_value) {
        if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      cl.values_[name] = value;
    } else {
      return Status::InvalidArgument("unknown flag --" + name);
    }
  }
  return cl;
}

std::string CommandLine::Get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

bool ParseDecimalUint(const std::string& text, uint64_t* out) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  unsigned long long n = std::strtoull(text.c_str(), nullptr, 10);
  if (errno != 0) return false;  // past 2^64 - 1
  *out = n;
  return true;
}

Status CommandLine::GetUint(const std::string& flag, uint64_t fallback, uint64_t* out) const {
  auto it = values_.find(flag);
  if (it == values_.end()) {
    *out = fallback;
    return Status::OK();
  }
  if (!ParseDecimalUint(it->second, out)) {
    return Status::InvalidArgument("--" + flag + " wants a non-negative integer, got '" + it->second + "'");
  }
  return Status::OK();
}

}  // namespace rwd
