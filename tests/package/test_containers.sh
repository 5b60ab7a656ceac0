#!/usr/bin/env bash
# test_containers.sh BUILD_DIR SOURCE_DIR: the container files (issue 10, "Container files").
#  1. deploy/container/weft-entrypoint.sh derives the right node id, addresses and --peers for
#     ordinals 0..2 (from WEFT_ORDINAL and from a StatefulSet host name), and refuses bad input
#     with a message that names the variable;
#  2. three nodes started through the entrypoint (with the packaged config file) on loopback
#     addresses form one cluster: every node reports ready through `weft-entrypoint ready`
#     (the probe), every shard elects a leader, a workflow starts, and SIGTERM stops each
#     node cleanly;
#     One node without peers listens on every address, as a container must;
#  3. compose.yaml and the Kubernetes manifest parse and agree with the entrypoint and the
#     Dockerfile;
#  4. when a container engine answers here (docker or podman), the image is built and the
#     compose file's cluster is run; otherwise the test says why that part did not run.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$2" && pwd)
. "$SRC/tests/package/lib.sh"
scratch_init
ENTRY=$SRC/deploy/container/weft-entrypoint.sh
WEFTD_BIN=$BUILD/node/weftd
WEFT_BIN=$BUILD/client/cli/weft
# How long the three nodes may take to elect a leader for every shard.
CLUSTER_READY_TIMEOUT_S=90

step "the entrypoint derives peers from ordinals 0..2"
peers3="1=weft-0.weft:7400/weft-0.weft:7401,2=weft-1.weft:7400/weft-1.weft:7401,3=weft-2.weft:7400/weft-2.weft:7401"
for i in 0 1 2; do
    got=$(env -i PATH="$PATH" HOSTNAME="weft-$i" WEFT_REPLICAS=3 WEFT_PEER_HOST='weft-{ordinal}.weft' \
        WEFT_RESOLVE_PEERS=0 sh "$ENTRY" peers | tr '\n' ' ')
    want="--node-id $((i + 1)) --listen weft-$i.weft:7400 --raft-listen weft-$i.weft:7401 --peers $peers3 "
    [ "$got" = "$want" ] || fail "ordinal $i (host weft-$i): got '$got', want '$want'"
    got=$(env -i PATH="$PATH" HOSTNAME=elsewhere WEFT_ORDINAL=$i WEFT_REPLICAS=3 \
        WEFT_PEER_HOST='weft-{ordinal}.weft' WEFT_RESOLVE_PEERS=0 sh "$ENTRY" peers | tr '\n' ' ')
    [ "$got" = "$want" ] || fail "WEFT_ORDINAL=$i: got '$got', want '$want'"
done
# Resolution: an address resolves to itself, so this checks the resolved form without DNS.
got=$(env -i PATH="$PATH" WEFT_ORDINAL=1 WEFT_REPLICAS=2 WEFT_PEER_HOST='127.0.0.2{ordinal}' \
    WEFT_CLIENT_PORT=9000 WEFT_RAFT_PORT=9001 sh "$ENTRY" peers | tr '\n' ' ')
want="--node-id 2 --listen 127.0.0.21:9000 --raft-listen 127.0.0.21:9001 --peers 1=127.0.0.20:9000/127.0.0.20:9001,2=127.0.0.21:9000/127.0.0.21:9001 "
[ "$got" = "$want" ] || fail "resolved peers: got '$got', want '$want'"
got=$(env -i PATH="$PATH" HOSTNAME=0123abcd sh "$ENTRY" peers | tr '\n' ' ')
[ "$got" = "--node-id 1 --listen 0.0.0.0:7400 --raft-listen 0.0.0.0:7401 " ] ||
    fail "a single node: got '$got'"
expect_refusal() {
    local want=$1
    shift
    local out rc=0
    out=$(env -i PATH="$PATH" "$@" sh "$ENTRY" peers 2>&1) || rc=$?
    [ "$rc" -eq 2 ] || fail "entrypoint with $* exited $rc, expected 2 (output: $out)"
    grep -qF "$want" <<<"$out" || fail "entrypoint with $*: '$out' does not say '$want'"
}
expect_refusal "WEFT_ORDINAL" HOSTNAME=weft WEFT_REPLICAS=3 WEFT_PEER_HOST='w-{ordinal}'
expect_refusal "is not below WEFT_REPLICAS" WEFT_ORDINAL=3 WEFT_REPLICAS=3 WEFT_PEER_HOST='w-{ordinal}'
expect_refusal "WEFT_PEER_HOST is required" WEFT_ORDINAL=0 WEFT_REPLICAS=3
expect_refusal "must contain {ordinal}" WEFT_ORDINAL=0 WEFT_REPLICAS=3 WEFT_PEER_HOST=w
expect_refusal "WEFT_REPLICAS" WEFT_REPLICAS=ten
expect_refusal "did not resolve" WEFT_ORDINAL=0 WEFT_REPLICAS=2 WEFT_PEER_HOST='no-such-host-{ordinal}.invalid' \
    WEFT_RESOLVE_TIMEOUT_S=0

step "three nodes through the entrypoint form a cluster"
# Loopback addresses of their own (all of 127/8 is loopback), ports that look free.
net="127.$((RANDOM % 200 + 20)).$((RANDOM % 250 + 1))"
port=$(port_pair_pick)
pids=()
for i in 0 1 2; do
    mkdir -p "$SCRATCH/node$i"
    env WEFTD="$WEFTD_BIN" WEFT="$WEFT_BIN" HOSTNAME="weft-$i" WEFT_REPLICAS=3 \
        WEFT_PEER_HOST="$net.1{ordinal}" WEFT_CLIENT_PORT="$port" WEFT_RAFT_PORT=$((port + 1)) \
        WEFT_DATA="$SCRATCH/node$i/data" WEFT_CONFIG="$SRC/deploy/weftd.conf" \
        sh "$ENTRY" --shards 3 >"$SCRATCH/node$i.log" 2>&1 &
    pids+=($!)
    WEFTD_PIDS+=($!)
done
probe() {
    env WEFT="$WEFT_BIN" HOSTNAME="weft-$1" WEFT_REPLICAS=3 WEFT_PEER_HOST="$net.1{ordinal}" \
        WEFT_CLIENT_PORT="$port" sh "$ENTRY" ready
}
deadline=$((SECONDS + CLUSTER_READY_TIMEOUT_S))
for i in 0 1 2; do
    until probe "$i" 2>/dev/null; do
        kill -0 "${pids[$i]}" 2>/dev/null || { cat "$SCRATCH/node$i.log" >&2; fail "node $i exited"; }
        [ "$SECONDS" -lt "$deadline" ] || { cat "$SCRATCH/node$i.log" >&2; fail "node $i never became ready"; }
        sleep 0.2
    done
done
grep -q "node 2 of 3" "$SCRATCH/node1.log" || fail "the entrypoint did not log the node it starts"
ADDR="$net.10:$port,$net.11:$port,$net.12:$port"
until "$WEFT_BIN" --address "$ADDR" cluster status >"$SCRATCH/status.txt" 2>&1 &&
    [ "$(grep -cE '^[0-9]+ +[0-9]+ ' "$SCRATCH/status.txt")" -eq 3 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$SCRATCH/status.txt" >&2; fail "not every shard elected a leader"; }
    sleep 0.2
done
for i in 0 1 2; do
    grep -qE "^$((i + 1)) +$net.1$i:$port +up" "$SCRATCH/status.txt" ||
        fail "cluster status does not list node $((i + 1)) at $net.1$i:$port up: $(cat "$SCRATCH/status.txt")"
done
"$WEFT_BIN" --address "$ADDR" workflow start --id containers-1 --type check --task-queue q \
    >"$SCRATCH/start.txt" 2>&1 || fail "workflow start on the cluster: $(cat "$SCRATCH/start.txt")"
for i in 0 1 2; do
    kill -TERM "${pids[$i]}"
done
for i in 0 1 2; do
    rc=0
    wait "${pids[$i]}" || rc=$?
    [ "$rc" -eq 0 ] || { cat "$SCRATCH/node$i.log" >&2; fail "node $i exited $rc after SIGTERM"; }
done

step "one node through the entrypoint (no WEFT_PEER_HOST): listens on every address"
port=$(port_pair_pick)
mkdir -p "$SCRATCH/single"
env WEFTD="$WEFTD_BIN" HOSTNAME=0123abcd WEFT_CLIENT_PORT="$port" WEFT_RAFT_PORT=$((port + 1)) \
    WEFT_DATA="$SCRATCH/single/data" WEFT_CONFIG="$SRC/deploy/weftd.conf" \
    sh "$ENTRY" --shards 1 >"$SCRATCH/single.log" 2>&1 &
single=$!
WEFTD_PIDS+=("$single")
deadline=$((SECONDS + CLUSTER_READY_TIMEOUT_S))
until env WEFT="$WEFT_BIN" HOSTNAME=0123abcd WEFT_CLIENT_PORT="$port" sh "$ENTRY" ready 2>/dev/null; do
    kill -0 "$single" 2>/dev/null || { cat "$SCRATCH/single.log" >&2; fail "the single node exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { cat "$SCRATCH/single.log" >&2; fail "the single node never became ready"; }
    sleep 0.2
done
grep -q "listening on 0.0.0.0:$port" "$SCRATCH/single.log" ||
    fail "the single node does not listen on 0.0.0.0:$port: $(head -3 "$SCRATCH/single.log")"
kill -TERM "$single"
rc=0
wait "$single" || rc=$?
[ "$rc" -eq 0 ] || { cat "$SCRATCH/single.log" >&2; fail "the single node exited $rc after SIGTERM"; }

step "compose.yaml and the Kubernetes manifest"
python3 - "$SRC" <<'PY'
import re, sys, yaml
src = sys.argv[1]
def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)
dockerfile = open(src + "/deploy/container/Dockerfile").read()
if not re.search(r"^FROM debian:bookworm", dockerfile, re.M):
    fail("the Dockerfile does not build on debian:bookworm")
if "COPY deploy/container/weft-entrypoint.sh /usr/local/bin/weft-entrypoint" not in dockerfile:
    fail("the Dockerfile does not install the entrypoint as /usr/local/bin/weft-entrypoint")
if 'ENTRYPOINT ["/usr/local/bin/weft-entrypoint"]' not in dockerfile:
    fail("the Dockerfile's ENTRYPOINT is not the entrypoint")
ready = ["/usr/local/bin/weft-entrypoint", "ready"]

compose = yaml.safe_load(open(src + "/deploy/container/compose.yaml"))
services = compose.get("services", {})
if sorted(services) != ["weft-0", "weft-1", "weft-2"]:
    fail("compose services are %s, expected weft-0..2" % sorted(services))
addresses = set()
for i in range(3):
    s = services["weft-%d" % i]
    env = s.get("environment", {})
    want = {"WEFT_REPLICAS": "3", "WEFT_ORDINAL": str(i), "WEFT_PEER_HOST": "weft-{ordinal}"}
    for k, v in want.items():
        if env.get(k) != v:
            fail("compose weft-%d: %s is %r, expected %r" % (i, k, env.get(k), v))
    if s.get("healthcheck", {}).get("test") != ["CMD"] + ready:
        fail("compose weft-%d: the healthcheck is not the entrypoint's ready" % i)
    if s.get("stop_signal") != "SIGTERM":
        fail("compose weft-%d: stop_signal is not SIGTERM" % i)
    if s.get("build", {}).get("dockerfile") != "deploy/container/Dockerfile":
        fail("compose weft-%d: does not build deploy/container/Dockerfile" % i)
    addresses.add(s["networks"]["weft"]["ipv4_address"])
    if not any(v.endswith(":/var/lib/weft") for v in s.get("volumes", [])):
        fail("compose weft-%d: no volume on /var/lib/weft" % i)
if len(addresses) != 3:
    fail("compose nodes do not have three distinct fixed addresses: %s" % addresses)

docs = list(yaml.safe_load_all(open(src + "/deploy/kubernetes/weft.yaml")))
kinds = {(d["kind"], d["metadata"]["name"]): d for d in docs}
sts = [d for d in docs if d["kind"] == "StatefulSet"]
if len(sts) != 1:
    fail("the manifest has %d StatefulSets, expected 1" % len(sts))
sts = sts[0]
svc = kinds.get(("Service", sts["spec"]["serviceName"]))
if svc is None or svc["spec"].get("clusterIP") != "None":
    fail("the StatefulSet's serviceName is not a headless Service")
if not svc["spec"].get("publishNotReadyAddresses"):
    fail("the headless Service does not publish not-ready pods (peers could not find each other)")
c = sts["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e.get("value") for e in c.get("env", [])}
if env.get("WEFT_REPLICAS") != str(sts["spec"]["replicas"]):
    fail("WEFT_REPLICAS %r differs from replicas %r" % (env.get("WEFT_REPLICAS"), sts["spec"]["replicas"]))
if env.get("WEFT_PEER_HOST") != "%s-{ordinal}.%s" % (sts["metadata"]["name"], svc["metadata"]["name"]):
    fail("WEFT_PEER_HOST %r is not <statefulset>-{ordinal}.<headless service>" % env.get("WEFT_PEER_HOST"))
if c.get("readinessProbe", {}).get("exec", {}).get("command") != ready:
    fail("the readiness probe is not the entrypoint's ready")
if "WEFT_ORDINAL" in env:
    fail("the StatefulSet must take the ordinal from the pod name, not WEFT_ORDINAL")
mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
if "/var/lib/weft" not in mounts:
    fail("the pod does not mount its volume on /var/lib/weft")
print("compose.yaml and weft.yaml: ok")
PY

step "a container engine"
engine=""
for e in podman docker; do
    if command -v "$e" >/dev/null && timeout 20 "$e" info >/dev/null 2>&1; then
        engine=$e
        break
    fi
done
if [ -z "$engine" ]; then
    echo "NOT RUN: no container engine answers here (docker and podman info fail or are absent);"
    echo "the image build and the compose cluster were not exercised."
    echo "PASS"
    exit 0
fi
# The Dockerfile's base images must be present or pullable (this machine reaches no registry).
for image in debian:bookworm debian:bookworm-slim; do
    if ! "$engine" image inspect "$image" >/dev/null 2>&1 &&
        ! timeout 120 "$engine" pull "$image" >"$SCRATCH/pull.log" 2>&1; then
        echo "NOT RUN: $engine answers, but the base image $image is neither present nor pullable:"
        tail -3 "$SCRATCH/pull.log"
        echo "the image build and the compose cluster were not exercised."
        echo "PASS"
        exit 0
    fi
done
compose=("$engine" compose)
if [ "$engine" = podman ] && command -v podman-compose >/dev/null; then
    compose=(podman-compose)
fi
if ! "${compose[@]}" version >/dev/null 2>&1; then
    echo "NOT RUN: $engine answers, but has no compose (${compose[*]} version fails);"
    echo "the image build and the compose cluster were not exercised."
    echo "PASS"
    exit 0
fi
"$engine" build -f "$SRC/deploy/container/Dockerfile" -t weft:latest "$SRC" >"$SCRATCH/build.log" 2>&1 ||
    { tail -40 "$SCRATCH/build.log" >&2; fail "$engine build failed"; }
project="weft-test-$$"
trap '"${compose[@]}" -p "$project" -f "$SRC/deploy/container/compose.yaml" down -v >/dev/null 2>&1 || true; scratch_cleanup' EXIT
"${compose[@]}" -p "$project" -f "$SRC/deploy/container/compose.yaml" up -d >"$SCRATCH/up.log" 2>&1 ||
    { cat "$SCRATCH/up.log" >&2; fail "compose up failed"; }
deadline=$((SECONDS + CLUSTER_READY_TIMEOUT_S))
until "${compose[@]}" -p "$project" -f "$SRC/deploy/container/compose.yaml" exec -T weft-0 \
    weft --address weft-0:7400,weft-1:7400,weft-2:7400 cluster status >"$SCRATCH/cstatus.txt" 2>&1 &&
    [ "$(grep -cE '^[0-9]+ +[0-9]+ ' "$SCRATCH/cstatus.txt")" -ge 1 ] &&
    ! grep -q ' none ' "$SCRATCH/cstatus.txt"; do
    [ "$SECONDS" -lt "$deadline" ] || { cat "$SCRATCH/cstatus.txt" >&2; fail "the compose cluster never elected its leaders"; }
    sleep 1
done
echo "PASS"
