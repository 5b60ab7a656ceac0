"""store_fixture.py: builds small, clean store directories (jepsen/FORMAT.md) for the checkers'
tests, so that each test can plant exactly one violation and see it caught.

A StoreBuilder holds the run as Python values: the operations of each client process, the runs
with their events (libweft's JSON form, client/json.c), the ledger, wakes, liveness, nemesis
records and node logs. Tests change those values, then write() lays out the directory.
"""

import copy
import hashlib
import json
import os
import sys

JEPSEN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if JEPSEN_DIR not in sys.path:
    sys.path.insert(0, JEPSEN_DIR)

T0_MS = 1_760_000_000_000  # the fixture's harness time at the start of the run
TASK_QUEUE = "jepsen"


class FixtureRun:
    """One run as the nodes would dump it."""

    def __init__(self, ns, wid, run_id, shard):
        self.ns = ns                # namespace
        self.wid = wid              # workflow id
        self.run_id = run_id        # run id
        self.shard = shard          # its shard
        self.status = "running"     # the dump's status
        self.events = []            # events, in libweft's JSON form
        self.nodes = None           # nodes that dump it (None: every node)
        self.node_events = {}       # node -> events, where that node's copy differs

    def add(self, event_type, time_ms, **attrs):
        ev = {"event_id": len(self.events) + 1, "event_time_ms": time_ms,
              "event_type": event_type}
        ev.update(attrs)
        self.events.append(ev)
        return ev

    def task(self, time_ms, worker="w1"):
        """A workflow task: scheduled, started and completed."""
        sched = self.add("WorkflowTaskScheduled", time_ms, task_queue=TASK_QUEUE, attempt=1,
                         workflow_task_timeout_ms=10000)
        started = self.add("WorkflowTaskStarted", time_ms + 2,
                           scheduled_event_id=sched["event_id"], identity=worker)
        self.add("WorkflowTaskCompleted", time_ms + 4, scheduled_event_id=sched["event_id"],
                 started_event_id=started["event_id"], identity=worker)
        return time_ms + 4

    def complete(self, time_ms, result):
        self.add("WorkflowExecutionCompleted", time_ms, result=json.dumps(result))
        self.status = "completed"

    def renumber(self):
        for i, ev in enumerate(self.events):
            ev["event_id"] = i + 1

    def find(self, event_type, **match):
        return [ev for ev in self.events if ev["event_type"] == event_type
                and all(ev.get(k) == v for k, v in match.items())]


class StoreBuilder:
    """A clean run: ledger, timers, signals and starts workloads, and one kill fault."""

    def __init__(self, nodes=("n1", "n2", "n3"), shards=4):
        self.nodes = list(nodes)
        self.shards = shards
        self.run = {
            "run": "20260101T000000-all-kill-s1", "seed": 1, "workload": "all",
            "nemesis": "kill", "time_s": 60, "rate": 50,
            "nodes": [{"name": n, "id": i + 1, "client_address": f"10.77.0.{11 + i}:7400",
                       "raft_address": f"10.77.0.{11 + i}:7500"} for i, n in enumerate(nodes)],
            "shards": shards, "replication": 3, "election_timeout_ms": 2000,
            "max_clock_offset_ms": 500, "timer_late_bound_ms": 3000,
            "recovery_bound_ms": 10000, "start_ms": T0_MS, "end_ms": T0_MS + 60_000,
            "healed_ms": T0_MS + 61_000,
        }
        self.ops = {}       # process -> [history line]
        self.runs = []      # FixtureRun
        self.ledger = []    # ledger lines
        self.wakes = []     # wakes lines
        self.liveness = []  # liveness lines
        self.nemesis = []   # nemesis lines
        self.logs = {n: f"weftd: node {n} listening\nweftd: shard 0 leader elected\n"
                     for n in nodes}
        self._run_ids = 0
        self.build_clean()

    # ---- building blocks ----

    def op(self, process, f, value, type_, t_invoke, t_done, result=None, error=None,
           node="n1"):
        """Appends an invoke and its completion to `process`'s history."""
        lines = self.ops.setdefault(process, [])
        lines.append({"process": process, "type": "invoke", "f": f, "time_ms": t_invoke,
                      "node": node, "value": value, "error": None})
        lines.append({"process": process, "type": type_, "f": f, "time_ms": t_done,
                      "node": node, "value": result if type_ == "ok" else None,
                      "error": error})

    def new_run(self, wid, ns="default"):
        self._run_ids += 1
        r = FixtureRun(ns, wid, f"run-{self._run_ids:04d}", self._run_ids % self.shards)
        self.runs.append(r)
        return r

    def start_run(self, process, wid, wtype, inp, t, request_id=None, ok=True):
        """A run started at t by an acknowledged start from `process`."""
        r = self.new_run(wid)
        rid = request_id or f"req-{wid}"
        r.add("WorkflowExecutionStarted", t, workflow_type=wtype, task_queue=TASK_QUEUE,
              input=json.dumps(inp), workflow_task_timeout_ms=10000, first_run_id=r.run_id,
              identity=process, request_id=rid)
        value = {"namespace": "default", "workflow_id": wid, "workflow_type": wtype,
                 "request_id": rid, "id_reuse_policy": "allow", "id_conflict_policy": "fail",
                 "input": inp}
        if ok:
            self.op(process, "start", value, "ok", t - 5, t + 3,
                    result={"run_id": r.run_id, "started": True})
        else:
            self.op(process, "start", value, "info", t - 5, t + 3000,
                    error="UNAVAILABLE outcome unknown")
        return r

    def result_op(self, process, r, t, result):
        self.op(process, "result", {"namespace": r.ns, "workflow_id": r.wid,
                                    "run_id": r.run_id}, "ok", t, t + 2,
                result={"status": r.status, "result": result})

    def ledger_workflow(self, wid, t, steps=2, process="c1"):
        r = self.start_run(process, wid, "jepsen-ledger", {"steps": steps}, t)
        t = r.task(t + 1)
        for i in range(steps):
            sched = r.add("ActivityTaskScheduled", t + 1, activity_id=str(i),
                          activity_type="jepsen-step", task_queue=TASK_QUEUE,
                          input=json.dumps({"step": i}), start_to_close_timeout_ms=10000)
            self.ledger.append({"workflow_id": wid, "run_id": r.run_id, "step": i,
                                "attempt": 1, "worker": "w1", "time_ms": t + 5})
            started = r.add("ActivityTaskStarted", t + 8,
                            scheduled_event_id=sched["event_id"], attempt=1, identity="w1")
            r.add("ActivityTaskCompleted", t + 8, scheduled_event_id=sched["event_id"],
                  started_event_id=started["event_id"], result=json.dumps({"step": i}),
                  identity="w1")
            t = r.task(t + 10)
        r.complete(t + 1, {"steps": steps})
        self.result_op(process, r, t + 5, {"steps": steps})
        return r

    def timers_workflow(self, wid, t, timers_ms, late_ms=20, process="c2"):
        """Each timer fires late_ms after it is due; the worker wakes 15 ms after the fire."""
        r = self.start_run(process, wid, "jepsen-timers", {"timers_ms": timers_ms}, t)
        prev = t + 3  # the first task's time, before the first sleep is issued
        t = r.task(t + 1)
        for i, d in enumerate(timers_ms):
            st = r.add("TimerStarted", t + 1, timer_id=str(i), start_to_fire_timeout_ms=d)
            fired = t + 1 + d + late_ms
            r.add("TimerFired", fired, timer_id=str(i), started_event_id=st["event_id"])
            wake = fired + 15
            self.wakes.append({"workflow_id": wid, "run_id": r.run_id, "index": i,
                               "duration_ms": d, "wake_time_ms": wake, "prev_time_ms": prev})
            prev = wake
            t = r.task(fired + 1)
        r.complete(t + 1, {"woken": len(timers_ms)})
        self.result_op(process, r, t + 5, {"woken": len(timers_ms)})
        return r

    def signals_workflow(self, wid, t, senders, process="c3"):
        """Each sender process sends its signals 1..n in turn, one at a time."""
        expect = sum(senders.values())
        r = self.start_run(process, wid, "jepsen-signals", {"expect": expect}, t)
        t = r.task(t + 1)
        order, seqs = [], {p: 0 for p in senders}
        while len(order) < expect:
            for p, n in senders.items():
                if seqs[p] < n:
                    seqs[p] += 1
                    order.append((p, seqs[p]))
        for p, seq in order:
            t += 20
            rid = f"sig-{wid}-{p}-{seq}"
            self.op(p, "signal", {"namespace": "default", "workflow_id": wid,
                                  "request_id": rid, "signal_name": "jepsen", "seq": seq},
                    "ok", t - 3, t + 3, result={})
            r.add("WorkflowExecutionSignaled", t, signal_name="jepsen",
                  input=json.dumps({"process": p, "seq": seq}), identity=p, request_id=rid)
            t = r.task(t + 1)
        result = {"signals": [[p, s] for p, s in order]}
        r.complete(t + 1, result)
        self.result_op(process, r, t + 5, result)
        return r

    def fault(self, fault, start_ms, end_ms, value, touched_shards=None):
        """A fault window, and the liveness records of its heal."""
        self.nemesis.append({"process": "nemesis", "type": "info", "f": f"start-{fault}",
                             "time_ms": start_ms, "value": value})
        self.nemesis.append({"process": "nemesis", "type": "info", "f": f"stop-{fault}",
                             "time_ms": end_ms, "value": value})
        n = sum(1 for line in self.nemesis if line["f"] == f"stop-{fault}")
        label = f"{fault} #{n}"
        touched = set(range(self.shards)) if touched_shards is None else set(touched_shards)
        for shard in range(self.shards):
            self.liveness.append({"fault": label, "healed_ms": end_ms, "shard": shard,
                                  "served_ms": end_ms + 400 + 50 * shard,
                                  "touched": shard in touched})
            if shard not in touched:
                self.liveness.append({"fault": label, "during": True, "shard": shard,
                                      "worst_ms": 150})
        return label

    def build_clean(self):
        t = T0_MS + 1000
        self.ledger_workflow("ledger-1", t)
        self.ledger_workflow("ledger-2", t + 2000, steps=3)
        # Three timers, all due outside the kill window below.
        self.timers_workflow("timers-1", t + 4000, [1000, 6000, 500])
        self.signals_workflow("signals-1", t + 5000, {"c3": 3, "c4": 2})
        # A start re-sent with the same request id: the same answer.
        r = self.ledger_workflow("starts-1", t + 8000, steps=1, process="c5")
        value = dict(self.ops["c5"][0]["value"])
        self.op("c5", "start", value, "ok", t + 8100, t + 8103,
                result={"run_id": r.run_id, "started": True})
        # A conflicting start with another request id, refused while the run is open.
        self.op("c6", "start", dict(value, request_id="req-starts-1-b"), "fail", t + 8002,
                t + 8004, error="ALREADY_EXISTS workflow starts-1 is running")
        self.fault("kill", T0_MS + 10_000, T0_MS + 12_000, {"nodes": ["n2"], "shards": [0, 1]},
                   touched_shards=[0, 1])
        # A timer due during the kill (at T0 + 11006), fired 2.5 s after the fault ended: more
        # than the 3 s bound after it was due, within the bound after the fault ended.
        r = self.timers_workflow("timers-2", T0_MS + 9_000, [2000], process="c7")
        fired = r.find("TimerFired")[0]
        shift_ms = T0_MS + 14_500 - fired["event_time_ms"]
        for ev in r.events[r.events.index(fired):]:
            ev["event_time_ms"] += shift_ms
        self.wakes[-1]["wake_time_ms"] += shift_ms

    def run_by_wid(self, wid):
        return next(r for r in self.runs if r.wid == wid)

    # ---- writing ----

    def _run_line(self, r, node):
        events = r.node_events.get(node, r.events)
        digest = hashlib.sha256(json.dumps(events, sort_keys=True).encode()).hexdigest()
        return {"node": node, "shard": r.shard, "namespace": r.ns, "workflow_id": r.wid,
                "run_id": r.run_id, "status": r.status, "history_sha256": digest,
                "events": events}

    def write(self, store_dir):
        os.makedirs(os.path.join(store_dir, "history"), exist_ok=True)
        os.makedirs(os.path.join(store_dir, "final"), exist_ok=True)
        os.makedirs(os.path.join(store_dir, "logs"), exist_ok=True)
        run = dict(self.run)
        _write_json(os.path.join(store_dir, "run.json"), run)
        for process, lines in self.ops.items():
            _write_lines(os.path.join(store_dir, "history", f"{process}.jsonl"), lines)
        nemesis = self.nemesis + [{"process": "nemesis", "type": "info", "f": "heal",
                                   "time_ms": self.run["healed_ms"]}]
        _write_lines(os.path.join(store_dir, "history", "nemesis.jsonl"), nemesis)
        for node in self.nodes:
            lines = [self._run_line(r, node) for r in self.runs
                     if r.nodes is None or node in r.nodes]
            _write_lines(os.path.join(store_dir, "final", f"{node}.jsonl"), lines)
        _write_lines(os.path.join(store_dir, "ledger.jsonl"), self.ledger)
        _write_lines(os.path.join(store_dir, "wakes.jsonl"), self.wakes)
        _write_lines(os.path.join(store_dir, "liveness.jsonl"), self.liveness)
        for node, text in self.logs.items():
            with open(os.path.join(store_dir, "logs", f"{node}.log"), "w") as f:
                f.write(text)
        return store_dir

    def copy(self):
        return copy.deepcopy(self)


def _write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)


def _write_lines(path, lines):
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line) + "\n")
