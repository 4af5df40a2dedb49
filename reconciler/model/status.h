#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace flotilla {

// The outcome of an operation. A Status is cheap to copy and is either OK or carries a code
// and a message. Codes say what went wrong; `IsRetryable()` says whether trying again later may
// succeed (timeouts, unavailable hosts, overload) or is pointless until something changes
// (invalid input, permissions, missing objects).
//
// Messages must never contain secrets: whoever builds a Status from external text redacts it
// first. Thread-safety: a Status is an immutable value.
class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,     // the input is wrong; terminal
    kNotFound,            // a named thing does not exist; terminal
    kAlreadyExists,       // creating something that exists; terminal
    kPermissionDenied,    // authentication or authorisation failed; terminal
    kFailedPrecondition,  // the system is not in a state that allows this; terminal
    kConflict,            // the request clashes with state we do not own; terminal
    kResourceExhausted,   // rate-limited or out of capacity; retryable
    kUnavailable,         // network, host down, 5xx; retryable
    kDeadlineExceeded,    // timed out; retryable
    kInternal,            // a bug or an invariant broken; terminal
    kCancelled,           // the caller gave up (shutdown, or a newer plan); not retried
    kUnimplemented,       // this implementation cannot do it at all; terminal
  };

  // OK.
  Status() = default;

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {Code::kAlreadyExists, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {Code::kPermissionDenied, std::move(msg)};
  }
  static Status FailedPrecondition(std::string msg) {
    return {Code::kFailedPrecondition, std::move(msg)};
  }
  static Status Conflict(std::string msg) { return {Code::kConflict, std::move(msg)}; }
  static Status ResourceExhausted(std::string msg) {
    return {Code::kResourceExhausted, std::move(msg)};
  }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status DeadlineExceeded(std::string msg) {
    return {Code::kDeadlineExceeded, std::move(msg)};
  }
  static Status Internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status Cancelled(std::string msg) { return {Code::kCancelled, std::move(msg)}; }
  static Status Unimplemented(std::string msg) { return {Code::kUnimplemented, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsPermissionDenied() const { return code_ == Code::kPermissionDenied; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsCancelled() const { return code_ == Code::kCancelled; }

  // True when the same call may succeed later without anything else changing.
  bool IsRetryable() const;

  // A copy whose message is prefixed with `context: `, for adding where an error happened.
  Status WithContext(std::string_view context) const;

  // "OK", or "<CodeName>: <message>".
  std::string ToString() const;

  friend bool operator==(const Status&, const Status&) = default;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// The name of a code, e.g. "InvalidArgument".
std::string_view CodeName(Status::Code code);

}  // namespace flotilla
