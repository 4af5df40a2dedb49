#include "reconciler/cli/dev_macs.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "providers/tart/settings.h"
#include "reconciler/cli/dev_files.h"

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What flotilla-tartsim plays, by the name it is called by.
constexpr std::string_view kTools[] = {"tart", "sysctl", "sw_vers", "df"};

bool IsExecutable(const std::string& file) {
  std::error_code ec;
  return fs::is_regular_file(file, ec) && access(file.c_str(), X_OK) == 0;
}

// The name of the user running flotilla; empty when the passwords database has none.
std::string CurrentUser() {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (getpwuid_r(geteuid(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return "";
  }
  return found->pw_name;
}

// A loopback port nobody listens on now.
Result<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return Status::Unavailable("cannot open a socket to find a free port");
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
  close(fd);
  if (!ok) {
    return Status::Unavailable("cannot find a free port on 127.0.0.1");
  }
  return static_cast<int>(ntohs(address.sin_port));
}

// Makes a key pair at `key` (and `key`.pub) unless it is there already.
Status EnsureKey(const MacTools& tools, const fs::path& key, const std::string& comment,
                 const fs::path& log_file) {
  std::error_code ec;
  if (fs::exists(key, ec) && fs::exists(key.string() + ".pub", ec)) {
    return Status::Ok();
  }
  fs::create_directories(key.parent_path(), ec);
  fs::remove(key, ec);  // ssh-keygen would ask before overwriting
  fs::remove(key.string() + ".pub", ec);
  return RunToCompletion(tools.ssh_keygen,
                         {"-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key.string()},
                         log_file.string());
}

// The folder of symlinks named tart, sysctl, sw_vers and df, each to flotilla-tartsim (made
// again at every start: flotilla-tartsim may have moved).
Status LinkTools(const fs::path& bin, const std::string& tartsim) {
  std::error_code ec;
  fs::create_directories(bin, ec);
  for (std::string_view tool : kTools) {
    const fs::path link = bin / tool;
    fs::remove(link, ec);
    fs::create_symlink(tartsim, link, ec);
    if (ec) {
      return Status::Unavailable("cannot link " + link.string() + " to " + tartsim + ": " +
                                 ec.message());
    }
  }
  return Status::Ok();
}

// The images the VM sets on `pool` use, with the guest OS they ask for.
std::map<std::string, GuestOs> ImagesOf(const Desired& fleet, const std::string& pool) {
  std::map<std::string, GuestOs> images;
  for (const VMSet& set : fleet.sets) {
    if (set.pool == pool) {
      images.emplace(set.templ.image, set.templ.os);
    }
  }
  return images;
}

// One Mac's spec: the host's declared size, else the pool's, else a 12-core 32 GiB Mac.
MacSpec SpecFor(const HostPool& pool, const HostSpec& host, const MacTools& tools,
                const MacsOptions& options, const std::map<int, std::string>& guest_ports,
                const fs::path& user_key, int port) {
  MacSpec mac{.pool = pool.meta.name,
              .host = host.name,
              .dir = (fs::path(options.dir) / host.name).string(),
              .port = port,
              .user = tools.user,
              .authorized_keys = user_key.string() + ".pub",
              .latencies = options.latencies,
              .guest_ports = guest_ports};
  const std::optional<HostCapacity> capacity =
      host.capacity.has_value() ? host.capacity : pool.defaults.capacity;
  if (capacity.has_value()) {
    mac.cpu = capacity->cpu;
    mac.memory_bytes = capacity->memory.bytes();
    mac.disk_bytes = capacity->disk.bytes();
  }
  const Arch arch = host.arch.value_or(pool.defaults.arch.value_or(Arch::kArm64));
  mac.machine = std::string(ToString(arch));
  return mac;
}

// Everything in a Mac's folder but the running sshd: its host key, sshd_config, and TART_HOME
// with the fake's configuration and registry.
Status PrepareMac(const MacSpec& mac, const MacTools& tools, const MacsOptions& options,
                  const std::map<std::string, GuestOs>& images) {
  const fs::path dir(mac.dir);
  if (Status s = EnsureKey(tools, dir / "host_key", "flotilla dev " + mac.host, dir / "sshd.log");
      !s.ok()) {
    return s;
  }
  if (Status s = WriteDevFile(dir / "sshd_config", SshdConfig(mac)); !s.ok()) {
    return s;
  }
  const fs::path home = MacTartHome(mac);
  if (Status s = WriteDevFile(home / ".fake" / "config.json",
                              FakeTartConfig(mac, options.power_pid).dump(2) + "\n");
      !s.ok()) {
    return s;
  }
  for (const auto& [image, os] : images) {
    if (std::optional<RegistryEntry> entry = RegistryDescriptor(image, os)) {
      if (Status s = WriteDevFile(home / entry->path, entry->text); !s.ok()) {
        return s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<MacTools> FindMacTools(MacTools wanted, const std::string& self_dir,
                              std::string_view path_env, bool root) {
  for (const auto& [program, package] :
       {std::pair{&wanted.sshd, "openssh-server"}, std::pair{&wanted.ssh_keygen, "openssh-client"},
        std::pair{&wanted.ssh, "openssh-client"}}) {
    if (!IsExecutable(*program)) {
      return Status::FailedPrecondition("there is no " + *program + "; apt install " + package);
    }
  }
  Result<std::string> tartsim = FindCompanion(
      kTartSimBinary, "plays tart on the simulated Macs of 'flotilla dev'", self_dir, path_env);
  if (!tartsim.ok()) {
    return Status::FailedPrecondition(tartsim.status().message());
  }
  wanted.tartsim = std::move(*tartsim);
  if (root) {
    std::error_code ec;
    if (fs::create_directories(wanted.privsep_dir, ec)) {
      // As the package makes it: sshd's unprivileged child chroots into it.
      fs::permissions(wanted.privsep_dir,
                      fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec,
                      fs::perm_options::replace, ec);
    }
    if (!fs::is_directory(wanted.privsep_dir, ec)) {
      return Status::FailedPrecondition(
          "sshd needs " + wanted.privsep_dir +
          " when run as root, and it cannot be made: " + (ec ? ec.message() : "not a folder") +
          " (make it with 'sudo mkdir -p " + wanted.privsep_dir + "', or run as another user)");
    }
  }
  wanted.user = CurrentUser();
  if (wanted.user.empty() ||
      !providers::tart::ParseSshAddress("ssh://" + wanted.user + "@127.0.0.1").ok()) {
    return Status::FailedPrecondition(
        "the current user " + (wanted.user.empty() ? "has no name" : "'" + wanted.user + "'") +
        ", which the simulated Macs' SSH sessions run as, is not a user name an ssh:// address "
        "can carry");
  }
  return wanted;
}

std::string MacTartHome(const MacSpec& mac) { return (fs::path(mac.dir) / "tart-home").string(); }

std::string MacAddress(const MacSpec& mac) {
  return "ssh://" + mac.user + "@127.0.0.1:" + std::to_string(mac.port);
}

std::string SshdConfig(const MacSpec& mac) {
  const fs::path dir(mac.dir);
  std::ostringstream text;
  text << "# Written by 'flotilla dev' at every start: the simulated Mac " << mac.host
       << " of pool " << mac.pool << ".\n"
       << "Port " << mac.port << "\n"
       << "ListenAddress 127.0.0.1\n"
       << "HostKey " << (dir / "host_key").string() << "\n"
       << "PidFile " << (dir / "sshd.pid").string() << "\n"
       << "AuthorizedKeysFile " << mac.authorized_keys << "\n"
       << "AllowUsers " << mac.user << "\n"
       << "PubkeyAuthentication yes\n"
       << "PasswordAuthentication no\n"
       << "KbdInteractiveAuthentication no\n"
       << "UsePAM no\n"
       // The files are in a user's folder, whatever its modes: sshd must not refuse them.
       << "StrictModes no\n"
       << "AllowAgentForwarding no\n"
       // As a Mac's sshd: the Tart provider's tunnels to the guests are `ssh -W IP:PORT`.
       << "AllowTcpForwarding yes\n"
       << "X11Forwarding no\n"
       << "LogLevel ERROR\n"
       // Each Mac has its own home (as a Mac's user has, with no shell start-up files: this
       // machine's ~/.bashrc, which Debian's bash reads for SSH sessions, is not the Mac's) and
       // its own Tart state; the Tart provider keeps this TART_HOME (SetEnv: OpenSSH 8.7).
       << "SetEnv HOME=" << dir.string() << " TART_HOME=" << MacTartHome(mac) << "\n";
  return text.str();
}

ChildSpec SshdChild(const std::string& sshd, const MacSpec& mac) {
  const fs::path dir(mac.dir);
  return ChildSpec{.name = "sshd of simulated Mac " + mac.host,
                   .binary = sshd,
                   .args = {"-D", "-e", "-f", (dir / "sshd_config").string()},
                   .ready_file = (dir / "sshd.pid").string(),
                   .log_file = (dir / "sshd.log").string()};
}

json FakeTartConfig(const MacSpec& mac, int64_t power_pid) {
  json ports = json::object();
  for (const auto& [port, target] : mac.guest_ports) {
    ports[std::to_string(port)] = target;
  }
  json latency = json::object();
  if (mac.latencies) {
    latency = {{"clone", 2000}, {"pull", 4000}, {"boot", 1000}};
  }
  const uint64_t disk_kb = mac.disk_bytes / 1024;
  return {{"host",
           {{"ncpu", mac.cpu},
            {"memsize", mac.memory_bytes},
            {"machine", mac.machine},
            {"disk_total_kb", disk_kb},
            {"disk_avail_kb", disk_kb / 10 * 8}}},
          {"latency_ms", latency},
          {"power_pid", power_pid},
          {"guest_ports", ports}};
}

Result<std::map<int, std::string>> ParseGuestPorts(const std::vector<std::string>& values) {
  std::map<int, std::string> ports;
  auto port_of = [](std::string_view text) -> int {
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != text.npos) {
      return 0;
    }
    const int port = std::stoi(std::string(text));
    return port <= 65535 ? port : 0;
  };
  for (const std::string& value : values) {
    const size_t equals = value.find('=');
    const size_t colon = value.rfind(':');
    in_addr ip{};
    const bool ok =
        equals != std::string::npos && colon != std::string::npos && colon > equals &&
        port_of(std::string_view(value).substr(0, equals)) > 0 &&
        port_of(std::string_view(value).substr(colon + 1)) > 0 &&
        inet_pton(AF_INET, value.substr(equals + 1, colon - equals - 1).c_str(), &ip) == 1;
    if (!ok) {
      return Status::InvalidArgument("--guest-port " + value +
                                     ": expected PORT=IPV4:PORT (22=127.0.0.1:2222, say)");
    }
    ports[port_of(std::string_view(value).substr(0, equals))] = value.substr(equals + 1);
  }
  return ports;
}

std::optional<RegistryEntry> RegistryDescriptor(std::string_view image, GuestOs os) {
  Result<providers::tart::ImageRef> ref = providers::tart::ParseImage(image);
  if (!ref.ok() || ref->kind != providers::tart::ImageRef::Kind::kOci ||
      ref->name.find('@') != std::string::npos) {
    return std::nullopt;
  }
  const size_t colon = ref->name.rfind(':');
  if (colon == std::string::npos || ref->name.find('/', colon) != std::string::npos) {
    return std::nullopt;
  }
  const json descriptor = {{"os", os == GuestOs::kMacos ? "darwin" : "linux"},
                           {"cpuCountMin", 2},
                           {"memorySizeMin", uint64_t{4} << 30U},
                           {"diskGB", 50},
                           {"agent", true}};
  return RegistryEntry{.path = ".fake/registry/" + ref->name.substr(0, colon) + "/" +
                               ref->name.substr(colon + 1) + ".json",
                       .text = descriptor.dump() + "\n"};
}

std::string KnownHostsLine(int port, std::string_view public_key) {
  std::istringstream words{std::string(public_key)};
  std::string type;
  std::string key;
  if (!(words >> type >> key) || type.find_first_of("#[]") != std::string::npos) {
    return "";
  }
  return "[127.0.0.1]:" + std::to_string(port) + " " + type + " " + key;
}

Result<SimulatedMacs> StartMacs(const Desired& fleet, const MacTools& tools,
                                const MacsOptions& options) {
  const fs::path dir(options.dir);
  Result<std::map<int, std::string>> guest_ports = ParseGuestPorts(options.guest_ports);
  if (!guest_ports.ok()) {
    return guest_ports.status();
  }
  SimulatedMacs macs;
  macs.settings = {{"tart.path", (dir / "bin" / "tart").string()},
                   {"ssh.knownHostsFile", (dir / "known_hosts").string()}};
  // The Tart provider's own check of the paths it will be given.
  if (Result<providers::tart::TartPoolSettings> settings = providers::tart::ParsePoolSettings(
          {{"tart", {{"path", macs.settings["tart.path"]}}},
           {"ssh", {{"knownHostsFile", macs.settings["ssh.knownHostsFile"]}}}});
      !settings.ok()) {
    return Status::FailedPrecondition(
        "the data folder " + options.dir + " cannot hold the simulated Macs' tart (" +
        settings.status().message() +
        "): pick a --dir whose path has only letters, digits, '.', '_', '-', '+' and '/'");
  }
  if (Status s = LinkTools(dir / "bin", tools.tartsim); !s.ok()) {
    return s;
  }
  const fs::path user_key = dir / "user_key";
  macs.user_key = user_key.string();
  if (Status s = EnsureKey(tools, user_key, "flotilla dev", dir / "ssh-keygen.log"); !s.ok()) {
    return s;
  }
  std::string known_hosts;
  for (const HostPool& pool : fleet.pools) {
    if (pool.provider != kMacProvider) {
      continue;
    }
    const std::map<std::string, GuestOs> images = ImagesOf(fleet, pool.meta.name);
    std::string ports;
    for (const HostSpec& host : pool.hosts) {
      int port = 0;
      if (auto known = options.ports.find(host.name); known != options.ports.end()) {
        port = known->second;
      } else if (Result<int> free = FreePort(); free.ok()) {
        port = *free;
      } else {
        return free.status();
      }
      const MacSpec mac = SpecFor(pool, host, tools, options, *guest_ports, user_key, port);
      if (Status s = PrepareMac(mac, tools, options, images); !s.ok()) {
        return s;
      }
      const std::string line =
          KnownHostsLine(port, ReadDevFile(fs::path(mac.dir) / "host_key.pub"));
      if (line.empty()) {
        return Status::Unavailable("the host key " + mac.dir + "/host_key.pub is damaged");
      }
      known_hosts += line + "\n";
      Result<std::unique_ptr<ChildProcess>> sshd = ChildProcess::Start(SshdChild(tools.sshd, mac));
      if (!sshd.ok()) {
        return Status::Unavailable("cannot start the simulated Mac " + host.name + " of pool " +
                                   pool.meta.name + " on port " + std::to_string(port) + ": " +
                                   sshd.status().message());
      }
      macs.processes.push_back(std::move(*sshd));
      macs.addresses[host.name] = MacAddress(mac);
      macs.ports[host.name] = port;
      ports += (ports.empty() ? "" : ", ") + std::to_string(port);
    }
    macs.lines.push_back(pool.meta.name + ": " + std::to_string(pool.hosts.size()) +
                         " simulated Macs with Tart, over SSH on 127.0.0.1 port" +
                         (pool.hosts.size() == 1 ? " " : "s ") + ports);
  }
  if (Status s = WriteDevFile(dir / "known_hosts", known_hosts); !s.ok()) {
    return s;
  }
  return macs;
}

}  // namespace flotilla::cli
