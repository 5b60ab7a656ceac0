"""collect.py: after the run and the heal, what the checkers read besides the histories:
final/<node>.jsonl (weft-jepsen dump of every node, stale reads of its own replicas) and
liveness.jsonl (from the prober's probes.jsonl and the nemesis's fault windows). Also finds
the leftovers of an interrupted run for `jepsen/run --clean`.
"""

import json
import os
import signal
import subprocess
import time

from . import PREFIX, log
from .nodes import SHARDS

# A dump reads every run of a node; it gets this long.
DUMP_TIMEOUT_S = 600


def dump_all(store, cluster, client):
    """Dumps every node at once. Returns {node: exit status}."""
    running = []
    for nd in cluster.nodes:
        out = os.path.join(store, "final", nd.name + ".jsonl")
        logf = open(os.path.join(store, "logs", "dump-%s.log" % nd.name), "a")
        p = subprocess.Popen([client, "dump", "--node", nd.client_address, "--name", nd.name,
                              "--out", out], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        running.append((nd.name, p))
    statuses = {}
    for name, p in running:
        try:
            statuses[name] = p.wait(DUMP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            statuses[name] = p.wait()
        if statuses[name] != 0:
            log("dump of %s exited %d (see logs/dump-%s.log)" % (name, statuses[name], name))
    return statuses


def read_probes(store):
    probes = []
    path = os.path.join(store, "probes.jsonl")
    if not os.path.exists(path):
        return probes
    with open(path) as f:
        for line in f:
            try:
                probes.append(json.loads(line))
            except ValueError:
                pass  # a line cut by the prober's stop
    probes.sort(key=lambda p: p["time_ms"])
    return probes


def kept_majority(replicas, affected):
    """True when the replicas not on an affected node are a majority of the shard's."""
    return 2 * sum(1 for r in replicas if r not in affected) > len(replicas)


def liveness(store, faults, healed_ms, placement, ids):
    """liveness.jsonl: per fault end and shard, when a write to it succeeded again; per fault
    and shard that kept a majority of its replicas out of the fault, the worst probe latency
    while the fault lasted (FORMAT.md). `placement` is {shard: [replica node ids]} and `ids`
    {node name: id}; without a placement every shard counts as one the fault touched."""
    probes = read_probes(store)
    by_shard = {s: [p for p in probes if p["shard"] == s] for s in range(SHARDS)}
    ends = [(f["f"] + " #%d" % f["n"], f["start_ms"], f["stop_ms"], set(f["shards"]),
             {ids[n] for n in f["nodes"] if n in ids}) for f in faults]
    ends.append(("heal #1", healed_ms, healed_ms, set(), set()))
    lines = []
    for label, start_ms, stop_ms, touched, affected in ends:
        for s in range(SHARDS):
            ok = [p["time_ms"] + p["latency_ms"] for p in by_shard[s]
                  if p["ok"] and p["time_ms"] >= stop_ms]
            lines.append({"fault": label, "healed_ms": stop_ms, "shard": s,
                          "served_ms": min(ok) if ok else None, "touched": s in touched})
            if label.startswith("heal"):
                continue
            if s in touched and not (s in placement and kept_majority(placement[s], affected)):
                continue
            during = [p for p in by_shard[s] if start_ms <= p["time_ms"] <= stop_ms]
            if during:
                lines.append({"fault": label, "during": True, "shard": s,
                              "touched": s in touched,
                              "worst_ms": max(p["latency_ms"] for p in during),
                              "probes": len(during),
                              "failed": sum(1 for p in during if not p["ok"])})
    with open(os.path.join(store, "liveness.jsonl"), "w") as f:
        for line in lines:
            f.write(json.dumps(line, sort_keys=True) + "\n")
    return lines


def collect(store, cluster, client, faults, info):
    reps, _ = cluster.placement()
    ids = {nd.name: nd.i for nd in cluster.nodes}
    names = {nd.i: nd.name for nd in cluster.nodes}
    if reps:
        info["placement"] = {str(s): [names.get(r, str(r)) for r in reps[s]] for s in reps}
    info["final_ms"] = int(time.time() * 1000)
    statuses = dump_all(store, cluster, client)
    info["dumps"] = statuses
    liveness(store, faults, info["healed_ms"], reps, ids)
    info["faults"] = len(faults)
    log("collected: final/ of %d nodes, liveness of %d faults" % (len(statuses), len(faults)))


# ---- leftovers (--clean) ----

def our_process(cmdline):
    """A process of this harness in the root namespace: weft-jepsen or the proxy."""
    if not cmdline:
        return False
    return os.path.basename(cmdline[0]) == "weft-jepsen" or "weftjepsen.proxy" in cmdline


def namespace_pids():
    """Every process inside one of the harness's namespaces (the nodes): `ip netns pids`."""
    pids = []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX + "-"):
            p = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            pids += [int(x) for x in p.stdout.split() if x.isdigit()]
    return pids


def kill_leftover_processes():
    removed = []
    for pid in namespace_pids():
        try:
            os.kill(pid, signal.SIGCONT)  # a paused one dies only once resumed
            os.kill(pid, signal.SIGKILL)
            removed.append("process %d (in a %s- namespace)" % (pid, PREFIX))
        except ProcessLookupError:
            pass
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if our_process(cmdline):
            try:
                os.kill(int(pid), signal.SIGCONT)  # a paused one dies only once resumed
                os.kill(int(pid), signal.SIGKILL)
                removed.append("process %s (%s)" % (pid, " ".join(cmdline[:3])))
            except ProcessLookupError:
                pass
    return removed


def unmount_leftovers():
    removed = []
    with open("/proc/mounts") as f:
        mounts = [line.split() for line in f]
    for m in mounts:
        if m and m[0].startswith("wj-jepsen-"):
            subprocess.run(["umount", "-l", m[1]], check=False)
            removed.append("mount " + m[1])
    return removed
