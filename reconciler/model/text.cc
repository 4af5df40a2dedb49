#include "reconciler/model/text.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <utility>

namespace flotilla {
namespace {

char LowerChar(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char UpperChar(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+' || c == '-') {
    return 62;
  }
  if (c == '/' || c == '_') {
    return 63;
  }
  return -1;
}

}  // namespace

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), LowerChar);
  return out;
}

std::string AsciiUpper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), UpperChar);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return LowerChar(x) == LowerChar(y);
         });
}

bool ContainsIgnoreCase(std::string_view text, std::string_view what) {
  return std::search(text.begin(), text.end(), what.begin(), what.end(),
                     [](char x, char y) { return LowerChar(x) == LowerChar(y); }) != text.end();
}

std::string_view TrimAscii(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && IsSpace(text.back())) {
    text.remove_suffix(1);
  }
  return text;
}

std::string EncodeBase64(std::string_view bytes) {
  static constexpr char kTable[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : bytes) {
    buffer = (buffer << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kTable[(buffer >> bits) & 0x3F];
    }
  }
  if (bits > 0) {
    out += kTable[(buffer << (6 - bits)) & 0x3F];
  }
  while (out.size() % 4 != 0) {
    out += '=';
  }
  return out;
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  while (!text.empty() && text.back() == '=') {
    text.remove_suffix(1);
  }
  if (text.size() % 4 == 1) {
    return std::nullopt;
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = Base64Value(c);
    if (v < 0) {
      return std::nullopt;
    }
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

std::string HexHash(std::string_view text, size_t digits) {
  uint64_t hash = 14695981039346656037ULL;
  for (unsigned char c : text) {
    hash = (hash ^ c) * 1099511628211ULL;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(std::min<size_t>(digits, 16), '0');
  for (size_t i = out.size(); i-- > 0; hash >>= 4) {
    out[i] = kHex[hash & 0xF];
  }
  return out;
}

std::string AddressForMessages(std::string_view address) {
  const size_t found = address.find("://");
  const size_t start = found == std::string_view::npos ? 0 : found + 3;
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at < start) {
    return std::string(address);
  }
  return std::string(address.substr(0, start)) + std::string(address.substr(at + 1));
}

std::string EncodePathSegment(std::string_view segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : segment) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::string FormatDuration(std::chrono::milliseconds duration) {
  int64_t left = std::max<int64_t>(duration.count(), 0);
  if (left == 0) {
    return "0s";
  }
  std::string text;
  for (const auto& [scale, unit] :
       {std::pair<int64_t, const char*>{3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}}) {
    if (left >= scale) {
      text += std::to_string(left / scale) + unit;
      left %= scale;
    }
  }
  return text;
}

std::optional<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) {
    return std::nullopt;
  }
  int64_t total = 0;
  while (!text.empty()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data()) {
      return std::nullopt;
    }
    text.remove_prefix(static_cast<size_t>(end - text.data()));
    int64_t scale = 0;
    if (text.starts_with("ms")) {
      scale = 1;
      text.remove_prefix(2);
    } else if (text.starts_with("s")) {
      scale = 1000;
      text.remove_prefix(1);
    } else if (text.starts_with("m")) {
      scale = 60'000;
      text.remove_prefix(1);
    } else if (text.starts_with("h")) {
      scale = 3'600'000;
      text.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    if (n > (INT64_MAX - total) / scale) {
      return std::nullopt;
    }
    total += n * scale;
  }
  return std::chrono::milliseconds{total};
}

std::string CountOf(size_t n, std::string_view singular, std::string_view plural) {
  return std::to_string(n) + " " +
         (n == 1 ? std::string(singular)
                 : (plural.empty() ? std::string(singular) + "s" : std::string(plural)));
}

}  // namespace flotilla
