#pragma once

// The fleet `flotilla dev` seeds its repository with: the example files (examples/fleet,
// compiled in), less the pools no simulator of this machine stands in for (and the VM sets on
// them), with every pool pointing at its simulated hosts. Pure functions of text; thread-safe.

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "reconciler/model/result.h"
#include "reconciler/model/types.h"

namespace flotilla::cli {

// What `flotilla dev` runs of the example fleet: the files of `examples` (path -> text, as
// examples/fleet holds them) but those that declare a pool whose provider is not in
// `simulated`, or a VM set on such a pool. `fleet` is `examples` loaded, with each object's
// origin file `prefix` + path.
struct SimulatedFleet {
  std::map<std::string, std::string> files;
  // What was left out, by provider: {"tart": {"pool tart-minis", "VM set xcode-runners"}}.
  std::map<std::string, std::vector<std::string>> left_out;
};
SimulatedFleet SimulatedExamples(const std::map<std::string, std::string>& examples,
                                 const Desired& fleet, std::string_view prefix,
                                 const std::set<std::string>& simulated);

// How a pool manifest changes to point at simulated hosts.
struct PoolRewrite {
  std::map<std::string, std::string> addresses;  // host name -> its simulated host's address
  // Settings under spec, by dotted path -> new value: {"tart.path": "/d/macs/bin/tart"}. Each
  // must be in the manifest already (its block written out, not in flow style).
  std::map<std::string, std::string> settings;
  // Blocks of spec removed with everything under them: {"tls"} (the simulated Parallels hosts
  // speak plain HTTP).
  std::set<std::string> dropped;
};

// The pool manifest `text` (block-style YAML, as examples/fleet writes it) with `rewrite`
// applied and a comment on top saying so; every other line stays as it was, comments too.
// Values are written as plain scalars: they are addresses and paths without YAML syntax.
// NotFound naming the settings of `rewrite` that `text` does not have.
Result<std::string> RewritePool(const std::string& text, const PoolRewrite& rewrite);

}  // namespace flotilla::cli
