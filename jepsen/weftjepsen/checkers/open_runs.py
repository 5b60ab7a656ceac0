"""open_runs.py: G3 (DESIGN section 3): at most one open run per (namespace, workflow id).

Each run of a workflow id occupies [its WorkflowExecutionStarted time, its closing event's time]
on the shard clock, which never goes backwards (DESIGN section 9), and a run still open at the
dump occupies everything after its start. No two of these intervals may overlap: one may start
at the instant the previous one closes, as terminate-existing and continue-as-new do, even when
both happen in the millisecond the previous run started. At most one run of a workflow id is
open in the final dump.
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
    # Sorted by start and then by end, a run overlaps an earlier one exactly when it starts
    # before the latest end so far. Runs that start and close in the same millisecond as the
    # next one starts (a chain of terminate-existing starts) have empty intervals and sort
    # first, so they overlap nothing.
    spans = sorted(((r.start_ms, FOREVER_MS if r.is_open() else r.close_ms, r) for r in runs
                    if r.start_ms is not None), key=lambda x: (x[0], x[1], x[2].key[2]))
    latest = None  # (end, run) of the run that ends last among those before
    for start, end, r in spans:
        both_open = end == FOREVER_MS and latest is not None and latest[0] == FOREVER_MS
        if latest is not None and start < latest[0] and not both_open:
            other = latest[1]
            v.violation("overlapping-runs", f"workflow {wid}: run {r.key[2]} started at "
                        f"{start}, while run {other.key[2]} (started {other.start_ms}) was open "
                        f"until {'the end' if latest[0] == FOREVER_MS else latest[0]}",
                        workflow_id=wid, run_ids=[other.key[2], r.key[2]])
        if latest is None or end > latest[0]:
            latest = (end, r)


def check(store):
    v = Verdict(NAME)
    final = store.final
    for (ns, wid) in final.by_workflow:
        v.count("workflow-ids")
        runs = final.workflow_runs(ns, wid)
        v.count("runs", len(runs))
        _check_workflow(v, ns, wid, runs)
    return v.result()
