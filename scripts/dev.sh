#!/usr/bin/env bash
# One command for a newcomer: installs dependencies (Debian packages), builds an optimised
# flotilla into build/, and runs the main job: validating the example fleet.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"

echo
echo "+ build/bin/flotilla validate examples/fleet"
exec build/bin/flotilla validate examples/fleet
