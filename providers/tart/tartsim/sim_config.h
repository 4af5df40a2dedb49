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
//       "bridged_interfaces": ["en0"]  // what `run --net-bridged` accepts
//     },
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

// Compares dotted versions numerically ("2.9.0" < "2.18.1"); "SNAPSHOT" is the newest.
bool VersionAtLeast(const std::string& version, const std::string& minimum);

}  // namespace flotilla::tartsim
