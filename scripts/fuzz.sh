#!/usr/bin/env bash
# fuzz.sh -- builds the libFuzzer targets of tests/fuzz/ with clang (ASan +
# UBSan, -DKB_FUZZ=ON) and runs each for a bounded time on a copy of its
# seed corpus; prints executions, coverage (cov/ft) and findings per
# target, and exits non-zero on any crash, leak, timeout or OOM.
#
# Usage: scripts/fuzz.sh [--seconds N] [--build DIR] [--target NAME]...
#                        [--keep DIR] [--jobs N]
#
#   --seconds N    fuzzing time per target (default 20); the whole run is
#                  bounded by (N + 60) seconds a target
#   --build DIR    build directory (default build-fuzz-run, in the tree)
#   --target NAME  only this target (fuzz_NAME; repeatable; default all)
#   --keep DIR     keep each target's grown corpus under DIR/NAME (else
#                  a temporary directory that is removed)
#   --jobs N       build jobs (default: the number of CPUs)
#
# Installs clang and its libFuzzer runtime from Debian when missing (sudo
# when not root); the project's other build packages come from
# scripts/setup.sh. Findings are copied to DIR/fuzz-findings/NAME/ with
# the command that replays them. tests/fuzz/README.md has the details.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=20
build=$here/build-fuzz-run
jobs=$(nproc)
keep=""
only=()
usage="usage: scripts/fuzz.sh [--seconds N] [--build DIR] [--target NAME]... [--keep DIR] [--jobs N]"
while [ $# -gt 0 ]; do
  case $1 in
  --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
  --build) build=${2:?--build needs a directory}; shift 2 ;;
  --target) only+=("${2:?--target needs a name}"); shift 2 ;;
  --keep) keep=${2:?--keep needs a directory}; shift 2 ;;
  --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
  -h|--help) echo "$usage"; exit 0 ;;
  *) echo "fuzz: unknown argument $1 ($usage)" >&2; exit 2 ;;
  esac
done
case $seconds in ''|*[!0-9]*) echo "fuzz: --seconds takes a whole number" >&2; exit 2 ;; esac
[ "$seconds" -ge 1 ] || { echo "fuzz: --seconds must be at least 1" >&2; exit 2; }

# ---- clang and libFuzzer ----
fuzzer_works() {
  local d rc
  d=$(mktemp -d)
  printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$d/t.c"
  rc=0
  clang -fsanitize=fuzzer,address,undefined "$d/t.c" -o "$d/t" >/dev/null 2>&1 || rc=1
  rm -rf "$d"
  return $rc
}
apt_install() {
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "fuzz: installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}
command -v clang >/dev/null 2>&1 || apt_install clang
if ! fuzzer_works; then
  # Debian ships libFuzzer in libclang-rt-<major>-dev (a Recommends of
  # clang, so missing after --no-install-recommends)
  major=$(clang -dumpversion | cut -d. -f1)
  apt_install "libclang-rt-$major-dev"
  fuzzer_works || { echo "fuzz: clang -fsanitize=fuzzer does not link (libclang-rt-$major-dev?)" >&2; exit 2; }
fi

# ---- build ----
echo "== build ($build, clang $(clang -dumpversion), ASan+UBSan, libFuzzer)"
mkdir -p "$build"
if ! { CC=clang cmake -S "$here" -B "$build" -DCMAKE_C_COMPILER=clang -DKB_FUZZ=ON \
         -DKB_BUILD_TESTS=OFF -DKB_SANITIZE=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" -j"$jobs" --target kb_fuzz; } >"$build/fuzz-build.log" 2>&1; then
  tail -40 "$build/fuzz-build.log" >&2
  echo "fuzz: the build failed (whole log: $build/fuzz-build.log)" >&2
  exit 2
fi

fuzzdir=$here/tests/fuzz
targets=()
if [ ${#only[@]} -gt 0 ]; then
  for t in "${only[@]}"; do
    t=${t#fuzz_}
    [ -f "$fuzzdir/fuzz_$t.c" ] || { echo "fuzz: no target $t (tests/fuzz/fuzz_$t.c)" >&2; exit 2; }
    targets+=("$t")
  done
else
  for f in "$fuzzdir"/fuzz_*.c; do
    t=$(basename "$f" .c)
    targets+=("${t#fuzz_}")
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/kb-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
findings=$build/fuzz-findings
rm -rf "$findings"
mkdir -p "$findings"

# Sanitizers: stop at the first error. Fast unwinding while fuzzing (json-c
# has no frame pointers, so an allocation's stack stops there); a finding
# is replayed once with full stacks (fast_unwind_on_malloc=0, far slower).
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:symbolize=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:symbolize=1

failed=0
summary=()
total_execs=0
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  src=$fuzzdir/fuzz_$t.c
  corpus=$work/corpus-$t
  out=$work/out-$t
  mkdir -p "$corpus" "$out"
  [ -d "$fuzzdir/corpus/$t" ] && cp -R "$fuzzdir/corpus/$t/." "$corpus/"
  # per-target libFuzzer options: the "fuzz-options:" line of its source
  read -r -a opts <<<"$(sed -n 's|^/\* fuzz-options: \(.*\) \*/$|\1|p' "$src" | head -1)"
  dict=()
  [ -f "$fuzzdir/$t.dict" ] && dict=(-dict="$fuzzdir/$t.dict")
  log=$work/log-$t

  # the saved findings of earlier runs must stay fixed
  if [ -d "$fuzzdir/crashes/$t" ] && [ -n "$(ls -A "$fuzzdir/crashes/$t")" ]; then
    if ! timeout 300 "$bin" -runs=0 ${opts[@]+"${opts[@]}"} "$fuzzdir/crashes/$t"/* >"$log.regress" 2>&1; then
      echo "fuzz: $t: a saved crash input (tests/fuzz/crashes/$t/) fails again:" >&2
      tail -40 "$log.regress" >&2
      failed=1
      summary+=("$(printf '%-16s %s' "$t" "REGRESSION (tests/fuzz/crashes/$t)")")
      continue
    fi
  fi

  echo "== fuzz_$t: $seconds s"
  rc=0
  timeout --kill-after=10 $((seconds + 60)) "$bin" -max_total_time="$seconds" \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/" ${dict[@]+"${dict[@]}"} ${opts[@]+"${opts[@]}"} "$corpus" \
    </dev/null >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  line=$(grep -E '^#[0-9]+.*(cov|ft): ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$line")
  rate=$(( ${execs:-0} / seconds ))
  artifacts=$(find "$out" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$artifacts" -ne 0 ]; then
    failed=1
    result="FAILED (exit $rc, $artifacts finding(s))"
    mkdir -p "$findings/$t"
    cp "$out"/* "$findings/$t/" 2>/dev/null || true
    cp "$log" "$findings/$t/fuzz.log"
    echo "fuzz_$t failed (exit $rc); last lines of its log:" >&2
    grep -E 'ERROR|SUMMARY|invariant|runtime error|Test unit written|#[0-9]+ +in ' "$log" | head -40 >&2 || tail -40 "$log" >&2
    for a in "$findings/$t"/*; do
      case $(basename "$a") in fuzz.log|*.replay.txt) continue ;; esac
      ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 timeout 120 \
        "$bin" ${opts[@]+"${opts[@]}"} "$a" >"$a.replay.txt" 2>&1 || true
      echo "  replay: $bin ${opts[*]} $a  (full stacks: $a.replay.txt)" >&2
    done
  else
    result="ok"
  fi
  total_execs=$(( total_execs + ${execs:-0} ))
  summary+=("$(printf '%-16s %10s %8s %6s %7s %12s  %s' "$t" "${execs:-?}" "$rate" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")")
  echo "   ${summary[-1]}"
  if [ -n "$keep" ]; then
    mkdir -p "$keep/$t"
    cp -R "$corpus/." "$keep/$t/"
  fi
done

echo
echo "== fuzz summary ($seconds s a target; cov: edges covered, ft: features)"
printf '%-16s %10s %8s %6s %7s %12s  %s\n' target execs exec/s cov ft corpus result
for s in "${summary[@]}"; do echo "$s"; done
echo "total executions: $total_execs"
if [ $failed -ne 0 ]; then
  echo "fuzz: FAILED -- findings and logs in $findings" >&2
  exit 1
fi
echo "fuzz: no crash, leak, timeout or OOM"
