#!/usr/bin/env bash
# install-deps.sh: installs every Debian bookworm package weft builds, tests and runs with.
# Idempotent: runs apt-get only when something is missing. Needs root (or sudo).
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libraft-dev libuv1-dev liblmdb-dev libmsgpack-dev libxxhash-dev libinih-dev libjansson-dev
  libcmocka-dev lmdb-utils
  # the chaos harness (jepsen/): its client's SHA-256, namespaces, iptables, clock faults, driver
  libssl-dev iproute2 iptables faketime libfaketime python3
  # packaging and its tests (tests/package/): C++ for the out-of-tree example, CPack's DEB
  # generator (dpkg-dev: dpkg-shlibdeps; file), lintian, and systemd-analyze and strace for the
  # unit
  g++ dpkg-dev file lintian systemd strace
  # the container files' test reads compose.yaml and the Kubernetes manifest
  python3-yaml
  # the fuzz targets (tests/fuzz/): clang with libFuzzer and the sanitizers' runtimes
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
