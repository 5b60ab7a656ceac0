"""acknowledged.py: G1 and G9 (DESIGN section 3): nothing acknowledged is lost, whatever crashed.

After healing, every start answered ok names a run that the final dumps hold, and every signal
answered ok is in a run of its workflow (matched by its input {process, seq}). An operation with
an unknown outcome (info) may or may not have happened, but never twice. A fail means it
certainly did not happen: a failed start's request id started no run, a failed signal was never
delivered.
"""

from weftjepsen.checkers.verdict import Verdict
from weftjepsen.history import namespace_of

NAME = "G1-G9-acknowledged"


def _check_start(v, final, op):
    ns, wid = namespace_of(op.value), op.value.get("workflow_id")
    rid = op.value.get("request_id")
    if op.type == "ok":
        run_id = op.result.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            v.violation("ok-without-run-id", f"{op.where}: start of {wid} answered ok with no "
                        "run_id")
        elif (ns, wid, run_id) not in final.runs:
            v.violation("lost-start", f"start of {wid} ({op.where}, request {rid}) was "
                        f"acknowledged with run {run_id} at {op.complete_ms}, but no final dump "
                        "holds that run", workflow_id=wid, run_id=run_id)
    elif op.type == "fail" and final.start_requests.get((ns, wid, rid)):
        run_id = final.start_requests[(ns, wid, rid)][0][2]
        v.violation("failed-start-happened", f"start of {wid} ({op.where}, request {rid}) "
                    f"failed with '{op.error}', but run {run_id} was started by that request",
                    workflow_id=wid, run_id=run_id)


def _check_signal(v, final, op):
    ns, wid, seq = namespace_of(op.value), op.value.get("workflow_id"), op.value.get("seq")
    delivered = len(final.signal_deliveries(ns, wid, op.process, seq))
    what = f"signal {op.process}#{seq} to {wid} ({op.where})"
    if op.type == "ok" and delivered == 0:
        v.violation("lost-signal", f"{what} was acknowledged at {op.complete_ms} but is in no "
                    "run of the workflow", workflow_id=wid, process=op.process, seq=seq)
    elif op.type == "info" and delivered > 1:
        v.violation("unknown-signal-twice", f"{what} had an unknown outcome and was delivered "
                    f"{delivered} times", workflow_id=wid, process=op.process, seq=seq)
    elif op.type == "fail" and delivered > 0:
        v.violation("failed-signal-happened", f"{what} failed with '{op.error}' but was "
                    "delivered", workflow_id=wid, process=op.process, seq=seq)


def check(store):
    v = Verdict(NAME)
    final = store.final
    for op in store.ops:
        if op.f == "start":
            v.count(f"start-{op.type}")
            _check_start(v, final, op)
        elif op.f == "signal":
            v.count(f"signal-{op.type}")
            _check_signal(v, final, op)
    v.count("runs-in-final", len(final.runs))
    return v.result()
