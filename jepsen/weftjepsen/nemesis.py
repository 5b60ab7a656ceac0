"""nemesis.py: the faults of a run, drawn from the run's seed and recorded in
history/nemesis.jsonl as start-<fault> / stop-<fault> pairs (FORMAT.md "Nemesis records").

One fault is active at a time: a quiet gap, a fault, its end, and again until the run's time is
up, so that every recovery can be measured against the fault that caused it. Every choice (the
fault, its nodes, its length, its parameters) comes from the seeded random generator, so a seed
replays the same schedule (the cluster's answers, such as who leads a shard, may still differ).

Faults:
  kill       kill -9 of one node, restarted 1 to 4 s later; sometimes killed again soon after
             the restart (up to three times in one fault)
  pause      SIGSTOP of one node (half the time the leader of a shard), SIGCONT 3 to 8 s later
  partition  isolate (one node from the others), majority (a minority from a majority),
             leader (the leader of a shard from the others), bridge (two halves that both see
             one node in the middle), oneway (one node stops receiving what another sends: the
             connections the other opens to it are dropped, its own to the other still work)
  clock      offset_ms: one or more nodes' clocks set off (ahead or behind), small (inside the
             run's max_clock_offset_ms) or large (seconds); jump_ms: one node's clock jumps
             several times, forward and backward. Inside weftd only (libfaketime).
  slow       one node's links to and from its peers delayed by proxy.py and made lossy by
             iptables' statistic match
  disk       the disk node's data dir (a small tmpfs) filled with a file, later deleted
"""

import os
import time

from . import JsonLines, log, netns, now_ms
from .nodes import CLIENT_PORT, RAFT_PORT, SHARDS

ALL = ("kill", "pause", "partition", "clock", "slow", "disk")
PARTITIONS = ("isolate", "majority", "leader", "bridge", "oneway")
# The quiet gap between two faults, and how long a fault lasts (s).
GAP_S = (3.0, 6.0)
FIRST_GAP_S = 5.0
HOLD_S = {"pause": (3.0, 8.0), "partition": (5.0, 15.0), "clock": (5.0, 15.0),
          "slow": (5.0, 12.0), "disk": (8.0, 15.0)}
KILL_DOWN_S = (1.0, 4.0)
KILL_AGAIN_AFTER_S = (0.3, 2.0)
KILLS_MAX = 3
# Large clock offsets, beyond any sane bound, as real broken clocks show.
CLOCK_LARGE_MS = (2000, 30000)
CLOCK_JUMP_EVERY_S = 2.0
SLOW_DELAY_MS = (50, 400)
SLOW_LOSS_PCT = (0, 20)
# What the disk fault leaves free on the tmpfs: nothing a write of weft's could use.
DISK_LEAVE_BYTES = 4096


def kinds(name):
    if name == "none":
        return ()
    return ALL if name == "all" else (name,)


class Nemesis:
    def __init__(self, name, rng, cluster, proxy, store, max_offset_ms):
        self.kinds = kinds(name)
        self.rng = rng
        self.cluster = cluster
        self.proxy = proxy
        self.store = store
        self.max_offset_ms = max_offset_ms
        self.out = JsonLines(os.path.join(store, "history", "nemesis.jsonl"))
        self.faults = []  # {f, n, start_ms, stop_ms, nodes, shards, value}
        self.counts = {}
        self.fill_path = None

    # ---- records ----

    def record(self, f, value, time_ms=None):
        line = {"process": "nemesis", "type": "info", "f": f,
                "time_ms": now_ms() if time_ms is None else time_ms, "node": None,
                "value": value, "error": None}
        self.out.write(line)
        return line["time_ms"]

    def touched(self, names):
        """Shards with a replica on one of the named nodes."""
        reps, _ = self.cluster.placement()
        ids = {self.cluster.node(n).i for n in names}
        if not reps:  # no node answered: assume all
            return list(range(SHARDS))
        return sorted(s for s, r in reps.items() if ids & set(r))

    def begin(self, kind, nodes, value):
        value = dict(value)
        value["nodes"] = sorted(nodes)
        value["shards"] = self.touched(nodes)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        fault = {"f": kind, "n": self.counts[kind], "nodes": value["nodes"],
                 "shards": value["shards"], "value": value}
        fault["start_ms"] = self.record("start-" + kind, value)
        log("nemesis: start %s #%d %s" % (kind, fault["n"], value))
        return fault

    def end(self, fault):
        fault["stop_ms"] = self.record("stop-" + fault["f"], fault["value"])
        self.faults.append(fault)
        log("nemesis: stop %s #%d" % (fault["f"], fault["n"]))
        # A node that died on its own during the fault (its log says so) is started again, as
        # an operator would, so that the rest of the run has the whole cluster.
        self.cluster.check_exits()
        for nd in self.cluster.nodes:
            if nd.proc is not None and not nd.running():
                log("restarting %s, which exited on its own" % nd.name)
                nd.start()

    def record_heal(self, time_ms):
        self.record("heal", {}, time_ms)
        self.out.close()

    # ---- the schedule ----

    def sleep_until(self, t):
        while time.monotonic() < t:
            self.cluster.check_exits()
            time.sleep(min(0.2, max(0.0, t - time.monotonic())))

    def hold(self, kind, deadline):
        lo, hi = HOLD_S[kind]
        return min(self.rng.uniform(lo, hi), max(0.0, deadline - time.monotonic()))

    def run_until(self, deadline):
        """Injects faults until the monotonic deadline; every fault has ended by then."""
        if not self.kinds:
            self.sleep_until(deadline)
            return
        self.sleep_until(min(deadline, time.monotonic() + FIRST_GAP_S))
        while time.monotonic() + 2.0 < deadline:
            kind = self.rng.choice(self.kinds)
            getattr(self, "fault_" + kind)(deadline)
            self.sleep_until(min(deadline, time.monotonic() + self.rng.uniform(*GAP_S)))
        self.sleep_until(deadline)

    def pick(self, k=1):
        return self.rng.sample(self.cluster.nodes, k)

    # ---- faults ----

    def fault_kill(self, deadline):
        nd = self.pick()[0]
        kills = self.rng.randint(1, KILLS_MAX)
        f = self.begin("kill", [nd.name], {"kills": kills})
        for k in range(kills):
            nd.kill()
            self.sleep_until(time.monotonic() + self.rng.uniform(*KILL_DOWN_S))
            nd.start()
            if k + 1 < kills:
                self.sleep_until(time.monotonic() + self.rng.uniform(*KILL_AGAIN_AFTER_S))
        self.end(f)

    def leader_of_random_shard(self):
        _, leaders = self.cluster.placement()
        shard = self.rng.randrange(SHARDS)
        lid = leaders.get(shard, 0)
        nd = next((x for x in self.cluster.nodes if x.i == lid), None)
        return shard, nd

    def fault_pause(self, deadline):
        # Every draw is made whatever the cluster answers, so the schedule follows the seed.
        fallback = self.pick()[0]
        shard, nd = None, None
        if self.rng.random() < 0.5:
            shard, nd = self.leader_of_random_shard()
        if nd is None:
            nd = fallback
        hold = self.hold("pause", deadline)
        value = {"leader_of": shard} if shard is not None else {}
        f = self.begin("pause", [nd.name], value)
        nd.pause()
        self.sleep_until(time.monotonic() + hold)
        nd.resume()
        self.end(f)

    def cut(self, a_nodes, b_nodes):
        """Symmetric loss of every packet between the two groups."""
        for a in a_nodes:
            netns.drop(a.i, [b.ip for b in b_nodes])
        for b in b_nodes:
            netns.drop(b.i, [a.ip for a in a_nodes])

    def fault_partition(self, deadline):
        kind = self.rng.choice(PARTITIONS)
        n = len(self.cluster.nodes)
        order = self.rng.sample(self.cluster.nodes, n)
        hold = self.hold("partition", deadline)
        value = {"kind": kind}
        if kind in ("isolate", "leader"):
            lone = order[0]
            if kind == "leader":
                shard, leader = self.leader_of_random_shard()
                value["leader_of"] = shard
                lone = leader or lone
            rest = [x for x in self.cluster.nodes if x is not lone]
            involved = [lone]
            value["groups"] = [[lone.name], [x.name for x in rest]]
            apply = lambda: self.cut([lone], rest)  # noqa: E731
        elif kind == "majority":
            minority, majority = order[:n // 2], order[n // 2:]
            involved = minority
            value["groups"] = [[x.name for x in minority], [x.name for x in majority]]
            apply = lambda: self.cut(minority, majority)  # noqa: E731
        elif kind == "bridge":
            mid = n // 2
            left, bridge, right = order[:mid], order[mid], order[mid + 1:]
            involved = left + right
            value["groups"] = [[x.name for x in left], [bridge.name], [x.name for x in right]]
            value["bridge"] = bridge.name
            apply = lambda: self.cut(left, right)  # noqa: E731
        else:  # oneway: `to` stops receiving from `frm`
            to, frm = order[0], order[1]
            involved = [to]
            value["from"], value["to"] = frm.name, to.name
            apply = lambda: netns.drop_incoming_connections(  # noqa: E731
                to.i, frm.ip, (CLIENT_PORT, RAFT_PORT))
        f = self.begin("partition", [x.name for x in involved], value)
        apply()
        self.sleep_until(time.monotonic() + hold)
        netns.heal(n)
        self.end(f)

    def clock_offset(self):
        """A signed offset: small (inside the bound) or large, forward or backward."""
        if self.rng.random() < 0.5:
            ms = self.rng.randint(50, max(51, self.max_offset_ms - 50))
        else:
            ms = self.rng.randint(*CLOCK_LARGE_MS)
        return ms if self.rng.random() < 0.5 else -ms

    def fault_clock(self, deadline):
        hold = self.hold("clock", deadline)
        if self.rng.random() < 0.5:
            chosen = self.pick(self.rng.randint(1, len(self.cluster.nodes) - 1))
            offsets = {nd.name: self.clock_offset() for nd in chosen}
            f = self.begin("clock", list(offsets), {"offset_ms": offsets})
            for nd in chosen:
                nd.set_clock_offset_ms(offsets[nd.name])
            self.sleep_until(time.monotonic() + hold)
        else:
            nd = self.pick()[0]
            steps = max(1, int(hold / CLOCK_JUMP_EVERY_S))
            jumps = [self.clock_offset() for _ in range(steps)]
            f = self.begin("clock", [nd.name], {"jump_ms": {nd.name: jumps}})
            for j in jumps:
                nd.set_clock_offset_ms(j)
                self.sleep_until(time.monotonic() + hold / steps)
        for nd in self.cluster.nodes:
            if nd.faketime:
                nd.set_clock_offset_ms(0)
        self.end(f)

    def fault_slow(self, deadline):
        nd = self.pick()[0]
        hold = self.hold("slow", deadline)
        delay = self.rng.randint(*SLOW_DELAY_MS)
        loss = self.rng.randint(*SLOW_LOSS_PCT)
        peers = [x for x in self.cluster.nodes if x is not nd]
        f = self.begin("slow", [nd.name], {"delay_ms": delay, "loss_pct": loss})
        self.proxy.set_delay_ms(delay)
        self.proxy.route_through(nd, peers)
        if loss > 0:
            # Its peers' traffic now reaches it through the proxy, not from their addresses.
            self.proxy.drop_share(nd, loss / 100.0)
        self.sleep_until(time.monotonic() + hold)
        netns.heal(len(self.cluster.nodes))
        self.proxy.set_delay_ms(0)
        self.proxy.reset()
        self.end(f)

    def fault_disk(self, deadline):
        nd = next((x for x in self.cluster.nodes if x.tmpfs), None)
        if nd is None:
            return
        hold = self.hold("disk", deadline)
        self.fill_path = os.path.join(nd.data_dir, "wj-fill")
        st = os.statvfs(nd.data_dir)
        size = max(0, st.f_bavail * st.f_frsize - DISK_LEAVE_BYTES)
        f = self.begin("disk", [nd.name], {"bytes": size})
        fill(self.fill_path, size)
        self.sleep_until(time.monotonic() + hold)
        os.unlink(self.fill_path)
        self.fill_path = None
        self.end(f)

    # ---- heal ----

    def heal_all(self):
        """Ends whatever may still be in effect (a fault cut short by an error)."""
        netns.heal(len(self.cluster.nodes))
        if self.proxy is not None:
            self.proxy.set_delay_ms(0)
            self.proxy.reset()
        if self.fill_path and os.path.exists(self.fill_path):
            os.unlink(self.fill_path)
        self.cluster.check_exits()
        for nd in self.cluster.nodes:
            if nd.faketime:
                nd.set_clock_offset_ms(0)
            if nd.paused:
                nd.resume()
            if not nd.running():
                nd.start()


def fill(path, size):
    """Takes `size` bytes of the file system, written for real (tmpfs has no holes to hide)."""
    chunk = b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    left = size
    try:
        while left > 0:
            left -= os.write(fd, chunk[:min(left, len(chunk))])
    except OSError:
        pass  # full: that is the point
    finally:
        os.close(fd)
