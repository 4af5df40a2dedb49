#include "reconciler/api/stream_io.h"

#include <httplib.h>
#include <poll.h>

#include <algorithm>

#include "reconciler/api/dashboard.h"

namespace flotilla::api {

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  auto hex = [](char c) -> int {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    const int high = i + 1 < text.size() ? hex(text[i + 1]) : -1;
    const int low = i + 2 < text.size() ? hex(text[i + 2]) : -1;
    if (high < 0 || low < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

namespace {

// RFC 9110 5.6.2: a token's characters (a method, a field name).
bool IsToken(std::string_view text) {
  constexpr std::string_view kPunctuation = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           kPunctuation.find(c) != std::string_view::npos;
  });
}

// A field value's characters: visible ones, spaces and tabs (RFC 9110 5.5); no CR, LF or NUL.
bool IsFieldValue(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

}  // namespace

std::optional<httplib::Request> ReadRequest(httplib::Stream& stream) {
  // One byte at a time, to the head's end and no further: what a client sent after it (a
  // tunnel's first bytes) stays for the handler. The front door read the request whole, so
  // these reads copy from memory.
  std::string head;
  while (!head.ends_with("\r\n\r\n")) {
    char c = 0;
    if (head.size() >= kMaxRequestHead || stream.read(&c, 1) != 1) {
      return std::nullopt;
    }
    head += c;
  }
  // The request line (RFC 9112 3): METHOD SP TARGET SP HTTP/1.x, the target in origin form.
  httplib::Request request;
  const size_t line_end = head.find("\r\n");
  const std::string_view line(head.data(), line_end);
  const size_t space = line.find(' ');
  const size_t space2 = space == std::string_view::npos ? space : line.find(' ', space + 1);
  if (space2 == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view method = line.substr(0, space);
  const std::string_view target = line.substr(space + 1, space2 - space - 1);
  const std::string_view version = line.substr(space2 + 1);
  if (!IsToken(method) || !target.starts_with('/') ||
      (version != "HTTP/1.1" && version != "HTTP/1.0") ||
      !std::all_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
      })) {
    return std::nullopt;
  }
  request.method = std::string(method);
  request.version = std::string(version);
  const size_t question = target.find('?');
  std::optional<std::string> path = PercentDecode(target.substr(0, question));
  if (!path) {
    return std::nullopt;
  }
  request.path = std::move(*path);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::optional<std::string> key = PercentDecode(pair.substr(0, eq));
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) {
      return std::nullopt;
    }
    request.params.emplace(std::move(*key), std::move(*value));
  }
  // The header fields (RFC 9112 5): NAME ":" OWS VALUE OWS, each on a line of its own. A name
  // followed by whitespace, a folded line or a bare CR or LF is refused, as RFC 9112 5.1 and
  // 5.2 ask of a server: two readers of such a head can disagree on what it says.
  size_t at = line_end + 2;
  const size_t end = head.size() - 2;
  while (at < end) {
    const size_t eol = head.find("\r\n", at);
    const std::string_view field(head.data() + at, eol - at);
    at = eol + 2;
    const size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return std::nullopt;
    }
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    if (!IsFieldValue(value)) {
      return std::nullopt;
    }
    request.headers.emplace(std::string(field.substr(0, colon)), std::string(value));
  }
  return request;
}

bool PeerGone(const httplib::Stream& stream) {
  pollfd p{.fd = stream.socket(), .events = POLLRDHUP, .revents = 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

bool WriteAll(httplib::Stream& stream, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = stream.write(text.data(), text.size());
    if (n <= 0) {
      return false;
    }
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

std::string Head(std::string_view status, std::string_view content_type,
                 const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string head = "HTTP/1.1 " + std::string(status) +
                     "\r\nContent-Type: " + std::string(content_type) +
                     "\r\nCache-Control: no-store\r\nConnection: close\r\n";
  for (const auto& [name, value] : SecurityHeaders()) {
    head += std::string(name) + ": " + std::string(value) + "\r\n";
  }
  for (const auto& [name, value] : extra) {
    head += name + ": " + value + "\r\n";
  }
  return head;
}

}  // namespace flotilla::api
