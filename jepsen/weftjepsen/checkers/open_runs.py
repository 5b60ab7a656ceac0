"""open_runs.py: G3 (DESIGN section 3): at most one open run per (namespace, workflow id).

Each run of a workflow id occupies [its WorkflowExecutionStarted time, its closing event's time]
on the shard clock, which never goes backwards (DESIGN section 9), and a run still open at the
dump occupies everything after its start. No two of these intervals may overlap (one may start
at the instant the previous one closes, as terminate-existing and continue-as-new do), and at
most one run of a workflow id is open in the final dump.
"""

from weftjepsen.checkers.verdict import Verdict

NAME = "G3-one-open-run"

FOREVER_MS = float("inf")  # the end of a run that is still open


def _check_workflow(v, ns, wid, runs):
    open_runs = [r for r in runs if r.is_open()]
    if len(open_runs) > 1:
        ids = ", ".join(r.key[2] for r in open_runs)
        v.violation("two-open-runs", f"workflow {wid} (namespace {ns}) has {len(open_runs)} "
                    f"open runs in the final dump: {ids}", workflow_id=wid,
                    run_ids=[r.key[2] for r in open_runs])
    prev = None
    for r in runs:
        if r.start_ms is None:
            continue  # G2-replicas reports a run without WorkflowExecutionStarted
        end = FOREVER_MS if r.is_open() else r.close_ms
        if prev is not None and r.start_ms < prev[1] and not (r.is_open() and
                                                               prev[1] == FOREVER_MS):
            v.violation("overlapping-runs", f"workflow {wid}: run {r.key[2]} started at "
                        f"{r.start_ms}, while run {prev[0].key[2]} (started "
                        f"{prev[0].start_ms}) was open until "
                        f"{'the end' if prev[1] == FOREVER_MS else prev[1]}", workflow_id=wid,
                        run_ids=[prev[0].key[2], r.key[2]])
        if prev is None or end > prev[1]:
            prev = (r, end)


def check(store):
    v = Verdict(NAME)
    final = store.final
    for (ns, wid) in final.by_workflow:
        v.count("workflow-ids")
        runs = final.workflow_runs(ns, wid)
        v.count("runs", len(runs))
        _check_workflow(v, ns, wid, runs)
    return v.result()
