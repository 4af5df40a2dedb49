#include "reconciler/cli/read_commands.h"

#include <netdb.h>

#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "reconciler/api/server.h"
#include "reconciler/api/views.h"
#include "reconciler/model/quantity.h"
#include "reconciler/model/text.h"

namespace flotilla::cli {
namespace {

using nlohmann::json;

// "12% of recent observation attempts failed", from a host's error_rate.
std::string FailedShare(const json& host) {
  const double rate = host.contains("error_rate") && host["error_rate"].is_number()
                          ? host["error_rate"].get<double>()
                          : 0.0;
  return std::to_string(std::lround(rate * 100.0)) + "% of recent observation attempts failed";
}

}  // namespace

void AddServerFlags(CLI::App& cmd, ServerFlags& api, bool store_fallback) {
  cmd.add_option("--server", api.server,
                 std::string("URL of a running loop's API, e.g. http://127.0.0.1:8080 (default: "
                             "$FLOTILLA_SERVER") +
                     (store_fallback ? "; without either, the store is read)"
                                     : "; without either, the API that --config describes)"));
  cmd.add_option("--token-file", api.token_file,
                 "File holding the API's bearer token (default: $FLOTILLA_TOKEN)");
  cmd.add_option("--ca-file", api.ca_file, "CA bundle (PEM) for an https API");
}

namespace {

// Read once at start-up; nothing in the process sets them.
std::string Env(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe)
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

Result<std::string> ClientToken(const ServerFlags& flags, std::string fallback) {
  if (flags.token_file.empty() && Env("FLOTILLA_TOKEN").empty()) {
    return fallback;
  }
  if (!flags.token_file.empty()) {
    std::ifstream in(flags.token_file, std::ios::binary);
    if (!in) {
      return Status::FailedPrecondition("cannot read the token file " + flags.token_file);
    }
    std::stringstream text;
    text << in.rdbuf();
    return std::string(TrimAscii(text.str()));
  }
  return std::string(TrimAscii(Env("FLOTILLA_TOKEN")));
}

std::string ServerUrl(const ServerFlags& flags) {
  std::string url = flags.server.empty() ? Env("FLOTILLA_SERVER") : flags.server;
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  return url;
}

namespace {

// Talks to a running loop's API.
class ApiClient {
 public:
  // `fallback_token` is used when neither --token-file nor $FLOTILLA_TOKEN gives one.
  static Result<std::unique_ptr<ApiClient>> Open(const ServerFlags& flags, std::string url,
                                                 std::string fallback_token = "") {
    if (!url.starts_with("http://") && !url.starts_with("https://")) {
      return Status::InvalidArgument("--server must be an http:// or https:// URL, not \"" + url +
                                     "\"");
    }
    Result<std::string> token = ClientToken(flags, std::move(fallback_token));
    if (!token.ok()) {
      return token.status();
    }
    auto client = std::unique_ptr<ApiClient>(new ApiClient(std::move(url), std::move(*token)));
    if (!flags.ca_file.empty()) {
      client->http_.set_ca_cert_path(flags.ca_file.c_str());
    }
    return client;
  }

  Result<json> Get(const std::string& path) { return Call("GET", path, ""); }
  Result<json> Post(const std::string& path, const std::string& body) {
    return Call("POST", path, body);
  }

 private:
  ApiClient(std::string url, std::string token)
      : url_(std::move(url)), token_(std::move(token)), http_(url_) {
    http_.set_connection_timeout(std::chrono::seconds{5});
    http_.set_read_timeout(std::chrono::seconds{60});
  }

  // What went wrong, in words: httplib's own names ("Connection") say little.
  std::string Why(httplib::Error error) const {
    switch (error) {
      case httplib::Error::Connection: {
        // Unknown host or nothing listening: tell them apart by resolving the name.
        const std::string host = HostOf(url_);
        addrinfo* found = nullptr;
        const int rc = getaddrinfo(host.c_str(), nullptr, nullptr, &found);
        if (found != nullptr) {
          freeaddrinfo(found);
        }
        return rc != 0 ? "unknown host " + host
                       : "connection refused (is 'flotilla run' listening there?)";
      }
      case httplib::Error::ConnectionTimeout:
        return "no answer within 5 s (a firewall, or the wrong address)";
      case httplib::Error::Read:
        return "the connection closed before the answer was complete";
      case httplib::Error::SSLConnection:
        return "the TLS handshake failed (is it an https API?)";
      case httplib::Error::SSLServerVerification:
        return "the server's certificate is not trusted (give its CA with --ca-file)";
      default:
        return httplib::to_string(error);
    }
  }

  // "http://h:8080/x" -> "h"; "[::1]" -> "::1".
  static std::string HostOf(const std::string& url) {
    std::string rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    rest = rest.substr(0, rest.find('/'));
    if (rest.starts_with('[')) {
      return rest.substr(1, rest.find(']') - 1);
    }
    return rest.substr(0, rest.find(':'));
  }

  Result<json> Call(const std::string& method, const std::string& path, const std::string& body) {
    httplib::Headers headers{{"Accept", "application/json"}};
    if (!token_.empty()) {
      headers.emplace("Authorization", "Bearer " + token_);
    }
    httplib::Result result = method == "POST" ? http_.Post(path, headers, body, "application/json")
                                              : http_.Get(path, headers);
    if (!result) {
      return Status::Unavailable("cannot reach the flotilla API at " + url_ + ": " +
                                 Why(result.error()));
    }
    const json doc = json::parse(result->body, nullptr, false);
    if (result->status == 401) {
      return Status::PermissionDenied(
          "the API at " + url_ + " refused " +
          (token_.empty() ? std::string("a request without a token") : std::string("the token")) +
          ": give it with --token-file or FLOTILLA_TOKEN");
    }
    if (result->status < 200 || result->status >= 300) {
      const std::string why = doc.is_object() && doc.contains("error") && doc["error"].is_string()
                                  ? doc["error"].get<std::string>()
                                  : "HTTP " + std::to_string(result->status);
      if (result->status == 403) {  // a known token without the role: the error names it
        return Status::PermissionDenied("the API at " + url_ + " refused " + method + " " + path +
                                        ": " + why);
      }
      if (result->status == 429) {
        return Status::ResourceExhausted("the API at " + url_ + " refused " + method + " " + path +
                                         ": " + why);
      }
      return Status::Unavailable(method + " " + path + ": " + why);
    }
    if (doc.is_discarded()) {
      return Status::Unavailable(method + " " + path + ": the answer is not JSON");
    }
    return doc;
  }

  std::string url_;
  std::string token_;
  httplib::Client http_;
};

}  // namespace

Result<json> GetFromApi(const ServerFlags& flags, const std::string& url, const std::string& path) {
  Result<std::unique_ptr<ApiClient>> client = ApiClient::Open(flags, url);
  if (!client.ok()) {
    return client.status();
  }
  return (*client)->Get(path);
}

namespace {

// The API's answer at `path` when a server is given; otherwise `local()` from the store.
template <typename Local>
Result<json> Fetch(const ReadOptions& options, const std::string& path, Local local,
                   const Context& context) {
  const std::string url = ServerUrl(options.api);
  if (url.empty()) {
    Result<std::unique_ptr<store::Store>> store = OpenExistingStore(options.where, context);
    if (!store.ok()) {
      return store.status();
    }
    return local(**store);
  }
  Result<std::unique_ptr<ApiClient>> client = ApiClient::Open(options.api, url);
  if (!client.ok()) {
    return client.status();
  }
  return (*client)->Get(path);
}

void PrintJson(const Context& context, const json& doc) {
  context.out << doc.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

std::string Str(const json& doc, const char* key) {
  const auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <typename T>
T Num(const json& doc, const char* key) {
  const auto it = doc.find(key);
  return it != doc.end() && it->is_number() ? it->get<T>() : T{};
}

std::string Short(const std::string& sha) { return sha.empty() ? "-" : sha.substr(0, 7); }

std::string Bytes(uint64_t bytes) { return Quantity::FromBytes(bytes).ToString(); }

// Left-aligned columns, two spaces apart, sized to their widest cell.
void PrintTable(const Context& context, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line += std::string(widths[i] - row[i].size() + 2, ' ');
      }
    }
    context.out << line << "\n";
  }
}

// --config, --state-dir, --secrets-dir, --server, --token-file, --ca-file and -o: what every
// command that reads the fleet takes.
void AddReadFlags(CLI::App& cmd, ReadOptions& options) {
  AddLocationFlags(cmd, options.where);
  AddServerFlags(cmd, options.api);
  AddOutputFlags(cmd, options.json);
}

}  // namespace

void AddOutputFlags(CLI::App& cmd, bool& json_output) {
  cmd.add_option_function<std::string>(
         "-o,--output", [&json_output](const std::string& v) { json_output = v == "json"; },
         "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  cmd.add_flag("--json", json_output, "Same as -o json");
}

CLI::App* AddStatusCommand(CLI::App& app, ReadOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "status",
      "What the fleet looks like now: the revision in force and the newest problem, the last\n"
      "run, hosts online, owned VMs, unfinished actions and recent events. From a running\n"
      "loop's API with --server, else from the store.");
  AddReadFlags(*cmd, options);
  return cmd;
}

CLI::App* AddHistoryCommand(CLI::App& app, HistoryOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "history", "Recent runs and revisions, newest first (from the API with --server).");
  AddReadFlags(*cmd, options);
  cmd->add_option("--limit", options.limit, "How many runs and revisions")
      ->capture_default_str()
      ->check(CLI::Range(1, 10000));
  return cmd;
}

CLI::App* AddHostsCommand(CLI::App& app, ReadOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "hosts",
      "Every host of the fleet: pool, state, architecture, VMs and resources. A running\n"
      "loop's API (--server) shows the latest observation with addresses and tags; the store\n"
      "shows the last observation it saved.");
  AddReadFlags(*cmd, options);
  return cmd;
}

CLI::App* AddVmsCommand(CLI::App& app, VmsOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "vms", "Every VM on the fleet's hosts, managed (owned by flotilla, with its VM set) or not.");
  AddReadFlags(*cmd, options);
  cmd->add_option("--pool", options.pool, "Only VMs on hosts of this pool");
  cmd->add_option("--vmset", options.vmset, "Only VMs of this VM set");
  cmd->add_option("--host", options.host, "Only VMs on this host");
  cmd->add_option("--state", options.state, "Only VMs in this state (running, stopped, ...)");
  cmd->add_option("--managed", options.managed, "true: only flotilla's VMs; false: only others")
      ->check(CLI::IsMember({"true", "false"}));
  return cmd;
}

CLI::App* AddReconcileCommand(CLI::App& app, ReconcileOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "reconcile",
      "Ask a running loop (flotilla run) to fetch the repository and reconcile now. Prints\n"
      "the run's id; --wait follows it to the end. Without --server (or $FLOTILLA_SERVER) it\n"
      "asks the API of the loop that --config describes (api.listen and api.tokenFile).\n"
      "--max-deletions and --allow-empty approve that one pass past the deletion guards; the\n"
      "approval is recorded with the run (flotilla history) and spent by it.");
  cmd->add_option("--config", options.where.config,
                  "Reconciler configuration of the loop to ask (default: $FLOTILLA_CONFIG, else "
                  "./flotilla.yaml)");
  AddServerFlags(*cmd, options.api, /*store_fallback=*/false);
  AddOutputFlags(*cmd, options.json);
  cmd->add_flag("--wait", options.wait, "Wait until the run finishes; exit 1 unless it succeeded");
  AddDeletionSafetyFlags(*cmd, options.max_deletions, options.allow_empty);
  cmd->add_option("--timeout", options.timeout_seconds, "Seconds to wait with --wait")
      ->capture_default_str();
  return cmd;
}

int RunStatus(const ReadOptions& options, const Context& context) {
  Result<json> doc = Fetch(
      options, "/api/v1/status",
      [](store::Store& store) { return api::StatusJson(store, nullptr); }, context);
  if (!doc.ok()) {
    return Fail(context, doc.status());
  }
  if (options.json) {
    PrintJson(context, *doc);
    return 0;
  }
  const json& d = *doc;
  if (const json& s = d["store"]; s.is_object() && s.value("writable", true) == false) {
    context.out << "Store:             CANNOT BE WRITTEN, no host is changed until it can: "
                << Str(s, "problem") << "\n";
  }
  context.out << "Revision in force: "
              << (d["applied"].is_string()
                      ? Short(Str(d, "applied")) + " (applied " + Str(d, "applied_at") + ")"
                      : std::string("none yet"))
              << "\n";
  if (d["latest_problem"].is_object()) {
    const json& p = d["latest_problem"];
    context.out << "Newest revision:   " << Str(p, "outcome") << " "
                << (Str(p, "sha").empty() ? "" : Short(Str(p, "sha")) + " ") << "- "
                << Str(p, "reason") << "\n";
  }
  if (d["last_run"].is_object()) {
    const json& r = d["last_run"];
    context.out << "Last run:          " << Num<int64_t>(r, "id") << " (" << Str(r, "trigger")
                << ", " << Str(r, "started_at") << "): " << Str(r, "outcome") << ", "
                << Str(r, "message") << "\n";
  }
  const json& hosts = d["hosts"];
  context.out << "Hosts:             " << Num<size_t>(hosts, "online") << " of "
              << Num<size_t>(hosts, "total") << " online\n";
  for (const json& h : hosts["offline"]) {
    context.out << "  offline: " << Str(h, "name") << " (" << Str(h, "pool")
                << "): " << Str(h, "error") << "\n";
  }
  if (hosts.contains("degraded") && hosts["degraded"].is_array()) {
    for (const json& h : hosts["degraded"]) {
      context.out << "  degraded: " << Str(h, "name") << " (" << Str(h, "pool")
                  << "): " << FailedShare(h)
                  << (Str(h, "error").empty() ? "" : "; " + Str(h, "error")) << "\n";
    }
  }
  context.out << "Managed VMs:       " << Num<size_t>(d, "managed_vms") << "\n";
  if (Num<size_t>(d, "unfinished_actions") > 0) {
    context.out << "Unfinished:        " << Num<size_t>(d, "unfinished_actions")
                << " action(s), settled on the next run\n";
  }
  if (const json& g = d["guards"]; g.is_object()) {
    const auto conflicts = Num<size_t>(g, "conflicts");
    const auto refused = Num<size_t>(g, "refused_deletions");
    const auto deferred = Num<size_t>(g, "deferred_deletions");
    if (conflicts > 0) {
      context.out << "Conflicts:         " << conflicts
                  << " desired name(s) held by VMs Flotilla does not own; their sets stay short "
                     "(flotilla vms; rename or remove them, or apply --adopt)\n";
    }
    if (refused > 0) {
      context.out << "Refused:           " << refused
                  << " deletion(s): the revision would delete every managed VM of a pool "
                     "(flotilla reconcile --allow-empty approves it)\n";
    }
    if (deferred > 0) {
      context.out << "Deferred:          " << deferred
                  << " deletion(s) held by the deletion budget; they run as the window moves\n";
    }
  }
  if (!d["events"].empty()) {
    context.out << "Recent events:\n";
    for (const json& e : d["events"]) {
      context.out << "  " << Str(e, "at") << " " << Str(e, "level") << " " << Str(e, "kind")
                  << (Str(e, "subject").empty() ? "" : " " + Str(e, "subject"))
                  << (Str(e, "message").empty() ? "" : ": " + Str(e, "message")) << "\n";
    }
  }
  return 0;
}

int RunHistory(const HistoryOptions& options, const Context& context) {
  const std::string limit = std::to_string(options.limit);
  Result<json> runs = Fetch(
      options, "/api/v1/runs?limit=" + limit,
      [&](store::Store& store) { return api::RunsJson(store, options.limit); }, context);
  if (!runs.ok()) {
    return Fail(context, runs.status());
  }
  Result<json> revisions = Fetch(
      options, "/api/v1/revisions?limit=" + limit,
      [&](store::Store& store) { return api::RevisionsJson(store, options.limit, nullptr); },
      context);
  if (!revisions.ok()) {
    return Fail(context, revisions.status());
  }
  const json doc = {{"runs", (*runs)["runs"]}, {"revisions", (*revisions)["revisions"]}};
  if (options.json) {
    PrintJson(context, doc);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"RUN", "STARTED", "TRIGGER", "REVISION", "OUTCOME", "ACTIONS", "MESSAGE"}};
  for (const json& r : doc["runs"]) {
    rows.push_back(
        {std::to_string(Num<int64_t>(r, "id")), Str(r, "started_at"),
         Str(r, "trigger") + (Str(r, "actor").empty() ? "" : " (token " + Str(r, "actor") + ")"),
         Short(Str(r, "revision")), Str(r, "outcome"),
         std::to_string(Num<int64_t>(r, "succeeded")) + "/" +
             std::to_string(Num<int64_t>(r, "planned")),
         Str(r, "message") +
             (Str(r, "approval").empty() ? "" : " (approved by " + Str(r, "approval") + ")")});
  }
  PrintTable(context, rows);
  context.out << "\n";
  rows = {{"REVISION", "ATTEMPTED", "OUTCOME", "REASON"}};
  for (const json& r : doc["revisions"]) {
    rows.push_back(
        {Short(Str(r, "sha")), Str(r, "attempted_at"), Str(r, "outcome"), Str(r, "reason")});
  }
  PrintTable(context, rows);
  return 0;
}

int RunHosts(const ReadOptions& options, const Context& context) {
  Result<json> doc = Fetch(
      options, "/api/v1/hosts",
      [](store::Store& store) -> Result<json> {
        Result<api::Snapshot> snapshot = api::SnapshotFromStore(store);
        if (!snapshot.ok()) {
          return snapshot.status();
        }
        return api::HostsJson(*snapshot);
      },
      context);
  if (!doc.ok()) {
    return Fail(context, doc.status());
  }
  if (options.json) {
    PrintJson(context, *doc);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"HOST", "POOL", "STATE", "ARCH", "VMS", "CPU FREE", "MEMORY FREE", "LAST SEEN", "NOTE"}};
  for (const json& h : (*doc)["hosts"]) {
    std::string cpu = "-";
    std::string memory = "-";
    if (h["resources"].is_object()) {
      const json& total = h["resources"]["total"];
      const json& free = h["resources"]["available"];
      cpu = std::to_string(Num<uint32_t>(free, "cpu")) + "/" +
            std::to_string(Num<uint32_t>(total, "cpu"));
      memory = Bytes(Num<uint64_t>(free, "memory_bytes")) + "/" +
               Bytes(Num<uint64_t>(total, "memory_bytes"));
    }
    std::string note = h.value("cordoned", false) ? "cordoned" : "";
    if (Str(h, "state") == "degraded") {
      note += (note.empty() ? "" : "; ") + FailedShare(h);
    }
    if (!Str(h, "error").empty()) {
      note += (note.empty() ? "" : "; ") + Str(h, "error");
    }
    if (h.contains("conditions") && h["conditions"].is_array()) {
      for (const json& condition : h["conditions"]) {
        if (condition.is_string()) {
          note += (note.empty() ? "" : "; ") + condition.get<std::string>();
        }
      }
    }
    rows.push_back({Str(h, "name"), Str(h, "pool"), Str(h, "state"),
                    Str(h, "arch").empty() ? "-" : Str(h, "arch"),
                    std::to_string(Num<size_t>(h, "managed_vms")) + "/" +
                        std::to_string(Num<size_t>(h, "vms")),
                    cpu, memory, h["last_seen"].is_string() ? Str(h, "last_seen") : "never", note});
  }
  PrintTable(context, rows);
  context.out << "(VMS: managed/all; CPU and MEMORY: free/total)\n";
  return 0;
}

int RunVms(const VmsOptions& options, const Context& context) {
  api::VmFilter filter{
      .pool = options.pool, .vmset = options.vmset, .host = options.host, .state = options.state};
  if (!options.managed.empty()) {
    filter.managed = options.managed == "true";
  }
  std::string query;
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"pool", options.pool},
                                                        {"vmset", options.vmset},
                                                        {"host", options.host},
                                                        {"state", options.state},
                                                        {"managed", options.managed}}) {
    if (!value.empty()) {
      query += (query.empty() ? "?" : "&") + key + "=" + httplib::detail::encode_query_param(value);
    }
  }
  Result<json> doc = Fetch(
      options, "/api/v1/vms" + query,
      [&filter](store::Store& store) -> Result<json> {
        Result<api::Snapshot> snapshot = api::SnapshotFromStore(store);
        if (!snapshot.ok()) {
          return snapshot.status();
        }
        return api::VmsJson(*snapshot, filter);
      },
      context);
  if (!doc.ok()) {
    return Fail(context, doc.status());
  }
  if (options.json) {
    PrintJson(context, *doc);
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"VM", "HOST", "POOL", "VMSET", "STATE", "CPU", "MEMORY", "IP"}};
  for (const json& v : (*doc)["vms"]) {
    rows.push_back({Str(v, "name"), Str(v, "host"), Str(v, "pool"),
                    v.value("managed", false) ? Str(v, "vmset") : "(unmanaged)", Str(v, "state"),
                    std::to_string(Num<uint32_t>(v, "cpu")),
                    Bytes(Num<uint64_t>(v, "memory_bytes")),
                    Str(v, "ip").empty() ? "-" : Str(v, "ip")});
  }
  PrintTable(context, rows);
  return 0;
}

// The API that the loop of `where`'s configuration serves, and its token: for `reconcile`
// without --server. FailedPrecondition when no configuration file names one.
Result<std::pair<std::string, std::string>> ConfiguredApi(const StoreLocation& where,
                                                          const Context& context) {
  if (where.config.empty() && Env("FLOTILLA_CONFIG").empty() &&
      !std::filesystem::exists("flotilla.yaml")) {
    return Status::FailedPrecondition(
        "reconcile asks a running loop: give --server URL (or set FLOTILLA_SERVER), or "
        "--config of the loop; without a loop, use 'flotilla apply'");
  }
  Result<manifest::ReconcilerConfig> config = LoadReconcilerConfig(where, context);
  if (!config.ok()) {
    return config.status();
  }
  Result<std::pair<std::string, int>> listen = api::ParseListen(config->api.listen);
  if (!listen.ok()) {
    return listen.status();
  }
  if (listen->second == 0) {
    return Status::FailedPrecondition("the configuration's api.listen (" + config->api.listen +
                                      ") picks a free port: give the loop's URL with --server");
  }
  std::string host = listen->first == "0.0.0.0" ? "127.0.0.1"
                     : listen->first == "::"    ? "::1"
                                                : listen->first;
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  Result<std::string> token =
      ReadSecretSetting(config->api.token_file, config->api.token_env, "API token");
  if (!token.ok()) {
    return token.status();
  }
  return std::make_pair(std::string(config->api.tls_cert_file.empty() ? "http" : "https") + "://" +
                            host + ":" + std::to_string(listen->second),
                        *token);
}

int RunReconcile(const ReconcileOptions& options, const Context& context) {
  std::string url = ServerUrl(options.api);
  std::string configured_token;
  if (url.empty()) {
    Result<std::pair<std::string, std::string>> configured = ConfiguredApi(options.where, context);
    if (!configured.ok()) {
      return Fail(context, configured.status());
    }
    url = configured->first;
    configured_token = configured->second;
  }
  Result<std::unique_ptr<ApiClient>> client =
      ApiClient::Open(options.api, url, std::move(configured_token));
  if (!client.ok()) {
    return Fail(context, client.status());
  }
  json request = {{"reason", "cli"}};
  if (options.max_deletions) {
    request["max_deletions"] = *options.max_deletions;
  }
  if (options.allow_empty) {
    request["allow_empty"] = true;
  }
  Result<json> started = (*client)->Post("/api/v1/reconcile", request.dump());
  if (!started.ok()) {
    return Fail(context, started.status());
  }
  if (!(*started)["run_id"].is_number_integer()) {
    if (options.json) {
      PrintJson(context, *started);
    } else {
      context.out << "reconcile queued behind the pass under way\n";
    }
    return options.wait ? 1 : 0;
  }
  const int64_t id = (*started)["run_id"].get<int64_t>();
  if (!options.wait) {
    if (options.json) {
      PrintJson(context, *started);
    } else {
      context.out << "run " << id << " started\n";
    }
    return 0;
  }
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds);
  while (true) {
    Result<json> run = (*client)->Get("/api/v1/runs/" + std::to_string(id));
    if (!run.ok()) {
      return Fail(context, run.status());
    }
    if ((*run)["finished_at"].is_string()) {
      if (options.json) {
        PrintJson(context, *run);
      } else {
        context.out << "run " << id << ": " << Str(*run, "outcome") << ", " << Str(*run, "message")
                    << "\n";
      }
      return Str(*run, "outcome") == "succeeded" ? 0 : 1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Fail(context, Status::DeadlineExceeded(
                               "run " + std::to_string(id) + " has not finished after " +
                               std::to_string(options.timeout_seconds) + " s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
  }
}

}  // namespace flotilla::cli
