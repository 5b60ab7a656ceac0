#!/bin/sh
# instructions.sh: the CPU instructions weftd executes per workflow, counted by callgrind. The
# count does not depend on what else the machine is doing, so it is the figure to compare
# before and after a change on a shared, noisy host (wall-clock rates are not).
#
#   bench/instructions.sh BUILD_DIR [ACTIVITIES] [SMALL] [LARGE]
#   bench/instructions.sh /tmp/build-bench          # seq3: 3 activities, 100 and 300 workflows
#
# BUILD_DIR must hold weftd and weft-bench built with -DCMAKE_BUILD_TYPE=RelWithDebInfo (the
# figure is of optimised code). Two weftd processes run under callgrind, one loaded with SMALL
# workflows and one with LARGE, each of ACTIVITIES sequential activities (weft-bench --scenario
# workflow). The difference of their totals divided by LARGE - SMALL cancels start-up, shut-down
# and idle ticks, and leaves what one workflow costs. The larger run's profile is kept, and its
# top functions by inclusive count are printed. A figure only: nothing here passes or fails.
set -eu

build=${1:?usage: instructions.sh BUILD_DIR [ACTIVITIES] [SMALL] [LARGE]}
activities=${2:-3}
small=${3:-100}
large=${4:-300}
[ "$large" -gt "$small" ] || { echo "instructions.sh: LARGE ($large) must exceed SMALL ($small)" >&2; exit 2; }
weftd=$(realpath "$build/node/weftd")
bench=$build/bench/weft-bench
for f in "$weftd" "$bench"; do
    [ -x "$f" ] || { echo "instructions.sh: $f is missing: build it with cmake --build $build --target weftd weft-bench" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is missing: apt-get install valgrind" >&2; exit 2; }

out=$(mktemp -d /tmp/weft-instructions.XXXXXX)
# weft-bench --spawn runs one binary with weftd's flags: this wrapper puts callgrind in front.
# Only the instructions are counted (no cache simulation), and the loop's idle wake-ups are
# in both runs alike.
cat >"$out/weftd-callgrind" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="\$WEFT_CALLGRIND_OUT" -q "$weftd" "\$@"
EOF
chmod +x "$out/weftd-callgrind"

# Runs N workflows against weftd under callgrind; prints the total instructions.
count() {
    n=$1
    WEFT_CALLGRIND_OUT="$out/callgrind.$n" "$bench" --spawn "$out/weftd-callgrind" \
        --scenario workflow --activities "$activities" --workflows "$n" --threads 8 --workers 8 \
        --duration-s 600 --json >"$out/bench.$n.txt" 2>&1 || {
        echo "instructions.sh: weft-bench failed; see $out/bench.$n.txt" >&2
        exit 1
    }
    # A run whose workflows did not all complete would understate the cost.
    grep -q "\"workflows_completed\":$n\.000," "$out/bench.$n.txt" ||
        echo "instructions.sh: warning: not every one of $n workflows is reported completed; see $out/bench.$n.txt" >&2
    awk '/^summary:/{print $2; exit}' "$out/callgrind.$n"
}

ir_small=$(count "$small")
ir_large=$(count "$large")
per=$(( (ir_large - ir_small) / (large - small) ))
echo "weftd instructions: $ir_small for $small workflows, $ir_large for $large"
echo "per workflow of $activities activities: $per"
echo "profile of the larger run: $out/callgrind.$large"
callgrind_annotate --inclusive=yes "$out/callgrind.$large" 2>/dev/null | sed -n '1,/^$/d;1,40p' |
    grep -v '^--' | head -n 30
