#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's sources. Any finding fails.
# Usage: scripts/check-tidy.sh [BUILD_DIR] [--with-tests]
#
# It needs one compile command per source file. The asan preset builds in unity batches, so by
# default this configures the `tidy` preset into build-tidy/ (configure only, nothing is built:
# the files clang-tidy reads are all in the source tree) and reads its compile commands.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-tidy}
# The shipped code by default; --with-tests adds tests/ and bench/ (about 2.5 more minutes on a
# 2-core machine).
dirs="reconciler|providers"
[[ "${2:-}" == "--with-tests" ]] && dirs="reconciler|providers|tests|bench"
if [[ "$build" == build-tidy ]]; then
  cmake --preset tidy >/dev/null
fi
[[ -f "$build/compile_commands.json" ]] || { echo "check-tidy: configure $build first" >&2; exit 1; }
if grep -q '/Unity/unity_' "$build/compile_commands.json"; then
  echo "check-tidy: $build is a unity build; use build-tidy (cmake --preset tidy)" >&2
  exit 1
fi
# The compile commands are GCC's; clang-tidy does not know some of its warning flags.
run-clang-tidy -quiet -p "$build" -j "$(nproc)" -extra-arg=-Wno-unknown-warning-option \
  "$(pwd)/($dirs)/" \
  > "$build/clang-tidy.log" 2>&1 || {
  grep -E "(warning|error):" "$build/clang-tidy.log" | sort -u >&2 || cat "$build/clang-tidy.log" >&2
  echo "check-tidy: clang-tidy found problems (full log: $build/clang-tidy.log)" >&2
  exit 1
}
echo "check-tidy: clean"
