#include "reconciler/model/quantity.h"

#include <array>
#include <cctype>
#include <numeric>

namespace flotilla {
namespace {

struct Suffix {
  std::string_view text;
  uint64_t multiplier;
};

constexpr uint64_t kKi = 1024;
constexpr std::array<Suffix, 13> kSuffixes = {{
    {"Ki", kKi},
    {"Mi", kKi* kKi},
    {"Gi", kKi* kKi* kKi},
    {"Ti", kKi* kKi* kKi* kKi},
    {"Pi", kKi* kKi* kKi* kKi* kKi},
    {"Ei", kKi* kKi* kKi* kKi* kKi* kKi},
    {"k", 1000},
    {"K", 1000},
    {"M", 1000'000},
    {"G", 1000'000'000},
    {"T", 1000'000'000'000},
    {"P", 1000'000'000'000'000},
    {"E", 1000'000'000'000'000'000},
}};

// At most this many digits after the decimal point; more cannot add precision that a byte count
// can hold anyway, and bounding it keeps the arithmetic in 64 bits.
constexpr size_t kMaxFractionDigits = 9;

Status Invalid(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid quantity \"" + std::string(text) +
                                 "\": " + std::string(why) +
                                 " (use bytes or a number with Ki, Mi, Gi, Ti, k, M, G, T, "
                                 "e.g. 8Gi or 512Mi)");
}

}  // namespace

Result<Quantity> Quantity::Parse(std::string_view text) {
  if (text.empty()) {
    return Invalid(text, "empty");
  }
  if (text.front() == '-') {
    return Invalid(text, "must not be negative");
  }
  if (text.front() == '+') {
    return Invalid(text, "a sign is not allowed");
  }

  size_t pos = 0;
  uint64_t whole = 0;
  bool overflow = false;
  size_t whole_digits = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
    overflow |= __builtin_mul_overflow(whole, 10, &whole);
    overflow |= __builtin_add_overflow(whole, static_cast<uint64_t>(text[pos] - '0'), &whole);
    ++pos;
    ++whole_digits;
  }
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
  size_t fraction_digits = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (fraction_digits == kMaxFractionDigits) {
        return Invalid(text, "too many digits after the decimal point");
      }
      fraction = fraction * 10 + static_cast<uint64_t>(text[pos] - '0');
      fraction_scale *= 10;
      ++fraction_digits;
      ++pos;
    }
    if (fraction_digits == 0) {
      return Invalid(text, "expected digits after the decimal point");
    }
  }
  if (whole_digits == 0) {
    return Invalid(text, "expected a number");
  }

  std::string_view suffix = text.substr(pos);
  uint64_t multiplier = 1;
  if (!suffix.empty()) {
    bool known = false;
    for (const Suffix& s : kSuffixes) {
      if (s.text == suffix) {
        multiplier = s.multiplier;
        known = true;
        break;
      }
    }
    if (!known) {
      return Invalid(text, "unknown suffix \"" + std::string(suffix) + "\"");
    }
  }

  uint64_t bytes = 0;
  overflow |= __builtin_mul_overflow(whole, multiplier, &bytes);
  if (fraction_digits > 0) {
    // fraction / scale * multiplier must be whole. With g = gcd(scale, multiplier), the two
    // reduced factors share nothing, so it is whole exactly when scale/g divides the fraction.
    const uint64_t g = std::gcd(fraction_scale, multiplier);
    const uint64_t reduced_scale = fraction_scale / g;
    if (fraction % reduced_scale != 0) {
      return Invalid(text, "not a whole number of bytes");
    }
    uint64_t part = 0;
    overflow |= __builtin_mul_overflow(fraction / reduced_scale, multiplier / g, &part);
    overflow |= __builtin_add_overflow(bytes, part, &bytes);
  }
  if (overflow) {
    return Invalid(text, "too large");
  }
  return Quantity(bytes);
}

std::string Quantity::ToString() const {
  if (bytes_ == 0) {
    return "0";
  }
  // The shortest exact spelling; on a tie the binary unit (listed first) wins.
  std::string best = std::to_string(bytes_);
  for (const Suffix& s : kSuffixes) {
    if (s.text == "K" || bytes_ % s.multiplier != 0) {
      continue;  // "k" is the canonical decimal kilo
    }
    std::string candidate = std::to_string(bytes_ / s.multiplier) + std::string(s.text);
    if (candidate.size() < best.size()) {
      best = std::move(candidate);
    }
  }
  return best;
}

}  // namespace flotilla
