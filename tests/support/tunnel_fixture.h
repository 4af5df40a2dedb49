#pragma once

// For tests and benchmarks of the API's tunnels: an echo server standing in for a VM's port,
// and a loop whose tunnels all reach it.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/api/server.h"

namespace flotilla::testing {

// Echoes every connection until its end, then closes: a VM's port.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd_, 128) != 0) {
      std::perror("echo server: cannot listen on loopback");
      std::abort();
    }
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int conn = accept(fd_, nullptr, nullptr);
        if (conn < 0) {
          return;
        }
        std::thread([conn] {
          std::vector<char> buffer(65536);
          for (;;) {
            const ssize_t n = read(conn, buffer.data(), buffer.size());
            if (n <= 0) {
              break;
            }
            for (ssize_t sent = 0; sent < n;) {
              const ssize_t w = write(conn, buffer.data() + sent, static_cast<size_t>(n - sent));
              if (w <= 0) {
                close(conn);
                return;
              }
              sent += w;
            }
          }
          close(conn);
        }).detach();
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  EchoServer(const EchoServer&) = delete;
  EchoServer& operator=(const EchoServer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A loop with one pool (allowing 22 and 5900), one online host and two VMs, whose tunnels all
// reach the echo server.
class TunnelBackend final : public api::Backend {
 public:
  explicit TunnelBackend(int echo_port) : echo_port_(echo_port) {
    auto snapshot = std::make_shared<controller::Snapshot>();
    HostPool pool;
    pool.meta.name = "macs";
    pool.hosts.push_back(HostSpec{.name = "mac-1", .address = "https://mac-1:8080"});
    snapshot->desired.pools.push_back(pool);
    ObservedHost host;
    host.name = "mac-1";
    host.pool = "macs";
    host.online = true;
    host.vms_known = true;
    host.vms.push_back(VmInfo{.id = "1", .name = "ci-1", .state = VmState::kRunning});
    host.vms.push_back(VmInfo{.id = "2", .name = "ci-2", .state = VmState::kStopped});
    snapshot->observed.hosts["mac-1"] = host;
    VMSet set;
    set.meta.name = "ios";
    set.pool = "macs";
    set.ssh_user = "admin";
    snapshot->desired.sets.push_back(set);
    snapshot->ledger.entries.push_back(
        LedgerEntry{.vm = "ci-1", .vmset = "ios", .pool = "macs", .host = "mac-1"});
    latest_ = snapshot;
  }
  std::shared_ptr<const controller::Snapshot> Latest() const override { return latest_; }
  std::shared_future<int64_t> Reconcile(std::string /*reason*/,
                                        std::optional<PassApproval> /*approval*/,
                                        std::string /*actor*/) override {
    std::promise<int64_t> none;
    none.set_value(0);
    return none.get_future().share();
  }
  Result<KeptFd> OpenTunnel(const std::string& pool, const std::string& host, const VmInfo& vm,
                            uint16_t port,
                            std::chrono::steady_clock::time_point /*deadline*/) override {
    {
      std::lock_guard lock(mu_);
      asked_.push_back(pool + "/" + host + "/" + vm.name + ":" + std::to_string(port));
    }
    Fd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(echo_port_));
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return Status::Unavailable("the echo server refused");
    }
    return KeptFd{.fd = std::move(fd)};
  }
  std::vector<std::string> asked() const {
    std::lock_guard lock(mu_);
    return asked_;
  }

 private:
  int echo_port_;
  std::shared_ptr<const controller::Snapshot> latest_;
  mutable std::mutex mu_;
  std::vector<std::string> asked_;
};

}  // namespace flotilla::testing
