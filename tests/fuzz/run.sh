#!/usr/bin/env bash
# run.sh [SECONDS_PER_TARGET] [TARGET...]: builds the fuzzing configuration (build-fuzz/: clang,
# libFuzzer, ASan and UBSan), writes the seed corpus with fuzz_seeds, and runs each target
# (node, apply, client, transport by default) for SECONDS_PER_TARGET (default 30), one after
# another. Exits 1 on any finding: a crash, a sanitizer report, a failed check, a hang or a
# leak, after printing the reproducer's path and the command that replays it.
# Environment: WEFT_FUZZ_BUILD_DIR (default build-fuzz), WEFT_FUZZ_CORPUS (where each target's
# corpus grows across runs; default build-fuzz/tests/fuzz/corpus), WEFT_FUZZ_JOBS (build jobs).
# docs/fuzzing.md says how to run a target for longer and how to reproduce a crash.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$here"

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(node apply client transport)
case "$seconds" in '' | *[!0-9]*)
  echo "run.sh: SECONDS_PER_TARGET must be a whole number of seconds, not '$seconds'" >&2
  exit 2 ;;
esac

# A hung input is a finding long before libFuzzer's own default of 20 minutes. The node target
# aborts by itself after 20 s without an answer; this catches everything else.
input_timeout_s=60
build=${WEFT_FUZZ_BUILD_DIR:-$here/build-fuzz}
corpus_root=${WEFT_FUZZ_CORPUS:-$build/tests/fuzz/corpus}
findings_root=$build/tests/fuzz/findings
logs=$build/tests/fuzz/logs

echo "== fuzz: build ($build)" >&2
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DWEFT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
nice -n 10 cmake --build "$build" -j"${WEFT_FUZZ_JOBS:-$(nproc)}" >/dev/null
seeds=$build/tests/fuzz/seeds
rm -rf "$seeds"
"$build/tests/fuzz/fuzz_seeds" "$seeds" >&2

# Targets write scratch data dirs and LMDB envs here; tmpfs keeps them fast.
scratch_base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && scratch_base=/dev/shm
scratch=$(mktemp -d "$scratch_base/weft-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
mkdir -p "$logs"
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then
    echo "run.sh: no target '$t'; the targets are node, apply, client and transport" >&2
    exit 2
  fi
  corpus=$corpus_root/$t
  findings=$findings_root/$t
  mkdir -p "$corpus" "$findings"
  log=$logs/$t.log
  echo "== fuzz: $t for ${seconds}s (log $log)" >&2
  rc=0
  TMPDIR=$scratch nice -n 10 "$bin" -max_total_time="$seconds" -timeout="$input_timeout_s" \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" "$seeds/$t" >"$log" 2>&1 || rc=$?
  # The last status line: executions, coverage, corpus.
  grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 >&2 || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$log" >&2 || true
  found=$(grep -oE "Test unit written to [^ ]+" "$log" | sed 's/Test unit written to //' || true)
  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    status=1
    echo "!! fuzz: $t found a problem (exit $rc). The report:" >&2
    grep -E 'ERROR|SUMMARY|fuzz_|Assertion|assertion|runtime error' "$log" | head -20 >&2 || true
    for f in $found; do
      echo "!! reproducer: $f" >&2
      echo "!! replay it:  $bin $f" >&2
    done
    [ -n "$found" ] || echo "!! no reproducer was written; see $log" >&2
  fi
done
exit $status
