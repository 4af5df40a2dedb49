#include "reconciler/cli/tunnel_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds{10};
// How long the API may take to answer: it connects to the VM's port first (a Parallels host's
// proxy, an SSH channel), which api.tunnels allows 30 s.
constexpr auto kAnswerTimeout = std::chrono::seconds{45};

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
};

Result<Url> ParseUrl(const std::string& server) {
  Url url;
  std::string rest;
  if (server.starts_with("https://")) {
    url.tls = true;
    rest = server.substr(8);
  } else if (server.starts_with("http://")) {
    rest = server.substr(7);
  } else {
    return Status::InvalidArgument("--server must be an http:// or https:// URL, not \"" + server +
                                   "\"");
  }
  rest = rest.substr(0, rest.find('/'));
  if (rest.starts_with('[')) {
    const size_t close = rest.find(']');
    url.host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    rest = close == std::string::npos ? "" : rest.substr(close + 1);
  } else {
    url.host = rest.substr(0, rest.find(':'));
    rest = rest.find(':') == std::string::npos ? "" : rest.substr(rest.find(':'));
  }
  url.port = rest.starts_with(':') ? rest.substr(1) : (url.tls ? "443" : "80");
  if (url.host.empty() || url.port.empty()) {
    return Status::InvalidArgument("--server has no host: \"" + server + "\"");
  }
  return url;
}

// Waits until `fd` is readable (or writable); false on timeout.
bool WaitFor(int fd, bool write, std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) {
    return false;
  }
  pollfd p{.fd = fd, .events = static_cast<short>(write ? POLLOUT : POLLIN), .revents = 0};
  return poll(&p, 1, static_cast<int>(left.count())) > 0;
}

std::string SslErrorText() {
  const unsigned long error = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL's type
  ERR_clear_error();
  if (error == 0) {
    return "the connection closed";
  }
  std::array<char, 256> text{};
  ERR_error_string_n(error, text.data(), text.size());
  return text.data();
}

}  // namespace

Tunnel::~Tunnel() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) {
    SSL_CTX_free(ctx_);
  }
  if (fd_ >= 0) {
    close(fd_);
  }
}

Result<std::unique_ptr<Tunnel>> Tunnel::Open(const TunnelTarget& target) {
  Result<Url> url = ParseUrl(target.server);
  if (!url.ok()) {
    return url.status();
  }
  const std::string where = "the flotilla API at " + target.server;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int looked = getaddrinfo(url->host.c_str(), url->port.c_str(), &hints, &found);
      looked != 0 || found == nullptr) {
    if (looked == EAI_SYSTEM) {  // out of descriptors, say: not the name's fault
      return Status::Unavailable("cannot reach " + where + ": cannot look up " + url->host + ": " +
                                 std::strerror(errno));
    }
    return Status::Unavailable("cannot reach " + where + ": unknown host " + url->host);
  }
  std::unique_ptr<Tunnel> tunnel(new Tunnel());
  const auto connect_until = std::chrono::steady_clock::now() + kConnectTimeout;
  // Why the last address failed, in words: a refusal suggests the usual cause.
  auto said = [](int error) {
    return error == ECONNREFUSED
               ? std::string("connection refused (is 'flotilla run' listening there?)")
               : std::string(std::strerror(error));
  };
  std::string why = said(ECONNREFUSED);
  for (addrinfo* a = found; a != nullptr && tunnel->fd_ < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      why = "cannot open a socket: " + std::string(std::strerror(errno));  // EMFILE, say
      continue;
    }
    // Empty once connected; otherwise why not.
    const std::string failed = [&]() -> std::string {
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
        return "";
      }
      if (errno != EINPROGRESS) {
        return said(errno);
      }
      if (!WaitFor(fd, true, connect_until)) {
        return "no answer within 10 s";
      }
      int error = 0;
      socklen_t len = sizeof(error);
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) {
        return said(errno);
      }
      return error == 0 ? "" : said(error);
    }();
    if (failed.empty()) {
      tunnel->fd_ = fd;
    } else {
      why = failed;
      close(fd);
    }
  }
  freeaddrinfo(found);
  if (tunnel->fd_ < 0) {
    return Status::Unavailable("cannot reach " + where + ": " + why);
  }
  // Small writes (the request after the TLS handshake, then keystrokes) go out at once.
  int one = 1;
  (void)setsockopt(tunnel->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  const auto until = std::chrono::steady_clock::now() + kAnswerTimeout;
  if (url->tls) {
    tunnel->ctx_ = SSL_CTX_new(TLS_client_method());
    if (tunnel->ctx_ == nullptr) {
      return Status::Internal("cannot set up TLS");
    }
    SSL_CTX_set_min_proto_version(tunnel->ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(tunnel->ctx_,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(tunnel->ctx_, SSL_VERIFY_PEER, nullptr);
    if ((target.ca_file.empty()
             ? SSL_CTX_set_default_verify_paths(tunnel->ctx_)
             : SSL_CTX_load_verify_locations(tunnel->ctx_, target.ca_file.c_str(), nullptr)) != 1) {
      ERR_clear_error();
      return Status::FailedPrecondition("cannot read the CA bundle " + target.ca_file);
    }
    tunnel->ssl_ = SSL_new(tunnel->ctx_);
    SSL_set_fd(tunnel->ssl_, tunnel->fd_);
    SSL_set_tlsext_host_name(tunnel->ssl_, url->host.c_str());
    SSL_set1_host(tunnel->ssl_, url->host.c_str());
    for (;;) {
      ERR_clear_error();
      const int r = SSL_connect(tunnel->ssl_);
      if (r == 1) {
        break;
      }
      const int error = SSL_get_error(tunnel->ssl_, r);
      if ((error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) ||
          !WaitFor(tunnel->fd_, error == SSL_ERROR_WANT_WRITE, until)) {
        const long verify = SSL_get_verify_result(tunnel->ssl_);  // NOLINT(google-runtime-int)
        return Status::Unavailable("cannot reach " + where + ": " +
                                   (verify != X509_V_OK
                                        ? "the server's certificate is not trusted (" +
                                              std::string(X509_verify_cert_error_string(verify)) +
                                              "; give its CA with --ca-file)"
                                        : "the TLS handshake failed: " + SslErrorText()));
      }
    }
  }
  std::string request = "GET /api/v1/vms/" + EncodePathSegment(target.vm) +
                        "/port-forward?port=" + std::to_string(target.port) +
                        (target.host.empty() ? "" : "&host=" + EncodePathSegment(target.host)) +
                        " HTTP/1.1\r\nHost: " + url->host + ":" + url->port +
                        "\r\nUser-Agent: flotilla\r\nConnection: Upgrade\r\nUpgrade: "
                        "flotilla-tunnel\r\n";
  if (!target.token.empty()) {
    request += "Authorization: Bearer " + target.token + "\r\n";
  }
  request += "\r\n";
  auto io = [&](bool write, char* data, size_t size) -> ssize_t {
    for (;;) {
      ssize_t n = 0;
      bool want_write = write;
      if (tunnel->ssl_ != nullptr) {
        ERR_clear_error();
        const int r = write ? SSL_write(tunnel->ssl_, data, static_cast<int>(size))
                            : SSL_read(tunnel->ssl_, data, static_cast<int>(size));
        if (r > 0) {
          return r;
        }
        const int error = SSL_get_error(tunnel->ssl_, r);
        ERR_clear_error();
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) {
          return error == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        }
        want_write = error == SSL_ERROR_WANT_WRITE;
      } else {
        n = write ? send(tunnel->fd_, data, size, MSG_NOSIGNAL) : recv(tunnel->fd_, data, size, 0);
        if (n >= 0) {
          return n;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return -1;
        }
      }
      if (!WaitFor(tunnel->fd_, want_write, until)) {
        return -2;  // timed out
      }
    }
  };
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = io(true, request.data() + sent, request.size() - sent);
    if (n <= 0) {
      return Status::Unavailable("cannot reach " + where + ": the connection closed");
    }
    sent += static_cast<size_t>(n);
  }
  // The answer's head, then its body when it is a refusal.
  std::string answer;
  std::array<char, 4096> buffer{};
  size_t head_end = std::string::npos;
  size_t length = 0;
  for (;;) {
    if (head_end == std::string::npos) {
      head_end = answer.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const std::string head = answer.substr(0, head_end);
        if (head.starts_with("HTTP/1.1 101")) {
          tunnel->unread_ = answer.substr(head_end + 4);
          return tunnel;
        }
        const std::string lower = AsciiLower(head);
        const size_t field = lower.find("\r\ncontent-length:");
        length =
            field == std::string::npos ? 0 : std::strtoul(head.c_str() + field + 17, nullptr, 10);
      }
    }
    if (head_end != std::string::npos && answer.size() >= head_end + 4 + length) {
      break;
    }
    const ssize_t n = io(false, buffer.data(), buffer.size());
    if (n == -2) {
      return Status::DeadlineExceeded(where + " did not answer within 45 s");
    }
    if (n <= 0) {
      if (head_end != std::string::npos) {
        break;
      }
      return Status::Unavailable(where + " closed the connection without an answer");
    }
    answer.append(buffer.data(), static_cast<size_t>(n));
    if (answer.size() > (size_t{1} << 20)) {
      break;
    }
  }
  const std::string status_line = answer.substr(0, answer.find("\r\n"));
  const int status = status_line.size() > 12 ? std::atoi(status_line.c_str() + 9) : 0;
  const nlohmann::json body = nlohmann::json::parse(
      head_end == std::string::npos ? std::string() : answer.substr(head_end + 4), nullptr, false);
  const std::string error = body.is_object() && body.contains("error") && body["error"].is_string()
                                ? body["error"].get<std::string>()
                                : "HTTP " + std::to_string(status);
  const std::string message = where + " refused the tunnel: " + error;
  switch (status) {
    case 401:
      return Status::PermissionDenied(
          where + " refused " +
          (target.token.empty() ? std::string("a request without a token")
                                : std::string("the token")) +
          ": give one with the access role with --token-file or FLOTILLA_TOKEN");
    case 403:
      return Status::PermissionDenied(message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::FailedPrecondition(message);
    case 429:
      return Status::ResourceExhausted(message);
    default:
      return Status::Unavailable(message);
  }
}

api::RelayOutcome Tunnel::Relay(int read_fd, int write_fd, const std::atomic<bool>& stopping) {
  return api::Relay(fd_, ssl_, std::exchange(unread_, {}), read_fd, write_fd,
                    std::chrono::hours{24 * 365}, stopping);
}

}  // namespace flotilla::cli
