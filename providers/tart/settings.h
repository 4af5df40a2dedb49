#pragma once

// The vocabulary of provider tart that a manifest speaks: a pool's settings (`tart:` and `ssh:`
// of its spec, described by pool_settings.v1.json), its hosts' SSH addresses and its images.
//
// Everything these parsers accept is safe to put on a shell command line on a host: the
// characters allowed leave no room for quoting tricks, globbing, command substitution or an
// argument that reads as an option (nothing starts with '-'). The provider single-quotes every
// argument as well; this is the first of the two defences, not the only one.
//
// All functions are pure and thread-safe. Their error messages never repeat the user part of
// an address (it may be a careless password).

#include <chrono>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "reconciler/model/result.h"

namespace flotilla::providers::tart {

enum class PullPolicy {
  kIfNotPresent,  // clone from the host's cache when the image is there (a moving tag is not
                  // refreshed: Tart's clone does not look at the registry again)
  kAlways,        // `tart pull` before every clone of an oci:// image
};

// The pool's own settings (HostPool::settings). Paths on the hosts use only letters, digits and
// '.', '_', '-', '+', '/'.
struct TartPoolSettings {
  // tart.path: absolute path of the tart binary on the hosts. Non-interactive SSH sessions do
  // not have Homebrew on PATH, so a bare `tart` would not be found.
  std::string tart_path = "/opt/homebrew/bin/tart";
  // tart.home: TART_HOME on the hosts; empty = Tart's default (~/.tart). Absolute, or starting
  // with "~/" for the SSH user's home directory: the provider writes "~/x" as "$HOME"/'x'
  // (a quoted "~" would not expand).
  std::string tart_home;
  // tart.pullPolicy: IfNotPresent | Always.
  PullPolicy pull_policy = PullPolicy::kIfNotPresent;
  // ssh.knownHostsFile: absolute path of a known_hosts file on the reconciler's machine;
  // empty = the `knownHosts` key of the pool's credentialsRef.
  std::string known_hosts_file;
  // ssh.insecureIgnoreHostKey: accept any host key (validate warns about it).
  bool insecure_ignore_host_key = false;
  // ssh.connectTimeout: longest wait for an SSH connection (a duration like 10s); more than 0.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
  // ssh.maxSessions: commands run at once per host (1..10; sshd's MaxSessions is 10 by
  // default when they share one connection).
  int max_sessions = 4;
  // ssh.maxTunnels: tunnels to VM ports open at once per host (0..64; 0: none), each an
  // `ssh -W` client on the host's connection (a direct-tcpip channel, which sshd's MaxSessions
  // does not count).
  int max_tunnels = 8;
};

// The pool's settings with every default filled. InvalidArgument naming the setting
// ("ssh.maxSessions must be ...") when one has the wrong type or value, or is unknown: the
// manifest's schema refuses such pools, so this matters for pools built in code, and for the
// values no schema checks (a connectTimeout of 0s).
Result<TartPoolSettings> ParsePoolSettings(const nlohmann::json& settings);

// A host address: ssh://USER@HOST[:PORT] or USER@HOST. USER is required and is a POSIX
// portable user name (letters, digits, '.', '_', '-', not starting with '-', at most 64
// characters). HOST is a DNS name, an IPv4 address (four decimal numbers, no leading zeros) or
// an IPv6 address in brackets. A port needs the ssh:// form (in USER@HOST:X, ssh and scp read X
// differently).
struct SshAddress {
  std::string user;
  std::string host;  // as written, except that an IPv6 address loses its brackets
  int port = 22;     // 1..65535
};
Result<SshAddress> ParseSshAddress(std::string_view address);

// An image:
//   oci://REGISTRY/NS.../REPO[:TAG | @sha256:<64 hex digits>]  an image in an OCI registry
//                                                              (no tag: :latest)
//   vm://NAME                                                  a local Tart VM on the host, cloned
// REGISTRY is a lowercase DNS name or IPv4 address with an optional :PORT; the path components
// follow the OCI distribution grammar (lowercase letters and digits, separated by '.', '_',
// '__' or dashes); a TAG is letters, digits, '_', '.', '-' (at most 128, not starting with '.'
// or '-'). NAME is letters, digits, '.', '_', '-', starting with a letter or digit, at most 255
// characters.
struct ImageRef {
  enum class Kind { kOci, kLocalVm };
  Kind kind = Kind::kOci;
  // kOci: what `tart clone` and `tart pull` take, with the tag made explicit
  // ("ghcr.io/cirruslabs/macos-sequoia-xcode:16", "ghcr.io/cirruslabs/macos@sha256:…");
  // kLocalVm: the VM's name ("golden").
  std::string name;
};
Result<ImageRef> ParseImage(std::string_view image);

// How a host names a cached image in `tart list --source oci -q`: the tag form
// "host/ns/repo:tag" or the digest form "host/ns/repo@sha256:…", exactly as ParseImage's name.
// "" for vm:// (nothing is pulled) and for what ParseImage refuses.
std::string ImageCacheKey(std::string_view image);

}  // namespace flotilla::providers::tart
