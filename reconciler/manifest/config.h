#pragma once

// The reconciler's own configuration file (flotilla.yaml; schemas/config.v1.json, DESIGN
// section 2), read into typed values with every default filled. Problems are reported as
// diagnostics with file:line:column, like manifests.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/schema_validator.h"
#include "reconciler/model/result.h"
#include "reconciler/model/text.h"  // ParseDuration

namespace flotilla::manifest {

struct ReconcilerConfig {
  struct Source {
    std::string url;  // empty: no repository configured
    std::string branch = "main";
    std::string revision;  // pinned commit or tag; empty: follow branch
    std::string path;      // folder of the manifests inside the repository
    std::chrono::milliseconds interval{std::chrono::seconds{60}};
    std::string token_file;
    std::string token_env;
    std::string username = "x-access-token";
    std::string ssh_key_file;
    std::string ssh_passphrase_file;
    std::string known_hosts_file;
    bool insecure_ignore_host_key = false;
    std::string allowed_signers_file;  // verify signed tips when set
  };
  struct Reconcile {
    std::chrono::milliseconds resync_interval{std::chrono::seconds{30}};
    std::chrono::milliseconds host_lost_after{std::chrono::minutes{10}};
    // How long a host's observations must keep failing (at least two in a row) before it is
    // reported offline; until then it is degraded. 0: the first failure.
    std::chrono::milliseconds host_offline_after{std::chrono::seconds{30}};
    std::chrono::milliseconds host_timeout{std::chrono::seconds{15}};    // one observation
    std::chrono::milliseconds create_timeout{std::chrono::minutes{30}};  // one create attempt
    std::chrono::milliseconds action_timeout{std::chrono::minutes{5}};   // other actions
    // SIGTERM: how long actions under way may take to finish before the process exits.
    std::chrono::milliseconds shutdown_timeout{std::chrono::seconds{60}};
    uint32_t max_attempts = 4;  // per action and run, for retryable errors
    uint32_t concurrency = 32;
    uint32_t per_host_concurrency = 2;
    // maxDeletionsPerRun: a number of VMs, or (when unset) a percentage of managed VMs, deleted
    // at most within deletion_window.
    std::optional<uint32_t> max_deletions;
    uint32_t max_deletions_percent = 10;
    std::chrono::milliseconds deletion_window{std::chrono::minutes{10}};
  };

  struct Store {
    uint32_t retain_runs = 1000;      // newest runs (with their actions) kept; 0: all
    uint32_t retain_events = 10000;   // newest events kept; 0: all
    std::string durability = "full";  // full | normal (PRAGMA synchronous)
  };

  // A named API token with roles (api.tokens; docs/api.md "Authentication").
  struct ApiToken {
    std::string name;        // [a-z0-9][a-z0-9-]*, unique; recorded with what it does
    std::string token_file;  // the token; or token_env (exactly one is set)
    std::string token_env;
    std::vector<std::string> roles;  // read | reconcile | approve | access | admin; at least one
  };

  // The HTTP API of `flotilla run` (docs/api.md).
  struct Api {
    std::string listen = "127.0.0.1:8080";  // host:port, "[::1]:8080"
    std::string token_file;                 // the bearer token ("default", every role); or env
    std::string token_env;
    std::vector<ApiToken> tokens;  // named tokens with roles, besides token_file
    // Failed authentications a client address may make: a burst, then this many a minute.
    uint32_t auth_failure_burst = 10;
    uint32_t auth_failures_per_minute = 10;
    std::string webhook_secret_file;  // shared secret of POST /api/v1/webhooks/git; or env
    std::string webhook_secret_env;
    std::string tls_cert_file;  // both or neither: serve HTTPS
    std::string tls_key_file;
    uint32_t threads = 8;  // worker threads; requests beyond them queue
    // api.tunnels: tunnels to VM ports open at once in all, and per token; idle ones close.
    uint32_t tunnels_max = 64;
    uint32_t tunnels_per_token = 16;
    std::chrono::milliseconds tunnel_idle_timeout{std::chrono::minutes{30}};
  };

  // log: what `apply` and `run` log; the --log-format and --log-level flags take precedence.
  struct Log {
    std::string format;  // text | json; empty: not set
    std::string level;   // trace | debug | info | warn | error; empty: not set
  };

  Source source;
  Store store;
  Api api;
  Log log;
  std::string state_dir = "/var/lib/flotilla";
  std::string secrets_dir = "/etc/flotilla/secrets";
  Reconcile reconcile;
};

// Reads and checks `path`. On problems, returns InvalidArgument and adds every one of them to
// `diagnostics` (file:line:column).
Result<ReconcilerConfig> LoadConfigFile(const std::string& path, const SchemaValidator& validator,
                                        Diagnostics& diagnostics);

}  // namespace flotilla::manifest
