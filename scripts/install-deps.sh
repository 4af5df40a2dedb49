#!/usr/bin/env bash
# Installs Flotilla's build and test dependencies from Debian's packages.
# Idempotent: packages already installed are skipped, and `apt-get update` runs only
# when something is missing. Needs root (or sudo) only when it has something to install.
set -euo pipefail

packages=(
  # toolchain
  cmake g++ make pkg-config clang-format clang-tidy git
  # libraries
  libyaml-cpp-dev libgit2-dev libsqlite3-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libvalijson-dev libcpp-httplib-dev libcli11-dev libssl-dev
  # tests
  libgtest-dev libgmock-dev
  # The pull-request review example (examples/ci/, ci_example_test) reads plan JSON with jq;
  # its script is checked with shellcheck
  jq shellcheck
  # Git source tests: real git daemon, smart HTTP (git http-backend under Python), sshd (also
  # the simulated Macs of `flotilla dev`, scripts/dev.sh)
  git openssh-server openssh-client python3
  # Tart provider tests: the simulated Mac's sshd (above), pkill to cut its connections, perl to
  # start `tart run` in its own session as on a Mac
  procps perl
  # API tests: /metrics is read with Prometheus' own text parser
  python3-prometheus-client
  # Provider TLS tests: a throwaway certificate made with the openssl command
  openssl
  # Packaging: `cpack -G DEB` reads the binaries' library dependencies with dpkg-shlibdeps
  # (dpkg-dev) and file; the unit file is checked with systemd-analyze (systemd)
  dpkg-dev file systemd
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
