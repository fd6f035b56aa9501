#!/usr/bin/env bash
# test.sh -- the full test suite: install what is missing (the --test
# profile of scripts/setup.sh: everything the tests need), build with
# -Werror, run every test (a real Kafka broker is fetched and started for the
# Kafka paths), then build with ASan+UBSan and run the unit tests again, and
# run every libFuzzer target for a few seconds (clang, tests/fuzz/).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

"$here/scripts/setup.sh" --test "$here/build" -DKB_WERROR=ON
echo "== tests (build/)"
ctest --test-dir "$here/build" --output-on-failure -j"$jobs" --timeout 900

echo "== unit tests and the embedded demo under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
"$here/scripts/setup.sh" --test "$here/build-asan" -DKB_WERROR=ON -DKB_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$here/build-asan" --output-on-failure -j"$jobs" -L 'unit|asan' --timeout 900

echo "== libFuzzer targets, 5 s each (build-fuzz-run/; docs/fuzzing.md)"
"$here/scripts/fuzz.sh" --seconds 5 --build "$here/build-fuzz-run"
