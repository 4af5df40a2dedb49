#include "reconciler/api/tunnel.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "reconciler/api/relay.h"
#include "reconciler/api/stream_io.h"
#include "reconciler/api/views.h"
#include "reconciler/model/text.h"

namespace flotilla::api {

bool TunnelCounter::Acquire(const std::string& token, size_t limit) {
  std::lock_guard lock(mu_);
  size_t& open = open_[token];
  if (open >= limit) {
    if (open == 0) {
      open_.erase(token);
    }
    return false;
  }
  ++open;
  return true;
}

void TunnelCounter::Release(const std::string& token) {
  std::lock_guard lock(mu_);
  if (auto it = open_.find(token); it != open_.end() && --it->second == 0) {
    open_.erase(it);
  }
}

size_t TunnelCounter::open() const {
  std::lock_guard lock(mu_);
  size_t total = 0;
  for (const auto& [token, count] : open_) {
    total += count;
  }
  return total;
}

namespace {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

constexpr std::string_view kProtocol = "flotilla-tunnel";

std::string_view Reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 504:
      return "Gateway Timeout";
    default:
      return "Service Unavailable";
  }
}

void Answer(httplib::Stream& stream, const Reply& reply) {
  const int status = reply.status.value_or(500);
  (void)WriteAll(stream, Head(std::to_string(status) + " " + std::string(Reason(status)),
                              reply.content_type, reply.headers) +
                             "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" +
                             reply.body);
}

// Answers a tunnel request with a refusal, counted by its status.
void Refuse(httplib::Stream& stream, RouteContext& context, const Reply& reply) {
  context.telemetry.TunnelRefused(reply.status.value_or(500));
  Answer(stream, reply);
}

// Whether the comma-separated header field `name` holds `token` (case-insensitive).
bool HeaderHas(const httplib::Request& request, const std::string& name, std::string_view token) {
  for (auto [it, end] = request.headers.equal_range(name); it != end; ++it) {
    std::string_view value = it->second;
    while (!value.empty()) {
      const size_t comma = value.find(',');
      const std::string_view part = TrimAscii(value.substr(0, comma));
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
      if (EqualsIgnoreCase(part, token)) {
        return true;
      }
    }
  }
  return false;
}

std::optional<uint16_t> Port(const httplib::Request& request) {
  if (!request.has_param("port")) {
    return std::nullopt;
  }
  const std::string text = request.get_param_value("port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 1 || value > 65535) {
    return std::nullopt;
  }
  return static_cast<uint16_t>(value);
}

std::string PortList(const std::vector<uint16_t>& ports) {
  std::string text;
  for (uint16_t port : ports) {
    text += (text.empty() ? "" : ", ") + std::to_string(port);
  }
  return text;
}

int StatusOf(const Status& status) {
  switch (status.code()) {
    case Status::Code::kUnimplemented:
      return 501;
    case Status::Code::kFailedPrecondition:
      return 409;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kDeadlineExceeded:
      return 504;
    case Status::Code::kResourceExhausted:
      return 503;
    default:
      return 502;
  }
}

std::string Bytes(uint64_t n) {
  constexpr uint64_t kKiB = 1024;
  if (n < 10 * kKiB) {
    return std::to_string(n) + " B";
  }
  if (n < 10 * kKiB * kKiB) {
    return std::to_string(n / kKiB) + " KiB";
  }
  return std::to_string(n / (kKiB * kKiB)) + " MiB";
}

// Where the tunnel goes, once the request names one VM the pool lets it reach.
struct Target {
  std::string pool;
  std::string host;
  VmInfo vm;
};

// The one VM named `name` (on ?host= when given) that is on an online host, or the refusal.
std::variant<std::pair<const ObservedHost*, const VmInfo*>, Reply> FindVm(
    const httplib::Request& request, const Snapshot& snapshot, const std::string& name) {
  const std::string only_host = request.has_param("host") ? request.get_param_value("host") : "";
  std::vector<std::pair<const ObservedHost*, const VmInfo*>> found;
  std::vector<std::string> offline;
  for (const auto& [host_name, host] : snapshot.observed.hosts) {
    if (!only_host.empty() && host_name != only_host) {
      continue;
    }
    if (!host.online) {
      offline.push_back(host_name);
    }
    if (const VmInfo* vm = host.FindVm(name)) {
      found.emplace_back(&host, vm);
    }
  }
  if (found.empty()) {
    std::string message = "no VM named " + name + " on " +
                          (only_host.empty() ? "any host of this loop" : "host " + only_host);
    if (!offline.empty()) {
      message += " (" + CountOf(offline.size(), "host") + " offline: " + offline.front() +
                 (offline.size() > 1 ? ", ..." : "") + ")";
    }
    return ErrorReply(404, message);
  }
  if (found.size() > 1) {
    return ErrorReply(409, "VMs named " + name + " are on hosts " + found[0].first->name + " and " +
                               found[1].first->name + (found.size() > 2 ? " and others" : "") +
                               "; name one with ?host=HOST (flotilla: --host)");
  }
  if (!found.front().first->online) {
    return ErrorReply(
        503, "host " + found.front().first->name + " is offline: " + found.front().first->error);
  }
  return found.front();
}

const HostPool* PoolOf(const Snapshot& snapshot, const std::string& name) {
  for (const HostPool& pool : snapshot.desired.pools) {
    if (pool.meta.name == name) {
      return &pool;
    }
  }
  return nullptr;
}

// The VM the request names, or the refusal to answer.
std::variant<Target, Reply> Resolve(const httplib::Request& request, const Snapshot& snapshot,
                                    const std::string& name, uint16_t port) {
  auto found = FindVm(request, snapshot, name);
  if (Reply* refusal = std::get_if<Reply>(&found)) {
    return std::move(*refusal);
  }
  const auto [host, vm] = std::get<std::pair<const ObservedHost*, const VmInfo*>>(found);
  if (vm->state != VmState::kRunning) {
    return ErrorReply(409, "VM " + name + " on host " + host->name + " is " +
                               std::string(ToString(vm->state)) + ", not running");
  }
  const HostPool* pool = PoolOf(snapshot, host->pool);
  const std::vector<uint16_t> allowed =
      pool != nullptr ? pool->allowed_ports : std::vector<uint16_t>{};
  if (std::find(allowed.begin(), allowed.end(), port) == allowed.end()) {
    return ErrorReply(403, "pool " + host->pool + " allows tunnels to " +
                               (allowed.empty() ? "no port" : "ports " + PortList(allowed)) +
                               " (its spec.access.allowedPorts), not to " + std::to_string(port));
  }
  return Target{.pool = host->pool, .host = host->name, .vm = *vm};
}

}  // namespace

Reply HandleVmAccess(const httplib::Request& request, const Snapshot* snapshot,
                     RouteContext& /*context*/) {
  const std::string name = request.matches[1];
  auto found = FindVm(request, *snapshot, name);
  if (Reply* refusal = std::get_if<Reply>(&found)) {
    return std::move(*refusal);
  }
  const auto [host, vm] = std::get<std::pair<const ObservedHost*, const VmInfo*>>(found);
  const HostPool* pool = PoolOf(*snapshot, host->pool);
  const LedgerEntry* entry = snapshot->ledger.Find(name);
  const bool managed = entry != nullptr && entry->host == host->name;
  std::string ssh_user;
  if (managed) {
    for (const VMSet& set : snapshot->desired.sets) {
      if (set.meta.name == entry->vmset) {
        ssh_user = set.ssh_user;
      }
    }
  }
  return JsonReply(
      200, {{"vm", name},
            {"host", host->name},
            {"pool", host->pool},
            {"vmset", managed ? nlohmann::json(entry->vmset) : nlohmann::json()},
            {"state", ToString(vm->state)},
            {"ssh_user", ssh_user},
            {"allowed_ports", pool != nullptr ? pool->allowed_ports : std::vector<uint16_t>{}}});
}

void ServeTunnel(httplib::Stream& stream, FrontDoor::Handover& handover, RouteContext& context,
                 const Gate& gate, TunnelCounter& counter, const std::atomic<bool>& stopping) {
  std::optional<httplib::Request> request = ReadRequest(stream);
  if (!request) {
    Refuse(stream, context, ErrorReply(400, kUnreadableHead));
    return;
  }
  stream.get_remote_ip_and_port(request->remote_addr, request->remote_port);
  std::variant<Caller, Reply> admitted = Admit(*request, Access::kAccess, gate);
  if (const Reply* refusal = std::get_if<Reply>(&admitted)) {
    Refuse(stream, context, *refusal);
    return;
  }
  const Caller caller = std::get<Caller>(admitted);
  constexpr std::string_view kPrefix = "/api/v1/vms/";
  constexpr std::string_view kSuffix = "/port-forward";
  // The front door saw this shape before decoding; the decoded path is checked again.
  const std::string& path = request->path;
  const std::string name =
      path.size() > kPrefix.size() + kSuffix.size()
          ? path.substr(kPrefix.size(), path.size() - kPrefix.size() - kSuffix.size())
          : std::string();
  const std::optional<uint16_t> port = Port(*request);
  if (request->method != "GET" || !path.starts_with(kPrefix) || !path.ends_with(kSuffix) ||
      name.empty() || name.find('/') != std::string::npos) {
    Refuse(stream, context, ErrorReply(404, "no such endpoint"));
    return;
  }
  if (!port) {
    Refuse(stream, context, ErrorReply(400, "port must be a TCP port, 1 to 65535 (?port=22)"));
    return;
  }
  if (!HeaderHas(*request, "Upgrade", kProtocol) || !HeaderHas(*request, "Connection", "upgrade")) {
    Reply reply = ErrorReply(426, "a tunnel is an upgrade: send Connection: Upgrade and Upgrade: " +
                                      std::string(kProtocol) + " (flotilla port-forward does)");
    reply.headers.emplace_back("Upgrade", std::string(kProtocol));
    reply.headers.emplace_back("Connection", "Upgrade");
    Refuse(stream, context, reply);
    return;
  }
  const std::shared_ptr<const Snapshot> snapshot = context.backend.Latest();
  if (snapshot == nullptr) {
    Refuse(stream, context, NoObservationReply());
    return;
  }
  std::variant<Target, Reply> resolved = Resolve(*request, *snapshot, name, *port);
  if (const Reply* refusal = std::get_if<Reply>(&resolved)) {
    Refuse(stream, context, *refusal);
    return;
  }
  const Target& target = std::get<Target>(resolved);
  const ServerOptions& options = context.options;
  if (!counter.Acquire(caller.name, options.tunnels_per_token)) {
    Answer(stream,
           ErrorReply(429, caller.Describe() + " has " + std::to_string(options.tunnels_per_token) +
                               " tunnels open (api.tunnels.perToken); close one first"));
    return;
  }
  const std::unique_ptr<TunnelCounter, std::function<void(TunnelCounter*)>> held(
      &counter, [&caller](TunnelCounter* c) { c->Release(caller.name); });

  Result<KeptFd> upstream = context.backend.OpenTunnel(
      target.pool, target.host, target.vm, *port, SteadyClock::now() + options.tunnel_open_timeout);
  if (!upstream.ok()) {
    const std::string what = "cannot reach port " + std::to_string(*port) + " of VM " + name +
                             " on host " + target.host + ": " + upstream.status().message();
    context.logger.warn("api: {} ({})", what, caller.Describe());
    Refuse(stream, context, ErrorReply(StatusOf(upstream.status()), what));
    return;
  }
  auto now = [&context] {
    return context.options.clock != nullptr ? context.options.clock->Now() : SystemClock::now();
  };
  const std::string about = "port " + std::to_string(*port) + " of VM " + name + " on host " +
                            target.host + " for " + caller.Describe();
  const auto opened_at = now();
  const auto opened_steady = SteadyClock::now();
  if (Status s = context.store.AddEvent({.at = opened_at,
                                         .level = "info",
                                         .kind = "tunnel",
                                         .subject = name,
                                         .message = "tunnel opened to " + about});
      !s.ok()) {
    // A tunnel nobody can audit is not opened.
    Refuse(stream, context, ErrorReply(503, "cannot record the tunnel: " + s.message()));
    return;
  }
  context.logger.info("api: tunnel opened to {}", about);
  // The 101 goes out at once, not behind a TLS session ticket waiting for its ACK (Nagle).
  int one = 1;
  (void)setsockopt(handover.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!WriteAll(stream, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " +
                            std::string(kProtocol) + "\r\n\r\n")) {
    (void)context.store.AddEvent(
        {.at = now(),
         .level = "info",
         .kind = "tunnel",
         .subject = name,
         .message = "tunnel to " + about + " closed before it began: the client went away"});
    return;
  }
  context.telemetry.TunnelOpened();
  const RelayOutcome outcome =
      Relay(handover.fd, handover.ssl, handover.take_unread(), upstream->fd.get(),
            upstream->fd.get(), options.tunnel_idle_timeout, stopping);
  context.telemetry.TunnelClosed(outcome.to_vm, outcome.from_vm);
  const auto lasted =
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - opened_steady);
  const std::string closed = "tunnel to " + about + " closed (" + outcome.end + ") after " +
                             FormatDuration(lasted / 1000 * 1000) + ": " + Bytes(outcome.to_vm) +
                             " to the VM, " + Bytes(outcome.from_vm) + " from it; opened " +
                             FormatTime(opened_at);
  context.logger.info("api: {}", closed);
  if (Status s = context.store.AddEvent(
          {.at = now(), .level = "info", .kind = "tunnel", .subject = name, .message = closed});
      !s.ok()) {
    context.logger.error("api: cannot record that a tunnel closed: {}", s.message());
  }
}

}  // namespace flotilla::api
