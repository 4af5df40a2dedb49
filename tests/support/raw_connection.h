#pragma once

// A raw TCP connection to a local server, for what an HTTP client library hides: requests sent
// in pieces, connections left idle, answers read as they come.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace flotilla::testing {

// A TCP connection to the server from `source` (any 127.0.0.0/8 address), with `sent` sent.
class RawConnection {
 public:
  RawConnection(const std::string& source, int port, const std::string& sent) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
        connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      ADD_FAILURE() << "cannot connect from " << source;
      return;
    }
    if (!sent.empty()) {
      EXPECT_EQ(send(fd_, sent.data(), sent.size(), MSG_NOSIGNAL),
                static_cast<ssize_t>(sent.size()));
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends more on the connection.
  bool Send(const std::string& text) const {
    return send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
  }

  // Whether the server closed the connection within `limit`.
  bool ClosedWithin(std::chrono::milliseconds limit) const {
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, static_cast<int>(limit.count())) <= 0) {
      return false;
    }
    char byte = 0;
    return recv(fd_, &byte, 1, MSG_DONTWAIT) == 0;
  }

  // What the server sends until it closes the connection (or `limit` passes).
  std::string ReadAll(std::chrono::milliseconds limit) const { return ReadUntil("", limit); }

  // What the server sends until `wanted` was received after what `text` held (empty: until
  // it closes the connection), the connection closes or `limit` passes; appended to `text`.
  std::string ReadUntil(const std::string& wanted, std::chrono::milliseconds limit,
                        std::string text = {}) const {
    const size_t from = text.size();
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        return text;
      }
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        return text;
      }
      text.append(buffer, static_cast<size_t>(n));
      if (!wanted.empty() && text.find(wanted, from) != std::string::npos) {
        return text;
      }
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace flotilla::testing
