"""timers.py: G6 (DESIGN sections 3 and 9): timers never fire early, by the shard clock or in real
time, always fire, and fire within the bound after every fault ends.

A timer is due at TimerStarted's event_time_ms + start_to_fire_timeout_ms (shard clock); it
fired at its TimerFired's event_time_ms. Its lateness is fired - due. The checks:
- early against the shard clock: fired < due;
- early in real time (wakes.jsonl): wake_time_ms < prev_time_ms + duration_ms -
  max_clock_offset_ms;
- late: a timer due while no fault was active must fire by due + timer_late_bound_ms; one due
  while a fault was active, by the end of that fault + timer_late_bound_ms (faults that overlap
  count as one window, from the first start to the last stop);
- always fires: a timer still pending in an open run at the dump is a violation once that
  deadline has passed by run.json's final_ms (when the driver records it; without it every
  pending timer is one), and a completed jepsen-timers run holds a TimerFired for each of its
  input's timers_ms; no timer fires twice.
Lateness is reported as a distribution for all timers, those due during a fault and those due
with none active; real-time lateness (wake - prev - duration) likewise.
"""

import bisect

from weftjepsen.checkers.verdict import Verdict, percentiles
from weftjepsen.history import merge_windows

NAME = "G6-timers"
TIMERS_WORKFLOW_TYPE = "jepsen-timers"


class FaultIndex:
    """Answers "which merged fault window holds this time?" in O(log n)."""

    def __init__(self, windows):
        self.merged = merge_windows(windows)
        self.starts = [w[0] for w in self.merged]

    def window_end(self, t):
        """The end of the merged fault window that holds time t, or None."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i >= 0 and t <= self.merged[i][1]:
            return self.merged[i][1]
        return None


def _deadline(faults, due_ms, bound_ms):
    """(latest time the timer may fire, whether it was due during a fault)."""
    end = faults.window_end(due_ms)
    if end is None:
        return due_ms + bound_ms, False
    return max(due_ms, end) + bound_ms, True


def _check_fired(v, key, s, t, faults, bound_ms, late):
    due = t.due_ms()
    lateness = t.fired_ms - due
    what = (f"timer {t.timer_id} of run {key[2]} ({key[1]}), started at {t.started_ms} for "
            f"{t.duration_ms} ms")
    if t.fired_count > 1:
        v.violation("fired-twice", f"{what} fired {t.fired_count} times ({s.where})",
                    workflow_id=key[1], run_id=key[2])
    if lateness < 0:
        v.violation("early-shard-clock", f"{what}, fired at {t.fired_ms}: {-lateness} ms before "
                    f"it was due at {due} by the shard clock ({s.where})", workflow_id=key[1],
                    run_id=key[2], early_ms=-lateness)
    deadline, in_fault = _deadline(faults, due, bound_ms)
    late["during_fault" if in_fault else "no_fault"].append(lateness)
    if t.fired_ms > deadline:
        after = "the fault window holding its due time ended" if in_fault else "it was due"
        v.violation("late", f"{what}, due at {due}, fired at {t.fired_ms}: "
                    f"{t.fired_ms - deadline + bound_ms} ms after {after}, over the "
                    f"{bound_ms} ms bound ({s.where})", workflow_id=key[1], run_id=key[2],
                    late_ms=lateness)


def _check_pending(v, key, s, t, faults, bound_ms, final_ms):
    deadline, _ = _deadline(faults, t.due_ms(), bound_ms)
    if final_ms is not None and deadline > final_ms:
        v.count("pending-not-yet-due")
        return
    v.violation("never-fired", f"timer {t.timer_id} of run {key[2]} ({key[1]}), due at "
                f"{t.due_ms()}, had not fired when the final dump was taken"
                f"{'' if final_ms is None else f' at {final_ms}'} ({s.where})",
                workflow_id=key[1], run_id=key[2])


def _check_history_timers(v, store, faults, late):
    bound_ms = store.run["timer_late_bound_ms"]
    final_ms = store.run.get("final_ms")
    for key, s in store.final.runs.items():
        for eid in s.orphan_fires:
            v.violation("fired-without-start", f"TimerFired event {eid} of run {key[2]} "
                        f"({key[1]}) matches no TimerStarted ({s.where})", workflow_id=key[1],
                        run_id=key[2])
        for t in s.timers.values():
            v.count("timers-started")
            if t.fired_ms is not None:
                v.count("timers-fired")
                _check_fired(v, key, s, t, faults, bound_ms, late)
            elif t.canceled:
                v.count("timers-canceled")
            elif s.is_open():
                _check_pending(v, key, s, t, faults, bound_ms, final_ms)
        if s.workflow_type == TIMERS_WORKFLOW_TYPE and s.close_types == [
                "WorkflowExecutionCompleted"]:
            want = s.input.get("timers_ms") if isinstance(s.input, dict) else None
            fired = sum(1 for t in s.timers.values() if t.fired_ms is not None)
            if isinstance(want, list) and fired < len(want):
                v.violation("never-fired", f"run {key[2]} ({key[1]}) completed with {fired} "
                            f"TimerFired events for its {len(want)} timers ({s.where})",
                            workflow_id=key[1], run_id=key[2])


def _check_wakes(v, store):
    offset_ms = store.run["max_clock_offset_ms"]
    real_late = []
    for where, w in store.wakes():
        v.count("wakes")
        prev, dur, wake = w.get("prev_time_ms"), w.get("duration_ms"), w.get("wake_time_ms")
        if not all(isinstance(x, int) for x in (prev, dur, wake)):
            v.violation("bad-wake-line", f"{where}: prev_time_ms, duration_ms and wake_time_ms "
                        "must be integers")
            continue
        real_late.append(wake - (prev + dur))
        if wake < prev + dur - offset_ms:
            v.violation("early-real-time", f"{where}: sleep {w.get('index')} of run "
                        f"{w.get('run_id')} ({w.get('workflow_id')}) for {dur} ms, issued at "
                        f"{prev}, woke at {wake}: {prev + dur - wake} ms early in real time, "
                        f"beyond the {offset_ms} ms clock-offset bound",
                        workflow_id=w.get("workflow_id"), run_id=w.get("run_id"),
                        early_ms=prev + dur - wake)
    return real_late


def check(store):
    v = Verdict(NAME)
    faults = FaultIndex(store.windows)
    late = {"during_fault": [], "no_fault": []}
    _check_history_timers(v, store, faults, late)
    real_late = _check_wakes(v, store)
    v.extra["bound_ms"] = store.run["timer_late_bound_ms"]
    v.extra["lateness_ms"] = {"all": percentiles(late["during_fault"] + late["no_fault"]),
                              "during_fault": percentiles(late["during_fault"]),
                              "no_fault": percentiles(late["no_fault"])}
    v.extra["real_time_lateness_ms"] = percentiles(real_late)
    return v.result()
