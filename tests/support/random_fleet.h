#pragma once

// Random fleet repositories for tests that compare two ways of loading the same files: manifest
// files with pools and VM sets that refer to each other, with the mistakes people make (YAML
// syntax, schema violations, names defined twice, sets naming missing pools, templates that
// fit no host). Seeded: the same seed gives the same files.

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "reconciler/manifest/loader.h"

namespace flotilla::testing {

class RandomFleet {
 public:
  explicit RandomFleet(uint32_t seed) : rng_(seed) {}

  // One file's text: a pool, a set, both, or something broken.
  std::string File() {
    const int kind = Pick(20);
    if (kind < 5) {
      return Pool();
    }
    if (kind < 15) {
      return Set();
    }
    if (kind < 17) {
      return Pool() + "---\n" + Set();
    }
    return Broken();
  }

  // `count` files named fleet/<folder>/f-<n>.yaml.
  std::map<std::string, std::string> Files(int count) {
    std::map<std::string, std::string> files;
    while (static_cast<int>(files.size()) < count) {
      files[NewPath()] = File();
    }
    return files;
  }

  std::string NewPath() {
    static constexpr const char* kFolders[] = {"pools", "sets", "team-a", "team-b/nested"};
    return std::string("fleet/") + kFolders[Pick(4)] + "/f-" + std::to_string(next_file_++) +
           (Pick(5) == 0 ? ".yml" : ".yaml");
  }

  // A random change to `files`: add, modify, delete or rename a file, break one or mend it.
  void Mutate(std::map<std::string, std::string>& files) {
    const int what = Pick(10);
    if (files.empty() || what < 2) {
      files[NewPath()] = File();
      return;
    }
    auto it = files.begin();
    std::advance(it, Pick(static_cast<int>(files.size())));
    if (what < 5) {
      it->second = File();
    } else if (what < 6) {
      files.erase(it);
    } else if (what < 7) {
      std::string content = it->second;
      files.erase(it);
      files[NewPath()] = std::move(content);
    } else if (what < 8) {
      it->second = Broken();
    } else if (what < 9) {
      // The same text under a second name: every name in it is now defined twice.
      files[NewPath()] = it->second;
    } else {
      // A small edit inside the file: replicas, or a pool's capacity.
      std::string& text = it->second;
      const size_t at = text.find("replicas: ");
      if (at != std::string::npos) {
        text.replace(at, text.find('\n', at) - at, "replicas: " + std::to_string(Pick(4)));
      } else {
        text += "# touched " + std::to_string(Pick(1000)) + "\n";
      }
    }
  }

  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  std::string Pool() {
    const int p = Pick(8);
    std::ostringstream s;
    s << "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: pool-" << p << "}\n"
      << "spec:\n  credentialsRef: builders\n";
    if (Pick(3) == 0) {
      s << "  defaults:\n    arch: arm64\n    maxVMs: " << 1 + Pick(2) << "\n"
        << "    capacity: {cpu: " << 4 + 4 * Pick(3) << ", memory: 32Gi, disk: 460Gi}\n";
    }
    s << "  hosts:\n";
    const int hosts = Pick(4);
    for (int h = 0; h < hosts; ++h) {
      // Few host names and addresses: some are used by two pools.
      s << "    - name: h" << Pick(12) << "\n      address: https://10.0." << p << "." << Pick(12)
        << ":8080\n      tags: [" << (Pick(4) == 0 ? "gpu" : "builder") << "]\n";
      if (Pick(6) == 0) {
        s << "      cordoned: true\n";
      }
    }
    if (hosts == 0) {
      s << "    []\n";
    }
    return s.str();
  }

  std::string Set() {
    std::ostringstream s;
    s << "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: set-" << Pick(60)
      << "}\nspec:\n  pool: pool-" << Pick(10) << "\n  replicas: " << Pick(4)
      << "\n  selector: {tags: [" << (Pick(5) == 0 ? "gpu" : "builder") << "]}\n"
      << "  template:\n    image: catalog://macos/15\n    os: macos\n    arch: "
      << (Pick(8) == 0 ? "x86_64" : "arm64") << "\n    cpu: " << 2 + 2 * Pick(6)
      << "\n    memory: 8Gi\n";
    return s.str();
  }

  std::string Broken() {
    switch (Pick(5)) {
      case 0:
        return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: [unclosed\n";
      case 1:
        return "apiVersion: flotilla.dev/v1\nkind: VMSet\nmetadata: {name: set-" +
               std::to_string(Pick(60)) + "}\nspec:\n  pool: pool-1\n  replicas: lots\n";
      case 2:
        return "apiVersion: flotilla.dev/v1\nkind: HostPool\nmetadata: {name: pool-" +
               std::to_string(Pick(8)) + "}\nspec:\n  hosts: []\n  colour: blue\n";
      case 3:
        return "apiVersion: flotilla.dev/v1\nkind: VMSett\nmetadata: {name: x}\n";
      default:
        return Set() + "---\n" + Set() + "  replicas: 2\n";  // a duplicate key
    }
  }

  std::mt19937 rng_;
  int next_file_ = 0;
};

// Everything a load gives that a person or the planner sees: the objects with where they were
// declared, and every diagnostic in order. Two loads agree when these texts are equal.
inline std::string Describe(const manifest::LoadResult& r) {
  std::ostringstream s;
  s << r.files << " files, " << r.documents << " documents, " << r.diagnostics.error_count()
    << " errors, " << r.diagnostics.warning_count() << " warnings\n";
  for (const HostPool& pool : r.desired.pools) {
    s << "pool " << pool.meta.name << " at " << pool.meta.origin.ToString() << ":";
    for (const HostSpec& host : pool.hosts) {
      s << " " << host.name << "@" << host.origin.ToString();
    }
    s << "\n";
  }
  for (const VMSet& set : r.desired.sets) {
    s << "set " << set.meta.name << " at " << set.meta.origin.ToString() << " key "
      << set.image_cache_key << "\n";
  }
  for (const manifest::Diagnostic& d : r.diagnostics.Sorted()) {
    s << d.ToString() << "\n";
  }
  return s.str();
}

}  // namespace flotilla::testing
