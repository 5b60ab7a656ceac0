"""check.py: runs every checker over a run's store and writes results.json (jepsen/FORMAT.md).

check_store(store_dir) is the entry point the driver and jepsen/check call. The checkers only
read the store; they never talk to weft, so a stored run can be checked again at any time.
"""

import json
import os
import time
import traceback

from weftjepsen.checkers import (acknowledged, exactly_once, idempotent, liveness, node_logs,
                                 open_runs, replicas, signals, timers)
from weftjepsen.history import Store, StoreError

# Every checker, in the order results.json and the report list them. Each module has NAME and
# check(store) -> {"valid", "counts", "violations", "errors", ...}.
CHECKERS = (acknowledged, replicas, open_runs, idempotent, exactly_once, timers, signals,
            liveness, node_logs)

RESULTS_FILE = "results.json"


def _run_checker(module, store):
    """One checker's result; a checker that cannot read what it needs is invalid, and says why,
    rather than stopping the others."""
    started = time.monotonic()
    try:
        result = module.check(store)
    except StoreError as e:
        result = {"valid": False, "counts": {}, "violations": 1,
                  "errors": [{"kind": "unreadable-store", "message": str(e)}]}
    except Exception as e:  # a checker bug must not hide the other verdicts
        result = {"valid": False, "counts": {}, "violations": 1,
                  "errors": [{"kind": "checker-crashed", "message": f"{type(e).__name__}: {e}",
                              "traceback": traceback.format_exc()}]}
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    return result


def _op_counts(store):
    counts = {}
    for op in store.ops:
        key = f"{op.f}-{op.type}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _summary(results, store):
    """The numbers a run's closing note reports (issue 9): operations, unknown outcomes, faults
    injected, timer lateness and the longest recovery after a heal."""
    ops = results["ops"]
    faults = {}
    for w in results["faults"]:
        faults[w["fault"]] = faults.get(w["fault"], 0) + 1
    g6 = results["checkers"]["G6-timers"].get("lateness_ms", {}).get("all", {})
    recovery = results["checkers"]["liveness"].get("recovery_ms", {})
    return {"operations": sum(ops.values()),
            "unknown": sum(n for k, n in ops.items() if k.endswith("-info")),
            "faults": faults,
            "timer_lateness_ms": {k: g6.get(k) for k in ("p50", "p99", "max")},
            "longest_recovery_ms": recovery.get("max")}


def check_store(store_dir):
    """Checks the run stored in `store_dir`, writes store_dir/results.json, and returns the
    results: {"valid", "run", "checkers": {name: result}, "ops", "faults", "summary"}. Raises
    StoreError when run.json is missing or malformed (nothing can be checked without it)."""
    store = Store(store_dir)
    results = {"valid": True, "run": store.run.get("run"), "checkers": {}}
    for module in CHECKERS:
        result = _run_checker(module, store)
        results["checkers"][module.NAME] = result
        results["valid"] = results["valid"] and result["valid"]
    try:
        results["ops"] = _op_counts(store)
        results["faults"] = [{"fault": w.fault, "label": w.label(), "start_ms": w.start_ms,
                              "end_ms": w.end_ms} for w in store.windows]
    except StoreError as e:  # already reported by the checkers that read these files
        results["ops"], results["faults"] = {}, []
        results["store_error"] = str(e)
    results["summary"] = _summary(results, store)
    path = os.path.join(store_dir, RESULTS_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return results
