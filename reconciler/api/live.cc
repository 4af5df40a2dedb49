#include "reconciler/api/live.h"

#include <httplib.h>

#include <chrono>
#include <memory>
#include <thread>

#include "reconciler/api/dashboard.h"
#include "reconciler/api/stream_io.h"

namespace flotilla::api {
namespace {

using SteadyClock = std::chrono::steady_clock;

std::string ChangeEvent(const std::string& generation) {
  return "event: change\ndata: " + nlohmann::json{{"generation", generation}}.dump() + "\n\n";
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
    const Reply refusal = ErrorReply(400, kUnreadableHead);
    (void)WriteAll(stream, Head("400 Bad Request", refusal.content_type, refusal.headers) +
                               "Content-Length: " + std::to_string(refusal.body.size()) +
                               "\r\n\r\n" + refusal.body);
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
