#!/usr/bin/env bash
# Builds the benchmarks (Release, build-bench/) and runs them. Results go to docs/benchmarks.md
# by hand, with the command that produced them.
#   scripts/bench.sh git_source [files] [rounds] [threads]
#   scripts/bench.sh observe [hosts] [vms_per_host] [threads] [rounds]
#   scripts/bench.sh planner [runs] [hosts]
#   scripts/bench.sh api [hosts] [samples] [plan_runs]
#   scripts/bench.sh tunnel [MiB] [round_trips] [tls: 0 or 1]
#   scripts/bench.sh pass [hosts] [vms_per_host] [passes] [journal_actions] [full_sample]
#   scripts/bench.sh converge [hosts] [vms_per_host] [concurrencies] [clone|catalog] [sequential_vms] [latency] [full|normal]
#   scripts/bench.sh idle [seconds] [hosts] [vms] [resync_intervals]
#   scripts/bench.sh webhook [pushes] [hosts]
#   scripts/bench.sh crash_creates [kills] [vms] [hosts] [seed] [latency]
#   scripts/bench.sh tart [vms] [running] [rounds] [tart_startup_ms]
#   scripts/bench.sh tart_converge [hosts] [vms_per_host] [clone_ms] [boot_ms]
#   scripts/bench.sh dashboard [hosts] [vms_per_host] [hostsim_processes] [repetitions] [resync]
#   scripts/bench.sh soak [minutes] [fault_rate] [hosts] [seed]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DFLOTILLA_BENCH=ON -DFLOTILLA_TESTS=OFF >/dev/null
case "${1:-git_source}" in
  git_source)
    cmake --build build-bench -j "$(nproc)" --target bench_git_source
    build-bench/bin/bench_git_source "${2:-10000}" "${3:-10}" "${4:-0}"
    ;;
  observe)
    cmake --build build-bench -j "$(nproc)" --target bench_observe flotilla-hostsim
    build-bench/bin/bench_observe build-bench/bin/flotilla-hostsim "${2:-1000}" "${3:-10}" \
      "${4:-32}" "${5:-5}"
    ;;
  planner)
    cmake --build build-bench -j "$(nproc)" --target bench_planner
    build-bench/bin/bench_planner "${2:-30}" "${3:-1000}"
    ;;
  tunnel)
    cmake --build build-bench -j "$(nproc)" --target bench_tunnel
    build-bench/bin/bench_tunnel "${2:-256}" "${3:-2000}" "${4:-0}"
    ;;
  api)
    cmake --build build-bench -j "$(nproc)" --target bench_api
    build-bench/bin/bench_api "${2:-10000}" "${3:-20}" "${4:-3}"
    ;;
  pass)
    cmake --build build-bench -j "$(nproc)" --target bench_pass
    build-bench/bin/bench_pass "${2:-1000}" "${3:-10}" "${4:-10}" "${5:-100000}" "${6:-5000}"
    ;;
  converge)
    cmake --build build-bench -j "$(nproc)" --target converge_bench flotilla flotilla-hostsim
    build-bench/bin/converge_bench build-bench/bin/flotilla build-bench/bin/flotilla-hostsim \
      "${2:-100}" "${3:-10}" "${4:-32,200}" "${5:-clone}" "${6:-10}" \
      "${7:-list=100ms,clone=2s,set=200ms,rename=200ms,start=1s,create=2s}" ${8:+"$8"}
    ;;
  idle)
    cmake --build build-bench -j "$(nproc)" --target idle_bench flotilla flotilla-hostsim
    build-bench/bin/idle_bench build-bench/bin/flotilla build-bench/bin/flotilla-hostsim \
      "${2:-60}" "${3:-10}" "${4:-20}" "${5:-30s,5s}"
    ;;
  crash_creates)
    cmake --build build-bench -j "$(nproc)" --target crash_creates_bench flotilla flotilla-hostsim
    build-bench/bin/crash_creates_bench "${2:-20}" "${3:-20}" "${4:-2}" "${5:-1}" ${6:+"$6"}
    ;;
  webhook)
    cmake --build build-bench -j "$(nproc)" --target webhook_bench flotilla flotilla-hostsim
    build-bench/bin/webhook_bench build-bench/bin/flotilla build-bench/bin/flotilla-hostsim \
      "${2:-20}" "${3:-10}"
    ;;
  tart)
    cmake --build build-bench -j "$(nproc)" --target tart_bench flotilla-tartsim
    build-bench/bin/tart_bench "${2:-10}" "${3:-2}" "${4:-20}" "${5:-0}"
    ;;
  tart_converge)
    cmake --build build-bench -j "$(nproc)" --target tart_converge_bench flotilla flotilla-tartsim
    build-bench/bin/tart_converge_bench build-bench/bin/flotilla "${2:-10}" "${3:-10}" \
      "${4:-2000}" "${5:-1000}"
    ;;
  dashboard)
    cmake --build build-bench -j "$(nproc)" --target dashboard_bench flotilla flotilla-hostsim
    build-bench/bin/dashboard_bench "${2:-1000}" "${3:-10}" "${4:-4}" "${5:-10}" "${6:-10s}"
    ;;
  soak)
    cmake --build build-bench -j "$(nproc)" --target soak_bench flotilla flotilla-hostsim
    build-bench/bin/soak_bench "${2:-30}" "${3:-0.10}" "${4:-4}" "${5:-1}"
    ;;
  *)
    echo "bench.sh: unknown benchmark ${1}; known: git_source, observe, planner, api, pass, converge, idle, webhook, crash_creates, tart, tart_converge, dashboard, soak" >&2
    exit 1
    ;;
esac
