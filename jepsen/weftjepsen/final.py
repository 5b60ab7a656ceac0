"""final.py: the final dumps (final/<node>.jsonl, jepsen/FORMAT.md) summarised per run.

A dump holds every event of every run on every node: too much to keep as parsed JSON for a long
run. Each run line is parsed, reduced to the few facts the checkers use (RunSummary), and
dropped. Every node's copy keeps only its digest, event count and shard (for G2); one copy per
run, the longest, keeps the full summary for the other checkers (the replicas should all agree,
and G2 reports it when they do not).

Event field names are libweft's JSON form of proto/msg.h's weft_event (client/json.c): enums by
name, zero fields omitted, payloads (input, result) as JSON strings of their UTF-8 text.
"""

import functools
import os

from weftjepsen.history import StoreError, field, namespace_of, payload, read_jsonl

# Event types that close a run (docs/protocol.md, "Events").
CLOSE_EVENT_TYPES = {
    "WorkflowExecutionCompleted": "completed",
    "WorkflowExecutionFailed": "failed",
    "WorkflowExecutionTimedOut": "timed-out",
    "WorkflowExecutionCanceled": "canceled",
    "WorkflowExecutionTerminated": "terminated",
    "WorkflowExecutionContinuedAsNew": "continued",
}

# The signal name the jepsen-signals workflow receives (FORMAT.md, "Workflow types").
JEPSEN_SIGNAL_NAME = "jepsen"


class Copy:
    """One node's copy of a run: enough to compare replicas."""
    __slots__ = ("node", "shard", "sha", "events_count", "bad_event_ids", "where")

    def __init__(self, s, sha):
        self.node = s.node                    # the node whose dump holds it
        self.shard = s.shard                  # the shard the run lives on
        self.sha = sha                        # history_sha256 as the node's bytes gave it
        self.events_count = s.events_count    # events in this copy
        self.bad_event_ids = s.bad_event_ids  # first event id not dense from 1, or None
        self.where = s.where                  # "final/n1.jsonl:3"


class Signal:
    """A WorkflowExecutionSignaled event."""
    __slots__ = ("event_id", "time_ms", "name", "process", "seq", "request_id")

    def __init__(self, event_id, time_ms, name, process, seq, request_id):
        self.event_id = event_id      # its event id in the run
        self.time_ms = time_ms        # shard clock when written
        self.name = name              # signal_name
        self.process = process        # input.process (jepsen signals), else None
        self.seq = seq                # input.seq (jepsen signals), else None
        self.request_id = request_id  # the signal request's idempotency key


class Timer:
    """A TimerStarted event, and what became of it."""
    __slots__ = ("event_id", "timer_id", "started_ms", "duration_ms", "fired_ms", "fired_count",
                 "canceled")

    def __init__(self, event_id, timer_id, started_ms, duration_ms):
        self.event_id = event_id        # the TimerStarted event id
        self.timer_id = timer_id        # timer_id
        self.started_ms = started_ms    # shard clock at TimerStarted
        self.duration_ms = duration_ms  # start_to_fire_timeout_ms
        self.fired_ms = None            # shard clock at its (first) TimerFired, or None
        self.fired_count = 0            # TimerFired events for it
        self.canceled = False           # a TimerCanceled closed it

    def due_ms(self):
        return self.started_ms + self.duration_ms


class RunSummary:
    """The facts about one run that the checkers use, from one node's copy of it."""
    __slots__ = ("key", "node", "shard", "status", "where", "events_count", "workflow_type",
                 "input", "request_id", "start_ms", "close_ms", "close_types", "signals",
                 "timers", "activities", "activity_completions", "bad_event_ids",
                 "orphan_fires")

    def __init__(self, key, node, shard, status, where):
        self.key = key                  # (namespace, workflow_id, run_id)
        self.node = node                # the node whose copy this is
        self.shard = shard              # the shard the run lives on
        self.status = status            # the dump's status: running, completed, ...
        self.where = where              # "final/n1.jsonl:3"
        self.events_count = 0           # events in the copy
        self.workflow_type = None       # from WorkflowExecutionStarted
        self.input = None               # its input, parsed
        self.request_id = None          # the start request's idempotency key
        self.start_ms = None            # shard clock at WorkflowExecutionStarted
        self.close_ms = None            # shard clock at the first closing event, or None
        self.close_types = []           # every closing event's type, in order
        self.signals = []               # Signal, in history order
        self.timers = {}                # TimerStarted event id -> Timer
        self.activities = {}            # ActivityTaskScheduled event id -> (type, input)
        self.activity_completions = {}  # scheduled event id -> ActivityTaskCompleted count
        self.bad_event_ids = None       # (position, event_id) of the first id not dense from 1
        self.orphan_fires = []          # TimerFired event ids with no TimerStarted

    def is_open(self):
        return not self.close_types


def _on_signal(s, ev, eid, t):
    inp = payload(ev.get("input"))
    name = ev.get("signal_name")
    process = seq = None
    if name == JEPSEN_SIGNAL_NAME and isinstance(inp, dict):
        process, seq = inp.get("process"), inp.get("seq")
    s.signals.append(Signal(eid, t, name, process, seq, ev.get("request_id")))


def _on_timer_fired(s, ev, eid, t):
    timer = s.timers.get(ev.get("started_event_id"))
    if timer is None:  # match by timer id when the started event id is absent
        timer = next((tm for tm in s.timers.values() if tm.timer_id == ev.get("timer_id")
                      and tm.fired_ms is None and not tm.canceled), None)
    if timer is None:
        s.orphan_fires.append(eid)
        return
    timer.fired_count += 1
    if timer.fired_ms is None:
        timer.fired_ms = t


def _on_timer_canceled(s, ev, eid, t):
    timer = s.timers.get(ev.get("started_event_id"))
    if timer is not None:
        timer.canceled = True


def _on_started(s, ev, eid, t):
    s.workflow_type = ev.get("workflow_type")
    s.input = payload(ev.get("input"))
    s.request_id = ev.get("request_id")
    s.start_ms = t


def _on_timer_started(s, ev, eid, t):
    s.timers[eid] = Timer(eid, ev.get("timer_id"), t, ev.get("start_to_fire_timeout_ms") or 0)


def _on_activity_scheduled(s, ev, eid, t):
    s.activities[eid] = (ev.get("activity_type"), payload(ev.get("input")))


def _on_activity_completed(s, ev, eid, t):
    sched = ev.get("scheduled_event_id")
    s.activity_completions[sched] = s.activity_completions.get(sched, 0) + 1


# What each event type adds to a summary; other types only count.
EVENT_HANDLERS = {
    "WorkflowExecutionStarted": _on_started,
    "WorkflowExecutionSignaled": _on_signal,
    "TimerStarted": _on_timer_started,
    "TimerFired": _on_timer_fired,
    "TimerCanceled": _on_timer_canceled,
    "ActivityTaskScheduled": _on_activity_scheduled,
    "ActivityTaskCompleted": _on_activity_completed,
}


def summarise(obj, node, where):
    """The RunSummary of one dump line."""
    ns = namespace_of(obj)
    wid = field(obj, "workflow_id", str, where)
    run_id = field(obj, "run_id", str, where)
    events = field(obj, "events", list, where)
    s = RunSummary((ns, wid, run_id), node, obj.get("shard"), obj.get("status"), where)
    s.events_count = len(events)
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise StoreError(f"{where}: events[{i}] must be an object (an event in libweft's "
                             "JSON form)")
        eid, t, etype = ev.get("event_id"), ev.get("event_time_ms"), ev.get("event_type")
        if eid != i + 1 and s.bad_event_ids is None:
            s.bad_event_ids = (i, eid)
        if not isinstance(t, int):
            raise StoreError(f"{where}: events[{i}] (event_id {eid}): field 'event_time_ms' "
                             "must be an integer")
        handler = EVENT_HANDLERS.get(etype)
        if handler is not None:
            handler(s, ev, eid, t)
        elif etype in CLOSE_EVENT_TYPES:
            if not s.close_types:
                s.close_ms = t
            s.close_types.append(etype)
    return s


class Final:
    """Every node's final dump, summarised."""

    def __init__(self):
        self.copies = {}        # run key -> [Copy], one per node that holds it
        self.runs = {}          # run key -> RunSummary of its longest copy
        self.by_workflow = {}   # (namespace, workflow_id) -> [run key]
        self.shard_nodes = {}   # shard -> set of nodes whose dump holds a run of it
        self.missing_dumps = []  # nodes of run.json with no final/<node>.jsonl

    def add(self, s, sha):
        copies = self.copies.setdefault(s.key, [])
        copies.append(Copy(s, sha))
        self.shard_nodes.setdefault(s.shard, set()).add(s.node)
        best = self.runs.get(s.key)
        if best is None:
            self.by_workflow.setdefault(s.key[:2], []).append(s.key)
        if best is None or s.events_count > best.events_count:
            self.runs[s.key] = s

    @functools.cached_property
    def start_requests(self):
        """(namespace, workflow_id, request_id) -> [run key] whose WorkflowExecutionStarted
        carries that request id."""
        index = {}
        for key, s in self.runs.items():
            if s.request_id:
                index.setdefault((key[0], key[1], s.request_id), []).append(key)
        return index

    @functools.cached_property
    def jepsen_signals(self):
        """(namespace, workflow_id) -> {(process, seq): [run key, ...]}: where each jepsen
        signal was delivered, once per delivery, over every run of the workflow."""
        index = {}
        for key, s in self.runs.items():
            for sig in s.signals:
                if sig.process is not None:
                    per_wf = index.setdefault(key[:2], {})
                    per_wf.setdefault((sig.process, sig.seq), []).append(key)
        return index

    def signal_deliveries(self, ns, wid, process, seq):
        """Runs that hold the jepsen signal {process, seq}, once per delivery."""
        return self.jepsen_signals.get((ns, wid), {}).get((process, seq), [])

    def workflow_runs(self, ns, wid):
        """RunSummary of every run of one workflow id, in start order."""
        keys = self.by_workflow.get((ns, wid), [])
        return sorted((self.runs[k] for k in keys), key=lambda r: (r.start_ms or 0, r.key[2]))


def read_final(store):
    """Reads final/<node>.jsonl for every node in run.json, one line at a time."""
    out = Final()
    for node in store.node_names:
        path = store.path("final", f"{node}.jsonl")
        if not os.path.exists(path):
            out.missing_dumps.append(node)
            continue
        for lineno, obj in read_jsonl(path):
            where = f"final/{node}.jsonl:{lineno}"
            s = summarise(obj, node, where)
            if s.key in out.copies and any(c.node == node for c in out.copies[s.key]):
                raise StoreError(f"{where}: run {s.key[2]} of workflow {s.key[1]} appears twice "
                                 "in this node's dump; a dump holds each run once")
            out.add(s, obj.get("history_sha256"))
    return out
