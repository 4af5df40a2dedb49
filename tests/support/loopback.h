#pragma once

// Loopback ports for tests and benchmarks that start servers of their own.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace flotilla::testing {

// A free TCP port on 127.0.0.1: bound to port 0 and released, for servers that cannot bind
// port 0 and report what they got (git daemon, sshd). 0 if the system has none to give.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return 0;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  return ok ? ntohs(addr.sin_port) : 0;
}

// A connection to 127.0.0.1:`port`; -1 when refused.
inline int DialLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when something accepts TCP connections on 127.0.0.1:`port`.
inline bool PortAccepts(int port) {
  const int fd = DialLoopback(port);
  if (fd >= 0) {
    close(fd);
  }
  return fd >= 0;
}

}  // namespace flotilla::testing
