#pragma once

// Typed options of flotilla-hostsim and the parsers for their text forms (durations, latency
// and fault specs, catalog entries). Options are checked once by Validate(); the rest of the
// simulator trusts them. Thread-safety: plain values; the parsers are pure functions.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::hostsim {

using Duration = std::chrono::milliseconds;

// The guest family of a simulated VM.
enum class GuestOs { kMacos, kLinux };

std::string_view GuestOsName(GuestOs os);  // "macos" | "linux"
Result<GuestOs> ParseGuestOs(std::string_view text);

// One image a simulated catalog knows (--catalog ID/VERSION=SIZE[,os=macos|linux]).
struct CatalogImage {
  std::string id;       // upper-cased, as the pull client upper-cases catalog ids
  std::string version;  // as given
  uint64_t size_mb = 0;
  std::optional<GuestOs> os;  // unset: decided by specs.type or the id heuristic
};

// An API key accepted by X-Api-Key and POST auth/token {"api_key"} (--api-key KEY:SECRET).
struct ApiKeyCredential {
  std::string key;  // upper-cased, as the service normalises keys
  std::string secret;
};

// Operation names accepted in --latency. `pull` is added to `create` when the image is not in
// the host cache; restart/suspend/resume/pause/reset are extras (default 0).
const std::vector<std::string>& LatencyNames();
// Endpoint (operation) names used by --fault-rate, POST /_sim/faults and the counters.
const std::vector<std::string>& EndpointNames();

struct SimOptions {
  // Address to listen on; port 0 binds any free port.
  std::string listen_host = "127.0.0.1";
  int listen_port = 3080;
  // Where to write the bound port (atomically) once the socket is bound; empty: nowhere.
  std::string port_file;
  // Stop when the parent process ends (PR_SET_PDEATHSIG with SIGTERM).
  bool exit_with_parent = false;
  // 0: one host served at /api/..., named `name`. N >= 1: hosts sim-000.. under /h/<name>/api.
  int hosts = 0;
  std::string name = "sim";
  // Emulated prl-devops-service version, one of KnownVersions() (sim_version.h); what differs
  // between versions is listed in ServiceFeatures.
  std::string version = "1.0.5";
  // Host architecture: "arm64" or "x86_64".
  std::string arch = "arm64";
  // Host hardware, per host. Memory and disk in MiB (the API speaks MB).
  int cpu = 12;
  uint64_t memory_mb = uint64_t{32} * 1024;
  uint64_t disk_mb = uint64_t{1024} * 1024;
  uint64_t disk_used_mb = uint64_t{40} * 1024;  // the base OS's share of the disk
  // The "Used" column of `df -h /` on macOS 11+: the sealed system volume alone, which the
  // service reports as the host's free disk (serviceprovider/system/main.go parseDfCommand
  // takes fields[2], Used, for "free"). Part of disk_used_mb.
  uint64_t system_volume_used_mb = uint64_t{12} * 1024;
  int reserved_cpu = 1;
  uint64_t reserved_memory_mb = 2048;
  uint64_t reserved_disk_mb = 20000;
  // Known catalog images; empty: every ID/VERSION exists with `default_image_size_mb`.
  std::vector<CatalogImage> catalog;
  uint64_t default_image_size_mb = uint64_t{20} * 1024;
  // Images pre-cached on every host, "ID/VERSION".
  std::vector<std::string> cached;
  // Per-operation latency (names from LatencyNames()); missing: 0.
  std::map<std::string, Duration> latency;
  // Each latency is multiplied by a factor drawn from [1-jitter, 1+jitter].
  double jitter = 0.0;
  // Seed of the generator behind UUIDs, jitter and random faults.
  uint64_t seed = 1;
  // Probability of answering 500 "injected fault": for every endpoint, and per endpoint
  // (a per-endpoint rate wins).
  double fault_rate = 0.0;
  std::map<std::string, double> fault_rates;
  // Delay before "Virtual machine not found" (the real service retries for about 5 s).
  Duration lookup_delay = std::chrono::seconds(5);
  // Lifetime of issued tokens.
  Duration token_ttl = std::chrono::minutes(15);
  // How long a request to an offline host hangs before answering 503.
  Duration offline_hang = std::chrono::seconds(30);
  // How long an idle keep-alive connection is kept (whole seconds, at least 1). The real service
  // keeps them 60 s. Over plain HTTP idle connections wait in one epoll set (EventFront) and
  // cost nothing; over HTTPS cpp-httplib polls each one from its own worker (~100 wake-ups a
  // second each), so HTTPS runs with many hosts may want this shorter.
  Duration keep_alive = std::chrono::seconds(60);
  // Accepted credentials. With none of them, auth must be disabled with `no_auth`.
  std::string username;
  std::string password;
  std::vector<ApiKeyCredential> api_keys;  // --api-key KEY:SECRET and --api-key-file FILE
  bool no_auth = false;
  // Serve the /_sim/ control API.
  bool control = false;
  // Load at start when present, save after every mutation; empty: no persistence.
  std::string state_file;
  // HTTP worker threads; 0 = 64 + 2 per simulated host. Over plain HTTP a worker is busy only
  // while a request is handled (including its simulated latency, slow answers and offline
  // hangs); idle keep-alive connections hold none. Over HTTPS (cpp-httplib's own loop) an idle
  // keep-alive connection holds a worker, and a client keeps one or two per host it talks to.
  int threads = 0;
  // Reproduce prl-devops-service 1.0.6's HTTPS-only mode defect: with TLS_ENABLED and
  // DISABLE_HTTP_WHEN_TLS it registers no API routes (restapi/http_listener.go:481-513, PR
  // #534), so everything but the health probe is the router's 404.
  bool no_api_routes = false;
  // Serve HTTPS with this PEM certificate and key (both or neither).
  std::string tls_cert;
  std::string tls_key;
  // One line per request to stderr: method, path, status, duration. Never headers or bodies.
  bool log_requests = false;
  // Allow starting VMs whose cpu/memory exceed what is available (the real Parallels
  // overcommits); by default a start that does not fit fails like a prlctl failure.
  bool allow_overcommit = false;

  // --- the guest, as PUT machines/{id}/execute reaches it through `prlctl exec` ---
  // After a start the guest OS is still booting: `prlctl exec` fails (HTTP 200, non-zero
  // exit_code) until this much time has passed. The real figure depends on the guest.
  Duration guest_boot = std::chrono::seconds(10);
  // Every prlctl call runs under this limit and is killed past it (helpers/os.go
  // ExecutionTimeout = 3 minutes; exit_code -1, error "... signal: killed").
  Duration prlctl_timeout = std::chrono::minutes(3);
  // Commands run in guests at once per host; more wait (parallelsdesktop/main.go
  // maxConcurrentSSH = 2).
  int exec_slots = 2;
  // How a guest runs commands: "shell" runs them with /bin/sh on this machine, in a folder per
  // VM under guest_dir (the VM's HOME); "succeed" answers every command with exit 0 and no
  // output, without running it (benchmarks, demos).
  std::string guest_exec = "shell";
  // Where guest shells run; empty: a folder made under the system's temporary directory.
  std::string guest_dir;

  // --- the reverse proxy (sim_proxy.h) and what guests answer on their ports ---
  // The `reverse_proxy` module is on (the service's default on macOS); off, its routes answer
  // 404 and /config/hardware says is_reverse_proxy_enabled false (DISABLE_REVERSE_PROXY=true).
  bool reverse_proxy = true;
  // Guest port -> "HOST:PORT": a relay to a running VM's PORT is a relay to that address. Empty:
  // every guest answers on 22 and 5900 with an echo service and refuses other ports.
  std::map<int, std::string> guest_ports;

  // --- jobs and the catalog cache ---
  // Jobs pending or running without an update for this long are failed with "Canceled Job"
  // (1.0.1+: data/jobs.go DetectStaleJobs, GHOST_JOB_TIMEOUT_MINUTES default 5); the pull goes
  // on regardless. A pull's download updates its job; registering the machine does not.
  Duration ghost_job_timeout = std::chrono::minutes(5);
  // A listing of the cache (GET /cache) while a pull is caching an image rewrites the item's
  // metadata and makes that pull fail with "Cache is not completed"
  // (catalog/cacheservice/main.go GetAllCacheItems vs the pull's integrity check).
  bool cache_listing_race = true;
  // Catalog managers the host knows (catalog_manifest.catalog_manager_id), each holding its own
  // catalog connection.
  std::vector<std::string> catalog_managers;

  // --- the host's VM cache and login guard ---
  // VM lists (GET machines) are served from a cache that follows prlctl's events; a change
  // shows there this long after it happened (per-id lookups and /status are current).
  Duration list_lag = Duration(0);
  // After this many failed logins of a known user, each further failure sleeps in the request
  // for brute_force_wait times the failures past the limit (security/brute_force_guard:
  // 5 attempts, "5s", incremental).
  int brute_force_attempts = 5;
  Duration brute_force_wait = std::chrono::seconds(5);
};

// Checks ranges and combinations. InvalidArgument names the offending flag.
Status Validate(const SimOptions& options);

// "250ms", "2s", "1m", "1h", "0"; a plain number is seconds.
Result<Duration> ParseDuration(std::string_view text);
// "create=20s,pull=60s,..." (any subset of LatencyNames()).
Result<std::map<std::string, Duration>> ParseLatencySpec(std::string_view text);
// "0.1" (every endpoint) or "start=0.5,create=0.1" (names from EndpointNames()). Returns the
// global rate through `all` and the per-endpoint rates.
Status ParseFaultSpec(std::string_view text, double* all, std::map<std::string, double>* rates);
// "ID/VERSION=SIZE[,os=macos|linux]"; SIZE is a Quantity ("20Gi").
Result<CatalogImage> ParseCatalogSpec(std::string_view text);
// "KEY:SECRET".
Result<ApiKeyCredential> ParseApiKeySpec(std::string_view text);
// "PORT=HOST:PORT" (--guest-port): the guest port and the address it relays to.
Status ParseGuestPort(std::string_view text, int* port, std::string* address);
// "HOST:PORT" (":PORT" means 127.0.0.1).
Status ParseListen(std::string_view text, std::string* host, int* port);

// Parses argv into `options` (CLI11; --help lists every flag with its default). Returns
// nullopt to go on, or the exit code when the program should stop (help, parse error); errors
// are printed to stderr.
std::optional<int> ParseCommandLine(int argc, char** argv, SimOptions* options);

}  // namespace flotilla::hostsim
