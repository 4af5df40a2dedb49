#pragma once

// The host's reverse proxy (prl-devops-service `reverse_proxy` module, since 0.9.10, PR #228),
// as far as TCP routes go: the REST records of /api/v1/reverse-proxy/hosts and the listeners
// that relay bytes to a VM's port. What it reproduces of the real one (src/ at
// github.com/Parallels/prl-devops-service 51f9563):
//
// - Records (data/reverse_proxy.go): {id, name?, host, port, tcp_route?{id, target_port,
//   target_host?, target_vm_id?}}, port and target_port being strings; `{id}` in a path is the
//   id or "host:port", case-insensitive (104-121); a second record with the same host:port is
//   refused with 400 "already exists" (124-137). Validation as models/reverse_proxy_hosts.go:51-98
//   and models/reverse_proxy_host_tcp_route.go:13-22. Create answers 201, PUT and tcp_route 201,
//   DELETE 202 (controllers/reverse_proxy.go). HTTP routes are not reproduced: a request with
//   http_routes is refused as if it had none.
// - Every create, update, delete and tcp_route change restarts the whole proxy
//   (reverse_proxy/main.go:483-535): every listener closes and every relay in flight is dropped,
//   then each tcp_route's target_vm_id is resolved again (LoadFromDb, 286-305): the VM must be
//   running with an address, else the target is "---". The listener starts anyway (the
//   `TargetPort == "---"` test at 561 looks at the wrong field), and every connection to it is
//   closed at once, as the failed dial of handleTcpTraffic (1172-1200) closes it.
// - A listener that cannot bind (port in use) is logged and nothing else: the REST call that
//   restarted the proxy still succeeds (startInternal's `select ... default`, 370-382).
// - A relay is plain TCP with no authentication.
//
// From 1.0.0, 2 s after a VM starts, the listeners of routes to it whose target is not the VM's
// address now are restarted with the new one (Handle and checkVmIpChanged, 595-744): Follow().
// Not reproduced: the 5 s drain of Stop() (relays here end at once); that RestartHost leaves a
// listener's relays in flight alone (here they end with it: their target is gone anyway); HTTP
// routes.
//
// The simulated guests: a relay dials VM_IP:PORT; a running VM of this host with that address
// answers through SimOptions::guest_ports (PORT relayed to a real address) or, without any, with
// an echo service on 22 and 5900; any other port, or an address no running VM has, is a refused
// dial (the connection closes at once). Other targets (target_host outside the VMs' network)
// are dialled for real.
//
// Thread-safety: every public method may be called from any thread. Listener and relay threads
// belong to the proxy and are joined by a restart and by Stop().

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/hostsim/sim_host.h"

namespace flotilla::hostsim {

namespace proxy {

struct TcpRoute {
  std::string id;
  std::string target_port;
  std::string target_host;
  std::string target_vm_id;
};

struct ProxyHost {
  std::string id;
  std::string name;
  std::string host;
  std::string port;
  std::optional<TcpRoute> tcp_route;
  std::string Key() const { return port.empty() ? host : host + ":" + port; }
};

// One started listener and its relays.
struct Listener;

}  // namespace proxy

class SimReverseProxy {
 public:
  // `bind_address` is where "0.0.0.0" (and "", "::", "localhost") binds: the simulated Mac's
  // address, hostsim's listen address. `vms` and `options` must outlive the proxy.
  SimReverseProxy(const SimOptions& options, std::string bind_address, ProxyVms& vms,
                  std::function<std::string()> new_id);
  ~SimReverseProxy();
  SimReverseProxy(const SimReverseProxy&) = delete;
  SimReverseProxy& operator=(const SimReverseProxy&) = delete;

  // The REST calls (controllers/reverse_proxy.go). `id` as in the path.
  Reply List();
  Reply Get(const std::string& id);
  Reply Create(std::string_view body);
  Reply Update(const std::string& id, std::string_view body);
  Reply Delete(const std::string& id);
  Reply SetTcpRoute(const std::string& id, std::string_view body);

  // /config/hardware's reverse_proxy: {enabled, host, port, hosts?} (config.go:310-331).
  nlohmann::json HardwareSection();

  // Starts the proxy with the records it has (the service's start). Idempotent.
  void Start();
  // Closes every listener and relay. Idempotent.
  void Stop();

  // Persistence of the records (the service's database).
  nlohmann::json Snapshot() const;
  void Restore(const nlohmann::json& snapshot);

  // Whether any route names a VM by id (Follow has something to do).
  bool HasVmRoutes() const { return vm_routes_.load(); }
  // Restarts the listeners of routes to running VMs whose address is not their target (1.0.0's
  // answer to a VM starting), leaving the others and their relays alone.
  void Follow();

  // How many restarts have happened (tests).
  int restarts() const { return restarts_.load(); }

 private:
  nlohmann::json HostJson(const proxy::ProxyHost& host, bool details);
  proxy::ProxyHost* FindLocked(const std::string& id);
  // Stop + resolve + start, under restart_mu_.
  void Restart();
  void StopListeners();
  // Binds and starts one listener (false, logged, when it cannot bind); stops one.
  bool StartListener(proxy::Listener& listener);
  void StopListener(proxy::Listener& listener);

  const SimOptions& options_;
  const std::string bind_address_;
  ProxyVms& vms_;
  std::function<std::string()> new_id_;

  mutable std::mutex mu_;  // records_
  std::vector<proxy::ProxyHost> records_;

  std::mutex restart_mu_;  // one restart at a time; guards listeners_ and started_
  bool started_ = false;
  std::vector<std::unique_ptr<proxy::Listener>> listeners_;
  std::atomic<int> restarts_{0};
  std::atomic<bool> vm_routes_{false};
};

}  // namespace flotilla::hostsim
