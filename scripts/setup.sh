#!/usr/bin/env bash
# setup.sh -- install the Debian packages kyc-bridge needs (when missing),
# then configure and build. Idempotent. Usage: scripts/setup.sh [BUILD_DIR] [cmake args...]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
[ $# -gt 0 ] && shift

# Build and test dependencies, all from Debian.
pkgs=(build-essential cmake pkg-config git
      librdkafka-dev libcurl4-openssl-dev libjson-c-dev libssl-dev
      libsodium-dev libmicrohttpd-dev libcmocka-dev
      python3 curl ca-certificates kcat clang-format maven default-jre-headless)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may carry its own Java and Maven outside dpkg: accept those.
if command -v java >/dev/null 2>&1; then
  missing=("${missing[@]/default-jre-headless}")
fi
if command -v mvn >/dev/null 2>&1; then
  missing=("${missing[@]/maven}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done
if [ ${#want[@]} -gt 0 ]; then
  echo "setup: installing ${want[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}"
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
echo "setup: built $build/kyc-bridge"
