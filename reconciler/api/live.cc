#include "reconciler/api/live.h"

#include <httplib.h>
#include <poll.h>

#include <chrono>
#include <memory>
#include <thread>

#include "reconciler/api/dashboard.h"

namespace flotilla::api {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string ChangeEvent(const std::string& generation) {
  return "event: change\ndata: " + nlohmann::json{{"generation", generation}}.dump() + "\n\n";
}

// The request the front door read whole: its method, path and header fields (the path is
// known; a query is ignored).
std::optional<httplib::Request> ReadRequest(httplib::Stream& stream) {
  std::string head;
  std::array<char, 4096> buffer{};
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = stream.read(buffer.data(), buffer.size());
    if (n <= 0 || head.size() > (size_t{64} << 10)) {
      return std::nullopt;
    }
    head.append(buffer.data(), static_cast<size_t>(n));
  }
  httplib::Request request;
  request.method = "GET";
  request.path = "/api/v1/events/stream";
  size_t at = head.find("\r\n") + 2;
  const size_t end = head.find("\r\n\r\n");
  while (at < end) {
    const size_t eol = head.find("\r\n", at);
    const std::string line = head.substr(at, eol - at);
    at = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    size_t value = colon + 1;
    while (value < line.size() && (line[value] == ' ' || line[value] == '\t')) {
      ++value;
    }
    request.headers.emplace(line.substr(0, colon), line.substr(value));
  }
  return request;
}

// Whether the page closed its side (TCP FIN, also after TLS close_notify) or the connection
// broke: its worker is free at once, not at the next write.
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

// The status line and header fields of an answer that ends with the connection.
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

}  // namespace

std::string Generation(Backend& backend, store::Store& store) {
  const std::shared_ptr<const Snapshot> snapshot = backend.Latest();
  const int64_t observed =
      snapshot != nullptr ? snapshot->observed_at.time_since_epoch().count() : 0;
  return std::to_string(observed) + "." + std::to_string(store.Writes());
}

Reply HandleChanges(const httplib::Request& /*request*/, const Snapshot* /*snapshot*/,
                    RouteContext& context) {
  return JsonReply(200, {{"generation", Generation(context.backend, context.store)}});
}

void ServeLiveStream(httplib::Stream& stream, RouteContext& context, const Gate& gate,
                     const std::atomic<bool>& stopping) {
  std::optional<httplib::Request> request = ReadRequest(stream);
  if (!request) {
    return;
  }
  stream.get_remote_ip_and_port(request->remote_addr, request->remote_port);
  if (auto admitted = Admit(*request, Access::kRead, gate);
      const Reply* refusal = std::get_if<Reply>(&admitted)) {
    const int status = refusal->status.value_or(401);
    const std::string line = status == 429   ? "429 Too Many Requests"
                             : status == 403 ? "403 Forbidden"
                                             : "401 Unauthorized";
    (void)WriteAll(stream, Head(line, refusal->content_type, refusal->headers) +
                               "Content-Length: " + std::to_string(refusal->body.size()) +
                               "\r\n\r\n" + refusal->body);
    return;
  }
  std::string sent = Generation(context.backend, context.store);
  if (!WriteAll(stream, Head("200 OK", "text/event-stream", {}) + "\r\nretry: 2000\n\n" +
                            ChangeEvent(sent))) {
    return;
  }
  const auto until = SteadyClock::now() + context.options.live_lifetime;
  auto last_write = SteadyClock::now();
  while (!stopping) {
    const auto now = SteadyClock::now();
    if (now >= until || PeerGone(stream)) {
      return;  // the page connects again, or went away
    }
    std::string text;
    if (std::string generation = Generation(context.backend, context.store); generation != sent) {
      sent = std::move(generation);
      text = ChangeEvent(sent);
    } else if (now - last_write >= context.options.live_keepalive) {
      text = ": keepalive\n\n";
    }
    if (!text.empty()) {
      if (!WriteAll(stream, text)) {
        return;  // the page went away
      }
      last_write = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
}

}  // namespace flotilla::api
