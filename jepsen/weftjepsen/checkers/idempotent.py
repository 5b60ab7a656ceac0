"""idempotent.py: G4 (DESIGN section 3): a request repeated with the same request id returns the
first outcome and changes nothing.

- Every ok answer to a start with one (namespace, workflow id, request id) gives the same run_id
  and the same `started`; no such start is answered both ok and fail.
- A request id starts at most one run: no two runs in the final dump carry it in their
  WorkflowExecutionStarted.
- An ok start says `started: true` exactly when the run it names was started by its request id
  (that run's WorkflowExecutionStarted carries it), so a retry of a start whose first attempt
  had an unknown outcome still reports the run it created as started.
- No signal request id is answered both ok and fail.
"""

from weftjepsen.checkers.verdict import Verdict
from weftjepsen.history import namespace_of

NAME = "G4-idempotent"


def _outcome(op):
    if op.type != "ok":
        return op.type
    if op.f == "start":
        return f"ok run_id={op.result.get('run_id')} started={op.result.get('started')}"
    return "ok"


def _check_answers(v, store):
    first = {}  # (f, namespace, workflow id, request id) -> (outcome, op) of the first answer
    for op in sorted(store.ops, key=lambda op: op.complete_ms or op.invoke_ms):
        rid = op.value.get("request_id")
        if op.f not in ("start", "signal") or op.type == "info" or not rid:
            continue
        key = (op.f, namespace_of(op.value), op.value.get("workflow_id"), rid)
        outcome = _outcome(op)
        seen = first.get(key)
        if seen is None:
            first[key] = (outcome, op)
            continue
        v.count(f"repeated-{op.f}s")
        if seen[0] != outcome:
            v.violation("different-outcome", f"{op.f} of {key[2]} with request id {rid} was "
                        f"answered '{outcome}' ({op.where}) after '{seen[0]}' "
                        f"({seen[1].where})", workflow_id=key[2], request_id=rid)


def _check_runs(v, store):
    for (ns, wid, rid), keys in store.final.start_requests.items():
        v.count("start-request-ids-in-final")
        if len(keys) > 1:
            v.violation("request-started-twice", f"request id {rid} started {len(keys)} runs "
                        f"of {wid}: {', '.join(k[2] for k in keys)}", workflow_id=wid,
                        request_id=rid)


def _check_started_flags(v, store):
    final = store.final
    for op in store.ops:
        if op.f != "start" or op.type != "ok":
            continue
        key = (namespace_of(op.value), op.value.get("workflow_id"), op.result.get("run_id"))
        s = final.runs.get(key)
        if s is None or not s.request_id:
            continue  # G1-G9-acknowledged reports a lost run
        v.count("started-flags-checked")
        mine = s.request_id == op.value.get("request_id")
        if bool(op.result.get("started")) != mine:
            v.violation("started-flag-wrong", f"start of {key[1]} with request id "
                        f"{op.value.get('request_id')} ({op.where}) answered started="
                        f"{op.result.get('started')} for run {key[2]}, which was started by "
                        f"{'this' if mine else 'another'} request ({s.request_id})",
                        workflow_id=key[1], run_id=key[2])


def check(store):
    v = Verdict(NAME)
    _check_answers(v, store)
    _check_runs(v, store)
    _check_started_flags(v, store)
    return v.result()
