// bench/tunnel: what a tunnel through the API costs against a direct loopback connection.
//
// The API server runs in this process with a loop whose tunnels reach an echo server on
// loopback (tests/support/tunnel_fixture.h); the client is the CLI's own (cli::Tunnel), relaying
// from a socketpair as `flotilla port-forward` relays from a local connection. Measured:
//   open      Tunnel::Open: connect, ask, 101 (the provider's part is a loopback connect here)
//   latency   one byte there and back, after a warm-up: direct, then through a tunnel
//   stream    N MiB sent and echoed back at once, by one connection: direct, then a tunnel
// Usage: bench_tunnel [MiB=256] [round_trips=2000] [tls=0|1]

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/sinks/null_sink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "reconciler/api/server.h"
#include "reconciler/cli/tunnel_client.h"
#include "tests/support/loopback.h"
#include "tests/support/tunnel_fixture.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int Connect(int port) {
  const int fd = flotilla::testing::DialLoopback(port);
  if (fd < 0) {
    std::perror("connect");
    std::exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// One byte there and back, `count` times, on `fd`: the round trips in ms.
std::vector<double> RoundTrips(int fd, int count) {
  std::vector<double> times;
  char c = 'x';
  for (int i = 0; i < count + 100; ++i) {
    const auto start = Clock::now();
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
      std::fprintf(stderr, "round trip %d failed\n", i);
      std::exit(1);
    }
    if (i >= 100) {  // warm-up
      times.push_back(Ms(Clock::now() - start));
    }
  }
  return times;
}

// Sends `bytes` on `fd` from one thread and reads them back on this one: MiB/s each way.
double Stream(int fd, size_t bytes) {
  const std::string block(size_t{1} << 20, 'y');
  const auto start = Clock::now();
  std::thread writer([&] {
    for (size_t sent = 0; sent < bytes;) {
      const ssize_t n = write(fd, block.data(), std::min(block.size(), bytes - sent));
      if (n <= 0) {
        return;
      }
      sent += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
  });
  std::vector<char> buffer(size_t{1} << 20);
  size_t got = 0;
  for (;;) {
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n <= 0) {
      break;
    }
    got += static_cast<size_t>(n);
  }
  writer.join();
  if (got != bytes) {
    std::fprintf(stderr, "stream: %zu of %zu bytes came back\n", got, bytes);
    std::exit(1);
  }
  return static_cast<double>(bytes) / (1 << 20) / (Ms(Clock::now() - start) / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const int trips = argc > 2 ? std::atoi(argv[2]) : 2000;
  const bool tls = argc > 3 && std::atoi(argv[3]) != 0;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("bench-tunnel-" + std::to_string(getpid()));
  fs::create_directories(dir);

  flotilla::testing::EchoServer echo;
  flotilla::testing::TunnelBackend backend(echo.port());
  auto store = std::move(*flotilla::store::Store::Open((dir / "flotilla.db").string()));
  flotilla::api::Telemetry telemetry;
  auto logger =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  flotilla::api::ServerOptions options{.listen = "127.0.0.1:0", .token = "bench-token"};
  std::string ca;
  if (tls) {
    ca = (dir / "cert.pem").string();
    const std::string key = (dir / "key.pem").string();
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=bench -addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + ca + " 2>/dev/null";
    if (std::system(command.c_str()) != 0) {  // NOLINT(concurrency-mt-unsafe): one thread yet
      std::fprintf(stderr, "openssl req failed\n");
      return 1;
    }
    options.tls_cert_file = ca;
    options.tls_key_file = key;
  }
  auto server =
      std::move(*flotilla::api::Server::Start(options, backend, *store, telemetry, logger));
  const flotilla::cli::TunnelTarget target{
      .server = server->url(), .token = "bench-token", .ca_file = ca, .vm = "ci-1", .port = 22};

  // A tunnel, relayed by the CLI's client from a socketpair; the bench holds the other end.
  struct Relayed {
    int fd = -1;
    std::thread relay;
  };
  std::atomic<bool> stopping{false};
  auto open_relayed = [&] {
    auto tunnel = flotilla::cli::Tunnel::Open(target);
    if (!tunnel.ok()) {
      std::fprintf(stderr, "%s\n", tunnel.status().ToString().c_str());
      std::exit(1);
    }
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair);
    Relayed r;
    r.fd = pair[0];
    r.relay = std::thread([t = std::move(*tunnel), end = pair[1], &stopping] {
      (void)t->Relay(end, end, stopping);
      close(end);
    });
    return r;
  };

  std::vector<double> opens;
  for (int i = 0; i < 50; ++i) {
    const auto start = Clock::now();
    auto tunnel = flotilla::cli::Tunnel::Open(target);
    opens.push_back(Ms(Clock::now() - start));
  }

  const int direct_fd = Connect(echo.port());
  const std::vector<double> direct = RoundTrips(direct_fd, trips);
  Relayed latency = open_relayed();
  const std::vector<double> tunneled = RoundTrips(latency.fd, trips);
  shutdown(latency.fd, SHUT_WR);
  latency.relay.join();
  close(latency.fd);

  const double direct_rate = Stream(direct_fd, mib << 20);
  close(direct_fd);
  Relayed stream = open_relayed();
  const double tunnel_rate = Stream(stream.fd, mib << 20);
  stream.relay.join();
  close(stream.fd);

  std::printf("tunnel bench: %s, %zu MiB streamed, %d round trips\n", tls ? "https" : "http", mib,
              trips);
  std::printf("| measurement | direct loopback | through a tunnel |\n| --- | ---: | ---: |\n");
  std::printf("| open a tunnel (median / p95 of 50) | | %.2f / %.2f ms |\n", Percentile(opens, 0.5),
              Percentile(opens, 0.95));
  std::printf("| one-byte round trip, median | %.3f ms | %.3f ms |\n", Percentile(direct, 0.5),
              Percentile(tunneled, 0.5));
  std::printf("| one-byte round trip, p99 | %.3f ms | %.3f ms |\n", Percentile(direct, 0.99),
              Percentile(tunneled, 0.99));
  std::printf("| stream there and back (each way) | %.0f MiB/s | %.0f MiB/s |\n", direct_rate,
              tunnel_rate);
  server->Stop();
  fs::remove_all(dir);
  return 0;
}
