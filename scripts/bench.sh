#!/usr/bin/env bash
# bench.sh -- the benchmark, one command: installs what it needs (the test
# packages, python3-venv, and confluent-kafka and requests from PyPI into a
# venv for the Python peer), builds a Release tree, starts a real
# single-node Kafka broker in a temporary directory, runs bench/bench.py
# (every section, about 15 minutes on 2 cores), prints the table and
# writes the figures as JSON, stops the broker. Not a test: it fails only
# when a request is lost or duplicated or a section cannot run.
#
#   scripts/bench.sh                          # all sections -> build-bench/bench.json
#   scripts/bench.sh --only limits,pair       # some sections (bench.py --help)
#   scripts/bench.sh --quick                  # a tenth of the work: a smoke run
#   scripts/bench.sh --e2e ARGS...            # bench/e2e.py ARGS instead (its --help)
#   BUILD=/path/to/build scripts/bench.sh     (default: build-bench/, Release)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-bench}
run=(bench/bench.py --build "$build" --json "$build/bench.json")
if [ "${1:-}" = --e2e ]; then
  shift
  run=(bench/e2e.py)
fi

bash "$here/scripts/setup.sh" --test --with python3-venv "$build" \
  -DCMAKE_BUILD_TYPE=Release -DKB_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target kyc-bridge bench_envelope bench_json bench_sandbox >/dev/null

# The peer's libraries, pinned, in a venv of the build tree.
venv=$build/peer-venv
if ! "$venv/bin/python" -c 'import confluent_kafka, requests' 2>/dev/null; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q confluent-kafka==2.16.2 requests==2.32.3
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kb-bench.XXXXXX")
cleanup() {
  bash "$here/scripts/kafka.sh" stop "$tmp/kafka" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
bash "$here/scripts/kafka.sh" start "$tmp/kafka" >/dev/null

KB_BIN="$build/kyc-bridge" KB_KAFKA_DIR="$tmp/kafka" KB_TEST_TMP="$tmp/work" \
  KB_PEER_PYTHON="$venv/bin/python" PYTHONDONTWRITEBYTECODE=1 \
  /usr/bin/python3 "$here/${run[0]}" "${run[@]:1}" "$@"
