// ParallelsProvider::OpenTunnel: a byte stream to a VM's port through the host's reverse proxy
// (prl-devops-service's `reverse_proxy` module; docs/providers.md, "Tunnels"). The service
// streams nothing else: its exec endpoints answer once, and its WebSockets carry events and logs.
//
// One proxy host per VM and port, named "flotilla-<vm uuid>-<port>", listening on a port of the
// pool's tunnels.ports with a TCP route to the VM's UUID. It is kept for the next tunnel: every
// create or delete of a proxy host restarts the host's whole proxy, which ends every relay in
// flight on that Mac (reverse_proxy/main.go:483-535); the proxy hosts of VMs that are gone are
// deleted when a new one is made (which restarts the proxy anyway). The service does not report a
// listener that failed to bind (370-382), so a new proxy host is only trusted once a connection to
// it works.

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "providers/parallels/provider.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

using nlohmann::json;

constexpr const char* kEnableProxy =
    "the host's reverse proxy is off; Flotilla reaches VM ports through it. Enable the "
    "prl-devops-service reverse_proxy module on the host (it is on by default on macOS: unset "
    "DISABLE_REVERSE_PROXY, and list reverse_proxy in ENABLED_MODULES if that is set), then "
    "restart the service";

std::string ProxyHostName(const std::string& vm_uuid, uint16_t port) {
  return "flotilla-" + vm_uuid + "-" + std::to_string(port);
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

// The UUID without braces, lower-case (VmInfo ids may carry braces).
std::string BareUuid(std::string id) {
  if (id.size() >= 2 && id.front() == '{' && id.back() == '}') {
    id = id.substr(1, id.size() - 2);
  }
  return Lower(id);
}

// The host name (or address) inside an origin "scheme://host[:port]".
std::string OriginHost(const std::string& origin) {
  std::string authority = origin.substr(origin.find("://") + 3);
  if (!authority.empty() && authority.front() == '[') {
    return authority.substr(1, authority.find(']') - 1);
  }
  return authority.substr(0, authority.find(':'));
}

int RemainingMs(Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left.count(), 1 << 30)));
}

// A TCP connection to host:port by `deadline`; -1 (errno set) when refused or out of time.
int ConnectBy(const std::string& host, uint16_t port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      pollfd p{.fd = fd, .events = POLLOUT, .revents = 0};
      int error = errno;
      if (error == EINPROGRESS && ::poll(&p, 1, RemainingMs(deadline)) == 1) {
        socklen_t len = sizeof(error);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      } else if (error == EINPROGRESS) {
        error = ETIMEDOUT;
      }
      if (error != 0) {
        ::close(fd);
        fd = -1;
        errno = error;
      }
    }
  }
  ::freeaddrinfo(found);
  if (fd >= 0) {
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  return fd;
}

// Whether the proxy closed a fresh connection within `settle` without sending anything: what it
// does when its dial to the VM fails (handleTcpTraffic, reverse_proxy/main.go:1190-1196).
bool ClosedAtOnce(int fd, std::chrono::milliseconds settle) {
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  if (::poll(&p, 1, static_cast<int>(settle.count())) != 1) {
    return false;  // quiet: the VM's service waits for the client (or is slow to greet)
  }
  char c = 0;
  const ssize_t n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

struct ProxyRecord {
  std::string id;
  std::string name;
  uint16_t port = 0;
  std::string target_vm_id;
  std::string target_port;
  bool vm_found = false;  // the service filled in target_vm_details: it knows the VM
};

uint16_t ParsePort(const json& value) {
  const std::string text = value.is_string() ? value.get<std::string>() : "";
  unsigned port = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  return ec == std::errc() && ptr == text.data() + text.size() && port <= 65535
             ? static_cast<uint16_t>(port)
             : 0;
}

std::vector<ProxyRecord> ParseRecords(const json& body) {
  std::vector<ProxyRecord> out;
  if (!body.is_array()) {
    return out;
  }
  for (const json& item : body) {
    if (!item.is_object()) {
      continue;
    }
    ProxyRecord record{.id = item.value("id", ""),
                       .name = item.value("name", ""),
                       .port = ParsePort(item.value("port", json()))};
    if (const auto route = item.find("tcp_route"); route != item.end() && route->is_object()) {
      record.target_vm_id = BareUuid(route->value("target_vm_id", ""));
      record.target_port = route->value("target_port", "");
      record.vm_found = route->contains("target_vm_details");
    }
    out.push_back(std::move(record));
  }
  return out;
}

}  // namespace

std::mutex& ParallelsProvider::TunnelLock(const std::string& address) {
  std::lock_guard lock(mu_);
  std::unique_ptr<std::mutex>& held = tunnel_locks_[address];
  if (held == nullptr) {
    held = std::make_unique<std::mutex>();
  }
  return *held;
}

Result<Fd> ParallelsProvider::OpenTunnel(const HostRef& host, const VmInfo& vm, uint16_t port,
                                         Deadline deadline) {
  Result<HostClient*> got = ClientFor(host);
  if (!got.ok()) {
    return got.status();
  }
  HostClient& client = **got;
  const std::string what = "VM " + vm.name + " port " + std::to_string(port);

  // The VM as the host sees it now: the proxy resolves its UUID to the address it has while
  // running (reverse_proxy/main.go:292-305).
  Result<VmInfo> now = GetVm(client, vm.id.empty() ? vm.name : vm.id, deadline);
  if (!now.ok()) {
    return now.status();
  }
  if (now->state != VmState::kRunning) {
    return Status::FailedPrecondition(what + ": the VM is not running (" + now->raw_state +
                                      "); start it first");
  }
  if (now->ip.empty() || now->ip == "-") {
    return Status::FailedPrecondition(
        what +
        ": the VM has no IP address yet (the host learns it from Parallels Tools once "
        "the guest has booted); try again shortly");
  }
  const std::string uuid = BareUuid(now->id);

  // The module: /config/hardware says whether it is on; its routes are missing when it is off.
  Result<Response> hardware = client.Call(Method::kGet, "/v1/config/hardware", nullptr, deadline);
  if (!hardware.ok()) {
    return hardware.status();
  }
  if (hardware->status == 200) {
    const json facts = ParseBody(*hardware);
    if (facts.is_object() && facts.value("is_reverse_proxy_enabled", true) == false) {
      return Status::FailedPrecondition("host " + host.name + ": " + kEnableProxy);
    }
  }
  // Reuse a proxy host without waiting; make one under the host's tunnel lock, listing again
  // first: every create restarts the host's whole proxy (dropping its relays), so concurrent
  // tunnels to one VM's port must make one proxy host, not one each.
  bool nothing_to_reuse = false;
  const auto attempt = [&](bool create) -> Result<Fd> {
    Result<Response> listed =
        client.Call(Method::kGet, "/v1/reverse-proxy/hosts", nullptr, deadline);
    if (!listed.ok()) {
      return listed.status();
    }
    if (listed->status == 404 || listed->status == 400) {
      // 404: the routes are not registered (module off); 400 "reverse proxy is disabled": the
      // module is on but its configuration is disabled (PUT /reverse-proxy/disable).
      return Status::FailedPrecondition("host " + host.name + ": " + kEnableProxy);
    }
    if (listed->status != 200) {
      return client.ErrorFor(*listed, "list the reverse proxy's hosts for " + what);
    }
    const std::vector<ProxyRecord> records = ParseRecords(ParseBody(*listed));
    const std::string address = OriginHost(ParseEndpoint(host.address)->origin);
    const auto& tuning = config_.tuning;

    // A connection through the proxy host on `proxy_port`, tried until it comes up or `until`.
    const auto dial = [&](uint16_t proxy_port, Deadline until) -> Result<Fd> {
      int error = 0;
      for (;;) {
        Fd fd(ConnectBy(address, proxy_port, std::min(until, deadline)));
        if (fd.valid()) {
          if (ClosedAtOnce(fd.get(), tuning.tunnel_settle)) {
            return Status::Unavailable(
                what + ": the host's reverse proxy on " + address + ":" +
                std::to_string(proxy_port) +
                " closed the connection at once: nothing answers on the VM's port, or the proxy "
                "resolved the VM before it ran");
          }
          return fd;
        }
        error = errno;
        if (!SleepWithin(tuning.tunnel_probe_interval, std::min(until, deadline))) {
          break;
        }
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::DeadlineExceeded(what + ": no connection to " + address + ":" +
                                        std::to_string(proxy_port) + " in time");
      }
      return Status::Unavailable(what + ": nothing listens on " + address + ":" +
                                 std::to_string(proxy_port) + " (" + std::strerror(error) + ")");
    };
    const auto remove = [&](const std::string& id) {
      Result<Response> gone = client.Call(
          Method::kDelete, "/v1/reverse-proxy/hosts/" + EncodePathSegment(id), nullptr, deadline);
      if (gone.ok() && gone->status != 202 && gone->status != 200 && gone->status != 404) {
        logger_->warn("host {}: could not delete reverse proxy host {}: {}", host.name, id,
                      client.Message(gone->body));
      }
    };

    // Reuse ours.
    const std::string name = ProxyHostName(uuid, port);
    std::vector<uint16_t> taken;
    for (const ProxyRecord& record : records) {
      taken.push_back(record.port);
    }
    for (const ProxyRecord& record : records) {
      if (record.name != name || record.target_vm_id != uuid ||
          record.target_port != std::to_string(port) || record.port == 0) {
        continue;
      }
      const auto until = std::chrono::steady_clock::now() + tuning.tunnel_listen_wait;
      Result<Fd> fd = dial(record.port, until);
      if (fd.ok() || fd.status().code() == Status::Code::kDeadlineExceeded) {
        return fd;
      }
      if (fd.status().message().find("closed the connection") != std::string::npos) {
        // The VM's port refuses, or the proxy holds an old target for the VM (the VM was not
        // running when the proxy last restarted: "---"; 1.0.x resolves it again 2 s after the VM
        // starts, 0.9.x only at the proxy's next restart). Not restarted from here: a restart
        // would end every other relay on the host.
        return fd;
      }
      // Nothing listens: its port was taken when the proxy last started. Give it up.
      logger_->info("host {}: reverse proxy host {} on port {} does not listen; replacing it",
                    host.name, record.id, record.port);
      remove(record.id);
      std::erase(taken, record.port);
    }

    if (!create) {
      nothing_to_reuse = true;
      return Status::NotFound(what + ": no proxy host to reuse");
    }

    // Proxy hosts Flotilla made for VMs the host no longer has (deleted since): removed now, as
    // the create below restarts the proxy anyway. The service leaves target_vm_details out when
    // it cannot read the VM; the VM list confirms that the VM is gone.
    std::vector<const ProxyRecord*> orphans;
    for (const ProxyRecord& record : records) {
      if (record.name.starts_with("flotilla-") && !record.target_vm_id.empty() &&
          !record.vm_found && record.target_vm_id != uuid) {
        orphans.push_back(&record);
      }
    }
    if (!orphans.empty()) {
      if (Result<std::vector<VmInfo>> vms = ListVms(client, deadline); vms.ok()) {
        for (const ProxyRecord* orphan : orphans) {
          const bool gone = std::none_of(vms->begin(), vms->end(), [&](const VmInfo& v) {
            return BareUuid(v.id) == orphan->target_vm_id;
          });
          if (gone) {
            logger_->info("host {}: deleting reverse proxy host {} of a VM that is gone", host.name,
                          orphan->name);
            remove(orphan->id);
            std::erase(taken, orphan->port);
          }
        }
      }
    }

    // A new proxy host on a free port, from a place in the range that depends on the VM and port,
    // so that tunnels to different VMs rarely try the same ports.
    const TunnelSettings& range = config_.tunnels;
    const uint32_t span = uint32_t{range.last_port} - range.first_port + 1;
    const uint32_t start = static_cast<uint32_t>(std::hash<std::string>{}(name) % span);
    Status last = Status::Unavailable(what + ": no free port in tunnels.ports " +
                                      std::to_string(range.first_port) + "-" +
                                      std::to_string(range.last_port) + " on host " + host.name);
    int attempts = 0;
    for (uint32_t i = 0; i < span && attempts < tuning.tunnel_port_attempts; ++i) {
      const auto proxy_port = static_cast<uint16_t>(range.first_port + (start + i) % span);
      if (std::find(taken.begin(), taken.end(), proxy_port) != taken.end()) {
        continue;
      }
      // Something else answering there (another service, or a proxy host this host's proxy
      // failed to replace) would take our connections: skip ports that already answer.
      if (Fd busy(ConnectBy(
              address, proxy_port,
              std::min(deadline, std::chrono::steady_clock::now() + tuning.connect_timeout)));
          busy.valid()) {
        continue;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        return Status::DeadlineExceeded(what + ": no tunnel in time");
      }
      ++attempts;
      const json body = {
          {"name", name},
          {"host", range.bind},
          {"port", std::to_string(proxy_port)},
          {"tcp_route", {{"target_vm_id", uuid}, {"target_port", std::to_string(port)}}}};
      Result<Response> created =
          client.Call(Method::kPost, "/v1/reverse-proxy/hosts", &body, deadline);
      if (!created.ok()) {
        return created.status();
      }
      if (created->status == 400 &&
          client.Message(created->body).find("already exists") != std::string::npos) {
        continue;  // another client took it since the listing
      }
      if (created->status == 404) {
        return Status::FailedPrecondition("host " + host.name + ": " + kEnableProxy);
      }
      if (created->status != 201 && created->status != 200) {
        return client.ErrorFor(*created, "create a reverse proxy host for " + what);
      }
      const std::string id = ParseBody(*created).value("id", "");
      Result<Fd> fd =
          dial(proxy_port, std::chrono::steady_clock::now() + tuning.tunnel_listen_wait);
      if (fd.ok()) {
        logger_->info("host {}: reverse proxy host {} on port {} reaches {}", host.name, id,
                      proxy_port, what);
        return fd;
      }
      if (fd.status().code() != Status::Code::kUnavailable ||
          fd.status().message().find("closed the connection") != std::string::npos) {
        return fd;  // out of time, or the VM's port itself refuses: keep the record for reuse
      }
      // The listener never came up (its port is in use on the host): not reported by the
      // service. Delete the record and try another port.
      last = fd.status();
      if (!id.empty()) {
        remove(id);
      }
    }
    return last;
  };
  // Whether the host lists our proxy host now (made by another tunnel while this one waited).
  const auto listed_now = [&] {
    Result<Response> listed =
        client.Call(Method::kGet, "/v1/reverse-proxy/hosts", nullptr, deadline);
    if (!listed.ok() || listed->status != 200) {
      return false;
    }
    const std::vector<ProxyRecord> records = ParseRecords(ParseBody(*listed));
    return std::any_of(records.begin(), records.end(), [&](const ProxyRecord& record) {
      return record.name == ProxyHostName(uuid, port) && record.port != 0;
    });
  };
  for (int round = 0; round < 2; ++round) {
    Result<Fd> reused = attempt(false);
    if (!nothing_to_reuse) {
      return reused;
    }
    nothing_to_reuse = false;
    // Made under the lock; a proxy host another tunnel made meanwhile is reused outside it, so
    // that tunnels waiting for one create do not probe it one after another.
    const std::lock_guard lock(TunnelLock(host.address));
    if (round == 1 || !listed_now()) {
      return attempt(true);
    }
  }
  return Status::Internal(what + ": no tunnel");  // not reached: round 1 returns
}

}  // namespace flotilla::providers::parallels
