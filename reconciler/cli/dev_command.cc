#include "reconciler/cli/dev_command.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/cli/converge_command.h"
#include "reconciler/cli/dev_files.h"
#include "reconciler/cli/dev_fleet.h"
#include "reconciler/cli/dev_macs.h"
#include "reconciler/cli/dev_simulators.h"
#include "reconciler/cli/embedded_examples.h"
#include "reconciler/manifest/diagnostics.h"
#include "reconciler/manifest/loader.h"
#include "reconciler/model/text.h"
#include "reconciler/source/git_source.h"
#include "reconciler/source/seed_repository.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kApiKeyName = "DEV";
// Where the compiled-in example files are from, as messages name them.
constexpr std::string_view kExamplesFolder = "examples/fleet/";

std::string RandomHex(size_t bytes) {
  std::random_device random;
  std::string out;
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    const auto byte = static_cast<unsigned>(random() & 0xffU);
    out += kDigits[byte >> 4U];
    out += kDigits[byte & 0xfU];
  }
  return out;
}

// What the data folder remembers between starts: where each pool's simulated hosts and each
// simulated Mac listen (the repository's addresses point there) and the credentials they
// accept.
struct DevState {
  std::map<std::string, int> ports;      // flotilla-hostsim's, by pool
  std::map<std::string, int> mac_ports;  // sshd's, by host; empty: the folder has no Macs
  std::string api_secret;
};

Result<DevState> LoadState(const fs::path& file) {
  const json doc = json::parse(ReadDevFile(file), nullptr, false);
  if (!doc.is_object() || !doc.contains("ports") || !doc["ports"].is_object() ||
      !doc.contains("apiSecret") || !doc["apiSecret"].is_string()) {
    return Status::FailedPrecondition(file.string() +
                                      " is damaged; start over with 'flotilla dev --reset'");
  }
  DevState state;
  for (const auto& [pool, port] : doc["ports"].items()) {
    if (port.is_number_integer()) {
      state.ports[pool] = port.get<int>();
    }
  }
  if (doc.contains("macs") && doc["macs"].is_object()) {
    for (const auto& [host, port] : doc["macs"].items()) {
      if (port.is_number_integer()) {
        state.mac_ports[host] = port.get<int>();
      }
    }
  }
  state.api_secret = doc["apiSecret"].get<std::string>();
  return state;
}

// The example fleet as compiled into the binary: file name -> text.
std::map<std::string, std::string> ExampleFiles() {
  std::map<std::string, std::string> files;
  for (std::string_view name : examples::Names()) {
    files.emplace(std::string(name), std::string(examples::Find(name)));
  }
  return files;
}

Result<Desired> LoadExamples(const std::map<std::string, std::string>& files,
                             const manifest::ManifestLoader& loader) {
  std::vector<manifest::ManifestFile> manifests;
  for (const auto& [name, text] : files) {
    manifests.push_back({.display_path = std::string(kExamplesFolder) + name, .content = text});
  }
  manifest::LoadResult loaded = loader.LoadFiles(manifests);
  if (!loaded.ok()) {
    return Status::Internal("the example fleet compiled into this binary is invalid");
  }
  return loaded.desired;
}

std::string Display(const fs::path& path) {
  std::error_code ec;
  const fs::path relative = fs::relative(path, fs::current_path(ec), ec);
  return !ec && !relative.empty() && !relative.string().starts_with("..") ? relative.string()
                                                                          : path.string();
}

// The value of PATH; empty when unset. Read at start-up; nothing in the process sets it.
std::string PathVariable() {
  const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
  return path == nullptr ? "" : path;
}

// The folder of the running binary; empty when /proc/self/exe cannot be read.
std::string SelfDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

// How the user runs this binary: "flotilla" when that name on PATH is this very file, else its
// path (relative to the current folder when below it: "build/bin/flotilla"), so that the
// commands the banner suggests can be pasted as they are.
std::string SelfCommand() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) {
    return "flotilla";
  }
  std::stringstream dirs(PathVariable());
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && fs::equivalent(fs::path(dir) / "flotilla", exe, ec)) {
      return "flotilla";
    }
  }
  return Display(exe);
}

// Blocks SIGINT and SIGTERM in this thread and every thread it starts from now on (the loop's
// watcher takes them with sigtimedwait); restores the mask when it goes.
class BlockSignals {
 public:
  BlockSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  }
  ~BlockSignals() {
    const timespec none{};
    while (sigtimedwait(&set_, nullptr, &none) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  BlockSignals(const BlockSignals&) = delete;
  BlockSignals& operator=(const BlockSignals&) = delete;

 private:
  sigset_t set_{};
  sigset_t previous_{};
};

// The data folder of one start: where everything lives, and whether it held a fleet already.
struct DevFolder {
  fs::path dir;
  fs::path repo;         // the seeded fleet repository
  fs::path state_file;   // dev.json
  bool reuse = false;    // a previous start's folder
  bool existed = false;  // the folder was there (empty, or reused) before this start
  DevState state;
};

// Deletes --dir for --reset, refuses a folder that is not ours, and loads or creates dev.json's
// state.
Result<DevFolder> OpenFolder(const DevOptions& options) {
  std::error_code ec;
  DevFolder folder;
  folder.dir = fs::absolute(options.dir, ec);
  if (options.reset) {
    fs::remove_all(folder.dir, ec);
    if (ec) {
      return Status::Unavailable("cannot delete " + folder.dir.string() + ": " + ec.message());
    }
  }
  folder.repo = folder.dir / "fleet";
  folder.state_file = folder.dir / "dev.json";
  folder.reuse = fs::exists(folder.repo / ".git", ec);
  folder.existed = fs::exists(folder.dir, ec);
  if (!folder.reuse && folder.existed && !fs::is_empty(folder.dir, ec)) {
    return Status::FailedPrecondition(folder.dir.string() +
                                      " exists but holds no fleet repository; remove it, pick "
                                      "another --dir, or pass --reset");
  }
  if (folder.reuse) {
    Result<DevState> loaded = LoadState(folder.state_file);
    if (!loaded.ok()) {
      return loaded.status();
    }
    folder.state = std::move(*loaded);
  } else {
    folder.state.api_secret = RandomHex(16);
  }
  return folder;
}

// A new folder whose first start failed goes again (what this start wrote in it, and the folder
// itself when this start made it), so that the next start is not refused for holding no fleet.
void DiscardNewFolder(const DevFolder& folder) {
  if (folder.reuse) {
    return;
  }
  std::error_code ec;
  if (!folder.existed) {
    fs::remove_all(folder.dir, ec);
    return;
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(folder.dir, ec)) {
    fs::remove_all(entry.path(), ec);
  }
}

// The running simulators, one per Parallels pool, and what the repository and the banner say
// of them.
struct Simulators {
  std::vector<std::unique_ptr<ChildProcess>> processes;
  std::map<std::string, std::string> addresses;  // host -> its simulated address
  std::vector<std::string> lines;                // for the banner
};

// What the simulator of `pool` serves: its hosts with the pool's architecture and size.
SimulatorSpec SpecFor(const HostPool& pool, const DevOptions& options, const DevFolder& folder,
                      const fs::path& api_key_file) {
  const HostCapacity capacity = pool.defaults.capacity.value_or(
      HostCapacity{.cpu = 12,
                   .memory = Quantity::FromMiB(uint64_t{32} * 1024),
                   .disk = Quantity::FromMiB(uint64_t{500} * 1024)});
  const fs::path hosts = folder.dir / "hosts";
  const auto port = folder.state.ports.find(pool.meta.name);
  return SimulatorSpec{
      .pool = pool.meta.name,
      .port = port == folder.state.ports.end() ? 0 : port->second,
      .hosts = static_cast<int>(pool.hosts.size()),
      .arch = std::string(ToString(pool.defaults.arch.value_or(Arch::kArm64))),
      .cpu = static_cast<int>(capacity.cpu),
      .memory_mib = capacity.memory.bytes() >> 20U,
      .disk_mib = capacity.disk.bytes() >> 20U,
      .latency = options.latency == "none" ? "" : options.latency,
      .jitter = options.latency == "none" ? 0.0 : 0.2,
      .lookup_delay = "300ms",
      // Simulated guests boot (startup scripts wait for them) but run nothing: every command
      // succeeds without output, so the example's runner registration needs no runner.
      .guest_boot = "3s",
      .guest_exec = "succeed",
      .guest_ports = options.guest_ports,
      .api_key_file = api_key_file.string(),
      .state_file = (hosts / (pool.meta.name + ".json")).string(),
      .port_file = (hosts / (pool.meta.name + ".port")).string(),
      .log_file = (hosts / (pool.meta.name + ".log")).string()};
}

// Starts one flotilla-hostsim per Parallels pool of `fleet` (its hosts share an architecture and
// a size), on the ports of the previous start when there was one; records the ports in
// folder.state.
Result<Simulators> StartSimulators(const Desired& fleet, const DevOptions& options,
                                   DevFolder& folder) {
  Result<std::string> binary = FindHostSim(SelfDir(), PathVariable());
  if (!binary.ok()) {
    return binary.status();
  }
  const fs::path api_key_file = folder.dir / "hosts" / "api-keys";
  if (Status s = WriteDevFile(
          api_key_file, std::string(kApiKeyName) + ":" + folder.state.api_secret + "\n", true);
      !s.ok()) {
    return s;
  }
  Simulators sims;
  for (const HostPool& pool : fleet.pools) {
    if (pool.provider != kSimulatedProvider) {
      continue;
    }
    const SimulatorSpec spec = SpecFor(pool, options, folder, api_key_file);
    Result<std::unique_ptr<ChildProcess>> started =
        ChildProcess::Start(SimulatorChild(*binary, spec));
    if (!started.ok()) {
      if (started.status().code() == Status::Code::kInvalidArgument) {
        return started.status();  // a flag `flotilla dev` passed on (--latency)
      }
      return Status::Unavailable(
          "cannot start the simulated hosts of pool " + pool.meta.name + " on port " +
          std::to_string(spec.port) + ": " + started.status().message() +
          (folder.reuse ? " (another 'flotilla dev' on this folder? --reset starts over)" : ""));
    }
    const int port = static_cast<int>((*started)->ready_value());
    folder.state.ports[pool.meta.name] = port;
    for (size_t i = 0; i < pool.hosts.size(); ++i) {
      std::string number = std::to_string(i);
      number.insert(0, number.size() < 3 ? 3 - number.size() : 0, '0');
      sims.addresses[pool.hosts[i].name] = SimulatorUrl(port) + "/h/sim-" + number + "/api";
    }
    sims.lines.push_back(pool.meta.name + ": " + std::to_string(pool.hosts.size()) + " " +
                         spec.arch + " hosts on " + SimulatorUrl(port));
    sims.processes.push_back(std::move(*started));
  }
  return sims;
}

// How the pool manifests of `file` (a path of examples/fleet) change: the hosts point at their
// simulators, a Parallels pool loses its TLS block (the simulators speak plain HTTP) and a Tart
// pool gets the simulated Macs' tart.path and known_hosts.
PoolRewrite RewriteFor(const std::string& file, const Desired& fleet, const Simulators& sims,
                       const SimulatedMacs& macs) {
  PoolRewrite rewrite;
  for (const HostPool& pool : fleet.pools) {
    if (pool.meta.origin.file != std::string(kExamplesFolder) + file) {
      continue;
    }
    const bool tart = pool.provider == kMacProvider;
    for (const HostSpec& host : pool.hosts) {
      const auto& addresses = tart ? macs.addresses : sims.addresses;
      if (auto address = addresses.find(host.name); address != addresses.end()) {
        rewrite.addresses[host.name] = address->second;
      }
    }
    if (tart) {
      rewrite.settings.insert(macs.settings.begin(), macs.settings.end());
    } else {
      rewrite.dropped.insert("tls");
    }
  }
  return rewrite;
}

// A new folder's repository, seeded from the examples with the pools pointing at the
// simulators, and the secrets the fleet and the API need.
Status SeedFolder(const DevFolder& folder, const std::map<std::string, std::string>& examples,
                  const Desired& fleet, const Simulators& sims, const SimulatedMacs& macs) {
  std::map<std::string, std::string> files;
  for (const auto& [name, text] : examples) {
    if (!name.starts_with("pools/")) {
      files[name] = text;
      continue;
    }
    Result<std::string> rewritten = RewritePool(text, RewriteFor(name, fleet, sims, macs));
    if (!rewritten.ok()) {
      return Status::Internal(std::string(kExamplesFolder) + name + ": " +
                              rewritten.status().message());
    }
    files[name] = std::move(*rewritten);
  }
  const source::GitLibrary git;
  if (Status s = source::SeedRepository(folder.repo.string(), "main", files,
                                        "Seed the fleet from examples/fleet (flotilla dev)");
      !s.ok()) {
    return s;
  }
  // Each credentialsRef's file: a Parallels pool's API key, a Tart pool's SSH key.
  std::map<fs::path, std::string> secrets;
  const fs::path dir = folder.dir / "secrets";
  for (const HostPool& pool : fleet.pools) {
    if (pool.credentials_ref.empty()) {
      continue;
    }
    if (pool.provider == kMacProvider) {
      secrets[dir / pool.credentials_ref / "sshKey"] = ReadDevFile(macs.user_key);
      continue;
    }
    secrets[dir / pool.credentials_ref / "apiKey"] =
        EncodeBase64(std::string(kApiKeyName) + ":" + folder.state.api_secret) + "\n";
    const std::string catalog =
        pool.settings.value("catalog", json::object()).value("connectionRef", "");
    if (!catalog.empty()) {
      // The simulated hosts have every catalog image; the connection is never dialled.
      secrets[dir / catalog / "connection"] = "host=dev:dev@catalog.invalid:443\n";
    }
  }
  for (const auto& [file, bytes] : {std::pair{"api-token", 24}, {"webhook-secret", 24}}) {
    secrets[folder.dir / file] = RandomHex(bytes) + "\n";
  }
  for (const auto& [file, text] : secrets) {
    if (Status s = WriteDevFile(file, text, /*secret=*/true); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// dev.json (ports and credentials, for the next start) and flotilla.yaml (the loop's
// configuration), written at every start.
Status WriteConfiguration(const DevFolder& folder, const DevOptions& options) {
  const json saved = {{"ports", folder.state.ports},
                      {"macs", folder.state.mac_ports},
                      {"apiSecret", folder.state.api_secret}};
  if (Status s = WriteDevFile(folder.state_file, saved.dump(2) + "\n", true); !s.ok()) {
    return s;
  }
  std::ostringstream yaml;
  yaml << "# Written by 'flotilla dev' at every start.\n"
       << "source: {url: " << json(folder.repo.string()).dump() << ", branch: main, interval: 5s}\n"
       << "stateDir: " << json((folder.dir / "state").string()).dump() << "\n"
       << "secretsDir: " << json((folder.dir / "secrets").string()).dump() << "\n"
       << "api:\n"
       << "  listen: " << json(options.listen).dump() << "\n"
       << "  tokenFile: " << json((folder.dir / "api-token").string()).dump() << "\n"
       << "  webhookSecretFile: " << json((folder.dir / "webhook-secret").string()).dump()
       << "\n"
       // One machine, one user: tunnels to the simulated VMs are not rationed per token.
       << "  tunnels: {perToken: 64}\n"
       // hostTimeout: a simulated Mac's first observation opens its SSH connection, which takes
       // seconds on a busy machine.
       << "reconcile: {resyncInterval: 5s, hostTimeout: 10s, shutdownTimeout: 15s}\n";
  return WriteDevFile(folder.dir / "flotilla.yaml", yaml.str());
}

// The simulated Macs of the example fleet's Tart pools, or why there are none.
struct DevMacs {
  SimulatedMacs macs;
  std::string why_not;  // empty when they run, or when the fleet has no Tart pool
};

// Starts the simulated Macs on the ports of the previous start when there was one, and records
// their ports in folder.state. A first start that cannot run them goes on without them (the
// Tart pools are left out of the fleet, and the banner says why); a start on a folder seeded
// with them fails when they do not start, as for the simulated hosts: the repository points at
// their ports.
Result<DevMacs> StartDevMacs(const Desired& fleet, const DevOptions& options, DevFolder& folder) {
  DevMacs out;
  if (std::none_of(fleet.pools.begin(), fleet.pools.end(),
                   [](const HostPool& pool) { return pool.provider == kMacProvider; })) {
    return out;
  }
  if (folder.reuse && folder.state.mac_ports.empty()) {
    out.why_not = "this folder was made without them; 'flotilla dev --reset' starts over";
    return out;
  }
  Result<MacTools> tools = FindMacTools(MacTools{}, SelfDir(), PathVariable(), geteuid() == 0);
  if (!tools.ok()) {
    out.why_not = tools.status().message();
    return out;
  }
  const fs::path dir = folder.dir / "macs";
  Result<SimulatedMacs> started = StartMacs(fleet, *tools,
                                            MacsOptions{.dir = dir.string(),
                                                        .ports = folder.state.mac_ports,
                                                        .latencies = options.latency != "none",
                                                        .power_pid = getpid(),
                                                        .guest_ports = options.guest_ports});
  if (!started.ok()) {
    if (folder.reuse) {
      return Status::Unavailable(started.status().message() +
                                 " (another 'flotilla dev' on this folder? --reset starts over)");
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    out.why_not = started.status().message();
    return out;
  }
  folder.state.mac_ports = started->ports;
  out.macs = std::move(*started);
  return out;
}

// What `flotilla dev` prints once the API listens at `url`.
std::string Banner(const DevFolder& folder, const Simulators& sims, const DevMacs& macs,
                   const std::map<std::string, std::vector<std::string>>& left_out,
                   const std::string& url) {
  const fs::path token_file = folder.dir / "api-token";
  const std::string token(TrimAscii(ReadDevFile(token_file)));
  const std::string shown_repo = Display(folder.repo);
  const std::string shown_token_file = Display(token_file);
  const std::string self = SelfCommand();
  std::ostringstream banner;
  banner << "\nflotilla dev is running " << (folder.reuse ? "(reusing " : "(new fleet in ")
         << Display(folder.dir) << ")\n\n"
         << "  Dashboard    " << url << "/#token=" << token
         << "   (opens logged in; the page keeps the token for the tab, not the address)\n"
         << "  API          " << url << "\n"
         << "  API token    " << token << "   (also in " << shown_token_file << ")\n"
         << "  Repository   " << shown_repo << "   (branch main, fetched every 5 s)\n";
  for (const auto* lines : {&sims.lines, &macs.macs.lines}) {
    for (const std::string& line : *lines) {
      banner << "  Hosts        " << line << "\n";
    }
  }
  // A folder seeded with Macs keeps its Tart pool: the Macs that do not run are its offline
  // hosts. Otherwise the Tart pool was left out of the fleet.
  const bool seeded_with_macs = folder.reuse && !folder.state.mac_ports.empty();
  if (!macs.why_not.empty() && seeded_with_macs) {
    banner << "  Not running  the simulated Macs, so the Tart pool's hosts are offline ("
           << macs.why_not << ")\n";
  }
  for (const auto& [provider, what] : left_out) {
    if (provider == kMacProvider && seeded_with_macs) {
      continue;
    }
    const std::string why = provider == kMacProvider && !macs.why_not.empty()
                                ? "no simulated Macs: " + macs.why_not
                                : "flotilla dev simulates " + std::string(kSimulatedProvider) +
                                      " and " + std::string(kMacProvider) + " hosts only";
    banner << "  Left out     " << manifest::Join(what) << " (" << why << ")\n";
  }
  banner << "\nThings to try, in another terminal:\n"
         << "  1. Change 'replicas: 4' in " << shown_repo << "/vmsets/linux-runners.yaml, then\n"
         << "       git -C " << shown_repo << " commit -am 'more runners'\n"
         << "     and watch this loop create them.\n"
         << "  2. " << self << " plan --config " << Display(folder.dir / "flotilla.yaml") << "\n"
         << "  3. " << self << " vms --server " << url << " --token-file " << shown_token_file
         << "\n\n"
         << "Ctrl-C stops everything.\n\n";
  return banner.str();
}

}  // namespace

CLI::App* AddDevCommand(CLI::App& app, DevOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "dev",
      "Try flotilla on one machine, with no configuration: simulated hosts shaped like the\n"
      "example fleet's, a local Git repository seeded from examples/fleet, and the loop with\n"
      "its API, all in --dir. Edit a manifest, commit, and watch the fleet follow. The next\n"
      "start reuses --dir (repository, store and VMs); --reset starts over. Ctrl-C stops.");
  cmd->add_option("--dir", options.dir, "Data folder")->capture_default_str();
  cmd->add_option("--listen", options.listen, "Address of the API (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--latency", options.latency,
                  "Simulated host latencies (create, pull, start, stop, delete, exec, ...), or "
                  "none (also for the simulated Macs, whose latencies are fixed otherwise)")
      ->capture_default_str();
  cmd->add_flag("--reset", options.reset, "Delete --dir first: a new repository, store and hosts");
  cmd->add_option("--guest-port", options.guest_ports,
                  "PORT=HOST:PORT: every simulated VM's PORT relays to that address (for example "
                  "22=127.0.0.1:2222, a real sshd standing in for the guests); repeatable. "
                  "Without it, simulated guests answer on 22 and 5900 with an echo service");
  return cmd;
}

int RunDev(const DevOptions& options, const Context& context) {
  BlockSignals blocked;  // before anything starts a thread or a child
  Result<DevFolder> folder = OpenFolder(options);
  if (!folder.ok()) {
    return Fail(context, folder.status());
  }
  const std::map<std::string, std::string> all_examples = ExampleFiles();
  Result<Desired> all = LoadExamples(all_examples, context.loader);
  if (!all.ok()) {
    return Fail(context, all.status());
  }
  Result<Simulators> sims = StartSimulators(*all, options, *folder);
  if (!sims.ok()) {
    DiscardNewFolder(*folder);
    return Fail(context, sims.status());
  }
  Result<DevMacs> macs = StartDevMacs(*all, options, *folder);
  if (!macs.ok()) {
    return Fail(context, macs.status());  // a reused folder: nothing to discard
  }
  // The example fleet, but for the pools (and their sets) no simulator stands in for.
  std::set<std::string> simulated_providers = {std::string(kSimulatedProvider)};
  if (macs->why_not.empty()) {
    simulated_providers.insert(std::string(kMacProvider));
  }
  const SimulatedFleet simulated =
      SimulatedExamples(all_examples, *all, kExamplesFolder, simulated_providers);
  Result<Desired> fleet = LoadExamples(simulated.files, context.loader);
  if (!fleet.ok()) {
    return Fail(context, fleet.status());
  }
  if (!folder->reuse) {
    if (Status s = SeedFolder(*folder, simulated.files, *fleet, *sims, macs->macs); !s.ok()) {
      // Stopped before their folder goes.
      sims->processes.clear();
      macs->macs.processes.clear();
      DiscardNewFolder(*folder);
      return Fail(context, s);
    }
  }
  if (Status s = WriteConfiguration(*folder, options); !s.ok()) {
    return Fail(context, s);
  }
  RunOptions run;
  run.where.config = (folder->dir / "flotilla.yaml").string();
  const int code = RunLoop(run, context, [&](const std::string& url) {
    context.out << Banner(*folder, *sims, *macs, simulated.left_out, url) << std::flush;
  });
  // Each flotilla-hostsim saves its simulated VMs for the next start; the Macs' VMs stop when
  // this process ends (their power_pid).
  StopAll(sims->processes);
  StopAll(macs->macs.processes);
  return code;
}

}  // namespace flotilla::cli
