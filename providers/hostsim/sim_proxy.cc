#include "providers/hostsim/sim_proxy.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>

namespace flotilla::hostsim {
namespace proxy {

using nlohmann::json;

// A relay thread and whether it has finished (so the acceptor can join it early).
struct Relay {
  std::thread thread;
  std::shared_ptr<std::atomic<bool>> done;
};

struct Listener {
  int listen_fd = -1;
  int stop_fd = -1;  // an eventfd: readable once the listener is told to stop
  std::string bind_host;
  std::string port;
  std::string target_vm_id;  // empty for a route to target_host
  std::string target_host;
  std::string target_port;
  std::thread acceptor;
  std::mutex mu;  // relays
  std::list<Relay> relays;
};

namespace {

bool IsAnyAddress(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "localhost";
}

// The simulated VMs' network (Parallels' shared network, 10.211.55.0/24).
bool IsGuestAddress(const std::string& host) { return host.rfind("10.211.55.", 0) == 0; }

bool StopRequested(int stop_fd) {
  pollfd p{.fd = stop_fd, .events = POLLIN, .revents = 0};
  return ::poll(&p, 1, 0) > 0;
}

// A TCP connection to host:port, or -1.
int ProxyDial(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

// Splits "HOST:PORT" at its last colon.
bool SplitHostPort(const std::string& text, std::string* host, std::string* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return false;
  }
  *host = text.substr(0, colon);
  *port = text.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return true;
}

// What a relay dials: an fd, kEcho for the built-in echo service, or -1 (refused).
constexpr int kEcho = -2;

int DialTarget(const SimOptions& options, ProxyVms& vms, const std::string& host,
               const std::string& port) {
  if (host == "---" || host.empty()) {
    return -1;  // net.Dial("---:22") fails: the VM was not running when the proxy started
  }
  if (!IsGuestAddress(host)) {
    return ProxyDial(host, port);
  }
  if (!vms.GuestAt(host)) {
    return -1;  // nothing answers at that address now
  }
  int number = 0;
  try {
    number = std::stoi(port);
  } catch (const std::exception&) {
    return -1;
  }
  if (!options.guest_ports.empty()) {
    auto it = options.guest_ports.find(number);
    std::string to_host;
    std::string to_port;
    if (it == options.guest_ports.end() || !SplitHostPort(it->second, &to_host, &to_port)) {
      return -1;
    }
    return ProxyDial(to_host, to_port);
  }
  return number == 22 || number == 5900 ? kEcho : -1;
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies bytes both ways (or echoes them when `upstream` is kEcho) until either side ends or
// the proxy stops; then closes both.
void RunRelay(int client, int upstream, int stop_fd) {
  std::array<char, size_t{32} * 1024> buffer{};
  const bool echo = upstream == kEcho;
  while (true) {
    std::array<pollfd, 3> fds = {
        pollfd{.fd = stop_fd, .events = POLLIN, .revents = 0},
        pollfd{.fd = client, .events = POLLIN, .revents = 0},
        pollfd{.fd = echo ? -1 : upstream, .events = POLLIN, .revents = 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (fds[0].revents != 0) {
      break;  // the proxy restarts: relays in flight are dropped
    }
    bool open = true;
    for (int i = 1; i <= 2 && open; ++i) {
      if (fds[i].revents == 0) {
        continue;
      }
      const int from = fds[i].fd;
      const int to = echo ? client : (from == client ? upstream : client);
      const ssize_t n = ::recv(from, buffer.data(), buffer.size(), 0);
      open = n > 0 && SendAll(to, buffer.data(), static_cast<size_t>(n));
    }
    if (!open) {
      break;
    }
  }
  ::close(client);
  if (!echo && upstream >= 0) {
    ::close(upstream);
  }
}

void JoinFinished(Listener& listener) {
  std::lock_guard lock(listener.mu);
  for (auto it = listener.relays.begin(); it != listener.relays.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = listener.relays.erase(it);
    } else {
      ++it;
    }
  }
}

void Accept(Listener& listener, const SimOptions& options, ProxyVms& vms) {
  while (true) {
    std::array<pollfd, 2> fds = {pollfd{.fd = listener.stop_fd, .events = POLLIN, .revents = 0},
                                 pollfd{.fd = listener.listen_fd, .events = POLLIN, .revents = 0}};
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (fds[0].revents != 0) {
      return;
    }
    const int client = ::accept4(listener.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    JoinFinished(listener);
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard lock(listener.mu);
    listener.relays.push_back(Relay{
        std::thread([&listener, &options, &vms, client, done] {
          const int upstream = DialTarget(options, vms, listener.target_host, listener.target_port);
          if (upstream == -1 || StopRequested(listener.stop_fd)) {
            ::close(client);  // handleTcpTraffic: "Unable to connect to target"
            if (upstream >= 0) {
              ::close(upstream);
            }
          } else {
            RunRelay(client, upstream, listener.stop_fd);
          }
          done->store(true);
        }),
        done});
  }
}

// Binds host:port; -1 when it cannot (the caller logs it and goes on).
int BindListener(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      continue;
    }
    // Go's net.Listen sets SO_REUSEADDR too: a port in TIME_WAIT can be bound again, one that
    // something listens on cannot.
    int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      break;
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  return fd;
}

// Go's encoding/json refusing a non-string for a string field.
std::optional<std::string> StringField(const json& body, const char* key, const char* type,
                                       std::string* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    return std::nullopt;
  }
  if (!it->is_string()) {
    return std::string("json: cannot unmarshal ") + (it->is_number() ? "number" : it->type_name()) +
           " into Go struct field " + type + "." + key + " of type string";
  }
  *out = it->get<std::string>();
  return std::nullopt;
}

Reply InvalidBody(const std::string& why) {
  return Reply::Error(ApiError::Raw(400, "Invalid request body: " + why));
}

// ReverseProxyHostTcpRoute(CreateRequest).Validate.
std::optional<std::string> ParseTcpRoute(const json& body, const char* type, TcpRoute* route) {
  for (auto [key, out] : {std::pair{"target_port", &route->target_port},
                          std::pair{"target_host", &route->target_host},
                          std::pair{"target_vm_id", &route->target_vm_id}}) {
    if (std::optional<std::string> bad = StringField(body, key, type, out)) {
      return bad;
    }
  }
  return std::nullopt;
}

std::optional<std::string> ValidateTcpRoute(const TcpRoute& route) {
  if (route.target_host.empty() && route.target_vm_id.empty()) {
    return "error 400: missing target host or target vm id for TCP route";
  }
  if (route.target_port.empty()) {
    return "error 400: missing target port for TCP route";
  }
  return std::nullopt;
}

bool EqualFold(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

Reply NotFoundHost() { return Reply::Error(ApiError::Coded(404, "reverse proxy host not found")); }

}  // namespace
}  // namespace proxy

using nlohmann::json;
using proxy::ProxyHost;
using proxy::TcpRoute;

SimReverseProxy::SimReverseProxy(const SimOptions& options, std::string bind_address, ProxyVms& vms,
                                 std::function<std::string()> new_id)
    : options_(options),
      bind_address_(std::move(bind_address)),
      vms_(vms),
      new_id_(std::move(new_id)) {}

SimReverseProxy::~SimReverseProxy() { Stop(); }

ProxyHost* SimReverseProxy::FindLocked(const std::string& id) {
  for (ProxyHost& host : records_) {
    if (proxy::EqualFold(host.id, id) || proxy::EqualFold(host.Key(), id)) {
      return &host;
    }
  }
  return nullptr;
}

json SimReverseProxy::HostJson(const ProxyHost& host, bool details) {
  json out = {{"id", host.id}, {"host", host.host}, {"port", host.port}};
  if (!host.name.empty()) {
    out["name"] = host.name;
  }
  if (host.tcp_route) {
    const TcpRoute& r = *host.tcp_route;
    json route = json::object();
    for (auto [key, value] :
         {std::pair{"id", &r.id}, std::pair{"target_port", &r.target_port},
          std::pair{"target_host", &r.target_host}, std::pair{"target_vm_id", &r.target_vm_id}}) {
      if (!value->empty()) {
        route[key] = *value;
      }
    }
    // enrichHostWithVmDetails (controllers/reverse_proxy.go:106-143).
    if (details && !r.target_vm_id.empty()) {
      if (std::optional<json> vm = vms_.Details(r.target_vm_id)) {
        route["target_vm_details"] = std::move(*vm);
      }
    }
    out["tcp_route"] = std::move(route);
  }
  return out;
}

Reply SimReverseProxy::List() {
  std::vector<ProxyHost> copy;
  {
    std::lock_guard lock(mu_);
    copy = records_;
  }
  json list = json::array();
  for (const ProxyHost& host : copy) {
    list.push_back(HostJson(host, true));
  }
  return Reply::Json(200, std::move(list));
}

Reply SimReverseProxy::Get(const std::string& id) {
  std::optional<ProxyHost> found;
  {
    std::lock_guard lock(mu_);
    if (ProxyHost* host = FindLocked(id)) {
      found = *host;
    }
  }
  if (!found) {
    return proxy::NotFoundHost();
  }
  return Reply::Json(200, HostJson(*found, true));
}

Reply SimReverseProxy::Create(std::string_view body_text) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return proxy::InvalidBody("invalid character in request body");
  }
  constexpr const char* kType = "ReverseProxyHostCreateRequest";
  ProxyHost host;
  for (auto [key, out] : {std::pair{"name", &host.name}, std::pair{"host", &host.host},
                          std::pair{"port", &host.port}}) {
    if (std::optional<std::string> bad = proxy::StringField(body, key, kType, out)) {
      return proxy::InvalidBody(*bad);
    }
  }
  const bool has_tcp = body.contains("tcp_route") && body["tcp_route"].is_object();
  if (has_tcp) {
    TcpRoute route;
    if (std::optional<std::string> bad =
            proxy::ParseTcpRoute(body["tcp_route"], "ReverseProxyHostTcpRoute", &route)) {
      return proxy::InvalidBody(*bad);
    }
    host.tcp_route = route;
  }
  // ReverseProxyHostCreateRequest.Validate, in its order.
  const bool has_tls = body.contains("tls") && !body["tls"].is_null();
  const bool has_cors = body.contains("cors") && !body["cors"].is_null();
  if (host.host.empty()) {
    return proxy::InvalidBody("error 400: missing reverse proxy host");
  }
  if (host.port.empty()) {
    return proxy::InvalidBody("error 400: missing reverse proxy host port");
  }
  if (!has_tcp) {
    return proxy::InvalidBody("error 400: missing reverse proxy host routes");
  }
  if (has_cors) {
    return proxy::InvalidBody("error 400: reverse proxy host cannot have cors and tcp route");
  }
  if (has_tls) {
    return proxy::InvalidBody("error 400: reverse proxy host cannot have tls and tcp route");
  }
  if (std::optional<std::string> bad = proxy::ValidateTcpRoute(*host.tcp_route)) {
    return proxy::InvalidBody(*bad);
  }
  json answer;
  {
    std::lock_guard lock(mu_);
    host.id = new_id_();
    if (FindLocked(host.Key()) != nullptr) {
      // data/reverse_proxy.go:129-131 names the id it just made, not the existing record's.
      return Reply::Error(ApiError::Coded(
          400, "reverse proxy host " + host.Key() + " already exists with ID " + host.id));
    }
    host.tcp_route->id = new_id_();
    records_.push_back(host);
  }
  answer = HostJson(host, true);
  Restart();
  return Reply::Json(201, std::move(answer));
}

Reply SimReverseProxy::Update(const std::string& id, std::string_view body_text) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return proxy::InvalidBody("invalid character in request body");
  }
  ProxyHost update;
  for (auto [key, out] : {std::pair{"name", &update.name}, std::pair{"host", &update.host},
                          std::pair{"port", &update.port}}) {
    if (std::optional<std::string> bad =
            proxy::StringField(body, key, "ReverseProxyHostUpdateRequest", out)) {
      return proxy::InvalidBody(*bad);
    }
  }
  if (update.host.empty()) {
    return proxy::InvalidBody("error 400: missing reverse proxy host");
  }
  if (update.port.empty()) {
    return proxy::InvalidBody("error 400: missing reverse proxy host port");
  }
  ProxyHost result;
  {
    std::lock_guard lock(mu_);
    ProxyHost* host = FindLocked(id);
    if (host == nullptr) {
      return proxy::NotFoundHost();
    }
    if (host->tcp_route && body.contains("cors") && !body["cors"].is_null()) {
      return Reply::Error(ApiError::Raw(400, "cors is not allowed for tcp route"));
    }
    if (host->tcp_route && body.contains("tls") && !body["tls"].is_null()) {
      return Reply::Error(ApiError::Raw(400, "tls is not allowed for tcp route"));
    }
    // UpdateReverseProxyHost copies the non-empty fields.
    if (!update.name.empty()) {
      host->name = update.name;
    }
    host->host = update.host;
    host->port = update.port;
    result = *host;
  }
  Restart();
  return Reply::Json(201, HostJson(result, true));
}

Reply SimReverseProxy::Delete(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    ProxyHost* host = FindLocked(id);
    if (host == nullptr) {
      return proxy::NotFoundHost();
    }
    records_.erase(records_.begin() + (host - records_.data()));
  }
  Restart();
  return Reply::Empty(202);
}

Reply SimReverseProxy::SetTcpRoute(const std::string& id, std::string_view body_text) {
  const json body = json::parse(body_text, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return proxy::InvalidBody("invalid character in request body");
  }
  TcpRoute route;
  if (std::optional<std::string> bad =
          proxy::ParseTcpRoute(body, "ReverseProxyHostTcpRouteCreateRequest", &route)) {
    return proxy::InvalidBody(*bad);
  }
  if (std::optional<std::string> bad = proxy::ValidateTcpRoute(route)) {
    return proxy::InvalidBody(*bad);
  }
  // The endpoint keeps one of the two targets (controllers/reverse_proxy.go:764-768).
  if (!route.target_vm_id.empty()) {
    route.target_host.clear();
  } else {
    route.target_vm_id.clear();
  }
  ProxyHost result;
  {
    std::lock_guard lock(mu_);
    ProxyHost* host = FindLocked(id);
    if (host == nullptr) {
      return proxy::NotFoundHost();
    }
    route.id = host->tcp_route ? host->tcp_route->id : new_id_();
    host->tcp_route = route;
    result = *host;
  }
  Restart();
  return Reply::Json(201, HostJson(result, true));
}

json SimReverseProxy::HardwareSection() {
  // REVERSE_PROXY_HOST / REVERSE_PROXY_PORT defaults (constants/main.go:43-44): reported, but
  // no TCP route listens there.
  json out = {{"enabled", true}, {"host", "0.0.0.0"}, {"port", "5080"}};
  std::vector<ProxyHost> copy;
  {
    std::lock_guard lock(mu_);
    copy = records_;
  }
  if (!copy.empty()) {
    json hosts = json::array();
    for (const ProxyHost& host : copy) {
      hosts.push_back(HostJson(host, false));
    }
    out["hosts"] = std::move(hosts);
  }
  return out;
}

void SimReverseProxy::Start() {
  {
    std::lock_guard lock(restart_mu_);
    if (started_) {
      return;
    }
  }
  Restart();
}

void SimReverseProxy::StopListeners() {
  for (auto& listener : listeners_) {
    if (listener->stop_fd >= 0) {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = ::write(listener->stop_fd, &one, sizeof(one));
    }
  }
  for (auto& listener : listeners_) {
    if (listener->stop_fd >= 0) {
      StopListener(*listener);
    }
  }
  listeners_.clear();
}

void SimReverseProxy::Stop() {
  std::lock_guard lock(restart_mu_);
  StopListeners();
  started_ = false;
}

void SimReverseProxy::Restart() {
  std::lock_guard lock(restart_mu_);
  StopListeners();
  started_ = true;
  restarts_.fetch_add(1);
  std::vector<ProxyHost> copy;
  {
    std::lock_guard records(mu_);
    copy = records_;
  }
  bool vm_routes = false;
  for (const ProxyHost& host : copy) {
    if (!host.tcp_route) {
      continue;
    }
    auto listener = std::make_unique<proxy::Listener>();
    listener->target_port = host.tcp_route->target_port;
    listener->target_vm_id = host.tcp_route->target_vm_id;
    if (!listener->target_vm_id.empty()) {
      // LoadFromDb: resolved now, once.
      listener->target_host = vms_.RunningAddress(listener->target_vm_id).value_or("---");
      vm_routes = true;
    } else {
      listener->target_host = host.tcp_route->target_host;
    }
    listener->bind_host = proxy::IsAnyAddress(host.host) ? bind_address_ : host.host;
    listener->port = host.port;
    if (StartListener(*listener)) {
      listeners_.push_back(std::move(listener));
    }
  }
  vm_routes_.store(vm_routes);
}

bool SimReverseProxy::StartListener(proxy::Listener& listener) {
  listener.listen_fd = proxy::BindListener(listener.bind_host, listener.port);
  if (listener.listen_fd < 0) {
    // Logged by the service and otherwise ignored.
    std::fprintf(stderr, "[Reverse Proxy] [TCP Route] cannot listen on %s:%s: %s\n",
                 listener.bind_host.c_str(), listener.port.c_str(), std::strerror(errno));
    return false;
  }
  listener.stop_fd = ::eventfd(0, EFD_CLOEXEC);
  proxy::Listener* raw = &listener;
  listener.acceptor = std::thread([raw, this] { proxy::Accept(*raw, options_, vms_); });
  return true;
}

void SimReverseProxy::StopListener(proxy::Listener& listener) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(listener.stop_fd, &one, sizeof(one));
  listener.acceptor.join();
  std::lock_guard lock(listener.mu);
  for (proxy::Relay& relay : listener.relays) {
    relay.thread.join();
  }
  listener.relays.clear();
  ::close(listener.listen_fd);
  ::close(listener.stop_fd);
  listener.listen_fd = -1;
  listener.stop_fd = -1;
}

void SimReverseProxy::Follow() {
  std::lock_guard lock(restart_mu_);
  if (!started_) {
    return;
  }
  for (auto& listener : listeners_) {
    if (listener->target_vm_id.empty()) {
      continue;
    }
    // checkVmIpChanged: only a running VM with an address, different from the target.
    std::optional<std::string> now = vms_.RunningAddress(listener->target_vm_id);
    if (!now || *now == listener->target_host) {
      continue;
    }
    StopListener(*listener);
    listener->target_host = *now;
    if (!StartListener(*listener)) {
      listener->acceptor = std::thread();  // nothing to join; the slot stays until a restart
    }
  }
}

json SimReverseProxy::Snapshot() const {
  std::lock_guard lock(mu_);
  json list = json::array();
  for (const ProxyHost& host : records_) {
    json item = {{"id", host.id}, {"name", host.name}, {"host", host.host}, {"port", host.port}};
    if (host.tcp_route) {
      item["tcp_route"] = {{"id", host.tcp_route->id},
                           {"target_port", host.tcp_route->target_port},
                           {"target_host", host.tcp_route->target_host},
                           {"target_vm_id", host.tcp_route->target_vm_id}};
    }
    list.push_back(std::move(item));
  }
  return list;
}

void SimReverseProxy::Restore(const json& snapshot) {
  if (!snapshot.is_array()) {
    return;
  }
  std::lock_guard lock(mu_);
  records_.clear();
  for (const json& item : snapshot) {
    ProxyHost host{.id = item.value("id", ""),
                   .name = item.value("name", ""),
                   .host = item.value("host", ""),
                   .port = item.value("port", ""),
                   .tcp_route = std::nullopt};
    if (item.contains("tcp_route") && item["tcp_route"].is_object()) {
      const json& r = item["tcp_route"];
      host.tcp_route = TcpRoute{.id = r.value("id", ""),
                                .target_port = r.value("target_port", ""),
                                .target_host = r.value("target_host", ""),
                                .target_vm_id = r.value("target_vm_id", "")};
    }
    records_.push_back(std::move(host));
  }
}

}  // namespace flotilla::hostsim
