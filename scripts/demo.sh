#!/usr/bin/env bash
# demo.sh -- install what the demo needs (when missing), build the binary,
# and run `kyc-bridge demo` (the whole hand-off on this machine). Arguments
# go to the demo: --count N, --kafka BOOTSTRAP, --keep, --verbose.
#
# Only the demo profile of scripts/setup.sh: compiler, CMake, pkg-config and
# the libraries' -dev packages; no Java, Maven, Python or test tools, and the
# tests are not built (-DKB_BUILD_TESTS=OFF). With --keep the demo prints a
# kcat command to watch the downstream topic, so kcat is installed then too.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
with=()
for a in "$@"; do
  [ "$a" = --keep ] && with=(--with kcat)
done
"$here/scripts/setup.sh" --demo ${with[@]+"${with[@]}"} "$here/build" >&2
exec "$here/build/kyc-bridge" demo "$@"
