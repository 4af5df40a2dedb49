#include "providers/tart/tartsim/guest_net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>

#include "providers/tart/tartsim/fs_util.h"
#include "providers/tart/tartsim/sim_config.h"

namespace flotilla::tartsim {
namespace {

// The services a guest has when nothing is mapped: Remote Login and Screen Sharing.
constexpr uint16_t kDefaultPorts[] = {22, 5900};

sockaddr_in Address(const std::string& ip, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  return address;
}

// NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
int Listen(const std::string& ip, uint16_t port, std::string* error) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  const sockaddr_in address = Address(ip, port);
  if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 64) != 0) {
    *error = std::strerror(errno);
    if (fd >= 0) {
      close(fd);
    }
    return -1;
  }
  return fd;
}

int Connect(const std::string& target) {
  const std::optional<std::pair<std::string, uint16_t>> where = ParseHostPort(target);
  if (!where) {
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_in address = Address(where->first, where->second);
  if (fd >= 0 && connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}
// NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies from `from` to `to` what is there: false at end of stream (then `to` is half-closed).
bool Pass(int from, int to) {
  char buffer[16384];
  ssize_t n = 0;
  do {
    n = recv(from, buffer, sizeof(buffer), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0 || !SendAll(to, buffer, static_cast<size_t>(n))) {
    shutdown(to, SHUT_WR);
    return false;
  }
  return true;
}

}  // namespace

GuestNet::GuestNet(const std::string& ip, const std::map<uint16_t, std::string>& guest_ports,
                   const std::string& report) {
  std::map<uint16_t, std::string> ports = guest_ports;
  if (ports.empty()) {
    for (const uint16_t port : kDefaultPorts) {
      ports[port] = "";
    }
  }
  std::string text;
  for (const auto& [port, target] : ports) {
    std::string error;
    const int fd = Listen(ip, port, &error);
    if (fd < 0) {
      text += "! " + std::to_string(port) + ": " + error + "\n";
      continue;
    }
    listeners_.push_back(Listener{.fd = fd, .target = target});
    text += std::to_string(port) + (target.empty() ? " echo" : " relay " + target) + "\n";
  }
  for (const Listener& listener : listeners_) {
    threads_.emplace_back([this, listener] { Accept(listener); });
  }
  WriteFileAtomic(report, text);
}

GuestNet::~GuestNet() {
  stopping_ = true;
  for (const Listener& listener : listeners_) {
    shutdown(listener.fd, SHUT_RDWR);  // wakes its accept()
  }
  for (std::thread& thread : threads_) {
    thread.join();
  }
  for (const Listener& listener : listeners_) {
    close(listener.fd);
  }
  {
    std::lock_guard lock(mu_);
    for (const int fd : connections_) {
      shutdown(fd, SHUT_RDWR);  // wakes its connection's thread, which closes it
    }
  }
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return live_ == 0; });
}

bool GuestNet::Track(int fd) {
  std::lock_guard lock(mu_);
  if (stopping_) {
    return false;
  }
  connections_.insert(fd);
  return true;
}

void GuestNet::Untrack(int fd) {
  std::lock_guard lock(mu_);
  connections_.erase(fd);
}

void GuestNet::Accept(const Listener& listener) {
  while (!stopping_) {
    const int client = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      return;  // shut down
    }
    if (!Track(client)) {
      close(client);
      return;
    }
    {
      std::lock_guard lock(mu_);
      ++live_;
    }
    // Detached: the destructor waits for live_ to reach 0 instead of joining.
    std::thread([this, client, target = listener.target] {
      Serve(client, target);
      std::lock_guard lock(mu_);
      --live_;
      idle_.notify_all();
    }).detach();
  }
}

void GuestNet::Serve(int client, const std::string& target) {
  if (target.empty()) {
    while (Pass(client, client)) {
    }
  } else {
    const int upstream = Connect(target);
    if (upstream >= 0 && Track(upstream)) {
      bool client_open = true;
      bool upstream_open = true;
      while (client_open || upstream_open) {
        pollfd fds[2] = {{.fd = client_open ? client : -1, .events = POLLIN, .revents = 0},
                         {.fd = upstream_open ? upstream : -1, .events = POLLIN, .revents = 0}};
        if (poll(fds, 2, -1) < 0) {
          if (errno == EINTR) {
            continue;
          }
          break;
        }
        if (fds[0].revents != 0) {
          client_open = Pass(client, upstream);
        }
        if (fds[1].revents != 0) {
          upstream_open = Pass(upstream, client);
        }
      }
      Untrack(upstream);
      close(upstream);
    } else if (upstream >= 0) {
      close(upstream);
    }
  }
  Untrack(client);
  close(client);
}

}  // namespace flotilla::tartsim
