#pragma once

// Typed configuration of the Parallels DevOps provider for one HostPool, built once from the
// pool's manifest and its secrets (ParseParallelsConfig) and trusted afterwards.

#include <chrono>
#include <string>

#include <nlohmann/json.hpp>

#include "providers/registry.h"
#include "reconciler/model/result.h"

namespace flotilla::providers::parallels {

// Process-wide knobs; the defaults suit real hosts, tests shorten the waits.
struct ParallelsTuning {
  // Longest wait for a TCP (and TLS) connection, within the call's deadline.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
  // How often an asynchronous create's job is polled: every quarter of the time it has run so
  // far, at least the first value and at most the second. A job is then seen at most 25% (or
  // job_poll_max) after it finished, whether it takes 2 s or an hour, with a few dozen polls.
  std::chrono::milliseconds job_poll_initial{std::chrono::milliseconds{250}};
  std::chrono::milliseconds job_poll_max{std::chrono::seconds{10}};
  // How often a VM's state is polled while waiting for it to settle (stop, for example).
  std::chrono::milliseconds state_poll{std::chrono::milliseconds{500}};
  // A login token is renewed this long before it expires (or a quarter of its lifetime, if that
  // is shorter).
  std::chrono::seconds token_renew_margin{60};
  // After a host refuses the pool's credentials, no login is tried on it for this long (doubling
  // with every further refusal up to login_backoff_max): the service's brute-force guard sleeps
  // inside the request from the fifth failure on, 5 s more each time, until a refused password
  // looks like an unreachable host (audit #12).
  std::chrono::milliseconds login_backoff{std::chrono::minutes{1}};
  std::chrono::milliseconds login_backoff_max{std::chrono::minutes{30}};
  // The catalog cache (GET /cache) is listed at most this often per host, and never while a
  // create runs there: a listing rewrites the cache's metadata and can fail a pull in progress
  // (audit #9). Locality only needs to be roughly current.
  std::chrono::milliseconds cache_refresh{std::chrono::minutes{10}};
  // Guest commands (PUT /execute) sent to one host at once: the service runs at most 2
  // (maxConcurrentSSH) and queues the rest while their requests wait.
  int exec_slots = 2;
  // How often a startup script running detached in a guest is looked at, and how long to wait
  // between attempts to launch it while the guest is still booting.
  std::chrono::milliseconds script_poll{std::chrono::seconds{5}};
  std::chrono::milliseconds guest_boot_poll{std::chrono::seconds{5}};
  // How often a VM being pulled is looked for by name when its job cannot be read.
  std::chrono::milliseconds follow_poll{std::chrono::seconds{10}};
  // Tunnels (tunnel.cc): how often a new proxy listener is tried while it comes up, and how
  // long one may take to come up before its port is given up (within the call's deadline);
  // how long a fresh connection is watched for the proxy closing it at once (its dial to the VM
  // failed); how many ports are tried for a new proxy host.
  std::chrono::milliseconds tunnel_probe_interval{std::chrono::milliseconds{200}};
  std::chrono::milliseconds tunnel_listen_wait{std::chrono::seconds{5}};
  std::chrono::milliseconds tunnel_settle{std::chrono::milliseconds{300}};
  int tunnel_port_attempts = 5;
};

// tunnels.* of a pool: where Flotilla puts the proxy hosts that reach VM ports.
struct TunnelSettings {
  uint16_t first_port = 45000;  // tunnels.ports "FIRST-LAST"
  uint16_t last_port = 45999;
  std::string bind = "0.0.0.0";  // tunnels.bind: the proxy host's `host`
};

// The pool's own settings (HostPool::settings, described by pool_settings.v1.json).
struct ParallelsPoolSettings {
  std::string catalog_connection_ref;  // catalog.connectionRef; empty = none
  std::string catalog_manager_id;      // catalog.managerId; empty = none
  bool insecure_skip_verify = false;   // tls.insecureSkipVerify
  std::string ca_file;                 // tls.caFile; empty = the system's trust store
  TunnelSettings tunnels;
};

// InvalidArgument naming the setting when one has the wrong type (the manifest's schema
// refuses such pools; pools built in code are checked here).
Result<ParallelsPoolSettings> ParsePoolSettings(const nlohmann::json& settings);

struct ParallelsConfig {
  std::string pool;  // for messages
  // Exactly one way to authenticate, or none. The API key (the base64 `KEY:SECRET` value the
  // service issues, sent as X-Api-Key) wins when both are configured.
  std::string api_key;
  std::string username;
  std::string password;
  // The catalog connection string passed to hosts when creating from catalog://; may be empty
  // (hosts then need a local catalog, or catalog_manager_id).
  std::string catalog_connection;
  // A catalog manager registered on the hosts (catalog_manifest.catalog_manager_id): the hosts
  // hold the catalog's credentials, Flotilla never sees them. Exclusive with the connection.
  std::string catalog_manager_id;
  bool insecure_skip_verify = false;  // do not verify host certificates (logged as a warning)
  std::string ca_file;                // PEM bundle that signs host certificates; empty = system
  TunnelSettings tunnels;
  ParallelsTuning tuning;
  RequestObserver* requests = nullptr;  // told of every request (metrics); may be null
};

// Reads `<ref>/apiKey`, `<ref>/username`, `<ref>/password` for the pool's credentialsRef and
// `<ref>/connection` for its catalog connectionRef. Errors: a credentialsRef with nothing
// behind it, a username without a password, a CA file that cannot be read.
Result<ParallelsConfig> ParseParallelsConfig(const ProviderContext& context,
                                             const ParallelsTuning& tuning);

// Every secret value in `config` and the pieces of it that may surface alone (the secret half
// of an API key, the credentials inside a catalog connection string).
std::vector<std::string> SecretValues(const ParallelsConfig& config);

}  // namespace flotilla::providers::parallels
