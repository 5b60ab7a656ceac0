"""history.py: reads a run's store (jepsen/FORMAT.md) for the checkers: run.json, the operation
histories paired into operations, the nemesis's fault windows, and the line files the client
writes (ledger, wakes, liveness).

Everything is read lazily and at most once through `Store`, and line files are streamed, so a
10-minute run with tens of thousands of operations is read in seconds. A malformed file raises
StoreError naming the file, the line and the field, and saying what is expected.
"""

import base64
import functools
import json
import os

# Keys run.json must hold (FORMAT.md, "run.json"), with the type each must have.
RUN_REQUIRED_INT_KEYS = ("max_clock_offset_ms", "timer_late_bound_ms", "recovery_bound_ms",
                         "shards", "replication")

# Operation types a completion may have (FORMAT.md, "Operations").
COMPLETION_TYPES = ("ok", "fail", "info")

# The nemesis's own history file, which holds fault records, not operations.
NEMESIS_FILE = "nemesis.jsonl"

DEFAULT_NAMESPACE = "default"


class StoreError(Exception):
    """A store file that does not follow jepsen/FORMAT.md. The message names the file, the line
    and the field."""


def read_jsonl(path, required=True):
    """Yields (line number, object) for each non-blank line of a JSON-lines file.

    A last line without its newline that does not parse is skipped: it is a write cut short when
    its writer was stopped, not a wrong record. Any other line that is not a JSON object raises
    StoreError. A missing file raises StoreError when `required`, else yields nothing."""
    if not os.path.exists(path):
        if required:
            raise StoreError(f"{path}: missing; the run's writer must create it "
                             "(see jepsen/FORMAT.md)")
        return
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        lineno = 0
        for line in f:
            lineno += 1
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                if not line.endswith("\n"):
                    return  # a truncated last line
                raise StoreError(f"{path}:{lineno}: not valid JSON ({e}); each line must be "
                                 "one JSON object") from None
            if not isinstance(obj, dict):
                raise StoreError(f"{path}:{lineno}: a line must be a JSON object, "
                                 f"got {type(obj).__name__}")
            yield lineno, obj


def field(obj, key, types, where, optional=False):
    """obj[key], checked to be of `types`; raises StoreError naming `where` and the field."""
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise StoreError(f"{where}: field '{key}' is missing; see jepsen/FORMAT.md")
    value = obj[key]
    wanted = types if isinstance(types, tuple) else (types,)
    # JSON true is a Python bool, and bool is an int: refuse it where a number is wanted.
    if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
        raise StoreError(f"{where}: field '{key}' must be {_type_names(types)}, "
                         f"got {type(value).__name__}")
    return value


def _type_names(types):
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join({int: "an integer", str: "a string", dict: "an object", list: "an array",
                        bool: "a boolean", float: "a number"}.get(t, t.__name__) for t in types)


def payload(value):
    """A payload field of libweft's JSON form (client/include/weft/json.h) as the JSON value its
    bytes hold: a JSON string is the payload's UTF-8 text, {"base64": "..."} its raw bytes; a
    value that is already parsed is returned as it is. Text that is not JSON is returned as text,
    undecodable bytes as None."""
    if isinstance(value, dict) and set(value) == {"base64"} and isinstance(value["base64"], str):
        try:
            value = base64.b64decode(value["base64"], validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def namespace_of(value):
    """The namespace a request or dump names; absent or empty is "default" (docs/protocol.md)."""
    ns = value.get("namespace") if isinstance(value, dict) else None
    return ns if isinstance(ns, str) and ns else DEFAULT_NAMESPACE


class Op:
    """One operation: an invoke paired with its completion."""
    __slots__ = ("process", "f", "invoke_ms", "complete_ms", "type", "node", "value", "result",
                 "error", "where")

    def __init__(self, process, f, invoke_ms, node, value, where):
        self.process = process    # the client thread that issued it
        self.f = f                # start, signal, result
        self.invoke_ms = invoke_ms  # harness time of the invoke
        self.complete_ms = None   # harness time of the completion; None if it never completed
        self.type = "info"        # ok, fail or info (an invoke never completed is unknown)
        self.node = node          # the node it was sent to, or None
        self.value = value        # the invoke's value
        self.result = None        # the ok completion's value
        self.error = None         # "CODE message" on fail and info
        self.where = where        # "history/c1.jsonl:12", for messages

    def latency_ms(self):
        return None if self.complete_ms is None else self.complete_ms - self.invoke_ms


def _op_from_invoke(obj, process, where):
    value = field(obj, "value", dict, where, optional=True) or {}
    return Op(process, field(obj, "f", str, where), field(obj, "time_ms", int, where),
              obj.get("node"), value, where)


def _complete_op(op, obj, where):
    f = field(obj, "f", str, where)
    if f != op.f:
        raise StoreError(f"{where}: completion has f '{f}' but the process's open invoke "
                         f"({op.where}) has f '{op.f}'; a process issues one operation at a time")
    op.type = obj["type"]
    op.complete_ms = field(obj, "time_ms", int, where)
    if op.type == "ok":
        result = obj.get("value")
        op.result = result if isinstance(result, dict) else {}
    else:
        op.error = obj.get("error")
    if obj.get("node") is not None:
        op.node = obj["node"]


def read_process_ops(path):
    """The operations of one client process's history file, in invoke order. An invoke left open
    at the end of the file is an operation with an unknown (info) outcome."""
    name = os.path.basename(path)
    process = name[:-len(".jsonl")]
    ops, open_op = [], None
    for lineno, obj in read_jsonl(path):
        where = f"history/{name}:{lineno}"
        kind = field(obj, "type", str, where)
        if kind == "invoke":
            if open_op is not None:
                raise StoreError(f"{where}: invoke while {open_op.where} has no completion; a "
                                 "process issues one operation at a time (write its ok, fail "
                                 "or info first)")
            open_op = _op_from_invoke(obj, process, where)
            ops.append(open_op)
        elif kind in COMPLETION_TYPES:
            if open_op is None:
                raise StoreError(f"{where}: '{kind}' completion with no open invoke before it "
                                 "in this process's file")
            _complete_op(open_op, obj, where)
            open_op = None
        else:
            raise StoreError(f"{where}: field 'type' is '{kind}'; expected invoke, ok, fail "
                             "or info")
    return ops


class FaultWindow:
    """One fault, from its start-X record to its stop-X record in history/nemesis.jsonl."""
    __slots__ = ("fault", "start_ms", "end_ms", "value", "ended")

    def __init__(self, fault, start_ms, value):
        self.fault = fault          # kill, pause, partition, clock, slow, disk
        self.start_ms = start_ms    # harness time of start-X
        self.end_ms = None          # harness time of stop-X (or the heal, if none came)
        self.value = value          # the start record's value: nodes, shards, kind, ...
        self.ended = False          # a stop-X record closed it

    def label(self):
        """A short name for the report: "partition isolate n1", "clock n3 +30000 ms"."""
        v = self.value or {}
        parts = [self.fault]
        if isinstance(v.get("kind"), str):
            parts.append(v["kind"])
        nodes = v.get("nodes")
        if isinstance(nodes, list) and nodes:
            parts.append(",".join(str(n) for n in nodes))
        for key in ("offset_ms", "jump_ms", "delay_ms", "loss_pct"):
            if key in v and not isinstance(v[key], (dict, list)):
                unit = "%" if key == "loss_pct" else " ms"
                parts.append(f"{key.split('_')[0]} {v[key]}{unit}")
        return " ".join(parts)


def read_nemesis(path):
    """(fault windows in start order, heal time or None) from history/nemesis.jsonl. Starts and
    stops of one fault pair first in, first out; a start never stopped ends at the heal."""
    windows, open_by_fault, heal_ms = [], {}, None
    for lineno, obj in read_jsonl(path, required=False):
        where = f"history/{NEMESIS_FILE}:{lineno}"
        f = field(obj, "f", str, where)
        time_ms = field(obj, "time_ms", int, where)
        if f.startswith("start-"):
            w = FaultWindow(f[len("start-"):], time_ms, obj.get("value") or {})
            windows.append(w)
            open_by_fault.setdefault(w.fault, []).append(w)
        elif f.startswith("stop-"):
            pending = open_by_fault.get(f[len("stop-"):])
            if not pending:
                raise StoreError(f"{where}: '{f}' with no open '{f.replace('stop-', 'start-', 1)}'"
                                 " before it")
            w = pending.pop(0)
            w.end_ms, w.ended = time_ms, True
        elif f == "heal":
            heal_ms = time_ms
        else:
            raise StoreError(f"{where}: field 'f' is '{f}'; expected start-<fault>, "
                             "stop-<fault> or heal")
    for w in windows:
        if w.end_ms is None:
            w.end_ms = heal_ms if heal_ms is not None else w.start_ms
    return windows, heal_ms


def merge_windows(windows):
    """The union of the fault windows as sorted, disjoint [start_ms, end_ms] pairs."""
    merged = []
    for w in sorted(windows, key=lambda w: w.start_ms):
        if merged and w.start_ms <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], w.end_ms)
        else:
            merged.append([w.start_ms, w.end_ms])
    return merged


def load_run_json(store_dir):
    """run.json, with the keys the checkers use checked."""
    path = os.path.join(store_dir, "run.json")
    try:
        with open(path, "r", encoding="utf-8") as f:
            run = json.load(f)
    except FileNotFoundError:
        raise StoreError(f"{path}: missing; is '{store_dir}' a run's store directory "
                         "(jepsen/store/<run>/)?") from None
    except ValueError as e:
        raise StoreError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(run, dict):
        raise StoreError(f"{path}: must be one JSON object")
    for key in RUN_REQUIRED_INT_KEYS:
        field(run, key, int, "run.json")
    nodes = field(run, "nodes", list, "run.json")
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            raise StoreError(f"run.json: field 'nodes[{i}]' must be an object")
        field(node, "name", str, f"run.json nodes[{i}]")
    return run


class Store:
    """A run's store directory, read lazily: each part is read once, when a checker first asks."""

    def __init__(self, store_dir):
        self.dir = store_dir
        self.run = load_run_json(store_dir)
        self.node_names = [n["name"] for n in self.run["nodes"]]

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @functools.cached_property
    def ops(self):
        """Every client operation, in invoke-time order."""
        hist = self.path("history")
        if not os.path.isdir(hist):
            raise StoreError(f"{hist}: missing; the client writes one history/<process>.jsonl "
                             "per client thread")
        ops = []
        for name in sorted(os.listdir(hist)):
            if name.endswith(".jsonl") and name != NEMESIS_FILE:
                ops.extend(read_process_ops(os.path.join(hist, name)))
        ops.sort(key=lambda op: op.invoke_ms)
        return ops

    @functools.cached_property
    def _nemesis(self):
        return read_nemesis(self.path("history", NEMESIS_FILE))

    @property
    def windows(self):
        """Fault windows, in start order."""
        return self._nemesis[0]

    @property
    def heal_ms(self):
        """When the driver healed everything at the end, or None."""
        return self._nemesis[1]

    @functools.cached_property
    def final(self):
        """The final dumps, summarised (final.py)."""
        from weftjepsen import final
        return final.read_final(self)

    def ledger(self):
        """Yields (where, line) for ledger.jsonl; an absent file is an empty ledger."""
        for lineno, obj in read_jsonl(self.path("ledger.jsonl"), required=False):
            yield f"ledger.jsonl:{lineno}", obj

    def wakes(self):
        """Yields (where, line) for wakes.jsonl; an absent file holds no wakes."""
        for lineno, obj in read_jsonl(self.path("wakes.jsonl"), required=False):
            yield f"wakes.jsonl:{lineno}", obj

    def liveness(self):
        """[(where, line)] for liveness.jsonl; None if the file is absent."""
        path = self.path("liveness.jsonl")
        if not os.path.exists(path):
            return None
        return [(f"liveness.jsonl:{n}", obj) for n, obj in read_jsonl(path)]

    def started_keys(self):
        """{(namespace, workflow_id, run_id): start Op} for every acknowledged start."""
        keys = {}
        for op in self.ops:
            if op.f == "start" and op.type == "ok":
                run_id = op.result.get("run_id")
                if isinstance(run_id, str) and run_id:
                    keys.setdefault((namespace_of(op.value), op.value.get("workflow_id"),
                                     run_id), op)
        return keys
