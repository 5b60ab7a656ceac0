"""liveness.py: every shard serves again within recovery_bound_ms after every fault heals, and the
shards that keep a majority of their replicas keep serving while it lasts (DESIGN section 3,
G9's "keeps serving while a majority of its replicas are up").

From liveness.jsonl (jepsen/FORMAT.md):
- after each fault's stop, each shard's record has served_ms - healed_ms <= recovery_bound_ms;
  served_ms null means it never served again, a violation;
- each fault stopped in history/nemesis.jsonl has records, for every shard of run.json;
- during a fault, every shard probed (each kept a majority of its replicas) served each probe
  within recovery_bound_ms (worst_ms, null meaning never, a violation); a shard the fault did
  not touch failed no probe either (`failed`, when the driver counts them).
"""

from weftjepsen.checkers.verdict import Verdict, percentiles

NAME = "liveness"


def _check_heal(v, where, rec, bound_ms, recoveries):
    healed, served, shard = rec.get("healed_ms"), rec.get("served_ms"), rec.get("shard")
    what = f"shard {shard} after {rec.get('fault')} (healed at {healed}"
    if served is None:
        v.violation("never-served", f"{where}: {what}) never served again", shard=shard,
                    fault=rec.get("fault"))
        return
    recovery = served - healed
    recoveries.append(recovery)
    if recovery > bound_ms:
        v.violation("slow-recovery", f"{where}: {what}) served again after {recovery} ms, "
                    f"over the {bound_ms} ms bound", shard=shard, fault=rec.get("fault"),
                    recovery_ms=recovery)


def _check_during(v, where, rec, bound_ms):
    worst, shard = rec.get("worst_ms"), rec.get("shard")
    failed, touched = rec.get("failed") or 0, bool(rec.get("touched"))
    what = (f"{where}: shard {shard}, " + ("which kept a majority through" if touched else
                                           "untouched by") + f" {rec.get('fault')},")
    if failed and not touched:
        v.violation("untouched-shard-failed", f"{what} failed {failed} of "
                    f"{rec.get('probes', '?')} probes during it", shard=shard,
                    fault=rec.get("fault"), failed=failed)
    elif worst is None or worst > bound_ms:
        kind = "majority-shard-stalled" if touched else "untouched-shard-stalled"
        v.violation(kind, f"{what} " + ("never served during it" if worst is None else
                                        f"took {worst} ms to serve a probe during it, over the "
                                        f"{bound_ms} ms bound"),
                    shard=shard, fault=rec.get("fault"), worst_ms=worst)


def check(store):
    v = Verdict(NAME)
    bound_ms = store.run["recovery_bound_ms"]
    stops = sum(1 for w in store.windows if w.ended)
    records = store.liveness()
    if records is None:
        if stops:
            v.violation("no-liveness-file", f"liveness.jsonl is missing, but {stops} fault(s) "
                        "ended: nothing shows the shards served again")
        return v.result()
    recoveries, shards_by_fault = [], {}
    for where, rec in records:
        if rec.get("during"):
            v.count("during-probes")
            _check_during(v, where, rec, bound_ms)
        else:
            v.count("heal-probes")
            shards_by_fault.setdefault(rec.get("fault"), set()).add(rec.get("shard"))
            _check_heal(v, where, rec, bound_ms, recoveries)
    if len(shards_by_fault) < stops:
        v.violation("fault-not-probed", f"{stops} fault(s) stopped but liveness.jsonl has heal "
                    f"records for {len(shards_by_fault)}")
    for fault, shards in shards_by_fault.items():
        if len(shards) < store.run["shards"]:
            v.violation("shard-not-probed", f"after {fault}, {len(shards)} of "
                        f"{store.run['shards']} shards were probed", fault=fault)
    v.extra["bound_ms"] = bound_ms
    v.extra["recovery_ms"] = percentiles(recoveries)
    return v.result()
