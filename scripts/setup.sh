#!/usr/bin/env bash
# setup.sh -- install the Debian packages kyc-bridge needs (when missing),
# then configure and build. Idempotent.
#
# Usage: scripts/setup.sh [--demo|--test] [--with PKG]... [BUILD_DIR] [cmake args...]
#
#   --test  (the default) everything the test suite needs: the build
#           packages, cmocka, python3, kcat, clang-format, and Java and Maven
#           for the test Kafka broker; configures with -DKB_BUILD_TESTS=ON
#           and builds everything.
#   --demo  only what `kyc-bridge demo` needs: a C compiler, CMake,
#           pkg-config and the -dev packages of the libraries the binary
#           links (no Java, no Maven, no Python, no test tools); configures
#           with -DKB_BUILD_TESTS=OFF and builds the kyc-bridge binary only.
#   --with PKG  also install Debian package PKG (e.g. kcat for `demo --keep`).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
profile=test
extra=()
while [ $# -gt 0 ]; do
  case $1 in
  --demo) profile=demo; shift ;;
  --test) profile=test; shift ;;
  --with) [ $# -ge 2 ] || { echo "setup: --with needs a package name" >&2; exit 2; }
          extra+=("$2"); shift 2 ;;
  --) shift; break ;;
  -*) echo "setup: unknown option $1 (usage: scripts/setup.sh [--demo|--test] [--with PKG]... [BUILD_DIR] [cmake args...])" >&2
      exit 2 ;;
  *) break ;;
  esac
done
build=${1:-$here/build}
[ $# -gt 0 ] && shift

# What building the binary needs, all from Debian.
build_pkgs=(build-essential cmake pkg-config
            librdkafka-dev libcurl4-openssl-dev libjson-c-dev libssl-dev
            libsodium-dev libmicrohttpd-dev)
# What the test suite needs on top: cmocka (unit tests), python3 (black-box
# suites; python3-prometheus-client parses /metrics there), python3-yaml
# (compose_check.py reads docker/prometheus and docker/grafana, and
# compose-local.sh prometheus.yml's targets), kcat (Kafka fixture, demo --keep check), clang-format (format
# test), Java and Maven (the test Kafka broker), git, curl, ca-certificates,
# docker.io and debootstrap (docker.compose_up: a dockerd of its own, base
# images from Debian's packages; Compose v2 is built with Go), valgrind
# (valgrind.e2e), openssl (the SASL_SSL broker's certificates), clang and
# its libFuzzer runtime (scripts/fuzz.sh; Debian's clang only recommends it).
test_pkgs=(libcmocka-dev python3 python3-prometheus-client python3-yaml kcat clang-format git curl
           ca-certificates maven default-jre-headless
           docker.io debootstrap valgrind openssl clang libclang-rt-14-dev)

case $profile in
demo) pkgs=("${build_pkgs[@]}")
      cmake_args=(-DKB_BUILD_TESTS=OFF)
      targets=(--target kyc-bridge) ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}")
      cmake_args=(-DKB_BUILD_TESTS=ON)
      targets=() ;;
esac
pkgs+=(${extra[@]+"${extra[@]}"})

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A machine may carry its own Java and Maven outside dpkg: accept those.
want=()
for p in ${missing[@]+"${missing[@]}"}; do
  case $p in
  default-jre-headless) command -v java >/dev/null 2>&1 && continue ;;
  maven) command -v mvn >/dev/null 2>&1 && continue ;;
  esac
  want+=("$p")
done
if [ ${#want[@]} -gt 0 ]; then
  echo "setup: installing ($profile) ${want[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}"
fi

cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${cmake_args[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)" ${targets[@]+"${targets[@]}"}
echo "setup: built $build/kyc-bridge ($profile)"
