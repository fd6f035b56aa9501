#!/usr/bin/env bash
# bench-e2e.sh -- end-to-end throughput of the bridge (share request in,
# downstream record out): builds kyc-bridge, starts a real single-node Kafka
# broker in a temporary directory (scripts/kafka.sh), runs bench/e2e.py
# against the sandbox with rate limits off, stops the broker. Not a test: it
# prints figures (targets: >= 2000 tokens/s at 0 ms vendor latency, >= 400
# tokens/s at 100 ms); it fails only if a request is lost or duplicated.
#
#   scripts/bench-e2e.sh                           # latency 0 x 5000, 100 ms x 2000
#   scripts/bench-e2e.sh --run 0:20000 --in-flight 128   (arguments go to e2e.py)
#   BUILD=/path/to/build scripts/bench-e2e.sh      (default: build-bench/, Release)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-bench}

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKB_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j2 --target kyc-bridge >/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kb-bench-e2e.XXXXXX")
cleanup() {
  bash "$here/scripts/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
bash "$here/scripts/kafka.sh" start "$tmp/kafka" >/dev/null

KB_BIN="$build/kyc-bridge" KB_KAFKA_DIR="$tmp/kafka" KB_TEST_TMP="$tmp/work" \
  PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$here/bench/e2e.py" "$@"
