"""workloads.py: the client-side processes of a run, all of them weft-jepsen in the root
namespace talking to the nodes over the bridge: the workers, one `run` per workload (each with
its own client processes c1, c2, ...), and the liveness prober.

`--workload all` runs the four workloads side by side, each with its share of --rate.
"""

import os
import signal
import subprocess

from . import log

WORKLOADS = ("ledger", "timers", "signals", "starts")
# Client processes (threads) per workload, and worker processes for the run.
PROCESSES_PER_WORKLOAD = 3
WORKERS = 2
# Probes: each shard gets a write this often, each waiting at most PROBE_TIMEOUT_MS.
PROBE_INTERVAL_MS = 250
PROBE_TIMEOUT_MS = 2000
# Once the driver has healed the cluster, the clients have this long to finish sequences and
# collect every result.
DRAIN_S = 120


class Procs:
    """Child processes of the harness, each in its own process group, stopped at teardown."""

    def __init__(self):
        self.procs = []  # (name, Popen)

    def spawn(self, name, argv, log_path):
        f = open(log_path, "a")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        f.close()
        self.procs.append((name, p))
        return p

    def stop(self, names=None, timeout_s=20):
        """SIGTERM the named (default: all) processes, SIGKILL those still there after
        timeout_s."""
        chosen = [(n, p) for n, p in self.procs if names is None or n in names]
        for _, p in chosen:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for n, p in chosen:
            try:
                p.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log("%s did not stop within %d s; SIGKILL" % (n, timeout_s))
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()


def chosen(workload):
    return list(WORKLOADS) if workload == "all" else [workload]


def start_workers(procs, client, store, addresses):
    for w in range(1, WORKERS + 1):
        procs.spawn("worker-w%d" % w,
                    [client, "worker", "--address", addresses, "--identity", "w%d" % w,
                     "--ledger", os.path.join(store, "ledger.jsonl"),
                     "--wakes", os.path.join(store, "wakes.jsonl")],
                    os.path.join(store, "logs", "worker-w%d.log" % w))


def start_prober(procs, client, store, addresses, tag):
    return procs.spawn("prober",
                       [client, "probe", "--address", addresses, "--shard", "all", "--loop",
                        "--interval-ms", str(PROBE_INTERVAL_MS),
                        "--timeout-ms", str(PROBE_TIMEOUT_MS), "--tag", tag,
                        "--out", os.path.join(store, "probes.jsonl")],
                       os.path.join(store, "logs", "prober.log"))


def start_clients(procs, client, store, addresses, workload, rate, time_s, seed, healed_file,
                  tag):
    """One `weft-jepsen run` per workload; returns their process names."""
    names = []
    wls = chosen(workload)
    per_rate = max(1, rate // len(wls))
    c = 0
    for wl in wls:
        processes = ",".join("c%d" % (c + k) for k in range(1, PROCESSES_PER_WORKLOAD + 1))
        c += PROCESSES_PER_WORKLOAD
        name = "client-" + wl
        procs.spawn(name,
                    [client, "run", "--address", addresses, "--workload", wl,
                     "--process", processes, "--rate", str(per_rate), "--time", str(time_s),
                     "--seed", str(seed), "--store", store, "--healed-file", healed_file,
                     "--drain", str(DRAIN_S), "--tag", tag],
                    os.path.join(store, "logs", name + ".log"))
        names.append(name)
    return names


def wait_clients(procs, names, timeout_s):
    """Waits for the workload clients to finish their result phase. Returns the names of
    those that had to be stopped."""
    late = []
    for n, p in procs.procs:
        if n not in names:
            continue
        try:
            rc = p.wait(timeout_s)
            if rc != 0:
                log("%s exited with status %d (see logs/%s.log)" % (n, rc, n))
        except subprocess.TimeoutExpired:
            late.append(n)
    if late:
        procs.stop(late)
    return late
