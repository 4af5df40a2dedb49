#pragma once

// The simulated Macs of `flotilla dev`, for the example fleet's Tart pools. Each is a real
// OpenSSH sshd on a free loopback port (one child process per Mac, child_process.h), whose
// sessions run as the current user with the Mac's own TART_HOME (sshd_config SetEnv, OpenSSH
// 8.7 and later), where flotilla-tartsim plays `tart` and the host tools a Mac has and Linux
// lacks (sysctl, sw_vers, df). The Tart provider reaches them exactly as it reaches a Mac: over
// SSH, with the pool's key, its known_hosts and its tart.path.
//
// Their folder (macs/ in dev's data folder), kept between starts:
//   bin/{tart,sysctl,sw_vers,df}  symlinks to flotilla-tartsim (the pools' tart.path)
//   user_key, user_key.pub        the key flotilla logs in with (the pools' sshKey secret)
//   known_hosts                   every Mac's host key (the pools' ssh.knownHostsFile)
//   <host>/sshd_config, host_key, sshd.pid, sshd.log
//   <host>/tart-home/             TART_HOME: VMs, image cache, and .fake/ (the fake's host
//                                 facts, latencies and registry)
//
// The Macs are powered by flotilla: a `tart run` of the fake ends, as on `tart stop`, when the
// flotilla process named by its power_pid ends (killed or not). So no VM of a simulated Mac
// outlives `flotilla dev`; at the next start the loop starts the VMs that should run again.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "reconciler/cli/child_process.h"
#include "reconciler/model/types.h"

namespace flotilla::cli {

inline constexpr std::string_view kTartSimBinary = "flotilla-tartsim";
// The provider whose hosts the simulated Macs are.
inline constexpr std::string_view kMacProvider = "tart";

// The programs the simulated Macs need on this machine, and the user their sessions run as.
struct MacTools {
  std::string sshd = "/usr/sbin/sshd";
  std::string ssh_keygen = "/usr/bin/ssh-keygen";
  std::string ssh = "/usr/bin/ssh";  // the Tart provider's client
  // sshd's privilege separation folder, which it needs when it runs as root.
  std::string privsep_dir = "/run/sshd";
  std::string tartsim;  // filled by FindMacTools
  std::string user;     // filled by FindMacTools: the user running flotilla
};

// `wanted` with tartsim (beside flotilla, else on `path_env`) and the user filled in, once every
// program is there and, for `root`, the privilege separation folder exists (made here when it
// is missing). FailedPrecondition saying what is missing and how to get it
// ("apt install openssh-server").
Result<MacTools> FindMacTools(MacTools wanted, const std::string& self_dir,
                              std::string_view path_env, bool root);

// One simulated Mac.
struct MacSpec {
  std::string pool;             // the pool it stands in for
  std::string host;             // the example's host name
  std::string dir;              // its folder (macs/<host>)
  int port = 0;                 // its sshd's, on 127.0.0.1
  std::string user;             // the only user sshd lets in (the current one)
  std::string authorized_keys;  // the user key's .pub
  // What sysctl, sw_vers and df report.
  int64_t cpu = 12;
  uint64_t memory_bytes = uint64_t{32} << 30U;
  uint64_t disk_bytes = uint64_t{1000} * 1000 * 1000 * 1000;
  std::string machine = "arm64";
  // Latencies so that a converge can be watched (clone 2 s, pull 4 s, boot 1 s); false: none.
  bool latencies = true;
  // What its guests answer on their ports (the fake's guest_ports): port -> "HOST:PORT" it
  // relays to; empty: echo on 22 and 5900.
  std::map<int, std::string> guest_ports;
};

// Its TART_HOME: <dir>/tart-home.
std::string MacTartHome(const MacSpec& mac);
// ssh://USER@127.0.0.1:PORT, its address in the pool.
std::string MacAddress(const MacSpec& mac);
// The text of its sshd_config: loopback only, its host key, the user key only (no password,
// no keyboard-interactive, no PAM), StrictModes off (the files live in a user's folder), its
// pid file, ERROR logging, TCP forwarding allowed (as a Mac's sshd allows it: the Tart
// provider's tunnels are `ssh -W` to the guests), and SetEnv TART_HOME.
std::string SshdConfig(const MacSpec& mac);
// How its sshd is started: in the foreground (-D), logging to stderr (-e, into <dir>/sshd.log),
// with SshdConfig's file; ready once it writes its pid file (it has bound its port by then).
ChildSpec SshdChild(const std::string& sshd, const MacSpec& mac);
// TART_HOME/.fake/config.json: the host's facts, the latencies, `power_pid` and `guest_ports`.
nlohmann::json FakeTartConfig(const MacSpec& mac, int64_t power_pid);

// A descriptor of the fake registry: its path under TART_HOME and its text.
struct RegistryEntry {
  std::string path;  // ".fake/registry/ghcr.io/cirruslabs/macos-sequoia-xcode/16.json"
  std::string text;
};
// The fake registry's descriptor of `image` ("oci://ghcr.io/cirruslabs/macos-sequoia-xcode:16")
// for guests of `os`: 2 cpus and 4 GiB at least, a 50 GB disk, the guest agent. nullopt for
// what the registry does not hold by tag: vm:// images, digests, what ParseImage refuses.
std::optional<RegistryEntry> RegistryDescriptor(std::string_view image, GuestOs os);

// `flotilla dev --guest-port` values ("22=127.0.0.1:2222": PORT=IPV4:PORT, ports 1..65535) as
// MacSpec::guest_ports. InvalidArgument naming the value that is not of that form.
Result<std::map<int, std::string>> ParseGuestPorts(const std::vector<std::string>& values);

// "[127.0.0.1]:PORT TYPE KEY" for a host key whose .pub text is `public_key` ("TYPE KEY
// COMMENT"); empty when that text is not a public key.
std::string KnownHostsLine(int port, std::string_view public_key);

// The running Macs.
struct SimulatedMacs {
  std::vector<std::unique_ptr<ChildProcess>> processes;  // one sshd per Mac
  std::map<std::string, std::string> addresses;          // host -> ssh://USER@127.0.0.1:PORT
  std::map<std::string, int> ports;                      // host -> port, for the next start
  // The Tart pools' settings, as RewritePool takes them: tart.path, ssh.knownHostsFile.
  std::map<std::string, std::string> settings;
  std::string user_key;            // the private key's file: the pools' sshKey
  std::vector<std::string> lines;  // for the banner, one per pool
};

struct MacsOptions {
  std::string dir;                   // macs/ in dev's data folder
  std::map<std::string, int> ports;  // host -> port of a previous start; others get free ones
  bool latencies = true;
  int64_t power_pid = 0;                 // the process whose end powers the Macs off (flotilla's)
  std::vector<std::string> guest_ports;  // `flotilla dev --guest-port` (ParseGuestPorts)
};

// Prepares and starts one Mac per host of every pool of provider tart in `fleet`, with the
// images of the pool's VM sets in its fake registry. Keys are made once (ssh-keygen) and kept.
// InvalidArgument when a guest port is malformed (ParseGuestPorts); FailedPrecondition when
// `options.dir` cannot be a tart.path's folder (the Tart provider allows only letters, digits,
// '.', '_', '-', '+' and '/' in host paths); Unavailable when a key cannot be made or an sshd
// does not start (its message, and its log's path).
// REQUIRES: `tools` from FindMacTools; called on the thread the Macs' lifetime follows.
Result<SimulatedMacs> StartMacs(const Desired& fleet, const MacTools& tools,
                                const MacsOptions& options);

}  // namespace flotilla::cli
