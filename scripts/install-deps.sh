#!/usr/bin/env bash
# Installs Flotilla's build and test dependencies from Debian's packages, then the browser tests'
# one npm package (playwright-core, pinned in tests/browser/package-lock.json) with `npm ci`.
# Idempotent: packages already installed are skipped, and `apt-get update` runs only
# when something is missing. Needs root (or sudo) only when it has something to install.
# The flotilla binaries never need Node.js; only the browser tests do.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # toolchain
  cmake g++ make pkg-config clang-format clang-tidy git
  # libraries
  libyaml-cpp-dev libgit2-dev libsqlite3-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libvalijson-dev libcpp-httplib-dev libcli11-dev libssl-dev
  # tests
  libgtest-dev libgmock-dev
  # Fuzzing (scripts/fuzz.sh, .ci/run): clang and its libFuzzer and sanitizer runtimes
  clang libclang-rt-14-dev
  # The full-disk test mounts a tmpfs in a user and mount namespace of its own (unshare)
  util-linux
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
  # (dpkg-dev) and file; the unit file is checked with systemd-analyze (systemd); the man pages
  # are written from the binaries' --help by help2man and checked with groff and man-db
  # (lexgrog); the package is checked with lintian
  dpkg-dev file systemd help2man groff-base man-db lintian
)

# Browser tests and the dashboard benchmark (tests/browser/, bench/dashboard/): Debian's
# Chromium, driven by playwright-core from the npm registry (below), never a downloaded browser.
# FLOTILLA_BROWSER_TESTS=0 leaves them out (the container image's build stage builds only).
browser_tests=${FLOTILLA_BROWSER_TESTS:-1}
if [[ "$browser_tests" != 0 ]]; then
  packages+=(chromium)
fi

# Node.js and npm run the browser tests. Where the machine has none, Debian's are installed
# (playwright-core asks for Node.js 20 or newer; an older one is reported by npm ci).
if [[ "$browser_tests" != 0 ]] && { ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; }; then
  packages+=(nodejs npm)
fi

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# playwright-core for the browser tests, exactly as locked, into tests/browser/node_modules
# (gitignored). PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: it must never fetch a browser of its own; the
# tests launch /usr/bin/chromium. Skipped when the locked version is already there.
browser_dir=tests/browser
if [[ "$browser_tests" == 0 ]]; then
  echo "install-deps: FLOTILLA_BROWSER_TESTS=0: no Chromium, Node.js or playwright-core"
  exit 0
fi
locked=$(node -p "require('./${browser_dir}/package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(node -p "try { require('./${browser_dir}/node_modules/playwright-core/package.json').version } catch { '' }")
if [[ "$installed" == "$locked" ]]; then
  echo "install-deps: playwright-core $locked present"
else
  echo "install-deps: npm ci in $browser_dir (playwright-core $locked)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$browser_dir" --no-audit --no-fund
fi
