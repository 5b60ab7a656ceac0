"""replicas.py: G2 (DESIGN section 3): after healing, every replica holds a byte-identical history
of every run, with event ids dense from 1.

Each node dumps the runs of the shards it holds a replica of (final/<node>.jsonl), with the
digest of the events' msgpack bytes as that node stores them. For every run:
- every copy has the same history_sha256 and event count;
- every copy's event ids are dense from 1, and its first event is WorkflowExecutionStarted;
- every node that holds the run's shard has a copy. The holders are run.json's "placement"
  ({"<shard>": [node, ...]}) when the driver records it; otherwise every node whose dump holds
  any run of that shard, and then a shard found on fewer nodes than the replication factor is
  itself a violation.
Every node of run.json must have a dump.
"""

from weftjepsen.checkers.verdict import Verdict

NAME = "G2-replicas"


def _holders(store, final):
    """shard -> set of nodes that hold a replica of it."""
    placement = store.run.get("placement")
    if isinstance(placement, dict):
        return {int(shard): set(nodes) for shard, nodes in placement.items()}, True
    return {shard: set(nodes) for shard, nodes in final.shard_nodes.items()}, False


def _check_copies(v, key, copies, holders):
    what = f"run {key[2]} of {key[1]}"
    kinds = {(c.sha, c.events_count) for c in copies}
    if len(kinds) > 1:
        detail = "; ".join(f"{c.node}: {c.events_count} events, sha256 {str(c.sha)[:16]}"
                           for c in copies)
        v.violation("divergent", f"{what} differs between replicas ({detail})",
                    workflow_id=key[1], run_id=key[2])
    for c in copies:
        if not c.sha:
            v.violation("no-digest", f"{c.where}: {what} has no history_sha256",
                        workflow_id=key[1], run_id=key[2])
        if c.bad_event_ids is not None:
            pos, eid = c.bad_event_ids
            v.violation("event-ids-not-dense", f"{c.where}: {what}: events[{pos}] has event_id "
                        f"{eid}, expected {pos + 1}", workflow_id=key[1], run_id=key[2])
    shards = {c.shard for c in copies}
    if len(shards) > 1:
        v.violation("shard-disagrees", f"{what} is on shards {sorted(map(str, shards))} in "
                    "different dumps", workflow_id=key[1], run_id=key[2])
    have = {c.node for c in copies}
    for node in sorted(holders.get(copies[0].shard, set()) - have):
        v.violation("missing-on-replica", f"{what} (shard {copies[0].shard}) is missing from "
                    f"final/{node}.jsonl, though {node} holds a replica of that shard "
                    f"(present on {', '.join(sorted(have))})", workflow_id=key[1],
                    run_id=key[2], node=node)


def check(store):
    v = Verdict(NAME)
    final = store.final
    for node in final.missing_dumps:
        v.violation("missing-dump", f"final/{node}.jsonl is missing, so node {node}'s replicas "
                    "cannot be compared", node=node)
    holders, placed = _holders(store, final)
    want = min(store.run["replication"], len(store.node_names))
    if not placed:
        for shard, nodes in sorted(holders.items(), key=lambda kv: str(kv[0])):
            if len(nodes) < want:
                v.violation("shard-under-replicated", f"runs of shard {shard} are in the dumps "
                            f"of {len(nodes)} node(s) ({', '.join(sorted(nodes))}), expected "
                            f"{want}", shard=shard)
    for key, copies in final.copies.items():
        v.count("runs")
        v.count("copies", len(copies))
        if final.runs[key].start_ms is None:
            v.violation("no-started-event", f"run {key[2]} of {key[1]} has no "
                        f"WorkflowExecutionStarted ({final.runs[key].where})",
                        workflow_id=key[1], run_id=key[2])
        _check_copies(v, key, copies, holders)
    return v.result()
