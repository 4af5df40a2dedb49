#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "reconciler/model/result.h"

namespace flotilla {

// An amount of bytes, written in manifests the way Kubernetes writes memory:
//   plain bytes        "1048576", 1048576
//   binary suffixes    Ki Mi Gi Ti Pi Ei  (powers of 1024)
//   decimal suffixes   k K M G T P E      (powers of 1000)
//   a fraction         "1.5Gi" (allowed when the result is a whole number of bytes)
// Negative numbers, exponents, overflow past 2^64-1 and anything else are rejected.
class Quantity {
 public:
  static constexpr uint64_t kMiB = uint64_t{1024} * 1024;

  constexpr Quantity() = default;
  static constexpr Quantity FromBytes(uint64_t bytes) { return Quantity(bytes); }
  static constexpr Quantity FromMiB(uint64_t mib) { return Quantity(mib * kMiB); }

  // Parses the text forms above. Errors are InvalidArgument with a message that quotes the
  // input and says what is accepted.
  static Result<Quantity> Parse(std::string_view text);

  constexpr uint64_t bytes() const { return bytes_; }
  // Whole MiB, rounded down (the Parallels API speaks MB).
  constexpr uint64_t mib() const { return bytes_ / kMiB; }

  // The shortest exact form: "8Gi", "512Mi", "80G", or plain bytes ("1000001"); binary units
  // win ties.
  std::string ToString() const;

  friend constexpr auto operator<=>(const Quantity&, const Quantity&) = default;

 private:
  constexpr explicit Quantity(uint64_t bytes) : bytes_(bytes) {}

  uint64_t bytes_ = 0;
};

}  // namespace flotilla
