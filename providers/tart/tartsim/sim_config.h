#pragma once

// The fake's own knobs: TART_HOME/.fake/config.json, re-read by every invocation (each `tart`
// call is its own process, as with the real CLI). Every key is optional; an unknown key or a
// value of the wrong type is an error (exit 70), so a typo in a test never goes unnoticed.
//
//   {
//     "version": "2.32.1",            // the Tart version to behave as (--version, JSON fields,
//                                     // error texts and commands by version)
//     "host": {                       // what sysctl, sw_vers and df report
//       "ncpu": 12, "memsize": 34359738368, "machine": "arm64",
//       "os_version": "15.5", "build_version": "24F74",
//       "disk_total_kb": 976562500, "disk_avail_kb": 781250000,   // 1 TB, 800 GB free
//       "bridged_interfaces": ["en0"], // what `run --net-bridged` accepts
//       "shared_net_address": "127.64.3.1" // the host's address on the VMs' NAT network
//                                     // (vmnet's Shared_Net_Address; a Mac's default is
//                                     // 192.168.64.1): bootpd leases .2 to .254 of its /24.
//                                     // Default: 127.X.Y.1, X.Y from TART_HOME's path, a
//                                     // loopback /24 of its own per simulated Mac, where the
//                                     // guests' listeners are reachable (guest_net.h)
//     },
//     "guest_ports": {                // what a running guest answers on its ports (guest_net.h):
//       "22": "127.0.0.1:2222"        // PORT: a relay to HOST:PORT (a real sshd standing in
//     },                              // for the guest). Without the key (or with {}), 22 and
//                                     // 5900 answer with an echo service; other ports refuse
//     "latency_ms": {                 // sleeps, in milliseconds
//       "cmd": 0,          // every command, first (Swift start-up + tmp GC)
//       "clone": 0,        // the copy in `clone`, under the global TART_HOME lock
//       "pull": 0,         // fetching an image that is not cached
//       "lock": 0,         // `run`: from start to taking the VM's lock
//       "limitcheck": 300, // `run`: lock held (state "running") before the VM-limit check
//       "boot": 0,         // `run`: VM started until the guest (and its agent) is up
//       "ip": 0,           // `run`: guest up until its DHCP lease is written
//       "shutdown": 0      // `run`: guest shutdown requested until `run` exits
//     },
//     "jitter": 0.0,                  // each latency is scaled by a random factor in [1-j, 1+j]
//     "faults": {
//       "vm_limit": 2,                // darwin guests that may run at once
//       "limit_stuck": 0,             // the next N darwin `run`s hit the limit anyway (each one
//                                     // decrements this value in the file, under a lock)
//       "link_race": 0,               // the next N `clone`s of a cached remote image open it
//                                     // while another pull re-links its tag (decremented the
//                                     // same way): see CmdClone
//       "keychain_locked": false,     // `run` fails with SecKeyCreateRandomKey_ios; clone/pull
//                                     // print the Keychain warning
//       "vz_start_failure": false,    // `run` fails with VZErrorDomain Code=1
//       "guest_shutdown_after_ms": 0, // > 0: the guest shuts itself down this long after boot
//       "hang": [],                   // command names that sleep until killed
//       "no_lease": false,            // `run` never writes a DHCP lease
//       "duplicate_ip": false         // `run` leases an IP another MAC already holds
//     },
//     "shuffle_keys": false,          // true or a number (the seed): permute JSON object keys
//     "get_size_number": false,       // `get` prints Size as a number, not a string
//     "power_pid": 0                  // > 0: the Mac is powered by this process: when it ends,
//                                     // every `run` stops its VM as on `tart stop` (a `run`
//                                     // started after it ended stops at once). `flotilla dev`
//                                     // sets its own pid, so no VM outlives it.
//   }

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace flotilla::tartsim {

struct HostFacts {
  int64_t ncpu = 12;
  int64_t memsize = 34359738368;  // 32 GiB
  std::string machine = "arm64";
  std::string os_version = "15.5";
  std::string build_version = "24F74";
  int64_t disk_total_kb = 976562500;  // 1 TB
  int64_t disk_avail_kb = 781250000;  // 800 GB
  std::vector<std::string> bridged_interfaces = {"en0"};
  std::string shared_net_address;  // empty: derived from TART_HOME (SharedNetAddress)
};

struct Latencies {
  int64_t cmd = 0;
  int64_t clone = 0;
  int64_t pull = 0;
  int64_t lock = 0;
  int64_t tmplock = 0;  // clone/pull: between making the ~/.tart/tmp folder and locking it
  int64_t limitcheck = 300;
  int64_t boot = 0;
  int64_t ip = 0;
  int64_t shutdown = 0;
};

struct Faults {
  int64_t vm_limit = 2;
  int64_t limit_stuck = 0;
  int64_t link_race = 0;
  bool keychain_locked = false;
  bool vz_start_failure = false;
  int64_t guest_shutdown_after_ms = 0;
  std::vector<std::string> hang;
  bool no_lease = false;
  bool duplicate_ip = false;
};

struct FakeConfig {
  std::string version = "2.32.1";
  HostFacts host;
  Latencies latency_ms;
  double jitter = 0.0;
  Faults faults;
  std::optional<uint32_t> shuffle_seed;  // set when "shuffle_keys" is true (seed 0) or a number
  bool get_size_number = false;
  int64_t power_pid = 0;  // 0: always powered
  // Guest port -> "HOST:PORT" it relays to; empty: echo on 22 and 5900.
  std::map<uint16_t, std::string> guest_ports;

  // True when `version` is at least `minimum` ("2.18.1"). "SNAPSHOT" counts as the newest.
  bool AtLeast(const std::string& minimum) const;
  // `ms` scaled by the jitter factor.
  int64_t Jittered(int64_t ms) const;
  bool Hangs(const std::string& command) const;
};

// A malformed TART_HOME/.fake/config.json.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads `path`; a missing file gives the defaults. Throws ConfigError.
FakeConfig LoadFakeConfig(const std::string& path);

// Takes one from the counter faults.<counter> ("limit_stuck", "link_race") in the file at
// `path`, under an fcntl write lock on it. Returns whether it was positive (this command must
// fail). Throws ConfigError.
bool ConsumeFault(const std::string& path, const std::string& counter);

// The host's address on the VMs' NAT network: `host.shared_net_address`, else 127.X.Y.1 with
// X (1..254) and Y from a hash of `tart_home`, so that each simulated Mac leases its guests
// loopback addresses of their own.
std::string SharedNetAddress(const FakeConfig& config, const std::string& tart_home);

// "a.b.c.d" as a number in host order; nullopt when not an IPv4 address.
std::optional<uint32_t> ParseIpv4(const std::string& text);
// "1.2.3.4:22" (an IPv4 address and a port 1..65535).
std::optional<std::pair<std::string, uint16_t>> ParseHostPort(const std::string& text);

// Compares dotted versions numerically ("2.9.0" < "2.18.1"); "SNAPSHOT" is the newest.
bool VersionAtLeast(const std::string& version, const std::string& minimum);

}  // namespace flotilla::tartsim
