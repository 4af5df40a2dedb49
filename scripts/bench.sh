#!/usr/bin/env bash
# Builds the benchmarks (Release, build-bench/) and runs them. Results go to docs/benchmarks.md
# by hand, with the command that produced them.
#   scripts/bench.sh git_source [files] [rounds]
#   scripts/bench.sh observe [hosts] [vms_per_host] [threads] [rounds]
#   scripts/bench.sh planner [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DFLOTILLA_BENCH=ON -DFLOTILLA_TESTS=OFF >/dev/null
case "${1:-git_source}" in
  git_source)
    cmake --build build-bench -j "$(nproc)" --target bench_git_source
    build-bench/bin/bench_git_source "${2:-10000}" "${3:-10}"
    ;;
  observe)
    cmake --build build-bench -j "$(nproc)" --target bench_observe flotilla-hostsim
    build-bench/bin/bench_observe build-bench/bin/flotilla-hostsim "${2:-1000}" "${3:-10}" \
      "${4:-32}" "${5:-5}"
    ;;
  planner)
    cmake --build build-bench -j "$(nproc)" --target bench_planner
    build-bench/bin/bench_planner "${2:-30}"
    ;;
  *)
    echo "bench.sh: unknown benchmark ${1}; known: git_source, observe, planner" >&2
    exit 1
    ;;
esac
