#include "index/status.h"

#include <cerrno>
#include <cstring>

namespace rwd {

Status Status::FromErrno(const std::string& context, int err) {
  std::string msg = context + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(msg);
  if (err == ENOENT) return NotFound(msg);
  return IOError(msg);
}

std::string Status::ToString() const {
  switch (code_) {
    case kOk: return "OK";
    case kInvalidArgument: return "invalid argument: " + message_;
    case kNotFound: return "not found: " + message_;
    case kCorruption: return "corruption: " + message_;
    case kIOError: return "I/O error: " + message_;
    case kNoSpace: return "no space: " + message_;
    case kCancelled: return "cancelled: " + message_;
  }
  return message_;
}

}  // namespace rwd
