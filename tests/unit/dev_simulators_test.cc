// How `flotilla dev` finds and starts its simulators: where it looks for flotilla-hostsim, in
// which order, what it says when it finds nothing, and the flags it passes (none of them a
// secret); which example pools it runs; how it rewrites their manifests.

#include "reconciler/cli/dev_simulators.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "providers/builtin.h"
#include "reconciler/cli/dev_fleet.h"
#include "reconciler/cli/dev_macs.h"
#include "reconciler/cli/embedded_examples.h"
#include "reconciler/manifest/loader.h"
#include "tests/support/process.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;

void MakeExecutable(const fs::path& file) {
  fs::create_directories(file.parent_path());
  std::ofstream(file) << "#!/bin/sh\n";
  fs::permissions(file, fs::perms::owner_all);
}

TEST(DevSimulatorsTest, FindsTheSimulatorBesideFlotillaThenOnPath) {
  testing::ScratchDir scratch;
  const fs::path self = scratch.path() / "self";
  const fs::path first = scratch.path() / "first";
  const fs::path second = scratch.path() / "second";
  fs::create_directories(self);
  MakeExecutable(second / "flotilla-hostsim");
  const std::string path = first.string() + "::" + second.string();
  Result<std::string> found = FindHostSim(self.string(), path);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(*found, (second / "flotilla-hostsim").string());

  MakeExecutable(self / "flotilla-hostsim");
  found = FindHostSim(self.string(), path);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, (self / "flotilla-hostsim").string());

  // A file that is not executable is not the simulator.
  fs::permissions(self / "flotilla-hostsim", fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(second / "flotilla-hostsim", fs::perms::owner_read | fs::perms::owner_write);
  found = FindHostSim(self.string(), path);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), Status::Code::kNotFound);
  const std::string message = found.status().message();
  EXPECT_NE(message.find("cannot find flotilla-hostsim"), std::string::npos) << message;
  for (const fs::path& dir : {self, first, second}) {
    EXPECT_NE(message.find(dir.string()), std::string::npos) << message;
  }
}

TEST(DevSimulatorsTest, PassesEverySettingAsAFlagAndNoSecret) {
  const SimulatorSpec spec{.pool = "mac-builders",
                           .port = 4321,
                           .hosts = 3,
                           .arch = "x86_64",
                           .cpu = 8,
                           .memory_mib = 16384,
                           .disk_mib = 512000,
                           .latency = "create=3s",
                           .jitter = 0.2,
                           .lookup_delay = "300ms",
                           .guest_boot = "3s",
                           .guest_exec = "succeed",
                           .api_key_file = "/d/hosts/api-keys",
                           .state_file = "/d/hosts/mac-builders.json",
                           .port_file = "/d/hosts/mac-builders.port",
                           .log_file = "/d/hosts/mac-builders.log"};
  const std::vector<std::string> args = SimulatorArguments(spec);
  auto value = [&](const std::string& flag) {
    auto it = std::find(args.begin(), args.end(), flag);
    return it == args.end() || it + 1 == args.end() ? std::string("<missing>") : *(it + 1);
  };
  EXPECT_EQ(value("--listen"), "127.0.0.1:4321");
  EXPECT_EQ(value("--hosts"), "3");
  EXPECT_EQ(value("--arch"), "x86_64");
  EXPECT_EQ(value("--cpu"), "8");
  EXPECT_EQ(value("--memory"), "16384Mi");
  EXPECT_EQ(value("--disk"), "512000Mi");
  EXPECT_EQ(value("--latency"), "create=3s");
  EXPECT_EQ(value("--jitter"), "0.2");
  EXPECT_EQ(value("--lookup-delay"), "300ms");
  EXPECT_EQ(value("--guest-boot"), "3s");
  EXPECT_EQ(value("--guest-exec"), "succeed");
  EXPECT_EQ(value("--api-key-file"), "/d/hosts/api-keys");
  EXPECT_EQ(value("--state-file"), "/d/hosts/mac-builders.json");
  EXPECT_EQ(value("--port-file"), "/d/hosts/mac-builders.port");
  EXPECT_EQ(std::count(args.begin(), args.end(), "--api-key"), 0);

  SimulatorSpec none = spec;
  none.latency.clear();
  const std::vector<std::string> quiet = SimulatorArguments(none);
  EXPECT_EQ(std::count(quiet.begin(), quiet.end(), "--latency"), 0);
  EXPECT_EQ(std::count(quiet.begin(), quiet.end(), "--guest-port"), 0);

  // flotilla dev --guest-port, passed on as given, once each.
  SimulatorSpec ports = spec;
  ports.guest_ports = {"22=127.0.0.1:2222", "5900=127.0.0.1:5901"};
  const std::vector<std::string> relayed = SimulatorArguments(ports);
  EXPECT_EQ(std::count(relayed.begin(), relayed.end(), "--guest-port"), 2);
  const std::vector<std::string> pair = {"--guest-port", "22=127.0.0.1:2222"};
  EXPECT_NE(std::search(relayed.begin(), relayed.end(), pair.begin(), pair.end()), relayed.end());

  // Started with those flags, ready once it has written its port; exit 2 is a refused flag.
  const ChildSpec child = SimulatorChild("/bin/flotilla-hostsim", spec);
  EXPECT_EQ(child.binary, "/bin/flotilla-hostsim");
  EXPECT_EQ(child.args, args);
  EXPECT_EQ(child.ready_file, "/d/hosts/mac-builders.port");
  EXPECT_EQ(child.log_file, "/d/hosts/mac-builders.log");
  EXPECT_EQ(child.message_prefix, "flotilla-hostsim: ");
  EXPECT_EQ(child.usage_exit_code, 2);
}

// The example pools of a provider flotilla dev cannot run on this machine, and the sets on
// them, stay out of its fleet.
TEST(DevSimulatorsTest, LeavesOutThePoolsNoSimulatorServes) {
  const auto meta = [](std::string name, std::string file) {
    return ObjectMeta{.name = std::move(name), .origin = SourceLocation{.file = std::move(file)}};
  };
  Desired fleet;
  fleet.pools = {HostPool{.meta = meta("macs", "ex/pools/macs.yaml"), .provider = "parallels"},
                 HostPool{.meta = meta("minis", "ex/pools/minis.yaml"), .provider = "tart"}};
  fleet.sets = {VMSet{.meta = meta("ios", "ex/vmsets/ios.yaml"), .pool = "macs"},
                VMSet{.meta = meta("xcode", "ex/vmsets/xcode.yaml"), .pool = "minis"}};
  const std::map<std::string, std::string> files = {{"pools/macs.yaml", "a"},
                                                    {"pools/minis.yaml", "b"},
                                                    {"vmsets/ios.yaml", "c"},
                                                    {"vmsets/xcode.yaml", "d"},
                                                    {"README.md", "e"}};
  const SimulatedFleet simulated = SimulatedExamples(files, fleet, "ex/", {"parallels"});
  EXPECT_EQ(simulated.files,
            (std::map<std::string, std::string>{
                {"pools/macs.yaml", "a"}, {"vmsets/ios.yaml", "c"}, {"README.md", "e"}}));
  EXPECT_EQ(
      simulated.left_out,
      (std::map<std::string, std::vector<std::string>>{{"tart", {"pool minis", "VM set xcode"}}}));

  // Both run: every file stays.
  const SimulatedFleet both = SimulatedExamples(files, fleet, "ex/", {"parallels", "tart"});
  EXPECT_EQ(both.files, files);
  EXPECT_TRUE(both.left_out.empty());
}

std::map<std::string, std::string> ExampleTexts() {
  std::map<std::string, std::string> files;
  for (std::string_view name : examples::Names()) {
    files.emplace(std::string(name), std::string(examples::Find(name)));
  }
  return files;
}

manifest::LoadResult LoadFleet(const std::map<std::string, std::string>& texts) {
  auto validator = manifest::SchemaValidator::Create(providers::BuiltinRules());
  EXPECT_TRUE(validator.ok()) << validator.status().ToString();
  const manifest::ManifestLoader loader(*validator);
  std::vector<manifest::ManifestFile> manifests;
  for (const auto& [name, text] : texts) {
    manifests.push_back({.display_path = "examples/fleet/" + name, .content = text});
  }
  return loader.LoadFiles(manifests);
}

// The example fleet compiled into flotilla: what flotilla dev runs of it is valid on its own,
// with and without the simulated Macs.
TEST(DevSimulatorsTest, TheSimulatedExampleFleetIsValid) {
  const std::map<std::string, std::string> files = ExampleTexts();
  const manifest::LoadResult all = LoadFleet(files);
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(std::any_of(all.desired.pools.begin(), all.desired.pools.end(),
                          [](const HostPool& pool) { return pool.provider == kMacProvider; }));

  const SimulatedFleet everything =
      SimulatedExamples(files, all.desired, "examples/fleet/",
                        {std::string(kSimulatedProvider), std::string(kMacProvider)});
  EXPECT_EQ(everything.files, files);
  EXPECT_TRUE(everything.left_out.empty());

  const SimulatedFleet simulated =
      SimulatedExamples(files, all.desired, "examples/fleet/", {std::string(kSimulatedProvider)});
  const manifest::LoadResult run = LoadFleet(simulated.files);
  ASSERT_TRUE(run.ok());
  ASSERT_FALSE(run.desired.pools.empty());
  for (const HostPool& pool : run.desired.pools) {
    EXPECT_EQ(pool.provider, kSimulatedProvider) << pool.meta.name;
  }
  size_t left_out = 0;
  for (const auto& [provider, what] : simulated.left_out) {
    EXPECT_EQ(provider, kMacProvider);
    left_out += what.size();
  }
  EXPECT_EQ(run.desired.sets.size() + run.desired.pools.size() + left_out,
            all.desired.sets.size() + all.desired.pools.size());
}

// A pool manifest pointed at simulated hosts: addresses by host, settings by path, dropped
// blocks gone, everything else (comments too) as it was.
TEST(DevSimulatorsTest, RewritesAPoolManifestLineByLine) {
  const std::string text =
      "# A pool.\n"
      "kind: HostPool\n"
      "metadata:\n"
      "  name: minis\n"
      "spec:\n"
      "  provider: tart\n"
      "  tls:\n"
      "    caFile: /etc/ca.pem\n"
      "\n"
      "  tart:\n"
      "    path: /opt/homebrew/bin/tart        # not on PATH\n"
      "    pullPolicy: IfNotPresent\n"
      "  ssh:\n"
      "    knownHostsFile: /etc/known_hosts\n"
      "  defaults:\n"
      "    capacity: {cpu: 10, memory: 32Gi}\n"
      "  hosts:\n"
      "    - name: mini-01\n"
      "      address: ssh://tart@10.0.2.11   # rack b\n"
      "      tags: [m4]\n"
      "    - address: ssh://tart@10.0.2.12:2222\n"
      "      name: mini-02\n"
      "    - name: mini-03\n"
      "      address: ssh://tart@10.0.2.13\n";
  const PoolRewrite rewrite{
      .addresses = {{"mini-01", "ssh://me@127.0.0.1:4001"}, {"mini-03", "ssh://me@127.0.0.1:4003"}},
      .settings = {{"tart.path", "/d/macs/bin/tart"},
                   {"ssh.knownHostsFile", "/d/macs/known_hosts"}},
      .dropped = {"tls"}};
  Result<std::string> rewritten = RewritePool(text, rewrite);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status().ToString();
  EXPECT_EQ(*rewritten,
            "# Seeded by 'flotilla dev' from examples/fleet: each host's address points at a\n"
            "# simulated host on this machine.\n"
            "# Set for the simulated hosts: ssh.knownHostsFile, tart.path.\n"
            "# A pool.\n"
            "kind: HostPool\n"
            "metadata:\n"
            "  name: minis\n"
            "spec:\n"
            "  provider: tart\n"
            "  tart:\n"
            "    path: /d/macs/bin/tart\n"
            "    pullPolicy: IfNotPresent\n"
            "  ssh:\n"
            "    knownHostsFile: /d/macs/known_hosts\n"
            "  defaults:\n"
            "    capacity: {cpu: 10, memory: 32Gi}\n"
            "  hosts:\n"
            "    - name: mini-01\n"
            "      address: ssh://me@127.0.0.1:4001\n"
            "      tags: [m4]\n"
            // mini-02's address comes before its name: left alone, as is a host with no
            // simulator.
            "    - address: ssh://tart@10.0.2.12:2222\n"
            "      name: mini-02\n"
            "    - name: mini-03\n"
            "      address: ssh://me@127.0.0.1:4003\n");

  // A setting the manifest does not have is an error, not a silent no-op.
  PoolRewrite unknown = rewrite;
  unknown.settings["ssh.connectTimeout"] = "5s";
  rewritten = RewritePool(text, unknown);
  ASSERT_FALSE(rewritten.ok());
  EXPECT_EQ(rewritten.status().code(), Status::Code::kNotFound);
  EXPECT_NE(rewritten.status().message().find("ssh.connectTimeout"), std::string::npos);
  // Only under spec: metadata.name is not a host's name, a nested tart.path elsewhere is not
  // the setting.
  rewritten = RewritePool("spec:\n  other:\n    tart:\n      path: /x\n",
                          {.settings = {{"tart.path", "/y"}}});
  EXPECT_FALSE(rewritten.ok());
}

// The example pools rewritten as `flotilla dev` seeds them still load, with the simulated
// hosts' addresses and the simulated Macs' settings.
TEST(DevSimulatorsTest, TheRewrittenExamplePoolsAreValid) {
  std::map<std::string, std::string> files = ExampleTexts();
  const manifest::LoadResult all = LoadFleet(files);
  ASSERT_TRUE(all.ok());
  PoolRewrite parallels{.dropped = {"tls"}};
  PoolRewrite tart{.settings = {{"tart.path", "/d/macs/bin/tart"},
                                {"ssh.knownHostsFile", "/d/macs/known_hosts"}}};
  int port = 4000;
  for (const HostPool& pool : all.desired.pools) {
    for (const HostSpec& host : pool.hosts) {
      ++port;
      if (pool.provider == kMacProvider) {
        tart.addresses[host.name] = "ssh://me@127.0.0.1:" + std::to_string(port);
      } else {
        parallels.addresses[host.name] = "http://127.0.0.1:" + std::to_string(port) + "/api";
      }
    }
  }
  for (auto& [name, text] : files) {
    if (name.starts_with("pools/")) {
      const bool is_tart = text.find("provider: tart") != std::string::npos;
      Result<std::string> rewritten = RewritePool(text, is_tart ? tart : parallels);
      ASSERT_TRUE(rewritten.ok()) << name << ": " << rewritten.status().ToString();
      text = *rewritten;
    }
  }
  const manifest::LoadResult loaded = LoadFleet(files);
  ASSERT_TRUE(loaded.ok());
  size_t tart_hosts = 0;
  for (const HostPool& pool : loaded.desired.pools) {
    const PoolRewrite& rewrite = pool.provider == kMacProvider ? tart : parallels;
    for (const HostSpec& host : pool.hosts) {
      EXPECT_EQ(host.address, rewrite.addresses.at(host.name)) << host.name;
    }
    EXPECT_FALSE(pool.settings.contains("tls")) << pool.meta.name;
    if (pool.provider == kMacProvider) {
      tart_hosts += pool.hosts.size();
      EXPECT_EQ(pool.settings["tart"]["path"], "/d/macs/bin/tart");
      EXPECT_EQ(pool.settings["ssh"]["knownHostsFile"], "/d/macs/known_hosts");
    }
  }
  EXPECT_EQ(tart_hosts, 3u) << "the example's host count is kept";
}

MacSpec ExampleMac() {
  return MacSpec{.pool = "tart-minis",
                 .host = "tart-mini-01",
                 .dir = "/d/macs/tart-mini-01",
                 .port = 41001,
                 .user = "alice",
                 .authorized_keys = "/d/macs/user_key.pub",
                 .cpu = 10,
                 .memory_bytes = uint64_t{32} << 30U,
                 .disk_bytes = uint64_t{460} << 30U,
                 .machine = "arm64",
                 .latencies = true};
}

// The lines of `text`, for checking that each directive is there as a whole line.
std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// A simulated Mac's sshd: loopback, its own host key, the user key only, no PAM, StrictModes
// off, a pid file to wait for, quiet logs, and its own TART_HOME for every session.
TEST(DevSimulatorsTest, ASimulatedMacsSshdIsConfiguredForTheUserKeyAndItsTartHome) {
  const MacSpec mac = ExampleMac();
  EXPECT_EQ(MacTartHome(mac), "/d/macs/tart-mini-01/tart-home");
  EXPECT_EQ(MacAddress(mac), "ssh://alice@127.0.0.1:41001");
  const std::vector<std::string> lines = Lines(SshdConfig(mac));
  for (const char* line :
       {"Port 41001", "ListenAddress 127.0.0.1", "HostKey /d/macs/tart-mini-01/host_key",
        "PidFile /d/macs/tart-mini-01/sshd.pid", "AuthorizedKeysFile /d/macs/user_key.pub",
        "AllowUsers alice", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "LogLevel ERROR", "AllowTcpForwarding yes",
        "SetEnv HOME=/d/macs/tart-mini-01 TART_HOME=/d/macs/tart-mini-01/tart-home"}) {
    EXPECT_EQ(std::count(lines.begin(), lines.end(), line), 1) << line;
  }

  const ChildSpec child = SshdChild("/usr/sbin/sshd", mac);
  EXPECT_EQ(child.binary, "/usr/sbin/sshd");
  EXPECT_EQ(child.args,
            (std::vector<std::string>{"-D", "-e", "-f", "/d/macs/tart-mini-01/sshd_config"}));
  EXPECT_EQ(child.ready_file, "/d/macs/tart-mini-01/sshd.pid");
  EXPECT_EQ(child.log_file, "/d/macs/tart-mini-01/sshd.log");
}

// What the fake tart of a simulated Mac reports, how slow it is, and what powers it.
TEST(DevSimulatorsTest, ASimulatedMacsFakeTartHasItsSizeLatenciesAndPower) {
  MacSpec mac = ExampleMac();
  const nlohmann::json config = FakeTartConfig(mac, 4242);
  EXPECT_EQ(config["host"]["ncpu"], 10);
  EXPECT_EQ(config["host"]["memsize"], uint64_t{32} << 30U);
  EXPECT_EQ(config["host"]["machine"], "arm64");
  EXPECT_EQ(config["host"]["disk_total_kb"], (uint64_t{460} << 30U) / 1024);
  EXPECT_LT(config["host"]["disk_avail_kb"].get<uint64_t>(),
            config["host"]["disk_total_kb"].get<uint64_t>());
  EXPECT_EQ(config["latency_ms"]["clone"], 2000);
  EXPECT_EQ(config["latency_ms"]["boot"], 1000);
  EXPECT_GT(config["latency_ms"]["pull"].get<int>(), 0);
  EXPECT_EQ(config["power_pid"], 4242);

  EXPECT_EQ(config["guest_ports"], nlohmann::json::object());  // echo on 22 and 5900

  mac.latencies = false;
  EXPECT_TRUE(FakeTartConfig(mac, 4242)["latency_ms"].empty());
  mac.guest_ports = {{22, "127.0.0.1:2222"}, {5900, "127.0.0.1:5901"}};
  EXPECT_EQ(FakeTartConfig(mac, 4242)["guest_ports"],
            (nlohmann::json{{"22", "127.0.0.1:2222"}, {"5900", "127.0.0.1:5901"}}));
}

// `flotilla dev --guest-port PORT=HOST:PORT`, for the fake's guest_ports.
TEST(DevSimulatorsTest, GuestPortsAreParsedForTheFakeTart) {
  Result<std::map<int, std::string>> ports =
      ParseGuestPorts({"22=127.0.0.1:2222", "5900=10.0.0.5:5900"});
  ASSERT_TRUE(ports.ok()) << ports.status().ToString();
  EXPECT_EQ(*ports, (std::map<int, std::string>{{22, "127.0.0.1:2222"}, {5900, "10.0.0.5:5900"}}));
  for (const char* bad : {"22", "22=127.0.0.1", "0=127.0.0.1:22", "22=localhost:2222",
                          "22=127.0.0.1:70000", "x=127.0.0.1:22", "=127.0.0.1:22"}) {
    Result<std::map<int, std::string>> refused = ParseGuestPorts({bad});
    EXPECT_EQ(refused.status().code(), Status::Code::kInvalidArgument) << bad;
  }
}

// The fake registry holds the example's images by tag, at the path the fake reads.
TEST(DevSimulatorsTest, TheFakeRegistryHasTheImagesTheVmSetsUse) {
  std::optional<RegistryEntry> xcode =
      RegistryDescriptor("oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16", GuestOs::kMacos);
  ASSERT_TRUE(xcode.has_value());
  EXPECT_EQ(xcode->path, ".fake/registry/ghcr.io/cirruslabs/macos-sequoia-xcode/16.json");
  const nlohmann::json descriptor = nlohmann::json::parse(xcode->text);
  EXPECT_EQ(descriptor["os"], "darwin");
  EXPECT_EQ(descriptor["agent"], true);
  EXPECT_EQ(descriptor["cpuCountMin"], 2);
  EXPECT_EQ(descriptor["memorySizeMin"], uint64_t{4} << 30U);
  EXPECT_EQ(descriptor["diskGB"], 50);

  // No tag: :latest. A registry with a port keeps it in the host folder.
  std::optional<RegistryEntry> ubuntu =
      RegistryDescriptor("oci://localhost:5000/ubuntu", GuestOs::kLinux);
  ASSERT_TRUE(ubuntu.has_value());
  EXPECT_EQ(ubuntu->path, ".fake/registry/localhost:5000/ubuntu/latest.json");
  EXPECT_EQ(nlohmann::json::parse(ubuntu->text)["os"], "linux");

  EXPECT_FALSE(RegistryDescriptor("vm://golden", GuestOs::kMacos).has_value());
  EXPECT_FALSE(
      RegistryDescriptor("oci://ghcr.io/a/b@sha256:" + std::string(64, 'a'), GuestOs::kMacos)
          .has_value());
  EXPECT_FALSE(RegistryDescriptor("catalog://macos/15", GuestOs::kMacos).has_value());
}

TEST(DevSimulatorsTest, KnownHostsNameTheMacsByLoopbackPort) {
  EXPECT_EQ(KnownHostsLine(41001, "ssh-ed25519 AAAAC3Nza flotilla dev tart-mini-01\n"),
            "[127.0.0.1]:41001 ssh-ed25519 AAAAC3Nza");
  EXPECT_EQ(KnownHostsLine(41001, ""), "");
  EXPECT_EQ(KnownHostsLine(41001, "garbage"), "");
}

// Without sshd, ssh-keygen, ssh or flotilla-tartsim there are no simulated Macs, and the reason
// says how to get what is missing; as root, sshd's privilege separation folder is made.
TEST(DevSimulatorsTest, SaysWhatTheSimulatedMacsLack) {
  testing::ScratchDir scratch;
  const fs::path self = scratch.path() / "self";
  MakeExecutable(self / "flotilla-tartsim");
  for (const char* tool : {"sshd", "ssh-keygen", "ssh"}) {
    MakeExecutable(scratch.path() / "bin" / tool);
  }
  MacTools wanted{.sshd = (scratch.path() / "bin" / "sshd").string(),
                  .ssh_keygen = (scratch.path() / "bin" / "ssh-keygen").string(),
                  .ssh = (scratch.path() / "bin" / "ssh").string(),
                  .privsep_dir = (scratch.path() / "run" / "sshd").string()};
  // With no umask, only FindMacTools' own modes keep the folder from being writable by all.
  const mode_t umask_before = umask(0);
  Result<MacTools> found = FindMacTools(wanted, self.string(), "", /*root=*/true);
  umask(umask_before);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->tartsim, (self / "flotilla-tartsim").string());
  EXPECT_FALSE(found->user.empty());
  EXPECT_TRUE(fs::is_directory(wanted.privsep_dir));
  EXPECT_EQ(fs::status(wanted.privsep_dir).permissions(),
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                fs::perms::others_read | fs::perms::others_exec);

  MacTools no_sshd = wanted;
  no_sshd.sshd = (scratch.path() / "none" / "sshd").string();
  found = FindMacTools(no_sshd, self.string(), "", false);
  ASSERT_FALSE(found.ok());
  EXPECT_EQ(found.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(found.status().message().find(no_sshd.sshd), std::string::npos);
  EXPECT_NE(found.status().message().find("apt install openssh-server"), std::string::npos)
      << found.status().message();

  found = FindMacTools(wanted, (scratch.path() / "elsewhere").string(), "", false);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find("cannot find flotilla-tartsim"), std::string::npos)
      << found.status().message();

  // A privilege separation folder that cannot be made (its parent is a file) is named, as root
  // only: another user's sshd does not need it.
  std::ofstream(scratch.path() / "file") << "x";
  MacTools no_privsep = wanted;
  no_privsep.privsep_dir = (scratch.path() / "file" / "sshd").string();
  found = FindMacTools(no_privsep, self.string(), "", /*root=*/true);
  ASSERT_FALSE(found.ok());
  EXPECT_NE(found.status().message().find(no_privsep.privsep_dir), std::string::npos)
      << found.status().message();
  EXPECT_TRUE(FindMacTools(no_privsep, self.string(), "", /*root=*/false).ok());
}

// The Tart provider allows only plain characters in host paths: a data folder with others
// cannot hold the Macs' tart, and nothing is started.
TEST(DevSimulatorsTest, RefusesADataFolderATartPathCannotName) {
  testing::ScratchDir scratch;
  const fs::path dir = scratch.path() / "with space" / "macs";
  Result<SimulatedMacs> macs = StartMacs(Desired{}, MacTools{}, MacsOptions{.dir = dir.string()});
  ASSERT_FALSE(macs.ok());
  EXPECT_EQ(macs.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(macs.status().message().find("--dir"), std::string::npos) << macs.status().message();
  EXPECT_FALSE(fs::exists(dir));
}

// A child is ready once its ready file holds a number; one that exits first is reported with
// its own words, and a refused command line as InvalidArgument.
TEST(DevSimulatorsTest, ChildProcessesReportReadinessAndFailure) {
  testing::ScratchDir scratch;
  const fs::path ready = scratch.path() / "ready";
  const fs::path log = scratch.path() / "log";
  ChildSpec spec{.name = "sim",
                 .binary = "/bin/sh",
                 .args = {"-c", "echo 4242 >" + ready.string() + "; exec sleep 600"},
                 .ready_file = ready.string(),
                 .log_file = log.string(),
                 .message_prefix = "sim: ",
                 .usage_exit_code = 2};
  std::ofstream(ready) << "17";  // a previous start's, which is no sign of this one
  Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Start(spec);
  ASSERT_TRUE(child.ok()) << child.status().ToString();
  EXPECT_EQ((*child)->ready_value(), 4242);
  const pid_t pid = (*child)->pid();
  child->reset();  // stops it
  EXPECT_NE(kill(pid, 0), 0) << "the child outlived its ChildProcess";

  spec.args = {"-c", "echo noise; echo 'sim: port 80 is taken'; echo more; exit 1"};
  child = ChildProcess::Start(spec);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(child.status().message().find("port 80 is taken (sim log: " + log.string()),
            std::string::npos)
      << child.status().message();

  spec.message_prefix.clear();
  spec.args = {"-c", "echo one; echo two; echo three; echo four >&2; exit 2"};
  child = ChildProcess::Start(spec);
  ASSERT_FALSE(child.ok());
  EXPECT_EQ(child.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(child.status().message(), "two; three; four");

  EXPECT_TRUE(RunToCompletion("/bin/sh", {"-c", "exit 0"}, log.string()).ok());
  const Status failed =
      RunToCompletion("/bin/sh", {"-c", "echo no key for you >&2; exit 3"}, log.string());
  EXPECT_EQ(failed.code(), Status::Code::kUnavailable);
  EXPECT_NE(failed.message().find("exited with code 3"), std::string::npos) << failed.message();
  EXPECT_NE(failed.message().find("no key for you"), std::string::npos) << failed.message();
}

}  // namespace
}  // namespace flotilla::cli
