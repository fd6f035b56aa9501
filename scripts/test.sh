#!/usr/bin/env bash
# test.sh -- the full test suite: install what is missing (the --test
# profile of scripts/setup.sh: everything the tests need), build with
# -Werror and run the tests that need a plain binary (units, chaos, valgrind,
# docker, the release-build and source checks: every test not labelled
# "sanitizer"; a real Kafka broker is fetched and started for the Kafka
# paths), then build with ASan+UBSan and run the unit tests again and every
# black-box suite of the product binaries (labels unit, asan, sanitizer), and
# run every libFuzzer target for a few seconds (clang, tests/fuzz/).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

"$here/scripts/setup.sh" --test "$here/build" -DKB_WERROR=ON
echo "== tests (build/): all but the black-box suites of the sanitizer build"
ctest --test-dir "$here/build" --output-on-failure -j"$jobs" -LE sanitizer --timeout 900

echo "== unit tests and the black-box suites under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
"$here/scripts/setup.sh" --test "$here/build-asan" -DKB_WERROR=ON -DKB_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug
# the suites mostly wait (on the broker, group joins, timers): one more
# than the cores keeps them busy
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$here/build-asan" --output-on-failure -j"$((jobs + 1))" \
  -L 'unit|asan|sanitizer' --timeout 900

echo "== libFuzzer targets, 5 s each (build-fuzz-run/; docs/fuzzing.md)"
"$here/scripts/fuzz.sh" --seconds 5 --build "$here/build-fuzz-run"
