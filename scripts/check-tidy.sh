#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's sources, using the compile commands of a
# configured build folder (default build-test/). Any finding fails.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-test}
[[ -f "$build/compile_commands.json" ]] || { echo "check-tidy: configure $build first" >&2; exit 1; }
# The compile commands are GCC's; clang-tidy does not know some of its warning flags.
run-clang-tidy -quiet -p "$build" -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option \
  "$(pwd)/(reconciler|providers|tests|bench)/" \
  > "$build/clang-tidy.log" 2>&1 || {
  grep -E "(warning|error):" "$build/clang-tidy.log" | sort -u >&2 || cat "$build/clang-tidy.log" >&2
  echo "check-tidy: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "check-tidy: clean"
