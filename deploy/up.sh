#!/usr/bin/env bash
# up.sh: Quick start, step one. Installs what is missing, builds, and runs in the foreground a
# single-node weft with its embedded default (data in ./weft-data, clients on 127.0.0.1:7400)
# plus the order example's worker, so that a first workflow can run at once (README, "Your
# first workflow"). Extra arguments go to weftd (see docs/operations.md); a --listen or --data
# among them is followed by the worker too. Ctrl-C or SIGTERM stops both cleanly: the worker
# drains first, then weftd makes its clean stop. If weftd exits, the worker is stopped too.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/deploy/install-deps.sh"
"$here/deploy/build.sh"

weftd="$here/build/node/weftd"
cli="$here/build/client/cli/weft"
worker="$here/build/examples/order/order-worker"
ready_timeout_s=60

# Where the worker finds weftd, and where its ledger goes: weftd's defaults, unless the
# arguments say otherwise.
address=127.0.0.1:7400
data=./weft-data
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --listen) address="${args[i + 1]:-$address}" ;;
    --listen=*) address="${args[i]#--listen=}" ;;
    --data) data="${args[i + 1]:-$data}" ;;
    --data=*) data="${args[i]#--data=}" ;;
  esac
done
address="${address/#0.0.0.0:/127.0.0.1:}" # a wildcard listen is reached on loopback

weftd_pid=""
worker_pid=""

# Each process runs in its own session (setsid), so that Ctrl-C reaches only this script,
# which then stops them in order with one SIGTERM each: a second signal would make weftd exit
# at once instead of cleanly (docs/operations.md, Signals and shutdown).
stop_all() {
  trap '' INT TERM HUP
  local status=0
  echo "up.sh: stopping the order worker, then weftd" >&2
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    wait "$worker_pid" 2>/dev/null || true
  fi
  if [ -n "$weftd_pid" ] && kill -0 "$weftd_pid" 2>/dev/null; then
    kill -TERM "$weftd_pid" 2>/dev/null || true
    wait "$weftd_pid" 2>/dev/null || status=$?
  fi
  exit "$status"
}
trap stop_all INT TERM HUP

setsid "$weftd" "$@" &
weftd_pid=$!

# Wait until weftd answers (or exits: `up.sh --help` prints weftd's help and ends here).
deadline=$((SECONDS + ready_timeout_s))
until "$cli" --address "$address" cluster status >/dev/null 2>&1; do
  if ! kill -0 "$weftd_pid" 2>/dev/null; then
    status=0
    wait "$weftd_pid" || status=$?
    exit "$status"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "up.sh: weftd does not answer on $address after ${ready_timeout_s}s; stopping it" >&2
    stop_all
  fi
  sleep 0.2
done

ledger="$data/order-ledger.txt"
[ -d "$data" ] || ledger=./order-ledger.txt
setsid "$worker" --address "$address" --ledger "$ledger" &
worker_pid=$!

weft="./build/client/cli/weft"
[ "$address" = 127.0.0.1:7400 ] || weft="$weft --address $address"
cat >&2 <<EOF

up.sh: weftd serves $address and the order worker polls task queue 'orders'
       (each activity it runs appends a line to $ledger).
       In another terminal, start your first workflow and wait for its result:

  $weft workflow start --type order --task-queue orders --id order-1 --input '{"sleep":"2s"}'
  $weft workflow result --id order-1 --wait
  $weft workflow show --id order-1

       Ctrl-C stops the worker and weftd cleanly.

EOF

# Run until weftd exits (or a signal arrives: stop_all). A worker that dies leaves weftd up.
while :; do
  done_pid=""
  status=0
  wait -n -p done_pid "$weftd_pid" ${worker_pid:+"$worker_pid"} || status=$?
  if [ -z "$done_pid" ] && ! kill -0 "$weftd_pid" 2>/dev/null; then
    echo "up.sh: lost track of weftd (status $status)" >&2
    exit 1
  fi
  if [ "$done_pid" = "$weftd_pid" ]; then
    echo "up.sh: weftd exited (status $status); stopping the order worker" >&2
    weftd_pid=""
    if [ -n "$worker_pid" ]; then
      kill -TERM "$worker_pid" 2>/dev/null || true
      wait "$worker_pid" 2>/dev/null || true
    fi
    exit "$status"
  fi
  if [ -n "$worker_pid" ] && [ "$done_pid" = "$worker_pid" ]; then
    echo "up.sh: the order worker exited (status $status); weftd keeps running." >&2
    echo "up.sh: start it again with: $worker --address $address --ledger $ledger" >&2
    worker_pid=""
  fi
done
