#!/usr/bin/env bash
# bench-sandbox.sh -- build, start `kyc-bridge sandbox` on an ephemeral loopback
# port, run bench/bench_sandbox.c (M imports over C keep-alive connections) for
# each C, print the figures, stop the sandbox. A fresh sandbox per C, so every
# run starts from an empty store. Not a test: it asserts nothing about speed.
#
#   scripts/bench-sandbox.sh                 # M=20000, C in "1 16 64"
#   M=50000 CONNS="64 128" THREADS=2 scripts/bench-sandbox.sh
#   BUILD=/path/to/build scripts/bench-sandbox.sh   (default: build-bench/, Release)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-bench}
M=${M:-20000}
CONNS=${CONNS:-"1 16 64"}
THREADS=${THREADS:-}
SETUP_CONNS=${SETUP_CONNS:-32}

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKB_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" -j2 --target kyc-bridge bench_sandbox >/dev/null

tmp=$(mktemp -d)
pid=
stop_sandbox() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    echo "sandbox: stopped (exit $rc)"
  fi
  pid=
}
trap 'stop_sandbox; rm -rf "$tmp"' EXIT

echo "bench-sandbox: M=$M C=[$CONNS] threads=${THREADS:-default} on $(nproc) cores"
for c in $CONNS; do
  rm -f "$tmp/port"
  "$build/kyc-bridge" sandbox --listen 127.0.0.1:0 --port-file "$tmp/port" \
    ${THREADS:+--threads "$THREADS"} >"$tmp/sandbox.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [ -s "$tmp/port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$tmp/sandbox.log"; exit 1; }
    sleep 0.1
  done
  [ -s "$tmp/port" ] || { echo "sandbox did not start"; cat "$tmp/sandbox.log"; exit 1; }
  port=$(cat "$tmp/port")
  echo "--- C=$c (sandbox pid $pid, port $port)"
  "$build/bench_sandbox" --url "http://127.0.0.1:$port" -m "$M" -c "$c" \
    --setup-conns "$SETUP_CONNS" || echo "bench_sandbox: not every import answered 201"
  grep -E '^(VmHWM|VmRSS)' "/proc/$pid/status" | tr -s ' \t' ' ' | paste -sd' ' | sed 's/^/sandbox memory: /'
  # utime+stime (fields 14, 15 after the command name) over all 4*M+6 requests
  awk -v hz="$(getconf CLK_TCK)" -v n="$M" '{ sub(/^.*\) /, ""); t = ($12 + $13) / hz;
    printf "sandbox cpu: %.2f s user+sys, %.1f us per request (all phases)\n", t, t * 1e6 / (4 * n + 6) }' \
    "/proc/$pid/stat"
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
  stop_sandbox
done
