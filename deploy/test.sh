#!/usr/bin/env bash
# test.sh: Quick start, step two. Installs what is missing, builds weft twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole test suite on both builds:
# unit tests, deterministic simulations and integration tests with real weftd processes. Then
# a third stage builds the libFuzzer targets with clang and runs each for a short while
# (tests/fuzz/run.sh, WEFT_FUZZ_SECONDS each, default 30; docs/fuzzing.md).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
"$here/deploy/install-deps.sh"

jobs=$(nproc)
status=0
run_suite() {
  local dir=$1 label=$2
  echo "== $label: build" >&2
  if [ "$dir" = build-asan ]; then "$here/deploy/build.sh" --sanitize; else "$here/deploy/build.sh"; fi
  echo "== $label: tests" >&2
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 900 || status=1
}

# Depth of the seeded tests. Each failure prints its seed, and WEFT_SIM_SEED / WEFT_FUZZ_SEED
# replay it. These take the suite from under a minute to a few minutes, well inside CI's budget.
export WEFT_SIM_RUNS=${WEFT_SIM_RUNS:-100}          # raft and shard simulations, seeds each
export WEFT_REVIEW_SEEDS=${WEFT_REVIEW_SEEDS:-60}   # random shard workloads replayed on replicas
export WEFT_FUZZ_ITERATIONS=${WEFT_FUZZ_ITERATIONS:-1000000} # frame decoder mutations

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite build "plain build"
run_suite build-asan "ASan+UBSan build"

echo "== fuzzing: each target for ${WEFT_FUZZ_SECONDS:-30}s" >&2
"$here/tests/fuzz/run.sh" "${WEFT_FUZZ_SECONDS:-30}" || status=1

# The chaos harness's smoke run (docs/jepsen.md): every workload on a 3-node cluster in network
# namespaces, once under kill -9 of nodes and once under network partitions, each judged by
# every checker. Fixed seeds, so a failure replays with the command the run prints; set
# WEFT_JEPSEN_SEED to draw other schedules. About 2 minutes a run, draining and checks included.
jepsen_smoke() {
  local nemesis=$1 seed=$2
  echo "== chaos harness smoke: --nemesis $nemesis --seed $seed" >&2
  "$here/jepsen/run" --workload all --nemesis "$nemesis" --time "${WEFT_JEPSEN_SMOKE_S:-60}" \
    --seed "$seed" --build-dir "$here/build" || status=1
}
jepsen_smoke kill "${WEFT_JEPSEN_SEED:-1}"
jepsen_smoke partition "${WEFT_JEPSEN_SEED:-2}"
exit $status
