# lib.sh: what the package tests share (sourced, not run): failing with a message, a scratch
# dir that is removed at exit, and a weftd on free loopback ports that is waited for by polling.

# How long a started weftd may take to answer ClusterStatus (a busy machine is slow).
WEFTD_READY_TIMEOUT_S=60
# How long a stopped weftd may take to exit after SIGTERM (drain plus closing every shard).
WEFTD_STOP_TIMEOUT_S=60
# Loopback port pairs tried before giving up (another process may take a port we picked).
WEFTD_PORT_ATTEMPTS=5

# The sanitizer flags a program linked against the build's libweft needs: in a WEFT_SANITIZE
# build libweft is instrumented, and the sanitizer runtime must come first in the program.
sanitizer_flags() {
    if grep -q '^WEFT_SANITIZE:BOOL=ON' "$1/CMakeCache.txt"; then
        echo "-fsanitize=address,undefined -fno-omit-frame-pointer"
    fi
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "--- $*"
}

# A scratch dir, removed (with any weftd this script started) when the script exits.
WEFTD_PIDS=()
scratch_init() {
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/weft-pkg-test.XXXXXX")
    trap scratch_cleanup EXIT
}
scratch_cleanup() {
    local pid
    for pid in "${WEFTD_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ -n "${KEEP_SCRATCH:-}" ]; then
        echo "scratch kept in $SCRATCH" >&2
    else
        rm -rf "$SCRATCH"
    fi
}

# True when no socket of any state uses TCP port $1 on any local address (/proc/net/tcp{,6}).
port_unused() {
    local hex
    hex=$(printf '%04X' "$1")
    local used
    used=$(awk 'NR > 1 {print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
    ! grep -q ":$hex\$" <<<"$used"
}

# Picks a port P such that P and P+1 look unused; prints P.
port_pair_pick() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        if port_unused "$p" && port_unused $((p + 1)); then
            echo "$p"
            return 0
        fi
    done
    fail "no free pair of loopback ports found"
}

# weftd_start WEFTD WEFT_CLI DATA_DIR [EXTRA FLAGS...]: starts WEFTD on a free client port and
# the next one for raft, then polls `WEFT_CLI cluster status` until it answers. Sets
# WEFTD_ADDRESS (host:port) and WEFTD_PID; the log is DATA_DIR.log. A port taken between the
# pick and the bind makes weftd exit: another pair is tried.
weftd_start() {
    local weftd=$1 cli=$2 data=$3
    shift 3
    local attempt port deadline
    for attempt in $(seq "$WEFTD_PORT_ATTEMPTS"); do
        port=$(port_pair_pick)
        WEFTD_ADDRESS="127.0.0.1:$port"
        "$weftd" "$@" --data "$data" --listen "$WEFTD_ADDRESS" \
            --raft-listen "127.0.0.1:$((port + 1))" >"$data.log" 2>&1 &
        WEFTD_PID=$!
        WEFTD_PIDS+=("$WEFTD_PID")
        deadline=$((SECONDS + WEFTD_READY_TIMEOUT_S))
        while [ "$SECONDS" -lt "$deadline" ]; do
            if "$cli" --address "$WEFTD_ADDRESS" cluster status >/dev/null 2>&1; then
                return 0
            fi
            if ! kill -0 "$WEFTD_PID" 2>/dev/null; then
                break
            fi
            sleep 0.1
        done
        if kill -0 "$WEFTD_PID" 2>/dev/null; then
            cat "$data.log" >&2
            fail "weftd on $WEFTD_ADDRESS did not answer cluster status within ${WEFTD_READY_TIMEOUT_S}s"
        fi
        if ! grep -qi "in use" "$data.log"; then
            cat "$data.log" >&2
            fail "weftd exited at start (attempt $attempt)"
        fi
        rm -rf "$data"
    done
    fail "weftd could not bind a free port pair in $WEFTD_PORT_ATTEMPTS attempts"
}

# Sends SIGTERM to the weftd started last and waits for a clean exit (code 0).
weftd_stop() {
    kill -TERM "$WEFTD_PID"
    local deadline=$((SECONDS + WEFTD_STOP_TIMEOUT_S))
    while kill -0 "$WEFTD_PID" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "weftd did not stop within ${WEFTD_STOP_TIMEOUT_S}s of SIGTERM"
        sleep 0.1
    done
    wait "$WEFTD_PID" || fail "weftd exited with code $? after SIGTERM, expected 0"
}
