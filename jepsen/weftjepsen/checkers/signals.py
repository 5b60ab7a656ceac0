"""signals.py: G7 (DESIGN section 3): signals are delivered exactly once, in the order weft
accepted them.

A jepsen signal is identified by its input {process, seq}. Over all runs of its workflow:
- each signal answered ok is delivered exactly once, and no signal (whatever its outcome) is
  delivered twice;
- within a run, each process's seqs appear in increasing order: a process sends one signal at a
  time, so weft accepted them in seq order. The exception is a signal whose answer was unknown
  (info): it may have been accepted after the next one was sent, so it is held to no order
  against the signals sent after it;
- a completed jepsen-signals run whose result the client read (a `result` op) lists the signals
  in the order of its history.
"""

from weftjepsen.checkers.verdict import Verdict
from weftjepsen.final import JEPSEN_SIGNAL_NAME
from weftjepsen.history import namespace_of, payload

NAME = "G7-signals"


def _check_delivery(v, store, final):
    for op in store.ops:
        if op.f != "signal" or op.type != "ok":
            continue
        v.count("acknowledged")
        ns, wid, seq = namespace_of(op.value), op.value.get("workflow_id"), op.value.get("seq")
        if not final.signal_deliveries(ns, wid, op.process, seq):
            v.violation("not-delivered", f"signal {op.process}#{seq} to {wid} was acknowledged "
                        f"({op.where}) but is in no run", workflow_id=wid, process=op.process,
                        seq=seq)
    for (ns, wid), per_signal in final.jepsen_signals.items():
        for (process, seq), keys in per_signal.items():
            v.count("delivered")
            if len(keys) > 1:
                runs = ", ".join(sorted({k[2] for k in keys}))
                v.violation("duplicated", f"signal {process}#{seq} to {wid} was delivered "
                            f"{len(keys)} times (runs {runs})", workflow_id=wid,
                            process=process, seq=seq)


def _signal_times(store):
    """{(namespace, workflow id, process, seq): [first invoke time, first ok time or None]}."""
    times = {}
    for op in store.ops:
        if op.f != "signal":
            continue
        key = (namespace_of(op.value), op.value.get("workflow_id"), op.process,
               op.value.get("seq"))
        t = times.setdefault(key, [op.invoke_ms, None])
        t[0] = min(t[0], op.invoke_ms)
        if op.type == "ok" and (t[1] is None or op.complete_ms < t[1]):
            t[1] = op.complete_ms
    return times


def _must_precede(times, ns, wid, process, earlier_seq, later_seq):
    """Whether weft must have accepted signal earlier_seq before later_seq: it acknowledged
    earlier_seq before later_seq was sent. A signal whose outcome was unknown may still have
    been in flight when the next one was sent, so it carries no order."""
    a = times.get((ns, wid, process, earlier_seq))
    b = times.get((ns, wid, process, later_seq))
    if a is None or b is None:
        return True  # no record of either: the seqs' order is the only evidence
    return a[1] is not None and a[1] <= b[0]


def _check_order(v, store, final):
    times = _signal_times(store)
    for key, s in final.runs.items():
        seen = {}  # process -> seqs delivered so far in this run
        for sig in s.signals:
            if sig.process is None or not isinstance(sig.seq, int):
                continue
            before = seen.setdefault(sig.process, [])
            late = [k for k in before if k > sig.seq and
                    _must_precede(times, key[0], key[1], sig.process, sig.seq, k)] \
                if before and before[-1] > sig.seq else []
            if late:
                v.violation("out-of-order", f"run {key[2]} ({key[1]}): signal "
                            f"{sig.process}#{sig.seq} (event {sig.event_id}) comes after "
                            f"{sig.process}#{min(late)}, which was sent after {sig.seq} was "
                            f"acknowledged ({s.where})", workflow_id=key[1], run_id=key[2],
                            process=sig.process, seq=sig.seq)
            if not before or sig.seq > before[-1]:
                before.append(sig.seq)  # kept increasing, so before[-1] is the largest
            else:
                before.insert(next(i for i, k in enumerate(before) if k > sig.seq), sig.seq)


def _check_results(v, store, final):
    for op in store.ops:
        if op.f != "result" or op.type != "ok":
            continue
        key = (namespace_of(op.value), op.value.get("workflow_id"), op.value.get("run_id"))
        s = final.runs.get(key)
        result = payload(op.result.get("result"))
        if s is None or s.workflow_type != "jepsen-signals" or not isinstance(result, dict):
            continue
        got = [list(x) for x in result.get("signals") or [] if isinstance(x, list)]
        held = [[sig.process, sig.seq] for sig in s.signals if sig.name == JEPSEN_SIGNAL_NAME]
        v.count("results-compared")
        if got != held[:len(got)]:
            v.violation("result-differs", f"run {key[2]} ({key[1]}): the workflow's result "
                        f"({op.where}) lists signals {got[:10]}..., its history holds "
                        f"{held[:10]}...", workflow_id=key[1], run_id=key[2])


def check(store):
    v = Verdict(NAME)
    final = store.final
    _check_delivery(v, store, final)
    _check_order(v, store, final)
    _check_results(v, store, final)
    return v.result()
