#pragma once

// The shell scripts provider tart runs on a host, built here and nowhere else.
//
// Every call sends one script to `/bin/sh -s` on its stdin (the remote command line is always
// RemoteCommand(): no value of ours is on it), so secrets (registry credentials, a startup
// script's environment) never reach a process list. Every value in a script is single-quoted
// (ShellQuote): a VM name or an image cannot become a command. The whole script is one brace
// group with stdin from /dev/null, so that the shell has read all of it before anything runs
// and no command can read the rest of the script as its input.
//
// Layout on the host: `tart` by its absolute path (tart.path); TART_HOME when the pool sets
// tart.home; Flotilla's own files under "$TART_HOME/flotilla" (default ~/.tart/flotilla):
// run/<vm>.pid ("PID STARTED" of the detached `tart run`), log/<vm>.log (its output),
// run/<temp>.create and run/<temp>.out (a create in progress: its process group, and what its
// steps said). Tart itself ignores the folder (it reads vms/, cache/ and tmp/ only).

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "providers/tart/settings.h"
#include "reconciler/model/quantity.h"

namespace flotilla::providers::tart {

// The command line given to the remote login shell: a POSIX shell reading its script from
// stdin, with a fixed environment (HOME kept, and TART_HOME when the host's environment sets
// it: the pool's tart.home, when set, wins over it in the script).
std::string RemoteCommand();

class Scripts {
 public:
  explicit Scripts(const TartPoolSettings& settings) : settings_(settings) {}

  // Facts, every VM, cached images, Flotilla's `tart run` jobs (ParseHostReport reads it).
  std::string Observe() const;
  // One VM's details and job, in the same sections (for Start and Stop's polling).
  std::string Status(std::string_view vm) const;
  // `tart --version` (section "version").
  std::string Version() const;
  // For a tunnel: the VM's `tart get` and, when it runs, its address now, as Status's sections
  // ("get NAME", "ip NAME"): `tart ip --wait WAIT --resolver dhcp NAME`, with only the options
  // Tart `version` has (--wait since 0.2.0, --resolver since 1.1.0). dhcp, bootpd's leases, is
  // the resolver of the VMs' network: the provider starts them with Tart's default NAT (no
  // --net-* option), and the guest agent, which would also do, needs an image that has it.
  std::string TunnelAddress(std::string_view vm, std::string_view version, int wait_seconds) const;
  // Local VM names, cached images and the creates in progress (sections "names", "oci",
  // "create TEMP").
  std::string Inventory() const;
  // Starts `tart run --no-graphics VM` detached (own session, output to its log), records its
  // pid and prints it (section "pid"); then waits on the host until the process has lived
  // `settle` or has ended (a cheap local check every 200 ms, instead of a round trip per look),
  // and reports the VM as Status does.
  std::string Launch(std::string_view vm, std::chrono::milliseconds settle) const;
  // Asks the guest to shut down: SIGUSR2 to `tart run` for a Linux guest (Tart >= 2.12's
  // requestStop), `shutdown -h now` through the guest agent for macOS (requestStop only shows
  // a dialog there). Exits 0 when the request was delivered.
  std::string RequestShutdown(std::string_view vm, bool macos) const;
  // `tart stop --timeout N VM`, then forgets the job.
  std::string PowerOff(std::string_view vm, int timeout_seconds) const;
  // `tart delete VM` and Flotilla's files of it.
  std::string Delete(std::string_view vm) const;
  // `tart set VM --cpu --memory`.
  // Tart's units: memory in MiB and disk in decimal GB, both rounded up (the disk only grows).
  std::string Set(std::string_view vm, uint32_t cpu, Quantity memory, std::optional<Quantity> disk,
                  bool random_mac) const;
  // The create's steps, detached from the connection's fate (their output goes to
  // run/<temp>.out, printed at the end, with "@@failed STEP STATUS" when one fails):
  // optionally `tart pull`, `tart clone IMAGE TEMP`, `tart set`, `tart rename TEMP FINAL`; then
  // FINAL reported as Status does. `registry` holds TART_REGISTRY_* values to export (on stdin
  // only). Only one script runs per `temp`: one that finds another's marker alive prints
  // "@@busy" and does nothing; one whose set or rename fails deletes its clone.
  std::string Create(std::string_view image, std::string_view temp, std::string_view final_name,
                     bool pull, uint32_t cpu, Quantity memory, std::optional<Quantity> disk,
                     const std::map<std::string, std::string>& registry) const;
  // Prints "alive" while the create of `temp` still runs.
  std::string CreateAlive(std::string_view temp) const;
  // Interrupts the create of `temp` (SIGINT to its process group; tart removes its tmp dir)
  // and forgets it.
  std::string CancelCreate(std::string_view temp) const;
  // Forgets a finished create's files; prints its output first.
  std::string CreateOutput(std::string_view temp) const;
  // `tart rename FROM TO`.
  std::string Rename(std::string_view from, std::string_view to) const;
  // `tart pull IMAGE`.
  std::string Pull(std::string_view image,
                   const std::map<std::string, std::string>& registry) const;

  // The remote command line of Exec: `tart exec -i VM /bin/sh -s` with the fixed environment.
  std::string ExecCommand(std::string_view vm) const;
  // What Exec writes to the guest shell: the environment as exports, the script in a subshell
  // (stdin from /dev/null), then a trailer with its exit status (ParseExecTrailer).
  static std::string ExecInput(std::string_view script,
                               const std::map<std::string, std::string>& env);
  // The script's exit status from the trailer, removing the trailer from `out`; nullopt when
  // there is none (the script never ran to its end: Tart or the transport failed).
  static std::optional<int> ParseExecTrailer(std::string& out);

 private:
  std::string Wrap(std::string_view body) const;  // preamble, body, the brace group
  std::string TartHome() const;                   // the shell words for TART_HOME's value

  TartPoolSettings settings_;
};

}  // namespace flotilla::providers::tart
