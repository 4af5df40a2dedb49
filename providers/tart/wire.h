#pragma once

// What Tart prints, read defensively (tart-cli-by-version.md §2): `tart list/get --format json`
// with unknown fields ignored, `Size` as a number or a string, `Source` in either case, `State`
// falling back to `Running`; Tart's exit codes and error texts (§2.5) sorted into kinds; and the
// sectioned output of the one script that observes a host.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/observed.h"
#include "reconciler/model/result.h"
#include "reconciler/model/status.h"

namespace flotilla::providers::tart {

// One entry of `tart list --format json`.
struct ListEntry {
  std::string source;  // "local" or "oci", lower case whatever the version printed
  std::string name;
  std::string state;  // "running", "suspended", "stopped" (from Running before Tart 1.8)
  uint64_t disk_gb = 0;
};

// `tart get NAME --format json`.
struct VmDetails {
  std::string os;  // "darwin", "linux"; empty before Tart 2.8
  uint32_t cpu = 0;
  uint64_t memory_mib = 0;
  uint64_t disk_gb = 0;
  std::string state;
};

Result<std::vector<ListEntry>> ParseList(std::string_view json);
Result<VmDetails> ParseGet(std::string_view json);

// Tart's word for a VM's state as the model's.
VmState StateFromTart(std::string_view state);

// What a failed tart command means (Tart's RuntimeError kinds and the texts of §2.5).
enum class Failure {
  kOther,
  kDoesNotExist,    // exit 2: the specified VM "N" does not exist
  kNotRunning,      // exit 2: VM "N" is not running
  kAlreadyRunning,  // exit 2: VM "N" is already running!
  kIsRunning,       // exit 1: VM "N" is running (delete)
  kVmLimit,         // exit 1: the system limit of macOS VMs (both texts)
  kKeychainLocked,  // exit 1: -25308 or SecKeyCreateRandomKey_ios
  kNoAgent,         // exit 1: the control socket cannot be reached (no guest agent)
  kTargetExists,    // exit 64: rename onto an existing VM
  kNoIp,            // exit 1: no IP address found
  // exit 1: a VM's config.json was read while another tart command rewrote it (Tart writes it
  // in place, not atomically): another try reads it whole
  kTornRead,
  // exit 1: `Failed("failed to lock file://...: Bad file descriptor")`: a clone or pull made its
  // ~/.tart/tmp folder and another tart command's garbage collection removed it before it was
  // locked (Tart's FileLock.swift opens unchecked; Root.swift collects before every command but
  // pull and clone); another try makes a new folder
  kLockRace,
  kUsage,  // exit 64, other
};
Failure Classify(int exit_code, std::string_view err);

// The first non-empty line of `text` (of stderr, else `fallback`), at most 300 characters.
std::string FirstLine(std::string_view text, std::string_view fallback = "");
// The last non-empty line of `text`, trimmed, at most 300 characters: a tool's error after its
// progress lines, ssh's reason after its warnings.
std::string LastLine(std::string_view text);

// Everything the observe script printed about one host.
struct HostReport {
  std::string tart_version;
  uint32_t ncpu = 0;
  uint64_t memsize = 0;
  std::string machine;     // "arm64"
  std::string os_version;  // "15.5"
  std::optional<uint64_t> disk_total_kb;
  std::optional<uint64_t> disk_avail_kb;
  int64_t now = 0;  // the host's clock, seconds since the epoch
  std::vector<ListEntry> local;
  std::vector<std::string> cached;           // `tart list --source oci -q`
  std::map<std::string, VmDetails> details;  // by VM name
  std::map<std::string, std::string> ips;    // running VMs that have one
  // `tart ip` of a running VM that failed: its exit status and what it printed.
  struct IpFailure {
    int exit_code = 0;
    std::string text;
  };
  std::map<std::string, IpFailure> ip_failures;
  struct Job {
    int64_t pid = 0;
    int64_t started = 0;  // host clock
    bool alive = false;
    std::string log_tail;  // the last lines of its log, when it is not alive
  };
  std::map<std::string, Job> jobs;  // `tart run` processes Flotilla started, by VM name
  // Scripts::Inventory: every local VM's name, and the creates in progress by temporary name
  // (`pid` is the create's process group).
  std::vector<std::string> names;
  std::map<std::string, Job> creates;
};

// Whether Tart `version` ("2.32.1", "SNAPSHOT": the newest) is at least `minimum` ("1.1.0"),
// comparing the dotted numbers; false for an empty version.
bool TartAtLeast(std::string_view version, std::string_view minimum);

// Parses the sectioned output of the scripts in scripts.h ("@@SECTION [ARG]" lines, each
// section closed by "@@rc STATUS", the whole by "@@end"). Errors name the section that failed
// and what tart said.
Result<HostReport> ParseHostReport(std::string_view out);

}  // namespace flotilla::providers::tart
