#!/usr/bin/env bash
# Installs the Debian 12 packages wsgate needs to build, test and run, and only
# those that are missing. Non-interactive; says what it installs.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ clang ccache pkg-config make
  libboost1.81-dev libssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libjwt-dev libgtest-dev
  # runtime and tests
  openssl ca-certificates python3 python3-websockets python3-yaml python3-pytest
  prometheus prometheus-alertmanager curl procps
  # headless browser for the incident browser tests
  chromium
  # peers for benchmarks and conformance checks
  nginx haproxy tshark testssl.sh
)

# Node.js: any install will do (some images ship NodeSource's, which
# conflicts with Debian's npm package), so these go by command.
for cmd_pkg in node:nodejs npm:npm; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || PACKAGES+=("${cmd_pkg#*:}")
done

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

# Node's `ws` for the conformance suite, pinned by its package-lock.
npm_deps() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/conformance"
  if [ -f "$dir/package-lock.json" ] && [ ! -d "$dir/node_modules/ws" ]; then
    echo "bootstrap: npm ci in tests/conformance"
    npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  fi
}

if ((${#missing[@]} == 0)); then
  echo "bootstrap: all ${#PACKAGES[@]} Debian packages present"
  npm_deps
  exit 0
fi

echo "bootstrap: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer it up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
npm_deps
echo "bootstrap: done"
