#!/bin/sh
# figures.sh: reruns the configurations of the README's figures table, each REPEATS times on a
# fresh spawned weftd, appends every run's JSON line to OUT and prints the median of each
# configuration. Figures only: nothing here passes or fails.
#
#   bench/figures.sh BUILD_DIR [REPEATS] [DURATION_S] [OUT] [LABELS]
#   bench/figures.sh /tmp/build-bench 3 20 /tmp/weft-bench-figures.jsonl
#   bench/figures.sh /tmp/build-bench 3 20 /tmp/wf.jsonl 'wf-.*-32t'   # some rows only
#
# On a shared machine other processes steal the cores and the disk, so before each run the
# script waits (at most QUIET_WAIT_S) until the host is nearly idle, and a run during which
# other processes used more than NOISY_CPU_PCT of one core is marked noisy and run again (at
# most RETRIES_MAX more times). The summary uses quiet runs only, when there are any.
set -eu

build=${1:?usage: figures.sh BUILD_DIR [REPEATS] [DURATION_S] [OUT]}
repeats=${2:-3}
duration=${3:-20}
out=${4:-/tmp/weft-bench-figures.jsonl}
labels=${5:-.}      # extended regex: only configurations whose label matches run
bench="$build/bench/weft-bench"
weftd=${WEFTD:-$build/node/weftd}  # WEFTD=path pins a copied binary
QUIET_BUSY_PCT=10   # host busy below this (% of all cores over 2 s) counts as idle
QUIET_WAIT_S=300    # longest wait for an idle host before running anyway
NOISY_CPU_PCT=10    # other processes above this % of one core during a run: noisy
RETRIES_MAX=${RETRIES_MAX:-3} # extra attempts for a noisy run

# Busy jiffies and total jiffies of every core, from /proc/stat.
busy_total() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat; }

wait_quiet() {
    waited=0
    while [ "$waited" -lt "$QUIET_WAIT_S" ]; do
        set -- $(busy_total)
        b0=$1 t0=$2
        sleep 2
        set -- $(busy_total)
        pct=$(( ($1 - b0) * 100 / ($2 - t0 + 1) ))
        [ "$pct" -lt "$QUIET_BUSY_PCT" ] && return 0
        waited=$((waited + 2))
    done
    echo "   host still busy after ${QUIET_WAIT_S}s; running anyway" >&2
}

# One configuration per line: a label, then the scenario flags.
configs='start-1t       --scenario start --threads 1
start-8t       --scenario start --threads 8
start-32t      --scenario start --threads 32
start-8t-1sh   --scenario start --threads 8 --shards 1
wf-1act-1t     --scenario workflow --activities 1 --threads 1 --workers 1 --workflows 1000000
wf-1act-32t    --scenario workflow --activities 1 --threads 32 --workers 32 --workflows 1000000
wf-3act-1t     --scenario workflow --activities 3 --threads 1 --workers 1 --workflows 1000000
wf-3act-32t    --scenario workflow --activities 3 --threads 32 --workers 32 --workflows 1000000
signal-8t      --scenario signal --threads 8 --workflows 1000'

echo "$configs" | while read -r label flags; do
    echo "$label" | grep -Eq "$labels" || continue
    i=1
    attempts=0
    while [ "$i" -le "$repeats" ]; do
        wait_quiet
        echo "== $label run $i: weft-bench --spawn $weftd --duration-s $duration $flags" >&2
        # shellcheck disable=SC2086 # flags are words on purpose
        line=$("$bench" --spawn "$weftd" --duration-s "$duration" $flags --json 2>/dev/null |
            tail -n 1)
        other=$(echo "$line" | sed -n 's/.*"other_cpu_s":\([0-9.]*\).*/\1/p')
        noisy=$(awk -v o="${other:-0}" -v d="$duration" -v p="$NOISY_CPU_PCT" \
            'BEGIN{print (o * 100 > d * p) ? "true" : "false"}')
        echo "{\"label\":\"$label\",\"run\":$i,\"noisy\":$noisy,\"result\":$line}" >>"$out"
        echo "   other processes used ${other}s of CPU: noisy=$noisy" >&2
        if [ "$noisy" = true ] && [ "$attempts" -lt "$RETRIES_MAX" ]; then
            attempts=$((attempts + 1))
            continue
        fi
        i=$((i + 1))
    done
done

command -v python3 >/dev/null || { echo "JSON lines in $out (python3 not found for the summary)"; exit 0; }
python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows.setdefault(d["label"], []).append(d)
def med(rs, f):
    return statistics.median(f(r) for r in rs)
print("%-12s %5s %8s %8s %8s %8s %8s %8s %8s %8s" % ("config", "quiet", "ops/s", "min 1s",
      "acts/s", "p50 ms", "p99 ms", "max ms", "rtt p50", "rtt p99"))
for label, ds in rows.items():
    quiet = [d["result"] for d in ds if not d["noisy"]]
    rs = quiet or [d["result"] for d in ds]
    f = rs[0]["figures"]
    # The scenario's main rate and latency row.
    key, lat = next((k, l) for k, l in (("starts_per_s", "start"),
                    ("workflows_per_s", "workflow_end_to_end"), ("signals_per_s", "signal"))
                    if k in f)
    rtt = lambda r, q: r["latency_ms"].get("wft_round_trip", {}).get(q, 0)
    print("%-12s %2d/%-2d %8.0f %8.0f %8.0f %8.2f %8.2f %8.1f %8.1f %8.1f" % (label,
          len(quiet), len(ds), med(rs, lambda r: r["figures"][key]),
          med(rs, lambda r: r["figures"][key + "_min"]),
          med(rs, lambda r: r["figures"].get("activities_per_s", 0)),
          med(rs, lambda r: r["latency_ms"][lat]["p50"]),
          med(rs, lambda r: r["latency_ms"][lat]["p99"]),
          med(rs, lambda r: r["latency_ms"][lat]["max"]),
          med(rs, lambda r: rtt(r, "p50")), med(rs, lambda r: rtt(r, "p99"))))
PY
