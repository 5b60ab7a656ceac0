"""nodes.py: the weftd nodes of a run, each in its own network namespace, and the cluster's
readiness as weft-jepsen status reports it.

Node i (name n<i>, id i) listens on node_ip(i):7400 for clients and :7401 for raft, keeps its
data in STORE/data/n<i> (a small tmpfs for the node the disk nemesis fills) and appends every
incarnation's stdout and stderr to STORE/logs/n<i>.log. When the run has clock faults, weftd
runs under libfaketime: its real-time clock reads a per-node offset from
STORE/clock/n<i>.rc on every call, and its monotonic clock is left alone (raft's timers).
"""

import json
import os
import signal
import subprocess
import time

from . import log, netns, now_ms, sh

CLIENT_PORT = 7400
RAFT_PORT = 7401
SHARDS = 8
REPLICATION = 3
# weftd's own default (raft/host.h), passed explicitly so that run.json states what ran.
ELECTION_TIMEOUT_MS = 2000
# How long a node's start, and the cluster's readiness, may take before the run gives up.
READY_TIMEOUT_S = 90
# How long the replicas get to catch up with their leaders before the final dump.
CATCH_UP_TIMEOUT_S = 120
# libfaketime (Debian's libfaketime package), and the environment that makes it follow a file
# (FAKETIME_TIMESTAMP_FILE, re-read on every call with FAKETIME_NO_CACHE=1) and keep
# CLOCK_MONOTONIC real (FAKETIME_DONT_FAKE_MONOTONIC=1); see its README, section 4e.
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
# The disk nemesis's node keeps its data on a tmpfs of this size.
# A 10-minute run at 20 operations per second writes about 150 MB per node; the fill takes the
# rest.
DISK_TMPFS_BYTES = 1024 * 1024 * 1024


class Node:
    def __init__(self, i, store, weftd, peers, faketime, tmpfs):
        self.i = i
        self.name = "n%d" % i
        self.ip = netns.node_ip(i)
        self.client_address = "%s:%d" % (self.ip, CLIENT_PORT)
        self.raft_address = "%s:%d" % (self.ip, RAFT_PORT)
        self.data_dir = os.path.join(store, "data", self.name)
        self.log_path = os.path.join(store, "logs", self.name + ".log")
        self.clock_file = os.path.join(store, "clock", self.name + ".rc")
        self.weftd = weftd
        self.peers = peers
        self.faketime = faketime
        self.tmpfs = tmpfs
        self.proc = None
        self.pids = []          # every pid this node had, for libfaketime's leftovers
        self.incarnations = 0
        self.paused = False
        self.crashes = []       # {time_ms, status} of exits the harness did not cause
        self.exit_noted = True  # the current process's exit is accounted for

    def prepare(self):
        os.makedirs(self.data_dir, exist_ok=True)
        if self.tmpfs:
            sh(["mount", "-t", "tmpfs", "-o", "size=%d" % DISK_TMPFS_BYTES,
                "wj-jepsen-" + self.name, self.data_dir])
        if self.faketime:
            self.set_clock_offset_ms(0)

    def argv(self):
        return [self.weftd, "--node-id", str(self.i), "--data", self.data_dir,
                "--peers", self.peers, "--shards", str(SHARDS),
                "--replication-factor", str(REPLICATION),
                "--election-timeout-ms", str(ELECTION_TIMEOUT_MS)]

    def env(self):
        env = dict(os.environ)
        if self.faketime:
            env.update({"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": self.clock_file,
                        "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                        # an ASan build of weftd would refuse a preloaded library before it
                        "ASAN_OPTIONS": "verify_asan_link_order=0:" + env.get("ASAN_OPTIONS", "")})
        return env

    def start(self):
        assert not self.running()
        self.incarnations += 1
        with open(self.log_path, "a") as f:
            f.write("==== %d jepsen starts %s, incarnation %d ====\n" % (now_ms(), self.name,
                                                                         self.incarnations))
        logf = open(self.log_path, "a")
        # `ip netns exec` execs weftd in place: the pid is weftd's own.
        self.proc = subprocess.Popen(netns.ns_exec(self.i, self.argv()), stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.env(), start_new_session=True)
        logf.close()
        self.pids.append(self.proc.pid)
        self.paused = False
        self.exit_noted = False

    def check_exit(self):
        """Notes, once, an exit the harness did not cause (a crash, an abort): in the node's
        log, where the node-logs checker reads, and in self.crashes. Returns True if so."""
        if self.exit_noted or self.proc is None or self.proc.poll() is None:
            return False
        self.exit_noted = True
        status = self.proc.returncode
        self.crashes.append({"time_ms": now_ms(), "status": status})
        with open(self.log_path, "a") as f:
            f.write("==== %d jepsen: %s exited on its own with status %d%s ====\n" %
                    (now_ms(), self.name, status,
                     " (signal %d)" % -status if status < 0 else ""))
        log("%s exited on its own with status %d; see logs/%s.log" % (self.name, status,
                                                                      self.name))
        return True

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.running():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """kill -9, and wait for the process to be gone."""
        self.check_exit()
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.exit_noted = True
        self.paused = False

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout_s=30):
        """SIGTERM (a clean stop), SIGKILL after timeout_s. Returns the exit status."""
        if not self.running():
            return None if self.proc is None else self.proc.returncode
        if self.paused:
            self.resume()
        self.exit_noted = True
        self.proc.terminate()
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log("%s did not stop within %d s of SIGTERM; SIGKILL" % (self.name, timeout_s))
            self.kill()
            return self.proc.returncode

    def set_clock_offset_ms(self, offset_ms):
        """The node's real-time clock runs offset_ms ahead (negative: behind) from now on."""
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+.3f\n" % (offset_ms / 1000.0))
        os.replace(tmp, self.clock_file)  # libfaketime never reads a half-written file

    def release(self):
        """Unmounts the tmpfs, once the process is gone."""
        if self.tmpfs and os.path.ismount(self.data_dir):
            sh(["umount", "-l", self.data_dir], check=False)
        netns.shm_leftovers(self.pids)


def peers_flag(n):
    return ",".join("%d=%s:%d/%s:%d" % (i, netns.node_ip(i), CLIENT_PORT, netns.node_ip(i),
                                        RAFT_PORT) for i in range(1, n + 1))


class Cluster:
    def __init__(self, n, store, weftd, client, faketime, disk_node):
        self.store = store
        self.client = client  # the weft-jepsen binary
        for d in ("data", "logs", "clock"):
            os.makedirs(os.path.join(store, d), exist_ok=True)
        peers = peers_flag(n)
        self.nodes = [Node(i, store, weftd, peers, faketime, i == disk_node)
                      for i in range(1, n + 1)]

    def addresses(self):
        return ",".join(nd.client_address for nd in self.nodes)

    def node(self, name):
        return next(nd for nd in self.nodes if nd.name == name)

    def start_all(self):
        for nd in self.nodes:
            nd.prepare()
            nd.start()

    def status(self, nd, timeout_ms=2000):
        """ClusterStatus as node nd answers it (a dict), or None."""
        try:
            p = subprocess.run([self.client, "status", "--address", nd.client_address,
                                "--timeout-ms", str(timeout_ms)], capture_output=True, text=True,
                               timeout=timeout_ms / 1000.0 + 10)
        except subprocess.TimeoutExpired:
            return None
        if p.returncode != 0:
            return None
        try:
            return json.loads(p.stdout)
        except ValueError:
            return None

    def ready_leaders(self):
        """{shard: leader node id} of the shards whose leader says it is ready, asking each
        running, unpaused node about the shards it leads itself."""
        leaders = {}
        for nd in self.nodes:
            if not nd.running() or nd.paused:
                continue
            st = self.status(nd)
            if st is None:
                continue
            me = st.get("node_id", 0)
            for s in st.get("shards", []):
                if s.get("leader_node", 0) == me and s.get("ready", False):
                    leaders[s.get("shard_id", 0)] = me
        return leaders

    def wait_ready(self, timeout_s=READY_TIMEOUT_S, need_all_nodes=True):
        """Polls until every shard has a ready leader (and, with need_all_nodes, every running
        node answers). Returns the time it took in ms; raises after timeout_s."""
        t0 = time.monotonic()
        while True:
            self.check_exits()
            dead = [nd.name for nd in self.nodes if nd.proc is not None and not nd.running()]
            if dead and need_all_nodes:
                raise RuntimeError("node(s) %s exited; see their logs in %s/logs" %
                                   (", ".join(dead), self.store))
            leaders = self.ready_leaders()
            answering = all(self.status(nd) is not None for nd in self.nodes
                            if nd.running() and not nd.paused) if need_all_nodes else True
            if len(leaders) == SHARDS and answering:
                return int((time.monotonic() - t0) * 1000)
            if time.monotonic() - t0 > timeout_s:
                raise RuntimeError("after %d s only %d of %d shards have a ready leader" %
                                   (timeout_s, len(leaders), SHARDS))
            time.sleep(0.25)

    def lagging(self):
        """[(shard, node id, entries)] of the replicas whose leader says they lag, or None when
        no node gave a status with every shard's leader row."""
        for nd in self.nodes:
            if not nd.running() or nd.paused:
                continue
            st = self.status(nd)
            rows = [] if st is None else st.get("shards", [])
            if len(rows) != SHARDS:
                continue
            if not all(r.get("lag_known", False) for s in rows for r in s.get("replicas", [])):
                continue
            return [(s.get("shard_id", 0), r.get("node_id", 0), r.get("lag_entries", 0))
                    for s in rows for r in s.get("replicas", []) if r.get("lag_entries", 0) > 0]
        return None

    def wait_caught_up(self, timeout_s=CATCH_UP_TIMEOUT_S):
        """Polls until every replica of every shard holds its leader's whole log, twice in a row
        (so a follower has also heard the commit index and applied it). Returns the time it
        took in ms, or None after timeout_s (the replicas that still lag are logged)."""
        t0 = time.monotonic()
        clean_polls = 0
        while True:
            lag = self.lagging()
            clean_polls = clean_polls + 1 if lag == [] else 0
            if clean_polls >= 2:
                return int((time.monotonic() - t0) * 1000)
            if time.monotonic() - t0 > timeout_s:
                log("replicas still behind their leader after %d s: %s" % (timeout_s, lag))
                return None
            time.sleep(0.25)

    def placement(self):
        """{shard: [node ids of its replicas]} and {shard: leader id} from any node's status."""
        for nd in self.nodes:
            if not nd.running() or nd.paused:
                continue
            st = self.status(nd)
            if st is None:
                continue
            reps, leaders = {}, {}
            for s in st.get("shards", []):
                sid = s.get("shard_id", 0)
                reps[sid] = [r.get("node_id", 0) for r in s.get("replicas", [])]
                leaders[sid] = s.get("leader_node", 0)
            if len(reps) == SHARDS:
                return reps, leaders
        return {}, {}

    def check_exits(self):
        for nd in self.nodes:
            nd.check_exit()

    def stop_all(self):
        statuses = {}
        for nd in self.nodes:
            if nd.running():
                statuses[nd.name] = nd.stop()
        return statuses

    def kill_all(self):
        for nd in self.nodes:
            if nd.running():
                if nd.paused:
                    nd.resume()
                nd.kill()

    def release(self):
        for nd in self.nodes:
            nd.release()
