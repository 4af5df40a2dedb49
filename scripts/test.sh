#!/usr/bin/env bash
# The test command: installs dependencies, builds with AddressSanitizer,
# UndefinedBehaviorSanitizer and -Werror into build-test/ (unity batches: a quarter less build
# time on 2 cores), runs every test, and checks formatting (clang-format).
# clang-tidy is a separate check, scripts/check-tidy.sh; .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset asan -j "$(nproc)"

scripts/check-format.sh
