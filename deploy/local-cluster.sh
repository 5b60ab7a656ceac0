#!/usr/bin/env bash
# local-cluster.sh: runs a weft cluster of 1 to 9 weftd nodes on this machine's loopback, in the
# background, for trying out replication and failover (README, "A local cluster"). Node i
# serves clients on 127.0.0.1:(7400 + 10*(i-1)) and raft on the next port; its data, log and
# pid live under one directory, which also records the cluster's shape for later commands.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/local-cluster.sh COMMAND [ARGS] [--dir DIR] [--shards S]

Runs a weft cluster of N weftd nodes on loopback, in the background. Node i (1..N) serves
clients on 127.0.0.1:(7400 + 10*(i-1)) and raft on the next port: node 1 on 127.0.0.1:7400,
node 2 on 127.0.0.1:7410, node 3 on 127.0.0.1:7420, ...

Commands:
  start N [-- WEFTD_FLAGS...]
              start N nodes (1..9) and wait until every shard has a ready leader; prints
              every node's address and the --address list for the weft CLI. Flags after
              `--` go to every weftd (e.g. -- --election-timeout-ms 500). Refuses while
              any node of the cluster runs. On an existing DIR, starts the same cluster
              again (N must match).
  stop        SIGTERM to every running node (a clean stop: each leader hands its shards
              over first), wait for each, and report each exit status
  status      each node: running or stopped (and its last exit status), address; then
              `weft cluster status` as a running node sees it
  kill I      SIGKILL node I (a crash, like kill -9)
  restart I   start node I again with the flags it had, and wait until it answers
  leader SHARD
              print the id of the node that leads SHARD (waits, up to the ready timeout,
              until a running node reports itself the ready leader of that shard)
  help        this text

Options (also as environment variables):
  --dir DIR        WEFT_CLUSTER_DIR   where the cluster lives (default ./weft-cluster):
                                      DIR/node<i>/ data, DIR/node<i>.log its stderr,
                                      DIR/node<i>.pid its pid, DIR/cluster.env the shape
  --shards S       WEFT_CLUSTER_SHARDS  shard count for a new cluster (default 8); an
                                      existing DIR keeps the count it was created with
                   WEFT_CLUSTER_READY_TIMEOUT  seconds start/restart/leader wait (default 60)
                   WEFT_CLUSTER_STOP_TIMEOUT   seconds stop waits per node (default 60)
                   WEFT_BUILD_DIR     build tree with node/weftd and client/cli/weft
                                      (default: build/ of this repository, built with
                                      deploy/build.sh if missing)

Examples:
  deploy/local-cluster.sh start 3
  build/client/cli/weft --address 127.0.0.1:7400,127.0.0.1:7410,127.0.0.1:7420 cluster status
  deploy/local-cluster.sh leader 0
  deploy/local-cluster.sh kill 2; deploy/local-cluster.sh status; deploy/local-cluster.sh restart 2
  deploy/local-cluster.sh stop
EOF
}

here="$(cd "$(dirname "$0")/.." && pwd)"
base_port=7400
port_step=10
nodes_max=9

die() {
  echo "local-cluster: $*" >&2
  exit 1
}
note() {
  echo "local-cluster: $*" >&2
}

# ---- arguments ----
dir="${WEFT_CLUSTER_DIR:-./weft-cluster}"
shards_arg="${WEFT_CLUSTER_SHARDS:-}"
ready_timeout_s="${WEFT_CLUSTER_READY_TIMEOUT:-60}"
stop_timeout_s="${WEFT_CLUSTER_STOP_TIMEOUT:-60}"
build="${WEFT_BUILD_DIR:-}"
positional=()
weftd_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help | help)
      usage
      exit 0
      ;;
    --dir)
      [ $# -ge 2 ] || die "--dir needs a value (a directory)"
      dir="$2"
      shift 2
      ;;
    --dir=*)
      dir="${1#--dir=}"
      shift
      ;;
    --shards)
      [ $# -ge 2 ] || die "--shards needs a value (1 to 1024)"
      shards_arg="$2"
      shift 2
      ;;
    --shards=*)
      shards_arg="${1#--shards=}"
      shift
      ;;
    --)
      shift
      weftd_extra=("$@")
      break
      ;;
    -*) die "unknown option $1; run $0 --help" ;;
    *)
      positional+=("$1")
      shift
      ;;
  esac
done
[ ${#positional[@]} -ge 1 ] || {
  usage >&2
  exit 1
}
command="${positional[0]}"
args=("${positional[@]:1}")
[ -n "$dir" ] || die "--dir must not be empty"
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_uint "$ready_timeout_s" || die "WEFT_CLUSTER_READY_TIMEOUT must be a number of seconds (got \"$ready_timeout_s\")"
is_uint "$stop_timeout_s" || die "WEFT_CLUSTER_STOP_TIMEOUT must be a number of seconds (got \"$stop_timeout_s\")"
if [ -n "$shards_arg" ]; then
  { is_uint "$shards_arg" && [ "$shards_arg" -ge 1 ] && [ "$shards_arg" -le 1024 ]; } ||
    die "--shards must be an integer from 1 to 1024 (got \"$shards_arg\")"
fi

# ---- binaries ----
# Sets weftd and cli. With argument 1, builds weft when the default build/ is missing.
find_binaries() {
  local may_build=${1:-0} b="${build:-$here/build}"
  weftd="$b/node/weftd"
  cli="$b/client/cli/weft"
  if [ -x "$weftd" ] && [ -x "$cli" ]; then return 0; fi
  if [ -n "$build" ]; then
    die "WEFT_BUILD_DIR=$build has no node/weftd or client/cli/weft; build it first"
  fi
  [ "$may_build" = 1 ] || die "no weft build in $b; run deploy/build.sh (or $0 start, which builds)"
  note "no build in $b; installing what is missing and building (deploy/build.sh)"
  "$here/deploy/install-deps.sh"
  "$here/deploy/build.sh"
  if [ ! -x "$weftd" ] || [ ! -x "$cli" ]; then die "the build did not produce $weftd and $cli"; fi
}

# ---- the cluster's files ----
env_file() { echo "$dir/cluster.env"; }
pid_file() { echo "$dir/node$1.pid"; }
exit_file() { echo "$dir/node$1.exit"; }
log_file() { echo "$dir/node$1.log"; }
data_dir() { echo "$dir/node$1"; }
client_port() { echo $((base_port + port_step * ($1 - 1))); }
client_addr() { echo "127.0.0.1:$(client_port "$1")"; }
raft_addr() { echo "127.0.0.1:$(($(client_port "$1") + 1))"; }

# Loads cluster.env: nodes, shards, addresses, peers and the extra weftd flags.
load_env() {
  [ -f "$(env_file)" ] || die "no cluster in $dir (no $(env_file)); start one with: $0 start N --dir $dir"
  nodes="" shards="" addresses="" peers=""
  weftd_extra=()
  # shellcheck source=/dev/null
  . "$(env_file)"
  nodes="$WEFT_CLUSTER_NODES"
  shards="$WEFT_CLUSTER_SHARDS"
  addresses="$WEFT_CLUSTER_ADDRESSES"
  peers="$WEFT_CLUSTER_PEERS"
  weftd_extra=("${WEFT_CLUSTER_WEFTD_FLAGS[@]}")
  set_all_nodes
}

# all_nodes: 1 .. nodes.
set_all_nodes() {
  local i
  all_nodes=()
  for ((i = 1; i <= nodes; i++)); do all_nodes+=("$i"); done
}

# Something already accepts connections on the port: another weftd (a second cluster, or
# up.sh's node on 7400) or any other server.
port_busy() {
  # shellcheck disable=SC2016 # the inner shell expands $1
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

check_ports_free() {
  local i=$1 p
  for p in "$(client_port "$i")" "$(($(client_port "$i") + 1))"; do
    if port_busy "$p"; then
      die "port $p of node $i is in use on 127.0.0.1 (another weftd? up.sh runs one on 7400); stop it first"
    fi
  done
}

write_env() {
  local tmp
  tmp="$(env_file).tmp"
  {
    echo "# written by deploy/local-cluster.sh start; read by its other commands"
    # Digits, dots, colons, commas, '=' and '/' only: single quotes need no escaping.
    printf "WEFT_CLUSTER_NODES='%s'\n" "$nodes"
    printf "WEFT_CLUSTER_SHARDS='%s'\n" "$shards"
    printf "WEFT_CLUSTER_ADDRESSES='%s'\n" "$addresses"
    printf "WEFT_CLUSTER_PEERS='%s'\n" "$peers"
    printf 'WEFT_CLUSTER_WEFTD_FLAGS=('
    if [ ${#weftd_extra[@]} -gt 0 ]; then printf ' %q' "${weftd_extra[@]}"; fi
    printf ' )\n'
    local i
    for ((i = 1; i <= nodes; i++)); do
      printf "WEFT_CLUSTER_NODE%d='%s'\n" "$i" "$(client_addr "$i")"
    done
  } >"$tmp"
  mv "$tmp" "$(env_file)"
}

# The pid of node i when it runs (a live weftd), else nothing.
node_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 0
  pid="$(cat "$f" 2>/dev/null || true)"
  is_uint "$pid" || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  # Guard against a recycled pid: the process must be a weftd.
  grep -qa weftd "/proc/$pid/cmdline" 2>/dev/null || return 0
  echo "$pid"
}

node_running() { [ -n "$(node_pid "$1")" ]; }

check_node_arg() {
  local i="${1:-}"
  { is_uint "$i" && [ "$i" -ge 1 ] && [ "$i" -le "$nodes" ]; } ||
    die "node must be a number from 1 to $nodes (got \"$i\")"
}

# `weft cluster status` as node i answers it (bounded: a hung node must not hang the script).
cli_status() {
  local i=$1
  shift
  timeout 10 "$cli" --address "$(client_addr "$i")" "$@" cluster status 2>/dev/null
}

# Reads `weft cluster status` tables; prints "SHARD LEADER" for each shard whose leader is
# the answering node and ready (the leader's own word, not a follower's possibly stale view).
# shellcheck disable=SC2016 # awk fields, not shell expansions
ready_leaders_awk='
  /^answered_by: node / { me = $3 }
  /^SHARD / { in_shards = 1; next }
  in_shards && NF >= 6 && $2 == me && $6 == "yes" { print $1, $2 }
'

# Prints "SHARD LEADER" lines of every shard that a running node leads and has ready.
ready_leaders() {
  local i
  for ((i = 1; i <= nodes; i++)); do
    node_running "$i" || continue
    cli_status "$i" | awk "$ready_leaders_awk" || true
  done
}

print_log_tail() {
  local i=$1 lines=${2:-30}
  echo "---- last $lines lines of $(log_file "$i") ----" >&2
  tail -n "$lines" "$(log_file "$i")" >&2 2>/dev/null || true
  echo "---- end of $(log_file "$i") ----" >&2
}

# Starts node i in its own session. A small bash parent records weftd's exit status in
# node<i>.exit, so that stop and status can report it; node<i>.pid holds weftd's own pid,
# which every signal goes to.
launch_node() {
  local i=$1
  local pidf exitf log
  pidf="$(pid_file "$i")"
  exitf="$(exit_file "$i")"
  log="$(log_file "$i")"
  rm -f "$pidf" "$exitf"
  echo "==== $(date -u +%Y-%m-%dT%H:%M:%SZ) local-cluster.sh starts node $i ====" >>"$log"
  local cmd=("$weftd" --node-id "$i" --data "$(data_dir "$i")" --listen "$(client_addr "$i")"
    --raft-listen "$(raft_addr "$i")" --peers "$peers" --shards "$shards")
  if [ ${#weftd_extra[@]} -gt 0 ]; then cmd+=("${weftd_extra[@]}"); fi
  # shellcheck disable=SC2016 # the inner script expands its own arguments
  setsid bash -c '
    pidf=$1 exitf=$2 log=$3
    shift 3
    "$@" </dev/null >>"$log" 2>&1 &
    child=$!
    echo "$child" >"$pidf.tmp" && mv "$pidf.tmp" "$pidf"
    status=0
    wait "$child" || status=$?
    echo "$status" >"$exitf"
  ' "local-cluster-node$i" "$pidf" "$exitf" "$log" "${cmd[@]}" </dev/null >/dev/null 2>&1 &
  local deadline=$((SECONDS + 10))
  until [ -s "$pidf" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "node $i did not start (no $pidf)"
    sleep 0.05
  done
}

# Fails with the log tail of node i when it is no longer running.
check_alive() {
  local i=$1
  node_running "$i" && return 0
  local status="?" wait_exit=$((SECONDS + 2))
  until [ -s "$(exit_file "$i")" ] || [ "$SECONDS" -ge "$wait_exit" ]; do sleep 0.05; done
  if [ -s "$(exit_file "$i")" ]; then status="$(cat "$(exit_file "$i")")"; fi
  note "node $i ($(client_addr "$i")) exited while starting (status $status)"
  print_log_tail "$i"
  return 1
}

# Waits until node i answers `weft cluster status`.
wait_answers() {
  local i=$1 deadline=$((SECONDS + ready_timeout_s))
  until cli_status "$i" >/dev/null; do
    check_alive "$i" || return 1
    if [ "$SECONDS" -ge "$deadline" ]; then
      note "node $i does not answer on $(client_addr "$i") after ${ready_timeout_s}s"
      print_log_tail "$i"
      return 1
    fi
    sleep 0.2
  done
}

# Waits until every running node answers and every shard has a ready leader.
wait_cluster_ready() {
  local deadline=$((SECONDS + ready_timeout_s)) i count
  for ((i = 1; i <= nodes; i++)); do
    node_running "$i" || continue
    wait_answers "$i" || return 1
  done
  while :; do
    for ((i = 1; i <= nodes; i++)); do
      check_alive "$i" || return 1
    done
    count=$(ready_leaders | awk '{print $1}' | sort -u | wc -l)
    [ "$count" -ge "$shards" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      note "only $count of $shards shards have a ready leader after ${ready_timeout_s}s"
      for ((i = 1; i <= nodes; i++)); do
        if node_running "$i"; then
          cli_status "$i" >&2 || note "node $i does not answer"
          print_log_tail "$i" 15
        fi
      done
      return 1
    fi
    sleep 0.3
  done
}

# SIGTERMs the given nodes, waits for each to exit and prints its exit status. Returns 1 when
# one did not stop in time or exited non-zero.
stop_nodes() {
  local rc=0 i pid status
  local -A pids=()
  for i in "$@"; do
    pid="$(node_pid "$i")"
    if [ -z "$pid" ]; then
      echo "node $i: not running"
      continue
    fi
    pids[$i]=$pid
    kill -TERM "$pid" 2>/dev/null || true
  done
  for i in "$@"; do
    [ -n "${pids[$i]:-}" ] || continue
    pid=${pids[$i]}
    local deadline=$((SECONDS + stop_timeout_s))
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "node $i: did not stop within ${stop_timeout_s}s of SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        rc=1
      fi
      sleep 0.1
    done
    status="?"
    local wait_exit=$((SECONDS + 5))
    until [ -s "$(exit_file "$i")" ] || [ "$SECONDS" -ge "$wait_exit" ]; do sleep 0.05; done
    [ -s "$(exit_file "$i")" ] && status="$(cat "$(exit_file "$i")")"
    if [ "$status" = 0 ]; then
      echo "node $i: stopped cleanly (exit status 0)"
    else
      echo "node $i: exited with status $status (see $(log_file "$i"))"
      rc=1
    fi
  done
  return $rc
}

# ---- commands ----
cmd_start() {
  [ ${#args[@]} -eq 1 ] || die "usage: $0 start N [--dir DIR] [--shards S] [-- WEFTD_FLAGS...]"
  local n="${args[0]}" i
  { is_uint "$n" && [ "$n" -ge 1 ] && [ "$n" -le "$nodes_max" ]; } ||
    die "N must be a number from 1 to $nodes_max (got \"$n\")"
  find_binaries 1
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  local new_extra=("${weftd_extra[@]}")
  if [ -f "$(env_file)" ]; then
    load_env
    for ((i = 1; i <= nodes; i++)); do
      if node_running "$i"; then
        die "node $i of the cluster in $dir is already running (pid $(node_pid "$i")); stop it first: $0 stop --dir $dir"
      fi
    done
    [ "$n" = "$nodes" ] ||
      die "$dir holds a cluster of $nodes nodes; start $nodes, or use another --dir"
    [ -z "$shards_arg" ] || [ "$shards_arg" = "$shards" ] ||
      die "$dir holds a cluster of $shards shards; start it with --shards $shards (or none), or use another --dir"
    # New weftd flags replace the recorded ones; none keeps them.
    if [ ${#new_extra[@]} -gt 0 ]; then weftd_extra=("${new_extra[@]}"); fi
  else
    nodes=$n
    shards="${shards_arg:-8}"
    weftd_extra=("${new_extra[@]}")
    set_all_nodes
  fi
  addresses="" peers=""
  for ((i = 1; i <= nodes; i++)); do
    addresses+="${addresses:+,}$(client_addr "$i")"
    peers+="${peers:+,}$i=$(client_addr "$i")/$(raft_addr "$i")"
  done
  for ((i = 1; i <= nodes; i++)); do
    check_ports_free "$i"
  done
  write_env

  note "starting $nodes node(s), $shards shards, in $dir"
  for ((i = 1; i <= nodes; i++)); do
    launch_node "$i"
  done
  if ! wait_cluster_ready; then
    note "the cluster did not become ready; stopping the nodes it started"
    stop_nodes "${all_nodes[@]}" >&2 || true
    exit 1
  fi

  echo "weft cluster of $nodes nodes and $shards shards is ready; data, logs and pids in $dir"
  for ((i = 1; i <= nodes; i++)); do
    printf 'node %d  %s  (raft %s, pid %s, log %s)\n' "$i" "$(client_addr "$i")" \
      "$(raft_addr "$i")" "$(node_pid "$i")" "$(log_file "$i")"
  done
  local rel_cli="$cli"
  [ "$cli" = "$here/build/client/cli/weft" ] && [ "$PWD" = "$here" ] && rel_cli=./build/client/cli/weft
  echo
  echo "the weft CLI reaches every node with:"
  echo "  --address $addresses"
  echo "for example:"
  echo "  $rel_cli --address $addresses cluster status"
  echo "  export WEFT_ADDRESS=$addresses"
}

cmd_stop() {
  [ ${#args[@]} -eq 0 ] || die "usage: $0 stop [--dir DIR]"
  load_env
  stop_nodes "${all_nodes[@]}"
}

cmd_status() {
  [ ${#args[@]} -eq 0 ] || die "usage: $0 status [--dir DIR]"
  load_env
  local i pid state live=""
  echo "cluster in $dir: $nodes nodes, $shards shards"
  printf '%-6s  %-16s  %-16s  %s\n' NODE ADDRESS RAFT STATE
  for ((i = 1; i <= nodes; i++)); do
    pid="$(node_pid "$i")"
    if [ -n "$pid" ]; then
      state="running (pid $pid)"
      [ -n "$live" ] || live=$i
    elif [ -s "$(exit_file "$i")" ]; then
      state="stopped (last exit status $(cat "$(exit_file "$i")"))"
    else
      state="stopped"
    fi
    printf '%-6s  %-16s  %-16s  %s\n' "$i" "$(client_addr "$i")" "$(raft_addr "$i")" "$state"
  done
  echo
  if [ -z "$live" ]; then
    echo "no node is running; start the cluster with: $0 start $nodes --dir $dir"
    return 0
  fi
  find_binaries
  echo "weft cluster status, as node $live sees it:"
  cli_status "$live" || echo "node $live does not answer"
}

cmd_kill() {
  [ ${#args[@]} -eq 1 ] || die "usage: $0 kill I [--dir DIR]"
  load_env
  local i="${args[0]}" pid
  check_node_arg "$i"
  pid="$(node_pid "$i")"
  [ -n "$pid" ] || die "node $i is not running"
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  echo "node $i ($(client_addr "$i"), pid $pid): killed with SIGKILL"
}

cmd_restart() {
  [ ${#args[@]} -eq 1 ] || die "usage: $0 restart I [--dir DIR]"
  load_env
  find_binaries
  local i="${args[0]}"
  check_node_arg "$i"
  if node_running "$i"; then
    die "node $i is running (pid $(node_pid "$i")); kill or stop it first"
  fi
  check_ports_free "$i"
  launch_node "$i"
  wait_answers "$i" || exit 1
  echo "node $i ($(client_addr "$i"), pid $(node_pid "$i")): running and answering"
}

cmd_leader() {
  [ ${#args[@]} -eq 1 ] || die "usage: $0 leader SHARD [--dir DIR]"
  load_env
  find_binaries
  local s="${args[0]}" leader
  { is_uint "$s" && [ "$s" -lt "$shards" ]; } ||
    die "SHARD must be a number from 0 to $((shards - 1)) (got \"$s\")"
  local deadline=$((SECONDS + ready_timeout_s))
  while :; do
    leader=$(ready_leaders | awk -v s="$s" '$1 == s { print $2; exit }')
    if [ -n "$leader" ]; then
      echo "$leader"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "no running node reports itself the ready leader of shard $s after ${ready_timeout_s}s"
    sleep 0.2
  done
}

case "$command" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  kill) cmd_kill ;;
  restart) cmd_restart ;;
  leader) cmd_leader ;;
  *) die "unknown command \"$command\"; run $0 --help" ;;
esac
