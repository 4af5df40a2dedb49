#pragma once

// The OCI side of Tart (OCI/RemoteName.swift, OCI/Reference/Reference.g4, VMStorageOCI.swift)
// and the fake registry behind it.
//
// Cache layout, as Tart keeps it:
//   TART_HOME/cache/OCIs/<host>/<namespace...>/sha256:<hex>/   the image (config.json,
//                                                              disk.img, nvram.bin)
//   TART_HOME/cache/OCIs/<host>/<namespace...>/<tag>           symlink to that directory
// (a ':' in the host, before a port, is written %3A). `list --source oci` shows each pulled
// image twice: host/ns/repo:tag and host/ns/repo@sha256:<hex>.
//
// The fake registry: TART_HOME/.fake/registry/<host>/<namespace...>/<tag>.json, each
//   {"os": "darwin"|"linux", "diskGB": 50, "sizeGB": 22.5, "cpuCountMin": 4, "cpuCount": 4,
//    "memorySizeMin": 8589934592, "memorySize": 8589934592, "agent": true,
//    "digest": "<64 hex>", "username": "u", "password": "p"}
// where only "os" and "diskGB" are required. "sizeGB" is what the disk occupies once pulled
// (default 45% of diskGB); "digest" defaults to the sha256 of the descriptor file; with
// "username"/"password" the image is private and needs TART_REGISTRY_USERNAME and
// TART_REGISTRY_PASSWORD (honouring TART_REGISTRY_HOSTNAME), as EnvironmentCredentialsProvider
// reads them.

#include <optional>
#include <string>
#include <vector>

#include "providers/tart/tartsim/vm_storage.h"

namespace flotilla::tartsim {

struct RemoteName {
  std::string host;        // "ghcr.io" or "localhost:5000"
  std::string name_space;  // "cirruslabs/macos-sequoia-base"
  std::string reference;   // the tag, or "sha256:<hex>"
  bool is_digest = false;

  // host/namespace:tag or host/namespace@sha256:<hex>.
  std::string Description() const;
  // The same repository at a digest.
  RemoteName AtDigest(const std::string& digest) const;

  // Parses by Tart's grammar. On failure returns nullopt and sets `error` to an ANTLR-like
  // message ("token recognition error at: ' ' (character 3)").
  static std::optional<RemoteName> Parse(const std::string& text, std::string* error);
};

// cache/OCIs/... for `name` (not resolved).
std::string OciPath(const TartHome& home, const RemoteName& name);
// cache/OCIs/<host>, which pull locks.
std::string OciHostDir(const TartHome& home, const RemoteName& name);
bool OciExists(const TartHome& home, const RemoteName& name);
// VMStorageOCI.digest: the sha256:<hex> directory `name` resolves to, or nullopt.
std::optional<std::string> OciDigest(const TartHome& home, const RemoteName& name);
// The tag symlink points at the digest directory.
bool OciLinked(const TartHome& home, const RemoteName& tag, const RemoteName& digest);
void OciLink(const TartHome& home, const RemoteName& tag, const RemoteName& digest);

struct OciEntry {
  std::string name;  // host/ns/repo:tag or host/ns/repo@sha256:<hex>
  VmDir dir;
  bool is_symlink;
};
// Every initialized cache entry, sorted by name.
std::vector<OciEntry> ListOci(const TartHome& home);
// VMStorageOCI.gc: drops dangling tag links and digest directories nothing links to (unless
// pulled by digest: the ".explicitly-pulled" mark).
void CollectOciGarbage(const TartHome& home);

struct ImageDescriptor {
  std::string os = "darwin";
  int64_t disk_gb = 0;
  double size_gb = -1;  // allocated; -1 = default
  int64_t cpu_count_min = 4;
  int64_t cpu_count = 0;        // 0 = cpuCountMin
  int64_t memory_size_min = 0;  // 0 = 8 GiB (darwin) or 4 GiB (linux)
  int64_t memory_size = 0;      // 0 = memorySizeMin
  bool agent = false;
  std::string digest;  // sha256:<hex>
  std::optional<std::string> username;
  std::optional<std::string> password;
};

// The descriptor for `name` in the fake registry, nullopt when the registry has no such
// manifest. Throws std::runtime_error for a malformed descriptor.
std::optional<ImageDescriptor> FindImage(const TartHome& home, const RemoteName& name);

// Hex MD5 of `text` (VMDirectory.temporaryDeterministic names pull's staging directory so).
std::string Md5Hex(const std::string& text);
std::string Sha256Hex(const std::string& text);

}  // namespace flotilla::tartsim
