#!/usr/bin/env bash
# chaos.sh -- build a test build (failpoints compiled in) and run the chaos
# suite: tests/chaos/chaos.py. For a customer's security team as much as for
# us: one command, its figures on stdout, exit 0 only with nothing lost,
# duplicated or orphaned. See tests/chaos/README.md and docs/assurance.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KB_CHAOS_BUILD:-$here/build-chaos}

usage() {
        cat <<EOF
usage: scripts/chaos.sh [--quick | --full] [chaos.py options]

  --quick   (default) >= 1,000 share requests, >= 30 kills: what CI runs
  --full    >= 10,000 share requests, >= 300 kills (an hour or so on 2 cores)

Builds kyc-bridge with KB_BUILD_TESTS=ON (failpoints) in \$KB_CHAOS_BUILD
(default build-chaos/), then runs tests/chaos/chaos.py with the options
given (--seed N, --only RUNS, --report FILE, --workdir DIR; chaos.py
--help). Needs what scripts/setup.sh --test installs (Java, Maven, kcat,
python3-prometheus-client).
EOF
}

for a in "$@"; do
        case $a in -h | --help) usage; exit 0 ;; esac
done
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target kyc-bridge >/dev/null
export KB_BIN=$build/kyc-bridge
export KB_TEST_TMP=${KB_TEST_TMP:-$build/chaos-tmp}
exec /usr/bin/python3 "$here/tests/chaos/chaos.py" "$@"
