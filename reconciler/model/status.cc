#include "reconciler/model/status.h"

namespace flotilla {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "InvalidArgument";
    case Status::Code::kNotFound:
      return "NotFound";
    case Status::Code::kAlreadyExists:
      return "AlreadyExists";
    case Status::Code::kPermissionDenied:
      return "PermissionDenied";
    case Status::Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Status::Code::kConflict:
      return "Conflict";
    case Status::Code::kResourceExhausted:
      return "ResourceExhausted";
    case Status::Code::kUnavailable:
      return "Unavailable";
    case Status::Code::kDeadlineExceeded:
      return "DeadlineExceeded";
    case Status::Code::kInternal:
      return "Internal";
    case Status::Code::kCancelled:
      return "Cancelled";
    case Status::Code::kUnimplemented:
      return "Unimplemented";
  }
  return "Unknown";
}

bool Status::IsRetryable() const {
  switch (code_) {
    case Code::kResourceExhausted:
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) {
    return *this;
  }
  return Status(code_, std::string(context) + ": " + message_);
}

std::string Status::ToString() const {
  if (ok()) {
    return "OK";
  }
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace flotilla
