"""The checkers can fail (issue 9's acceptance): each test plants one violation into an otherwise
clean store and asserts that the checker responsible catches it, and that the clean store
passes every checker."""

import json
import os
import shutil
import tempfile
import unittest

import store_fixture
from store_fixture import T0_MS, StoreBuilder

from weftjepsen.check import check_store

ALL_CHECKERS = ("G1-G9-acknowledged", "G2-replicas", "G3-one-open-run", "G4-idempotent",
                "G5-exactly-once", "G6-timers", "G7-signals", "liveness", "node-logs")


class CheckerTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weft-jepsen-test-")
        self.b = StoreBuilder()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check(self):
        self.b.write(self.dir)
        return check_store(self.dir)

    def assertCaught(self, results, checker, kind, others_valid=True):
        """`checker` found a violation of `kind`; with others_valid, every other checker
        passed, so the plant is caught where it belongs and nowhere else."""
        r = results["checkers"][checker]
        self.assertFalse(r["valid"], f"{checker} missed the planted {kind}")
        self.assertFalse(results["valid"])
        kinds = [e["kind"] for e in r["errors"]]
        self.assertIn(kind, kinds, f"{checker} errors: {r['errors']}")
        for e in r["errors"]:
            self.assertTrue(e["message"], "a violation says what was seen")
        if others_valid:
            wrong = {n: c["errors"] for n, c in results["checkers"].items()
                     if n != checker and not c["valid"]}
            self.assertEqual(wrong, {}, "only the planted violation is reported")
        return r


class CleanStoreTest(CheckerTest):
    def test_clean_store_passes_every_checker(self):
        results = self.check()
        for name in ALL_CHECKERS:
            self.assertIn(name, results["checkers"])
            self.assertTrue(results["checkers"][name]["valid"],
                            f"{name}: {results['checkers'][name]['errors']}")
        self.assertTrue(results["valid"])
        with open(os.path.join(self.dir, "results.json")) as f:
            self.assertEqual(json.load(f)["valid"], True)
        counts = results["checkers"]["G1-G9-acknowledged"]["counts"]
        self.assertEqual(counts["start-ok"], 7)
        self.assertEqual(counts["signal-ok"], 5)
        g6 = results["checkers"]["G6-timers"]
        self.assertEqual(g6["lateness_ms"]["during_fault"]["count"], 1)
        self.assertEqual(g6["lateness_ms"]["no_fault"]["count"], 3)
        self.assertEqual(g6["lateness_ms"]["no_fault"]["p50"], 20)
        self.assertEqual(results["summary"], {
            "operations": 19, "unknown": 0, "faults": {"kill": 1},
            "timer_lateness_ms": {"p50": 20, "p99": 3494, "max": 3494},
            "longest_recovery_ms": 550})


class AcknowledgedTest(CheckerTest):
    def test_lost_acknowledged_workflow(self):
        self.b.runs.remove(self.b.run_by_wid("timers-1"))
        r = self.assertCaught(self.check(), "G1-G9-acknowledged", "lost-start",
                              others_valid=False)
        self.assertEqual(r["errors"][0]["workflow_id"], "timers-1")

    def test_lost_acknowledged_signal(self):
        run = self.b.run_by_wid("signals-1")
        lost = run.find("WorkflowExecutionSignaled")[-1]
        run.events.remove(lost)
        run.renumber()
        results = self.check()
        self.assertCaught(results, "G1-G9-acknowledged", "lost-signal", others_valid=False)
        self.assertCaught(results, "G7-signals", "not-delivered", others_valid=False)

    def test_failed_start_that_happened(self):
        # The conflicting start's request id started a run after all.
        run = self.b.new_run("starts-1")
        run.add("WorkflowExecutionStarted", T0_MS + 20_000, workflow_type="jepsen-ledger",
                input=json.dumps({"steps": 1}), request_id="req-starts-1-b")
        run.complete(T0_MS + 20_010, {"steps": 1})
        self.assertCaught(self.check(), "G1-G9-acknowledged", "failed-start-happened")

    def test_unknown_outcome_may_be_absent(self):
        self.b.start_run("c8", "unknown-1", "jepsen-ledger", {"steps": 0}, T0_MS + 30_000,
                         ok=False)
        self.b.runs.pop()  # it never happened: that is allowed
        self.assertTrue(self.check()["valid"])


class ExactlyOnceTest(CheckerTest):
    def test_attempt_dispatched_twice(self):
        self.b.ledger.append(dict(self.b.ledger[1], worker="w2", time_ms=T0_MS + 1500))
        r = self.assertCaught(self.check(), "G5-exactly-once", "attempt-dispatched-twice")
        self.assertEqual(r["errors"][0]["attempt"], 1)

    def test_second_attempt_is_not_a_duplicate(self):
        self.b.ledger.append(dict(self.b.ledger[1], attempt=2, time_ms=T0_MS + 1500))
        self.assertTrue(self.check()["valid"])

    def test_step_effect_missing(self):
        del self.b.ledger[0]
        self.assertCaught(self.check(), "G5-exactly-once", "step-effect-missing")

    def test_workflow_completed_twice(self):
        run = self.b.run_by_wid("ledger-1")
        run.complete(run.events[-1]["event_time_ms"] + 5, {"steps": 2})
        self.assertCaught(self.check(), "G5-exactly-once", "closed-twice")

    def test_acknowledged_workflow_never_completed(self):
        run = self.b.run_by_wid("ledger-2")
        run.events = run.events[:-1]
        run.status = "running"
        self.assertCaught(self.check(), "G5-exactly-once", "never-completed")


class TimersTest(CheckerTest):
    def _fired(self, wid, index=0):
        run = self.b.run_by_wid(wid)
        return run, run.find("TimerStarted")[index], run.find("TimerFired")[index]

    def test_timer_early_against_the_shard_clock(self):
        _, started, fired = self._fired("timers-1")
        due = started["event_time_ms"] + started["start_to_fire_timeout_ms"]
        fired["event_time_ms"] = due - 100  # the wake stays within the clock-offset bound
        r = self.assertCaught(self.check(), "G6-timers", "early-shard-clock")
        self.assertEqual(r["errors"][0]["early_ms"], 100)

    def test_timer_early_in_real_time(self):
        wake = self.b.wakes[1]
        wake["wake_time_ms"] = wake["prev_time_ms"] + wake["duration_ms"] - 501
        r = self.assertCaught(self.check(), "G6-timers", "early-real-time")
        self.assertEqual(r["errors"][0]["early_ms"], 501)

    def test_early_within_the_clock_offset_bound_is_allowed(self):
        wake = self.b.wakes[1]
        wake["wake_time_ms"] = wake["prev_time_ms"] + wake["duration_ms"] - 500
        self.assertTrue(self.check()["valid"])

    def test_timer_late_outside_a_fault(self):
        run, started, fired = self._fired("timers-1", 2)
        due = started["event_time_ms"] + started["start_to_fire_timeout_ms"]
        fired["event_time_ms"] = due + 3001
        for ev in run.events[run.events.index(fired) + 1:]:
            ev["event_time_ms"] = due + 3002
        self.assertCaught(self.check(), "G6-timers", "late")

    def test_timer_due_in_a_fault_is_late_after_the_fault_end_plus_the_bound(self):
        run, _, fired = self._fired("timers-2")
        fired["event_time_ms"] = T0_MS + 12_000 + 3001  # the kill window ends at T0 + 12 s
        for ev in run.events[run.events.index(fired) + 1:]:
            ev["event_time_ms"] = T0_MS + 15_002
        self.assertCaught(self.check(), "G6-timers", "late")

    def test_timer_that_never_fires(self):
        run, _, fired = self._fired("timers-1", 2)
        run.events = run.events[:run.events.index(fired)]
        run.status = "running"
        results = self.check()
        self.assertCaught(results, "G6-timers", "never-fired", others_valid=False)

    def test_pending_timer_not_yet_due_at_the_dump_is_allowed(self):
        run, started, fired = self._fired("timers-1", 2)
        run.events = run.events[:run.events.index(fired)]
        run.status = "running"
        ack = self.b.ops["c2"]
        self.b.ops["c2"] = [line for line in ack if line["f"] != "result"]
        # Still open at the dump, which came before the timer's deadline: no G6 violation.
        self.b.run["final_ms"] = started["event_time_ms"] + started["start_to_fire_timeout_ms"]
        results = self.check()
        self.assertTrue(results["checkers"]["G6-timers"]["valid"],
                        results["checkers"]["G6-timers"]["errors"])


class SignalsTest(CheckerTest):
    def _signals(self):
        run = self.b.run_by_wid("signals-1")
        return run, run.find("WorkflowExecutionSignaled")

    def test_duplicated_signal(self):
        run, sigs = self._signals()
        dup = dict(sigs[2])
        run.events.insert(run.events.index(sigs[-1]) + 1, dup)
        run.renumber()
        r = self.assertCaught(self.check(), "G7-signals", "duplicated")
        self.assertEqual((r["errors"][0]["process"], r["errors"][0]["seq"]), ("c3", 2))

    def test_reordered_signal(self):
        run, sigs = self._signals()
        c3 = [s for s in sigs if json.loads(s["input"])["process"] == "c3"]
        # c3's seq 2 and seq 3 swap places in history (their request ids with them).
        a, b = run.events.index(c3[1]), run.events.index(c3[2])
        for key in ("input", "request_id"):
            run.events[a][key], run.events[b][key] = run.events[b][key], run.events[a][key]
        results = self.check()
        r = self.assertCaught(results, "G7-signals", "out-of-order")
        self.assertEqual((r["errors"][0]["process"], r["errors"][0]["seq"]), ("c3", 2))

    def test_unknown_signal_accepted_after_the_next_is_allowed(self):
        # c3's seq 2 timed out (info) and was accepted after seq 3: no order was promised.
        run, sigs = self._signals()
        c3 = [s for s in sigs if json.loads(s["input"])["process"] == "c3"]
        a, b = run.events.index(c3[1]), run.events.index(c3[2])
        for key in ("input", "request_id"):
            run.events[a][key], run.events[b][key] = run.events[b][key], run.events[a][key]
        ops = self.b.ops["c3"]
        done = next(i for i in range(1, len(ops)) if ops[i]["type"] == "ok"
                    and ops[i - 1]["f"] == "signal" and ops[i - 1]["value"]["seq"] == 2)
        ops[done].update(type="info", value=None, error="DEADLINE_EXCEEDED timed out")
        result = next(l for l in ops if l["f"] == "result" and l["type"] == "ok")
        result["value"]["result"]["signals"] = [
            [json.loads(s["input"])["process"], json.loads(s["input"])["seq"]]
            for s in run.find("WorkflowExecutionSignaled")]
        results = self.check()
        self.assertTrue(results["checkers"]["G7-signals"]["valid"],
                        results["checkers"]["G7-signals"]["errors"])

    def test_result_differs_from_history(self):
        result = next(line for line in self.b.ops["c3"] if line["f"] == "result"
                      and line["type"] == "ok")
        sig = result["value"]["result"]["signals"]
        sig[0], sig[1] = sig[1], sig[0]
        self.assertCaught(self.check(), "G7-signals", "result-differs")


class OpenRunsTest(CheckerTest):
    def test_two_open_runs(self):
        for t in (T0_MS + 40_000, T0_MS + 41_000):
            run = self.b.new_run("twice")
            run.add("WorkflowExecutionStarted", t, workflow_type="jepsen-ledger",
                    input=json.dumps({"steps": 1}), request_id=f"req-twice-{t}")
            run.task(t + 1)
            run.shard = 0
        self.assertCaught(self.check(), "G3-one-open-run", "two-open-runs")

    def test_runs_that_overlap(self):
        first = self.b.run_by_wid("ledger-1")
        run = self.b.new_run("ledger-1")
        run.shard = first.shard
        run.add("WorkflowExecutionStarted", first.events[2]["event_time_ms"],
                workflow_type="jepsen-ledger", input=json.dumps({"steps": 0}),
                request_id="req-ledger-1-again")
        run.complete(first.events[-1]["event_time_ms"] + 100, {"steps": 0})
        self.assertCaught(self.check(), "G3-one-open-run", "overlapping-runs")

    def test_chain_of_terminations_in_one_millisecond_is_allowed(self):
        # Seen in a real run: three terminate-existing starts of one id applied in the same
        # millisecond; the first two runs open and close at that instant.
        t = T0_MS + 50_000
        for i, end in enumerate((t, t, t + 10)):
            run = self.b.new_run("chain")
            run.shard = 2
            run.add("WorkflowExecutionStarted", t, workflow_type="jepsen-ledger",
                    input=json.dumps({"steps": 0}), request_id=f"req-chain-{i}")
            if end == t:
                run.add("WorkflowExecutionTerminated", t, request_id=f"req-chain-{i + 1}")
                run.status = "terminated"
            else:
                run.complete(end, {"steps": 0})
        results = self.check()
        self.assertTrue(results["checkers"]["G3-one-open-run"]["valid"],
                        results["checkers"]["G3-one-open-run"]["errors"])

    def test_run_after_close_is_allowed(self):
        first = self.b.run_by_wid("ledger-1")
        run = self.b.new_run("ledger-1")
        run.shard = first.shard
        run.add("WorkflowExecutionStarted", first.events[-1]["event_time_ms"],
                workflow_type="jepsen-ledger", input=json.dumps({"steps": 0}),
                request_id="req-ledger-1-again")
        run.complete(first.events[-1]["event_time_ms"] + 100, {"steps": 0})
        self.assertTrue(self.check()["valid"])


class IdempotentTest(CheckerTest):
    def test_repeated_request_with_a_different_outcome(self):
        first = self.b.ops["c5"][0]
        run_id = self.b.ops["c5"][1]["value"]["run_id"]
        self.b.op("c5", "start", dict(first["value"]), "ok", T0_MS + 9500, T0_MS + 9503,
                  result={"run_id": run_id, "started": False})
        r = self.assertCaught(self.check(), "G4-idempotent", "different-outcome")
        self.assertIn("started-flag-wrong", [e["kind"] for e in r["errors"]])

    def test_retry_after_unknown_outcome_must_say_started(self):
        # Issue 9 item 6: the first attempt created the run but its answer was lost; the retry
        # with the same request id answered started: false.
        run = self.b.start_run("c9", "retried", "jepsen-ledger", {"steps": 0}, T0_MS + 30_000,
                               request_id="req-retried", ok=False)
        run.complete(T0_MS + 30_010, {"steps": 0})
        self.b.op("c9", "start", dict(self.b.ops["c9"][0]["value"]), "ok", T0_MS + 33_100,
                  T0_MS + 33_110, result={"run_id": run.run_id, "started": False})
        self.assertCaught(self.check(), "G4-idempotent", "started-flag-wrong")

    def test_one_request_id_starts_two_runs(self):
        first = self.b.run_by_wid("ledger-1")
        run = self.b.new_run("ledger-1")
        run.shard = first.shard
        run.add("WorkflowExecutionStarted", first.events[-1]["event_time_ms"] + 10,
                workflow_type="jepsen-ledger", input=json.dumps({"steps": 0}),
                request_id=first.events[0]["request_id"])
        run.complete(first.events[-1]["event_time_ms"] + 20, {"steps": 0})
        self.assertCaught(self.check(), "G4-idempotent", "request-started-twice")


class ReplicasTest(CheckerTest):
    def test_divergent_replica(self):
        run = self.b.run_by_wid("ledger-2")
        copy = [dict(ev) for ev in run.events]
        copy[5]["identity"] = "w9"  # same length, different bytes
        run.node_events["n2"] = copy
        r = self.assertCaught(self.check(), "G2-replicas", "divergent")
        self.assertEqual(r["errors"][0]["run_id"], run.run_id)

    def test_run_missing_on_a_replica(self):
        run = self.b.run_by_wid("ledger-2")
        run.nodes = ["n1", "n3"]
        r = self.assertCaught(self.check(), "G2-replicas", "missing-on-replica")
        self.assertEqual(r["errors"][0]["node"], "n2")

    def test_run_missing_on_a_replica_by_placement(self):
        self.b.run["placement"] = {str(s): ["n1", "n2", "n3"] for s in range(4)}
        self.b.run_by_wid("ledger-2").nodes = ["n1", "n3"]
        self.assertCaught(self.check(), "G2-replicas", "missing-on-replica")

    def test_event_ids_not_dense(self):
        run = self.b.run_by_wid("ledger-1")
        run.events[3]["event_id"] = 7
        self.assertCaught(self.check(), "G2-replicas", "event-ids-not-dense")


class LivenessTest(CheckerTest):
    def test_shard_that_never_recovers(self):
        self.b.liveness[1]["served_ms"] = None
        r = self.assertCaught(self.check(), "liveness", "never-served")
        self.assertEqual(r["errors"][0]["shard"], 1)

    def test_slow_recovery(self):
        rec = self.b.liveness[0]
        rec["served_ms"] = rec["healed_ms"] + 10_001
        self.assertCaught(self.check(), "liveness", "slow-recovery")

    def test_untouched_shard_stalled_during_a_fault(self):
        during = next(rec for rec in self.b.liveness if rec.get("during"))
        during["worst_ms"] = 15_000
        self.assertCaught(self.check(), "liveness", "untouched-shard-stalled")

    def test_untouched_shard_failed_a_probe_during_a_fault(self):
        during = next(rec for rec in self.b.liveness if rec.get("during"))
        during.update(probes=40, failed=3)
        self.assertCaught(self.check(), "liveness", "untouched-shard-failed")

    def test_touched_shard_with_a_majority_stalled_during_a_fault(self):
        self.b.liveness.append({"fault": "kill #1", "during": True, "shard": 0, "touched": True,
                                "worst_ms": 14_000, "probes": 30, "failed": 12})
        self.assertCaught(self.check(), "liveness", "majority-shard-stalled")

    def test_touched_shard_may_fail_probes_while_it_elects(self):
        self.b.liveness.append({"fault": "kill #1", "during": True, "shard": 0, "touched": True,
                                "worst_ms": 2_500, "probes": 30, "failed": 4})
        self.assertTrue(self.check()["valid"])

    def test_fault_never_probed(self):
        self.b.liveness = []
        self.assertCaught(self.check(), "liveness", "fault-not-probed")


class NodeLogsTest(CheckerTest):
    def test_assertion_failure_in_a_node_log(self):
        self.b.logs["n3"] += ("weft: assertion failed: r->commit_index <= r->last_index "
                              "(raft/replica.c:210, replica_commit)\n")
        r = self.assertCaught(self.check(), "node-logs", "assertion-failed")
        self.assertIn("logs/n3.log:3", r["errors"][0]["message"])

    def test_sanitizer_report_in_a_node_log(self):
        self.b.logs["n1"] += "shards/apply.c:88:12: runtime error: signed integer overflow\n"
        self.assertCaught(self.check(), "node-logs", "undefined-behaviour")

    def test_missing_node_log(self):
        del self.b.logs["n2"]
        self.assertCaught(self.check(), "node-logs", "missing-log")


class ScaleTest(CheckerTest):
    def test_many_violations_are_all_counted_and_twenty_kept(self):
        for i in range(300):
            self.b.ledger_workflow(f"bulk-{i}", T0_MS + 100_000 + 50 * i, steps=2,
                                   process=f"b{i % 8}")
        dups = [dict(line, worker="w2") for line in self.b.ledger[-25:]]
        self.b.ledger.extend(dups)
        results = self.check()
        r = self.assertCaught(results, "G5-exactly-once", "attempt-dispatched-twice")
        self.assertEqual(r["violations"], 25)
        self.assertEqual(r["counts"]["attempt-dispatched-twice"], 25)
        self.assertEqual(len(r["errors"]), 20)
        self.assertEqual(results["checkers"]["G1-G9-acknowledged"]["counts"]["start-ok"], 307)


class StoreErrorsTest(CheckerTest):
    def test_malformed_history_line_is_named(self):
        self.b.write(self.dir)
        with open(os.path.join(self.dir, "history", "c1.jsonl"), "a") as f:
            f.write("{not json\n")
        results = check_store(self.dir)
        self.assertFalse(results["valid"])
        err = results["checkers"]["G1-G9-acknowledged"]["errors"][0]
        self.assertEqual(err["kind"], "unreadable-store")
        self.assertIn("c1.jsonl:", err["message"])

    def test_truncated_last_line_is_skipped(self):
        self.b.write(self.dir)
        with open(os.path.join(self.dir, "ledger.jsonl"), "a") as f:
            f.write('{"workflow_id": "ledg')
        self.assertTrue(check_store(self.dir)["valid"])


if __name__ == "__main__":
    unittest.main()
