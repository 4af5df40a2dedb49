#!/usr/bin/env bash
# Fails when any C++ file differs from what clang-format (.clang-format) would write.
# With --fix, rewrites the files instead.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files -- '*.cc' '*.h' 2>/dev/null || true)
if ((${#files[@]} == 0)); then
  mapfile -t files < <(find reconciler providers schemas tests bench -name '*.cc' -o -name '*.h' 2>/dev/null)
fi
if [[ "${1:-}" == "--fix" ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check-format: files above need formatting; run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
