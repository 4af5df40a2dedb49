#!/usr/bin/env bash
# Fuzzing: the libFuzzer targets of fuzz/ (one per parser of outside input), built with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer into build-fuzz/ (the fuzz preset).
# docs/benchmarks.md ("Fuzzing") lists the targets, their speed and the bugs they found.
#
# Usage: scripts/fuzz.sh list             the targets
#        scripts/fuzz.sh TARGET SECONDS   builds, then runs TARGET for SECONDS
#        scripts/fuzz.sh all SECONDS      builds, then runs every target for SECONDS in turn;
#                                         fails if any fails (CI: scripts/fuzz.sh all 20)
#
# A run starts from a copy of the committed corpus (fuzz/corpus/TARGET/) in
# build-fuzz/fuzz-runs/TARGET/corpus/, where libFuzzer adds the new inputs it finds; the committed
# corpus is never written. An input that crashes or breaks one of the target's invariants is saved
# in build-fuzz/fuzz-runs/TARGET/crashes/ and the script exits 1. Reproduce it with
#   build-fuzz/bin/TARGET_fuzz FILE
# and, once fixed, add it to fuzz/corpus/TARGET/ (the replay tests of scripts/test.sh run it).
set -euo pipefail
cd "$(dirname "$0")/.."

targets() {
  local f
  for f in fuzz/*_fuzz.cc; do
    f=${f#fuzz/}
    echo "${f%_fuzz.cc}"
  done
}

usage() {
  echo "usage: scripts/fuzz.sh list | TARGET SECONDS | all SECONDS" >&2
  exit 2
}

build() {
  cmake --preset fuzz >/dev/null
  cmake --build --preset fuzz -j "$(nproc)" >build-fuzz/build.log 2>&1 || {
    tail -n 50 build-fuzz/build.log >&2
    echo "fuzz: build failed (log: build-fuzz/build.log)" >&2
    exit 1
  }
}

# Runs one target; prints one line with its speed. Returns non-zero when it found a problem.
run() {
  local target=$1 seconds=$2
  local dir=build-fuzz/fuzz-runs/$target
  rm -rf "$dir/corpus"
  mkdir -p "$dir/corpus" "$dir/crashes"
  cp fuzz/corpus/"$target"/* "$dir/corpus/"
  local dict=()
  [[ -f fuzz/$target.dict ]] && dict=("-dict=fuzz/$target.dict")
  local status=0
  # -timeout: an input that takes 10 s is a hang; -rss_limit_mb: one that needs 2 GB is a bug.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0 \
    "build-fuzz/bin/${target}_fuzz" "$dir/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/" >"$dir/log" 2>&1 || status=$?
  local runs speed
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -n 1)
  printf '%-20s %8s exec/s %10s runs  corpus %4s committed, %5s after\n' "$target" \
    "${speed:-?}" "${runs:-?}" "$(ls fuzz/corpus/"$target" | wc -l)" "$(ls "$dir/corpus" | wc -l)"
  if ((status != 0)); then
    grep -E "ERROR: |runtime error|fuzz invariant broken|Test unit written" "$dir/log" >&2 || true
    echo "fuzz: $target failed (log: $dir/log; inputs: $dir/crashes/)" >&2
    return 1
  fi
}

case "${1:-}" in
  list)
    targets
    ;;
  all)
    [[ $# -eq 2 ]] || usage
    build
    failed=()
    for target in $(targets); do
      run "$target" "$2" || failed+=("$target")
    done
    if ((${#failed[@]} > 0)); then
      echo "fuzz: failed: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  "")
    usage
    ;;
  *)
    [[ $# -eq 2 ]] || usage
    [[ -f fuzz/$1_fuzz.cc ]] || { echo "fuzz: no target $1 (scripts/fuzz.sh list)" >&2; exit 2; }
    build
    run "$1" "$2"
    ;;
esac
