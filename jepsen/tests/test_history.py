"""Reading a store: malformed files give an error that names the file, the line and the field;
operations pair with their completions."""

import json
import os
import shutil
import tempfile
import unittest

import store_fixture  # noqa: F401 (puts jepsen/ on the path)

from weftjepsen.history import StoreError, Store, payload, read_process_ops


class HistoryTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weft-jepsen-history-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def ops(self, *lines):
        path = os.path.join(self.dir, "c1.jsonl")
        with open(path, "w") as f:
            for line in lines:
                f.write(json.dumps(line) + "\n")
        return read_process_ops(path)

    def test_pairs_invokes_with_completions(self):
        ops = self.ops(
            {"process": "c1", "type": "invoke", "f": "start", "time_ms": 10, "node": "n1",
             "value": {"workflow_id": "a"}},
            {"process": "c1", "type": "ok", "f": "start", "time_ms": 15, "node": "n1",
             "value": {"run_id": "r", "started": True}},
            {"process": "c1", "type": "invoke", "f": "signal", "time_ms": 20, "value": {}})
        self.assertEqual([(o.f, o.type, o.latency_ms()) for o in ops],
                         [("start", "ok", 5), ("signal", "info", None)])
        self.assertEqual(ops[0].result["run_id"], "r")

    def test_two_invokes_in_a_row_are_refused(self):
        inv = {"process": "c1", "type": "invoke", "f": "start", "time_ms": 1, "value": {}}
        with self.assertRaisesRegex(StoreError, r"c1.jsonl:2: invoke while .*c1.jsonl:1"):
            self.ops(inv, inv)

    def test_completion_of_another_f_is_refused(self):
        with self.assertRaisesRegex(StoreError, r"c1.jsonl:2: completion has f 'signal'"):
            self.ops({"type": "invoke", "f": "start", "time_ms": 1},
                     {"type": "ok", "f": "signal", "time_ms": 2})

    def test_bad_type_and_missing_time_are_named(self):
        with self.assertRaisesRegex(StoreError, r"c1.jsonl:1: field 'type' is 'done'"):
            self.ops({"type": "done", "f": "start", "time_ms": 1})
        with self.assertRaisesRegex(StoreError, r"c1.jsonl:1: field 'time_ms' is missing"):
            self.ops({"type": "invoke", "f": "start"})
        with self.assertRaisesRegex(StoreError, r"field 'time_ms' must be an integer, got str"):
            self.ops({"type": "invoke", "f": "start", "time_ms": "1"})

    def test_run_json_field_is_named(self):
        store_fixture.StoreBuilder().write(self.dir)
        path = os.path.join(self.dir, "run.json")
        with open(path) as f:
            run = json.load(f)
        run["timer_late_bound_ms"] = True
        with open(path, "w") as f:
            json.dump(run, f)
        with self.assertRaisesRegex(StoreError, r"run.json: field 'timer_late_bound_ms' must be "
                                                r"an integer, got bool"):
            Store(self.dir)

    def test_payloads_of_the_json_form(self):
        self.assertEqual(payload('{"seq": 3}'), {"seq": 3})
        self.assertEqual(payload({"base64": "eyJzZXEiOiA0fQ=="}), {"seq": 4})
        self.assertEqual(payload("not json"), "not json")
        self.assertEqual(payload({"steps": 1}), {"steps": 1})


if __name__ == "__main__":
    unittest.main()
