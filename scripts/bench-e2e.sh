#!/usr/bin/env bash
# bench-e2e.sh -- bench/e2e.py alone (custom end-to-end runs: --run
# LATENCY_MS:M, --in-flight, --handoff, --perf DIR, ...; its --help):
# scripts/bench.sh --e2e, which installs, builds and starts the broker.
#
#   scripts/bench-e2e.sh                           # latency 0 x 5000, 100 ms x 2000
#   scripts/bench-e2e.sh --run 0:20000 --in-flight 128
exec "$(dirname "$0")/bench.sh" --e2e "$@"
