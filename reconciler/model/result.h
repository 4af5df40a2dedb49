#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "reconciler/model/status.h"

namespace flotilla {

// A value or the Status that explains why there is none (C++20 has no std::expected).
//
//   Result<Quantity> q = Quantity::Parse("8Gi");
//   if (!q.ok()) return q.status();
//   use(*q);
//
// REQUIRES: a Result built from a Status is built from a non-OK one; value() and operator*
// are called only when ok().
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok() && "Result built from an OK status has no value");
    if (status_.ok()) {
      status_ = Status::Internal("Result built from an OK status");
    }
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  const T& value() const& { return *value_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }

  const T& operator*() const& { return *value_; }
  T& operator*() & { return *value_; }
  T&& operator*() && { return std::move(*value_); }
  const T* operator->() const { return &*value_; }
  T* operator->() { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace flotilla
