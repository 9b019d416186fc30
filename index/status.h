// Status and Result<T>: the error type every module boundary returns instead of throwing.
// Value types; not thread-safe to mutate concurrently, safe to copy across threads.
#ifndef REWIND_INDEX_STATUS_H_
#define REWIND_INDEX_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace rwd {

class Status {
 public:
  enum Code { kOk = 0, kInvalidArgument, kNotFound, kCorruption, kIOError, kNoSpace, kCancelled };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(kNotFound, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(kIOError, std::move(msg)); }
  static Status NoSpace(std::string msg) { return Status(kNoSpace, std::move(msg)); }
  static Status Cancelled(std::string msg) { return Status(kCancelled, std::move(msg)); }
  // An I/O error from errno `err`, classified (ENOSPC/EDQUOT become kNoSpace).
  static Status FromErrno(const std::string& context, int err);

  bool ok() const { return code_ == kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: implicit by design
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T& operator*() { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace rwd

#endif  // REWIND_INDEX_STATUS_H_
