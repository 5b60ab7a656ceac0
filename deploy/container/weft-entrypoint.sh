#!/bin/sh
# weft-entrypoint: starts weftd in a container, deriving the node's identity and the cluster's
# peer list from the replica's ordinal, as a Kubernetes StatefulSet (pod weft-2 -> ordinal 2)
# or the compose file (WEFT_ORDINAL) gives it. docs/operations.md, "Containers".
#
#   weft-entrypoint [WEFTD FLAGS...]   exec weftd with the derived flags, then these
#   weft-entrypoint ready              exit 0 when this node answers ClusterStatus (probes)
#   weft-entrypoint peers              print the derived flags, one per line, and exit
#
# Environment:
#   WEFT_REPLICAS          nodes in the cluster (default 1: a single node, listening on 0.0.0.0)
#   WEFT_ORDINAL           this node's ordinal, 0-based (default: the trailing -N of the host
#                          name); its node id is ordinal + 1
#   WEFT_PEER_HOST         host name of each node, with {ordinal} in place of the ordinal, e.g.
#                          weft-{ordinal}.weft (Kubernetes: pod.headless-service) or
#                          weft-{ordinal} (compose); required with more than one replica
#   WEFT_CLIENT_PORT       client port of every node (default 7400)
#   WEFT_RAFT_PORT         raft port of every node (default 7401)
#   WEFT_DATA              data dir (default /var/lib/weft)
#   WEFT_CONFIG            config file (default /etc/weft/weftd.conf; skipped when absent)
#   WEFT_RESOLVE_PEERS     1 (default): turn each host name into its IPv4 address, since weftd
#                          takes a.b.c.d:port; 0: pass the names as they are
#   WEFT_RESOLVE_TIMEOUT_S how long to wait for every peer's name to resolve (default 300: in
#                          Kubernetes a pod's DNS record appears when the pod is scheduled)
#   WEFTD, WEFT            the binaries (default: weftd and weft on PATH)
set -eu

replicas=${WEFT_REPLICAS:-1}
client_port=${WEFT_CLIENT_PORT:-7400}
raft_port=${WEFT_RAFT_PORT:-7401}
data=${WEFT_DATA:-/var/lib/weft}
config=${WEFT_CONFIG:-/etc/weft/weftd.conf}
resolve=${WEFT_RESOLVE_PEERS:-1}
resolve_timeout_s=${WEFT_RESOLVE_TIMEOUT_S:-300}
weftd=${WEFTD:-weftd}
weft=${WEFT:-weft}

die() {
    echo "weft-entrypoint: $*" >&2
    exit 2
}

is_uint() {
    case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}

is_uint "$replicas" && [ "$replicas" -ge 1 ] && [ "$replicas" -le 9 ] ||
    die "WEFT_REPLICAS is '$replicas'; give the node count, 1 to 9"
is_uint "$client_port" && is_uint "$raft_port" ||
    die "WEFT_CLIENT_PORT and WEFT_RAFT_PORT must be port numbers"

ordinal=${WEFT_ORDINAL:-}
if [ -z "$ordinal" ] && [ "$replicas" -eq 1 ]; then
    ordinal=0
elif [ -z "$ordinal" ]; then
    host=${HOSTNAME:-$(hostname)}
    ordinal=${host##*-}
    is_uint "$ordinal" ||
        die "cannot take the ordinal from host name '$host' (no trailing -N); set WEFT_ORDINAL"
fi
is_uint "$ordinal" && [ "$ordinal" -lt "$replicas" ] ||
    die "ordinal '$ordinal' is not below WEFT_REPLICAS ($replicas); set WEFT_ORDINAL to 0..$((replicas - 1))"
node_id=$((ordinal + 1))

# The host name of node `ordinal` $1.
peer_host() {
    printf '%s\n' "$WEFT_PEER_HOST" | sed "s/{ordinal}/$1/g"
}

# The IPv4 address of host $1 (itself when it is one), waiting for DNS up to the deadline.
resolve_host() {
    if [ "$resolve" = 0 ]; then
        printf '%s\n' "$1"
        return 0
    fi
    deadline=$(($(date +%s) + resolve_timeout_s))
    while :; do
        addr=$(getent ahostsv4 "$1" 2>/dev/null | awk 'NR == 1 {print $1}')
        if [ -n "$addr" ]; then
            printf '%s\n' "$addr"
            return 0
        fi
        [ "$(date +%s)" -lt "$deadline" ] ||
            die "host name '$1' did not resolve within ${resolve_timeout_s}s (WEFT_RESOLVE_TIMEOUT_S)"
        sleep 1
    done
}

# Sets `self` (this node's host:port) and `flags` (weftd flags, one per line).
derive() {
    if [ "$replicas" -eq 1 ] && [ -z "${WEFT_PEER_HOST:-}" ]; then
        self="127.0.0.1:$client_port"
        flags="--node-id
$node_id
--listen
0.0.0.0:$client_port
--raft-listen
0.0.0.0:$raft_port"
        return 0
    fi
    [ -n "${WEFT_PEER_HOST:-}" ] || die "WEFT_PEER_HOST is required with WEFT_REPLICAS > 1"
    case $WEFT_PEER_HOST in *"{ordinal}"*) ;; *) die "WEFT_PEER_HOST must contain {ordinal}" ;; esac
    peers=""
    i=0
    while [ "$i" -lt "$replicas" ]; do
        addr=$(resolve_host "$(peer_host "$i")")
        peers="$peers${peers:+,}$((i + 1))=$addr:$client_port/$addr:$raft_port"
        [ "$i" -ne "$ordinal" ] || self_addr=$addr
        i=$((i + 1))
    done
    self="$self_addr:$client_port"
    flags="--node-id
$node_id
--listen
$self_addr:$client_port
--raft-listen
$self_addr:$raft_port
--peers
$peers"
}

case ${1:-} in
ready)
    # Only this node's own name is resolved: a peer that is gone must not hold up the probe.
    if [ -n "${WEFT_PEER_HOST:-}" ]; then
        resolve_timeout_s=0
        self="$(resolve_host "$(peer_host "$ordinal")"):$client_port"
    else
        self="127.0.0.1:$client_port"
    fi
    exec "$weft" --address "$self" cluster status >/dev/null
    ;;
peers)
    derive
    printf '%s\n' "$flags"
    exit 0
    ;;
esac

derive
set -- --data "$data" $(printf '%s\n' "$flags" | tr '\n' ' ') "$@"
if [ -f "$config" ]; then
    set -- --config "$config" "$@"
fi
echo "weft-entrypoint: node $node_id of $replicas: $weftd $*" >&2
exec "$weftd" "$@"
