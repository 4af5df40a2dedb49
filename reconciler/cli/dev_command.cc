#include "reconciler/cli/dev_command.h"

#include <pthread.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/cli/converge_command.h"
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

Status WriteFile(const fs::path& path, const std::string& text, bool secret = false) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) {
      return Status::Unavailable("cannot write " + path.string());
    }
  }
  if (secret) {
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace,
                    ec);
  }
  return Status::Ok();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What the data folder remembers between starts: where each pool's simulated hosts listen (the
// repository's addresses point there) and the credentials they accept.
struct DevState {
  std::map<std::string, int> ports;  // by pool
  std::string api_secret;
};

Result<DevState> LoadState(const fs::path& file) {
  const json doc = json::parse(ReadFile(file), nullptr, false);
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

// A pool manifest with every host's address pointing at its simulated host and the TLS block
// dropped (the simulated hosts speak plain HTTP on loopback). Comments stay.
std::string RewritePool(const std::string& text, const std::map<std::string, std::string>& to) {
  std::istringstream in(text);
  std::ostringstream out;
  out << "# Seeded by 'flotilla dev' from examples/fleet: each host's address points at a\n"
         "# simulated host on this machine.\n";
  std::string host;
  size_t skip_deeper_than = std::string::npos;  // inside the dropped tls: block
  for (std::string line; std::getline(in, line);) {
    const size_t indent = line.find_first_not_of(' ');
    const std::string_view body =
        indent == std::string::npos ? std::string_view() : std::string_view(line).substr(indent);
    if (skip_deeper_than != std::string::npos) {
      if (body.empty() || indent > skip_deeper_than) {
        continue;
      }
      skip_deeper_than = std::string::npos;
    }
    if (body.starts_with("tls:")) {
      skip_deeper_than = indent;
      continue;
    }
    for (std::string_view key : {"- name:", "name:"}) {
      if (body.starts_with(key)) {
        host = std::string(TrimAscii(body.substr(key.size())));
      }
    }
    if (body.starts_with("address:")) {
      auto it = to.find(host);
      if (it != to.end()) {
        out << line.substr(0, indent) << "address: " << it->second << "\n";
        continue;
      }
    }
    out << line << "\n";
  }
  return out.str();
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

// The running simulators, one per pool, and what the repository and the banner say of them.
struct Simulators {
  std::vector<std::unique_ptr<SimulatorProcess>> processes;
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
      .api_key_file = api_key_file.string(),
      .state_file = (hosts / (pool.meta.name + ".json")).string(),
      .port_file = (hosts / (pool.meta.name + ".port")).string(),
      .log_file = (hosts / (pool.meta.name + ".log")).string()};
}

// Starts one flotilla-hostsim per pool (its hosts share an architecture and a size), on the
// ports of the previous start when there was one; records the ports in folder.state.
Result<Simulators> StartSimulators(const Desired& fleet, const DevOptions& options,
                                   DevFolder& folder) {
  Result<std::string> binary = FindHostSim(SelfDir(), PathVariable());
  if (!binary.ok()) {
    return binary.status();
  }
  const fs::path api_key_file = folder.dir / "hosts" / "api-keys";
  if (Status s = WriteFile(api_key_file,
                           std::string(kApiKeyName) + ":" + folder.state.api_secret + "\n", true);
      !s.ok()) {
    return s;
  }
  Simulators sims;
  for (const HostPool& pool : fleet.pools) {
    const SimulatorSpec spec = SpecFor(pool, options, folder, api_key_file);
    Result<std::unique_ptr<SimulatorProcess>> started = SimulatorProcess::Start(*binary, spec);
    if (!started.ok()) {
      if (started.status().code() == Status::Code::kInvalidArgument) {
        return started.status();  // a flag `flotilla dev` passed on (--latency)
      }
      return Status::Unavailable(
          "cannot start the simulated hosts of pool " + pool.meta.name + " on port " +
          std::to_string(spec.port) + ": " + started.status().message() +
          (folder.reuse ? " (another 'flotilla dev' on this folder? --reset starts over)" : ""));
    }
    const SimulatorProcess& sim = **started;
    folder.state.ports[pool.meta.name] = sim.port();
    for (size_t i = 0; i < pool.hosts.size(); ++i) {
      std::string number = std::to_string(i);
      number.insert(0, number.size() < 3 ? 3 - number.size() : 0, '0');
      sims.addresses[pool.hosts[i].name] = sim.base_url() + "/h/sim-" + number + "/api";
    }
    sims.lines.push_back(pool.meta.name + ": " + std::to_string(pool.hosts.size()) + " " +
                         spec.arch + " hosts on " + sim.base_url());
    sims.processes.push_back(std::move(*started));
  }
  return sims;
}

// A new folder's repository, seeded from the examples with the pools pointing at the
// simulators, and the secrets the fleet and the API need.
Status SeedFolder(const DevFolder& folder, const std::map<std::string, std::string>& examples,
                  const Desired& fleet, const std::map<std::string, std::string>& addresses) {
  std::map<std::string, std::string> files;
  for (const auto& [name, text] : examples) {
    files[name] = name.starts_with("pools/") ? RewritePool(text, addresses) : text;
  }
  const source::GitLibrary git;
  if (Status s = source::SeedRepository(folder.repo.string(), "main", files,
                                        "Seed the fleet from examples/fleet (flotilla dev)");
      !s.ok()) {
    return s;
  }
  std::set<std::string> credentials;
  std::set<std::string> catalogs;
  for (const HostPool& pool : fleet.pools) {
    credentials.insert(pool.credentials_ref);
    // The example pools are parallels pools (flotilla dev simulates Parallels hosts).
    catalogs.insert(pool.settings.value("catalog", json::object()).value("connectionRef", ""));
  }
  const fs::path secrets = folder.dir / "secrets";
  for (const std::string& ref : credentials) {
    if (!ref.empty()) {
      if (Status s = WriteFile(
              secrets / ref / "apiKey",
              EncodeBase64(std::string(kApiKeyName) + ":" + folder.state.api_secret) + "\n", true);
          !s.ok()) {
        return s;
      }
    }
  }
  for (const std::string& ref : catalogs) {
    if (!ref.empty()) {
      // The simulated hosts have every catalog image; the connection is never dialled.
      if (Status s =
              WriteFile(secrets / ref / "connection", "host=dev:dev@catalog.invalid:443\n", true);
          !s.ok()) {
        return s;
      }
    }
  }
  for (const auto& [file, bytes] : {std::pair{"api-token", 24}, {"webhook-secret", 24}}) {
    if (Status s = WriteFile(folder.dir / file, RandomHex(bytes) + "\n", true); !s.ok()) {
      return s;
    }
  }
  return Status::Ok();
}

// dev.json (ports and credentials, for the next start) and flotilla.yaml (the loop's
// configuration), written at every start.
Status WriteConfiguration(const DevFolder& folder, const DevOptions& options) {
  const json saved = {{"ports", folder.state.ports}, {"apiSecret", folder.state.api_secret}};
  if (Status s = WriteFile(folder.state_file, saved.dump(2) + "\n", true); !s.ok()) {
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
       << "  webhookSecretFile: " << json((folder.dir / "webhook-secret").string()).dump() << "\n"
       << "reconcile: {resyncInterval: 5s, hostTimeout: 5s, shutdownTimeout: 15s}\n";
  return WriteFile(folder.dir / "flotilla.yaml", yaml.str());
}

// What `flotilla dev` prints once the API listens at `url`.
std::string Banner(const DevFolder& folder, const Simulators& sims,
                   const std::vector<std::string>& left_out, const std::string& url) {
  const fs::path token_file = folder.dir / "api-token";
  const std::string token(TrimAscii(ReadFile(token_file)));
  const std::string shown_repo = Display(folder.repo);
  const std::string shown_token_file = Display(token_file);
  const std::string self = SelfCommand();
  std::ostringstream banner;
  banner << "\nflotilla dev is running " << (folder.reuse ? "(reusing " : "(new fleet in ")
         << Display(folder.dir) << ")\n\n"
         << "  API          " << url << "\n"
         << "  API token    " << token << "   (also in " << shown_token_file << ")\n"
         << "  Repository   " << shown_repo << "   (branch main, fetched every 5 s)\n";
  for (const std::string& line : sims.lines) {
    banner << "  Hosts        " << line << "\n";
  }
  if (!left_out.empty()) {
    banner << "  Left out     " << manifest::Join(left_out) << " (" << kHostSimBinary
           << " simulates " << kSimulatedProvider << " hosts only)\n";
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
                  "none")
      ->capture_default_str();
  cmd->add_flag("--reset", options.reset, "Delete --dir first: a new repository, store and hosts");
  return cmd;
}

int RunDev(const DevOptions& options, const Context& context) {
  BlockSignals blocked;  // before anything starts a thread or a child
  Result<DevFolder> folder = OpenFolder(options);
  if (!folder.ok()) {
    return Fail(context, folder.status());
  }
  // The example fleet, but for the pools (and their sets) no simulator stands in for.
  const std::map<std::string, std::string> all_examples = ExampleFiles();
  Result<Desired> all = LoadExamples(all_examples, context.loader);
  if (!all.ok()) {
    return Fail(context, all.status());
  }
  const SimulatedFleet simulated = SimulatedExamples(all_examples, *all, kExamplesFolder);
  const std::map<std::string, std::string>& examples = simulated.files;
  Result<Desired> fleet = LoadExamples(examples, context.loader);
  if (!fleet.ok()) {
    return Fail(context, fleet.status());
  }
  Result<Simulators> sims = StartSimulators(*fleet, options, *folder);
  if (!sims.ok()) {
    DiscardNewFolder(*folder);
    return Fail(context, sims.status());
  }
  if (!folder->reuse) {
    if (Status s = SeedFolder(*folder, examples, *fleet, sims->addresses); !s.ok()) {
      sims->processes.clear();  // stopped before their folder goes
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
    context.out << Banner(*folder, *sims, simulated.left_out, url) << std::flush;
  });
  StopAll(sims->processes);  // each saves its simulated VMs for the next start
  return code;
}

}  // namespace flotilla::cli
