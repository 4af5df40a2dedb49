#!/usr/bin/env bash
# One command for a newcomer: installs dependencies (Debian packages), builds an optimised
# flotilla into build/, checks the example fleet, and runs `flotilla dev`: simulated hosts
# (flotilla-hostsim for the Parallels pools; for the Tart pool, Macs that are an sshd each,
# which is why openssh-server is among the dependencies), a local fleet repository seeded from
# examples/fleet (in ./.flotilla-dev), and the loop with its API. Ctrl-C stops it; the next run picks up where it stopped. Arguments go to `flotilla dev`
# (e.g. --reset, --listen 127.0.0.1:0).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"

echo
echo "+ build/bin/flotilla validate examples/fleet"
build/bin/flotilla validate examples/fleet
echo
echo "+ build/bin/flotilla dev $*"
exec build/bin/flotilla dev "$@"
