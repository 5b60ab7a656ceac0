"""jepsen/check STORE_DIR: exits 0 only when the stored run is valid, and prints the report's
path."""

import os
import shutil
import subprocess
import tempfile
import unittest

import store_fixture
from store_fixture import StoreBuilder

CHECK = os.path.join(store_fixture.JEPSEN_DIR, "check")
# A check of the fixture takes well under a second; this only stops a hung child.
CHECK_TIMEOUT_S = 60


def run_check(*args):
    return subprocess.run([CHECK, *args], capture_output=True, text=True,
                          timeout=CHECK_TIMEOUT_S)


class CheckCliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weft-jepsen-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_valid_run_exits_zero(self):
        StoreBuilder().write(self.dir)
        p = run_check(self.dir)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"report: {os.path.abspath(self.dir)}/report.html", p.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "results.json")))

    def test_invalid_run_exits_one(self):
        b = StoreBuilder()
        b.liveness[0]["served_ms"] = None
        b.write(self.dir)
        p = run_check(self.dir)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("liveness             INVALID (1 violations)", p.stdout)
        self.assertIn("never-served", p.stdout)

    def test_missing_run_json_exits_two_and_says_why(self):
        p = run_check(self.dir)
        self.assertEqual(p.returncode, 2)
        self.assertIn("run.json: missing", p.stderr)


if __name__ == "__main__":
    unittest.main()
