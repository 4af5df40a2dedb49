#include "providers/hostsim/sim_options.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <set>

#include <cmath>

#include "providers/hostsim/sim_version.h"
#include "reconciler/model/quantity.h"
#include "reconciler/model/text.h"

namespace flotilla::hostsim {
namespace {

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t pos = text.find(sep, start);
    parts.push_back(
        TrimAscii(text.substr(start, pos == std::string_view::npos ? pos : pos - start)));
    if (pos == std::string_view::npos) {
      break;
    }
    start = pos + 1;
  }
  return parts;
}

Result<double> ParseRate(std::string_view text) {
  double value = 0;
  const std::string copy(text);
  char* end = nullptr;
  value = std::strtod(copy.c_str(), &end);
  if (copy.empty() || end != copy.c_str() + copy.size() || !(value >= 0.0 && value <= 1.0)) {
    return Status::InvalidArgument("fault rate \"" + copy + "\" is not a number in [0,1]");
  }
  return value;
}

bool Known(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

Result<uint64_t> ParseMiB(const std::string& flag, const std::string& text) {
  Result<Quantity> q = Quantity::Parse(text);
  if (!q.ok()) {
    return q.status().WithContext(flag);
  }
  return q->mib();
}

// The non-empty lines of an --api-key-file. The error names the file, never its content.
Result<std::vector<std::string>> ReadApiKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("--api-key-file " + path + " cannot be read");
  }
  std::vector<std::string> lines;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    const std::string_view trimmed = TrimAscii(line);
    if (!trimmed.empty()) {
      if (trimmed.find(':') == std::string_view::npos) {
        return Status::InvalidArgument("--api-key-file " + path + " line " +
                                       std::to_string(number) + " is not KEY:SECRET");
      }
      lines.emplace_back(trimmed);
    }
  }
  if (lines.empty()) {
    return Status::InvalidArgument("--api-key-file " + path + " holds no KEY:SECRET line");
  }
  return lines;
}

}  // namespace

std::string_view GuestOsName(GuestOs os) { return os == GuestOs::kMacos ? "macos" : "linux"; }

Result<GuestOs> ParseGuestOs(std::string_view text) {
  if (text == "macos") {
    return GuestOs::kMacos;
  }
  if (text == "linux") {
    return GuestOs::kLinux;
  }
  return Status::InvalidArgument("os \"" + std::string(text) + "\" is not macos or linux");
}

const std::vector<std::string>& LatencyNames() {
  static const std::vector<std::string> kNames = {
      "create", "pull", "clone",   "start",   "stop",   "delete", "set",   "exec",  "rename",
      "login",  "list", "restart", "suspend", "resume", "pause",  "reset", "accept"};
  return kNames;
}

const std::vector<std::string>& EndpointNames() {
  static const std::vector<std::string> kNames = {
      "login",   "validate", "probe",        "health",       "hardware", "list",   "get",
      "status",  "create",   "create_async", "job",          "clone",    "start",  "stop",
      "restart", "suspend",  "resume",       "pause",        "reset",    "delete", "set",
      "execute", "rename",   "cache",        "reverse_proxy"};
  return kNames;
}

Result<Duration> ParseDuration(std::string_view text) {
  text = TrimAscii(text);
  const std::string quoted = "duration \"" + std::string(text) + "\"";
  size_t digits = 0;
  while (digits < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.')) {
    ++digits;
  }
  if (digits == 0) {
    return Status::InvalidArgument(quoted + " must be a number with a unit (250ms, 2s, 1m, 1h)");
  }
  const std::string number(text.substr(0, digits));
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || value < 0) {
    return Status::InvalidArgument(quoted + " has a malformed number");
  }
  const std::string_view unit = text.substr(digits);
  double ms_per_unit = 0;
  if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "s" || unit.empty()) {
    ms_per_unit = 1000;
  } else if (unit == "m") {
    ms_per_unit = 60'000;
  } else if (unit == "h") {
    ms_per_unit = 3'600'000;
  } else {
    return Status::InvalidArgument(quoted + " has an unknown unit (use ms, s, m or h)");
  }
  const double ms = value * ms_per_unit;
  if (ms > 1e12) {
    return Status::InvalidArgument(quoted + " is too long");
  }
  return Duration(std::llround(ms));
}

Result<std::map<std::string, Duration>> ParseLatencySpec(std::string_view text) {
  std::map<std::string, Duration> out;
  if (TrimAscii(text).empty()) {
    return out;
  }
  for (std::string_view item : Split(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("latency item \"" + std::string(item) +
                                     "\" must be NAME=DURATION");
    }
    const std::string name(TrimAscii(item.substr(0, eq)));
    if (!Known(LatencyNames(), name)) {
      return Status::InvalidArgument("unknown latency \"" + name +
                                     "\" (known: " + Join(LatencyNames()) + ")");
    }
    Result<Duration> d = ParseDuration(item.substr(eq + 1));
    if (!d.ok()) {
      return d.status().WithContext("latency " + name);
    }
    out[name] = *d;
  }
  return out;
}

Status ParseFaultSpec(std::string_view text, double* all, std::map<std::string, double>* rates) {
  text = TrimAscii(text);
  if (text.empty()) {
    return Status::Ok();
  }
  if (text.find('=') == std::string_view::npos) {
    Result<double> rate = ParseRate(text);
    if (!rate.ok()) {
      return rate.status();
    }
    *all = *rate;
    return Status::Ok();
  }
  for (std::string_view item : Split(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::InvalidArgument("fault item \"" + std::string(item) +
                                     "\" must be ENDPOINT=RATE");
    }
    const std::string name(TrimAscii(item.substr(0, eq)));
    if (!Known(EndpointNames(), name)) {
      return Status::InvalidArgument("unknown endpoint \"" + name +
                                     "\" (known: " + Join(EndpointNames()) + ")");
    }
    Result<double> rate = ParseRate(TrimAscii(item.substr(eq + 1)));
    if (!rate.ok()) {
      return rate.status();
    }
    (*rates)[name] = *rate;
  }
  return Status::Ok();
}

Status ParseGuestPort(std::string_view text, int* port, std::string* address) {
  const std::string quoted = "--guest-port \"" + std::string(text) + "\"";
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return Status::InvalidArgument(quoted + " must be PORT=HOST:PORT");
  }
  const std::string number(TrimAscii(text.substr(0, eq)));
  int value = 0;
  try {
    size_t used = 0;
    value = std::stoi(number, &used);
    if (used != number.size()) {
      value = 0;
    }
  } catch (const std::exception&) {
    value = 0;
  }
  if (value < 1 || value > 65535) {
    return Status::InvalidArgument(quoted + ": the guest port must be 1..65535");
  }
  std::string host;
  int to_port = 0;
  if (Status s = ParseListen(TrimAscii(text.substr(eq + 1)), &host, &to_port);
      !s.ok() || to_port < 1) {
    return Status::InvalidArgument(quoted + ": the address must be HOST:PORT");
  }
  *port = value;
  *address = host + ":" + std::to_string(to_port);
  return Status::Ok();
}

Result<CatalogImage> ParseCatalogSpec(std::string_view text) {
  const std::string quoted = "catalog entry \"" + std::string(text) + "\"";
  std::vector<std::string_view> parts = Split(text, ',');
  const std::string_view head = parts[0];
  const size_t slash = head.find('/');
  const size_t eq = head.find('=');
  if (slash == std::string_view::npos || eq == std::string_view::npos || eq < slash || slash == 0 ||
      eq == slash + 1) {
    return Status::InvalidArgument(quoted + " must be ID/VERSION=SIZE[,os=macos|linux]");
  }
  CatalogImage image;
  image.id = AsciiUpper(TrimAscii(head.substr(0, slash)));
  image.version = std::string(TrimAscii(head.substr(slash + 1, eq - slash - 1)));
  Result<Quantity> size = Quantity::Parse(TrimAscii(head.substr(eq + 1)));
  if (!size.ok()) {
    return size.status().WithContext(quoted);
  }
  image.size_mb = size->mib();
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].substr(0, 3) != "os=") {
      return Status::InvalidArgument(quoted + ": unknown attribute \"" + std::string(parts[i]) +
                                     "\" (only os=macos|linux)");
    }
    Result<GuestOs> os = ParseGuestOs(parts[i].substr(3));
    if (!os.ok()) {
      return os.status().WithContext(quoted);
    }
    image.os = *os;
  }
  return image;
}

Result<ApiKeyCredential> ParseApiKeySpec(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::InvalidArgument("--api-key must be KEY:SECRET");
  }
  return ApiKeyCredential{AsciiUpper(text.substr(0, colon)), std::string(text.substr(colon + 1))};
}

Status ParseListen(std::string_view text, std::string* host, int* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument("--listen must be HOST:PORT");
  }
  const std::string_view port_text = text.substr(colon + 1);
  int value = -1;
  const auto [ptr, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || value < 0 ||
      value > 65535) {
    return Status::InvalidArgument("--listen port \"" + std::string(port_text) +
                                   "\" is not in 0..65535");
  }
  *host = colon == 0 ? "127.0.0.1" : std::string(text.substr(0, colon));
  *port = value;
  return Status::Ok();
}

Status Validate(const SimOptions& o) {
  if (o.hosts < 0 || o.hosts > 10000) {
    return Status::InvalidArgument("--hosts must be in 0..10000");
  }
  if (o.hosts == 0 && (o.name.empty() || o.name.find('/') != std::string::npos)) {
    return Status::InvalidArgument("--name must be non-empty and contain no '/'");
  }
  if (Result<ServiceFeatures> features = FeaturesOf(o.version); !features.ok()) {
    return features.status();
  }
  if (o.arch != "arm64" && o.arch != "x86_64") {
    return Status::InvalidArgument("--arch must be arm64 or x86_64");
  }
  if (o.cpu < 1 || o.reserved_cpu < 0 || o.reserved_cpu > o.cpu) {
    return Status::InvalidArgument("--cpu must be >= 1 and --reserved-cpu in 0..--cpu");
  }
  if (o.memory_mb == 0 || o.reserved_memory_mb > o.memory_mb) {
    return Status::InvalidArgument("--memory must be > 0 and --reserved-memory <= --memory");
  }
  if (o.disk_mb == 0 || o.disk_used_mb > o.disk_mb) {
    return Status::InvalidArgument("--disk must be > 0 and --disk-used <= --disk");
  }
  if (o.system_volume_used_mb > o.disk_used_mb) {
    return Status::InvalidArgument("--system-volume-used must be <= --disk-used");
  }
  if (o.guest_exec != "shell" && o.guest_exec != "succeed") {
    return Status::InvalidArgument("--guest-exec must be shell or succeed");
  }
  if (o.exec_slots < 1 || o.exec_slots > 64) {
    return Status::InvalidArgument("--exec-slots must be in 1..64");
  }
  if (o.brute_force_attempts < 1) {
    return Status::InvalidArgument("--brute-force-attempts must be >= 1");
  }
  if (o.prlctl_timeout.count() <= 0 || o.ghost_job_timeout.count() <= 0) {
    return Status::InvalidArgument("--prlctl-timeout and --ghost-job-timeout must be > 0");
  }
  // A guest shell runs what callers send on this machine: never for anyone on the network.
  const bool loopback = o.listen_host == "127.0.0.1" || o.listen_host == "localhost" ||
                        o.listen_host == "::1" || o.listen_host.starts_with("127.");
  if (o.guest_exec == "shell" && o.no_auth && !loopback) {
    return Status::InvalidArgument(
        "--no-auth on a non-loopback --listen address needs --guest-exec succeed (guest commands "
        "run on this machine)");
  }
  if (!(o.jitter >= 0.0 && o.jitter <= 1.0)) {
    return Status::InvalidArgument("--jitter must be in [0,1]");
  }
  if (o.keep_alive < std::chrono::seconds(1)) {
    return Status::InvalidArgument("--keep-alive must be at least 1s");
  }
  if (o.threads < 0 || o.threads > 4096) {
    return Status::InvalidArgument("--threads must be in 0..4096 (0: automatic)");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Status::InvalidArgument("--tls-cert and --tls-key go together");
  }
  if (o.username.empty() != o.password.empty()) {
    return Status::InvalidArgument("--username and --password go together");
  }
  if (!o.no_auth && o.username.empty() && o.api_keys.empty()) {
    return Status::InvalidArgument(
        "no credentials: pass --username/--password and/or --api-key KEY:SECRET, or --no-auth");
  }
  for (const auto& [name, d] : o.latency) {
    if (!Known(LatencyNames(), name) || d.count() < 0) {
      return Status::InvalidArgument("--latency has an unknown or negative entry \"" + name + "\"");
    }
  }
  for (const auto& [name, rate] : o.fault_rates) {
    if (!Known(EndpointNames(), name) || !(rate >= 0.0 && rate <= 1.0)) {
      return Status::InvalidArgument("--fault-rate has a bad entry \"" + name + "\"");
    }
  }
  for (const std::string& item : o.cached) {
    const size_t slash = item.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == item.size()) {
      return Status::InvalidArgument("--cached \"" + item + "\" must be ID/VERSION");
    }
  }
  return Status::Ok();
}

std::optional<int> ParseCommandLine(int argc, char** argv, SimOptions* options) {
  SimOptions& o = *options;
  CLI::App app{
      "flotilla-hostsim: simulated Mac hosts speaking the Parallels DevOps Service REST API "
      "(prl-devops-service 0.9.21 to 1.0.6, each version as its source behaves)."};
  std::string listen = o.listen_host + ":" + std::to_string(o.listen_port);
  std::string memory = "32Gi", disk = "1Ti", disk_used = "40Gi", system_volume_used = "12Gi",
              reserved_memory = "2048Mi", reserved_disk = "20000Mi", default_image_size = "20Gi";
  std::string latency, fault_rate, lookup_delay = "5s", token_ttl = "15m", offline_hang = "30s",
                                   keep_alive = "60s";
  std::string guest_boot = "10s", prlctl_timeout = "3m", ghost_job_timeout = "5m", list_lag = "0",
              brute_force_wait = "5s";
  std::vector<std::string> catalog, api_keys, guest_ports;
  bool no_reverse_proxy = false;
  std::string api_key_file;

  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--port-file", o.port_file,
                 "write the bound port to this file (atomically) once listening");
  app.add_option("--hosts", o.hosts,
                 "0: one host at /api/... named --name; N: hosts sim-000.. under /h/<name>/api/")
      ->capture_default_str();
  app.add_option("--name", o.name, "host name in single-host mode")->capture_default_str();
  app.add_option("--version", o.version,
                 "emulated service version: 0.9.21 (no async create, jobs or cache; login by "
                 "email), 1.0.0 (email login), 1.0.1-1.0.4 (state ops GET), 1.0.5, 1.0.6")
      ->capture_default_str();
  app.add_option("--arch", o.arch, "host architecture: arm64 | x86_64")->capture_default_str();
  app.add_option("--cpu", o.cpu, "logical CPUs per host")->capture_default_str();
  app.add_option("--memory", memory, "memory per host (Ki/Mi/Gi/Ti)")->capture_default_str();
  app.add_option("--disk", disk, "disk size per host")->capture_default_str();
  app.add_option("--disk-used", disk_used, "disk used by the host OS")->capture_default_str();
  app.add_option("--system-volume-used", system_volume_used,
                 "the sealed system volume's share of --disk-used: df's Used column for /, which "
                 "the service reports as free disk")
      ->capture_default_str();
  app.add_option("--reserved-cpu", o.reserved_cpu, "CPUs reserved for the system")
      ->capture_default_str();
  app.add_option("--reserved-memory", reserved_memory, "memory reserved for the system")
      ->capture_default_str();
  app.add_option("--reserved-disk", reserved_disk, "disk reserved for the system (reported)")
      ->capture_default_str();
  app.add_option("--catalog", catalog,
                 "catalog image ID/VERSION=SIZE[,os=macos|linux], repeatable; without any, "
                 "every ID/VERSION exists with --default-image-size");
  app.add_option("--default-image-size", default_image_size,
                 "image size when no --catalog is given")
      ->capture_default_str();
  app.add_option("--cached", o.cached, "image ID/VERSION pre-cached on every host, repeatable");
  app.add_option(
      "--latency", latency,
      "per-operation latency OP=DURATION,..., e.g. create=20s,pull=60s,start=2s; operations: "
      "create, pull, clone, start, stop, delete, set, exec, rename, login, list, restart, "
      "suspend, resume, pause, reset, and accept (how late the answer to an async create "
      "arrives, its job already started); default all 0");
  app.add_option("--jitter", o.jitter, "latency jitter fraction in [0,1]")->capture_default_str();
  app.add_option("--seed", o.seed, "random seed (UUIDs, jitter, random faults)")
      ->capture_default_str();
  app.add_option("--fault-rate", fault_rate,
                 "probability of a 500 'injected fault': R, or endpoint=R,... ; default 0");
  app.add_option("--lookup-delay", lookup_delay, "delay before 'Virtual machine not found'")
      ->capture_default_str();
  app.add_option("--token-ttl", token_ttl, "lifetime of issued tokens")->capture_default_str();
  app.add_option("--offline-hang", offline_hang,
                 "how long requests to an offline host hang before 503")
      ->capture_default_str();
  app.add_option("--keep-alive", keep_alive,
                 "how long an idle keep-alive connection is kept (whole seconds)")
      ->capture_default_str();
  app.add_option("--username", o.username, "accepted user name (with --password)");
  app.add_option("--password", o.password, "accepted password (with --username)");
  app.add_option("--api-key", api_keys, "accepted API key KEY:SECRET, repeatable");
  app.add_option("--api-key-file", api_key_file,
                 "read accepted API keys from this file, one KEY:SECRET per line (keeps the "
                 "secrets out of the command line, which any user can list)");
  app.add_flag("--no-auth", o.no_auth, "disable authentication");
  app.add_flag("--control", o.control, "serve the /_sim/ control API (no auth)");
  app.add_flag("--exit-with-parent", o.exit_with_parent,
               "stop (as on SIGTERM) when the process that started this one ends, however it "
               "ends: a test or script killed midway leaves no simulator behind");
  app.add_option("--state-file", o.state_file,
                 "load at start if present, save after every mutation");
  app.add_option(
         "--threads", o.threads,
         "HTTP worker threads; 0: 64 + 2 per host (busy while a request is handled; over HTTPS an "
         "idle keep-alive connection holds one too)")
      ->capture_default_str();
  app.add_option("--tls-cert", o.tls_cert, "PEM certificate: serve HTTPS (with --tls-key)");
  app.add_option("--tls-key", o.tls_key, "PEM private key for --tls-cert");
  app.add_flag("--log-requests", o.log_requests,
               "log one line per request to stderr (method, path, status, duration)");
  app.add_flag("--allow-overcommit", o.allow_overcommit,
               "let VMs start even when their cpu/memory exceed what is available");
  app.add_flag("--no-api-routes", o.no_api_routes,
               "reproduce the 1.0.6 HTTPS-only defect: no API route is registered, only "
               "/api/health/probe answers");
  app.add_flag("--no-reverse-proxy", no_reverse_proxy,
               "the reverse_proxy module is off (DISABLE_REVERSE_PROXY=true): its routes answer "
               "404 and /config/hardware says is_reverse_proxy_enabled false");
  app.add_option("--guest-port", guest_ports,
                 "PORT=HOST:PORT: a running simulated VM's PORT, dialled by the reverse proxy, "
                 "relays to that address; repeatable. Without it, guests answer on 22 and 5900 "
                 "with an echo service and refuse other ports");
  app.add_option("--guest-boot", guest_boot,
                 "after a start, exec fails (exit_code != 0) until the guest has booted")
      ->capture_default_str();
  app.add_option("--prlctl-timeout", prlctl_timeout,
                 "every prlctl call (exec included) is killed past this (exit_code -1)")
      ->capture_default_str();
  app.add_option("--exec-slots", o.exec_slots, "commands run in guests at once per host")
      ->capture_default_str();
  app.add_option("--guest-exec", o.guest_exec,
                 "shell: exec runs the command with /bin/sh ON THIS MACHINE in a folder per VM; "
                 "succeed: every command exits 0 with no output and nothing runs")
      ->capture_default_str();
  app.add_option("--guest-dir", o.guest_dir,
                 "folder for guest shells (default: a new folder under $TMPDIR)");
  app.add_option("--ghost-job-timeout", ghost_job_timeout,
                 "jobs without an update this long fail with \"Canceled Job\" (1.0.1+)")
      ->capture_default_str();
  app.add_flag("!--no-cache-listing-race", o.cache_listing_race,
               "a GET /cache during a pull no longer makes the pull fail with \"Cache is not "
               "completed\" (the real service's race; on by default)");
  app.add_option("--catalog-manager", o.catalog_managers,
                 "id of a catalog manager the host knows (catalog_manager_id), repeatable");
  app.add_option("--list-lag", list_lag,
                 "VM lists show a change this long after it happened (the service's VM cache)")
      ->capture_default_str();
  app.add_option("--brute-force-attempts", o.brute_force_attempts,
                 "failed logins of a user before each further one sleeps in the request")
      ->capture_default_str();
  app.add_option("--brute-force-wait", brute_force_wait,
                 "sleep per failed login past --brute-force-attempts")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  auto fail = [](const Status& status) {
    std::fprintf(stderr, "flotilla-hostsim: %s\n", status.message().c_str());
    return 2;
  };
  if (Status s = ParseListen(listen, &o.listen_host, &o.listen_port); !s.ok()) {
    return fail(s);
  }
  const std::pair<const char*, std::pair<std::string*, uint64_t*>> sizes[] = {
      {"--memory", {&memory, &o.memory_mb}},
      {"--disk", {&disk, &o.disk_mb}},
      {"--disk-used", {&disk_used, &o.disk_used_mb}},
      {"--system-volume-used", {&system_volume_used, &o.system_volume_used_mb}},
      {"--reserved-memory", {&reserved_memory, &o.reserved_memory_mb}},
      {"--reserved-disk", {&reserved_disk, &o.reserved_disk_mb}},
      {"--default-image-size", {&default_image_size, &o.default_image_size_mb}},
  };
  for (const auto& [flag, target] : sizes) {
    Result<uint64_t> mb = ParseMiB(flag, *target.first);
    if (!mb.ok()) {
      return fail(mb.status());
    }
    *target.second = *mb;
  }
  o.reverse_proxy = !no_reverse_proxy;
  for (const std::string& item : guest_ports) {
    int port = 0;
    std::string address;
    if (Status s = ParseGuestPort(item, &port, &address); !s.ok()) {
      return fail(s);
    }
    o.guest_ports[port] = address;
  }
  for (const std::string& item : catalog) {
    Result<CatalogImage> image = ParseCatalogSpec(item);
    if (!image.ok()) {
      return fail(image.status());
    }
    o.catalog.push_back(*image);
  }
  if (!api_key_file.empty()) {
    Result<std::vector<std::string>> lines = ReadApiKeyFile(api_key_file);
    if (!lines.ok()) {
      return fail(lines.status());
    }
    api_keys.insert(api_keys.end(), lines->begin(), lines->end());
  }
  for (const std::string& item : api_keys) {
    Result<ApiKeyCredential> key = ParseApiKeySpec(item);
    if (!key.ok()) {
      return fail(key.status());
    }
    o.api_keys.push_back(*key);
  }
  Result<std::map<std::string, Duration>> lat = ParseLatencySpec(latency);
  if (!lat.ok()) {
    return fail(lat.status().WithContext("--latency"));
  }
  o.latency = *lat;
  if (Status s = ParseFaultSpec(fault_rate, &o.fault_rate, &o.fault_rates); !s.ok()) {
    return fail(s.WithContext("--fault-rate"));
  }
  const std::pair<const char*, std::pair<std::string*, Duration*>> durations[] = {
      {"--lookup-delay", {&lookup_delay, &o.lookup_delay}},
      {"--token-ttl", {&token_ttl, &o.token_ttl}},
      {"--offline-hang", {&offline_hang, &o.offline_hang}},
      {"--keep-alive", {&keep_alive, &o.keep_alive}},
      {"--guest-boot", {&guest_boot, &o.guest_boot}},
      {"--prlctl-timeout", {&prlctl_timeout, &o.prlctl_timeout}},
      {"--ghost-job-timeout", {&ghost_job_timeout, &o.ghost_job_timeout}},
      {"--list-lag", {&list_lag, &o.list_lag}},
      {"--brute-force-wait", {&brute_force_wait, &o.brute_force_wait}},
  };
  for (const auto& [flag, target] : durations) {
    Result<Duration> d = ParseDuration(*target.first);
    if (!d.ok()) {
      return fail(d.status().WithContext(flag));
    }
    *target.second = *d;
  }
  if (Status s = Validate(o); !s.ok()) {
    return fail(s);
  }
  return std::nullopt;
}

}  // namespace flotilla::hostsim
