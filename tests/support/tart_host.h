#pragma once

// A simulated Mac for provider tart: a real OpenSSH sshd on loopback (tests/integration/
// servers.h) whose user runs flotilla-tartsim as `tart` (with the host tools a Mac has and
// Linux lacks: sysctl, sw_vers, df), with its own TART_HOME. Tests reach it exactly as the
// provider reaches a Mac, and change its world directly (the fake keeps Tart's on-disk state).

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "providers/secrets.h"
#include "reconciler/model/types.h"
#include "tests/integration/servers.h"
#include "tests/support/process.h"
#include "tests/support/shell.h"

#ifndef FLOTILLA_TARTSIM_BIN
#error "FLOTILLA_TARTSIM_BIN must name the flotilla-tartsim binary"
#endif

namespace flotilla::testing {

inline constexpr const char* kMacImage = "ghcr.io/cirruslabs/macos-sequoia-base:latest";
inline constexpr const char* kLinuxImage = "ghcr.io/cirruslabs/ubuntu:latest";

class SimulatedMac {
 public:
  // `fake` is merged into the fake's .fake/config.json (latencies, faults, version);
  // `sshd_config` is added to its sshd's configuration.
  explicit SimulatedMac(const fs::path& dir, const nlohmann::json& fake = {},
                        const std::string& sshd_config = "")
      // Its sessions have their own HOME (with no shell start-up files: this machine's
      // ~/.bashrc, which Debian's bash reads for SSH sessions, is not the Mac's) and TART_HOME.
      : dir_(dir),
        sshd_(dir / "sshd", "SetEnv HOME=" + (dir / "home").string() +
                                " TART_HOME=" + (dir / "tart-home").string() + "\n" + sshd_config) {
    fs::create_directories(dir / "home");
    fs::create_directories(dir / "bin");
    for (const char* tool : {"tart", "sysctl", "sw_vers", "df"}) {
      std::error_code ec;
      fs::create_symlink(FLOTILLA_TARTSIM_BIN, dir / "bin" / tool, ec);
    }
    fs::create_directories(home() / ".fake");
    config_ = {{"version", "2.32.1"},
               {"host",
                {{"ncpu", 12},
                 {"memsize", uint64_t{32} << 30},
                 {"machine", "arm64"},
                 {"os_version", "15.5"}}},
               {"latency_ms", {{"limitcheck", 200}}}};
    if (fake.is_object()) {
      config_.merge_patch(fake);
    }
    WriteConfig();
    AddImage(kMacImage, "darwin", /*agent=*/true);
    AddImage(kLinuxImage, "linux", /*agent=*/true);
  }

  // Every VM still running is stopped: a `tart run` the provider started lives in its own
  // session, beyond this object.
  ~SimulatedMac() {
    std::error_code ec;
    for (const auto& vm : fs::directory_iterator(home() / "vms", ec)) {
      Tart("stop --timeout 1 " + Quote(vm.path().filename()));
    }
  }
  SimulatedMac(const SimulatedMac&) = delete;
  SimulatedMac& operator=(const SimulatedMac&) = delete;

  bool ready() const { return sshd_.ready(); }
  fs::path home() const { return dir_ / "tart-home"; }
  fs::path tart() const { return dir_ / "bin" / "tart"; }
  std::string address() const {
    return "ssh://" + Sh("id -un") + "@127.0.0.1:" + std::to_string(sshd_.port());
  }
  SshServer& sshd() { return sshd_; }

  // The fake's configuration: change it, then WriteConfig().
  nlohmann::json& config() { return config_; }
  void WriteConfig() { std::ofstream(home() / ".fake" / "config.json") << config_.dump(2); }

  // An image in the fake registry ("host/ns/repo:tag").
  void AddImage(const std::string& reference, const std::string& os, bool agent) {
    const size_t colon = reference.rfind(':');
    const fs::path file =
        home() / ".fake" / "registry" /
        (reference.substr(0, colon) + "/" + reference.substr(colon + 1) + ".json");
    fs::create_directories(file.parent_path());
    std::ofstream(file) << nlohmann::json{
        {"os", os},
        {"cpuCountMin", 2},
        {"memorySizeMin", uint64_t{4} << 30},
        {"diskGB", 50},
        {"agent", agent}}.dump();
  }

  // The pool's settings and secrets for a HostPool of provider tart on this Mac. Its sshd sets
  // TART_HOME for the sessions too (as a Mac's login environment may), so a pool of several
  // simulated Macs leaves tart.home unset.
  nlohmann::json Settings() const {
    return {{"tart", {{"path", tart().string()}, {"home", home().string()}}},
            {"ssh", {{"knownHostsFile", sshd_.known_hosts().string()}}}};
  }
  fs::path known_hosts() const { return sshd_.known_hosts(); }
  fs::path user_key() const { return sshd_.user_key(); }
  // Lets the holder of `other`'s user key log in here too (one pool key for several Macs).
  void Authorize(const SimulatedMac& other) {
    std::ofstream(dir_ / "sshd" / "authorized_keys", std::ios::app)
        << ReadText(other.user_key().string() + ".pub");
  }
  void AddSecrets(providers::MapSecretSource& secrets, const std::string& ref) const {
    std::ifstream key(sshd_.user_key());
    std::stringstream text;
    text << key.rdbuf();
    secrets.Set(ref, "sshKey", text.str());
  }
  HostPool Pool(const std::string& name, const std::string& ref) const {
    HostPool pool;
    pool.meta.name = name;
    pool.provider = "tart";
    pool.credentials_ref = ref;
    pool.settings = Settings();
    pool.hosts.push_back(HostSpec{.name = "mac", .address = address()});
    return pool;
  }

  struct Ran {
    int code = -1;
    std::string out;
    std::string err;
  };
  // Runs the fake here, with this Mac's TART_HOME (not over SSH): the world behind the
  // provider's back.
  Ran Tart(const std::string& args) const {
    const fs::path out = dir_ / "tart.out";
    const fs::path err = dir_ / "tart.err";
    Ran ran;
    ran.code = RunShell("TART_HOME=" + Quote(home()) + " " + Quote(tart()) + " " + args + " >" +
                        Quote(out) + " 2>" + Quote(err) + " </dev/null");
    ran.out = ReadText(out);
    ran.err = ReadText(err);
    return ran;
  }

  // A VM made out of band, in `state` ("stopped", "running", "suspended").
  void PutVm(const std::string& name, GuestOs os, const std::string& state) {
    Tart(std::string("clone ") + (os == GuestOs::kMacos ? kMacImage : kLinuxImage) + " " +
         Quote(name));
    Tart("set " + Quote(name) + " --cpu 2 --memory 4096");
    if (state == "running") {
      runs_.push_back(std::make_unique<Process>(
          ShellArgv("env TART_HOME=" + Quote(home()) + " " + Quote(tart()) + " run --no-graphics " +
                    Quote(name) + " >>" + Quote(dir_ / (name + ".out-of-band.log")) + " 2>&1")));
      WaitUntil([&] {
        return Tart("get " + Quote(name) + " --format json").out.find("\"running\"") !=
               std::string::npos;
      });
    } else if (state == "suspended") {
      std::ofstream(home() / "vms" / name / "state.vzvmsave") << "saved";
    }
  }

  static std::string ReadText(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  fs::path dir_;
  SshServer sshd_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<Process>> runs_;
};

}  // namespace flotilla::testing
