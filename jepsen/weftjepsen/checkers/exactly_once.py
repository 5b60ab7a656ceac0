"""exactly_once.py: G5 (DESIGN section 3): every acknowledged workflow completes exactly once, each
activity step takes effect at least once, and no attempt is dispatched twice.

- Every acknowledged run is closed in the final dump by exactly one WorkflowExecutionCompleted,
  and its status says completed. The exceptions: a run terminated by a start with the
  terminate-existing policy for its workflow id, and a jepsen-signals run still waiting for its
  expected signals. No run, acknowledged or not, closes twice, and a run's status agrees with
  its closing event.
- Every completed jepsen-step activity (ActivityTaskCompleted in history) has at least one
  ledger line for its (workflow, run, step); no activity has two completions.
- Each (workflow, run, step, attempt) appears in the ledger at most once: a second line means the
  attempt was dispatched twice. A ledger line for a run no dump holds means the run that
  dispatched it was lost.
"""

from weftjepsen.checkers.verdict import Verdict
from weftjepsen.final import CLOSE_EVENT_TYPES, JEPSEN_SIGNAL_NAME
from weftjepsen.history import namespace_of

NAME = "G5-exactly-once"

STEP_ACTIVITY_TYPE = "jepsen-step"  # the ledger workflow's activity (FORMAT.md)
SIGNALS_WORKFLOW_TYPE = "jepsen-signals"
COMPLETED = "WorkflowExecutionCompleted"
TERMINATED = "WorkflowExecutionTerminated"


def _may_stay_open(s):
    """A jepsen-signals run that has not received its expected count may still be waiting."""
    if s.workflow_type != SIGNALS_WORKFLOW_TYPE:
        return False
    expect = s.input.get("expect") if isinstance(s.input, dict) else None
    held = sum(1 for sig in s.signals if sig.name == JEPSEN_SIGNAL_NAME)
    return not isinstance(expect, int) or held < expect


def _check_acknowledged(v, store, final):
    terminators = {(namespace_of(op.value), op.value.get("workflow_id")) for op in store.ops
                   if op.f == "start" and op.value.get("id_conflict_policy") ==
                   "terminate-existing"}
    for key, op in store.started_keys().items():
        s = final.runs.get(key)
        if s is None:
            continue  # G1-G9-acknowledged reports a lost run
        v.count("acknowledged-runs")
        what = f"run {key[2]} of {key[1]} (started by {op.where})"
        if s.close_types.count(COMPLETED) == 1:
            v.count("completed")
        elif s.is_open():
            if _may_stay_open(s):
                v.count("open-waiting-for-signals")
            else:
                v.violation("never-completed", f"{what} is still open in the final dump "
                            f"({s.where}, {s.events_count} events)", workflow_id=key[1],
                            run_id=key[2])
        elif s.close_types[0] == TERMINATED and key[:2] in terminators:
            v.count("terminated-by-start")
        elif COMPLETED not in s.close_types:
            v.violation("closed-without-completing", f"{what} closed with "
                        f"{s.close_types[0]} ({s.where})", workflow_id=key[1], run_id=key[2])


def _check_closes(v, final):
    for key, s in final.runs.items():
        if len(s.close_types) > 1:
            v.violation("closed-twice", f"run {key[2]} of {key[1]} has {len(s.close_types)} "
                        f"closing events: {', '.join(s.close_types)} ({s.where})",
                        workflow_id=key[1], run_id=key[2])
        expected = "running" if s.is_open() else CLOSE_EVENT_TYPES[s.close_types[0]]
        if s.status != expected:
            v.violation("status-mismatch", f"run {key[2]} of {key[1]} has status '{s.status}' "
                        f"but its history says '{expected}' ({s.where})", workflow_id=key[1],
                        run_id=key[2])


def _read_ledger(v, store):
    """{(workflow_id, run_id, step) seen}, reporting attempts that appear twice."""
    seen_attempts, steps = {}, set()
    for where, line in store.ledger():
        v.count("ledger-lines")
        wid, run_id, step = line.get("workflow_id"), line.get("run_id"), line.get("step")
        attempt = (wid, run_id, step, line.get("attempt"))
        first = seen_attempts.get(attempt)
        if first is not None:
            v.violation("attempt-dispatched-twice", f"{where}: step {step} attempt "
                        f"{attempt[3]} of run {run_id} ({wid}) executed again (first at "
                        f"{first}); an attempt is dispatched once", workflow_id=wid,
                        run_id=run_id, step=step, attempt=attempt[3])
        else:
            seen_attempts[attempt] = where
        steps.add((wid, run_id, step))
    return seen_attempts, steps


def _check_steps(v, final, seen_attempts, steps):
    run_ids = {(key[1], key[2]) for key in final.runs}
    reported = set()
    for (wid, run_id, _step, _attempt), where in seen_attempts.items():
        if (wid, run_id) not in run_ids and (wid, run_id) not in reported:
            reported.add((wid, run_id))
            v.violation("ledger-run-lost", f"{where}: an activity of run {run_id} ({wid}) "
                        "executed, but no final dump holds that run", workflow_id=wid,
                        run_id=run_id)
    for key, s in final.runs.items():
        for sched_id, (atype, inp) in s.activities.items():
            done = s.activity_completions.get(sched_id, 0)
            if done > 1:
                v.violation("activity-completed-twice", f"activity {sched_id} of run {key[2]} "
                            f"({key[1]}) has {done} ActivityTaskCompleted events ({s.where})",
                            workflow_id=key[1], run_id=key[2])
            if atype != STEP_ACTIVITY_TYPE or done == 0:
                continue
            v.count("steps-completed")
            step = inp.get("step") if isinstance(inp, dict) else None
            if (key[1], key[2], step) not in steps:
                v.violation("step-effect-missing", f"step {step} of run {key[2]} ({key[1]}) "
                            "completed in history but has no ledger line", workflow_id=key[1],
                            run_id=key[2], step=step)


def check(store):
    v = Verdict(NAME)
    final = store.final
    _check_acknowledged(v, store, final)
    _check_closes(v, final)
    seen_attempts, steps = _read_ledger(v, store)
    _check_steps(v, final, seen_attempts, steps)
    return v.result()
