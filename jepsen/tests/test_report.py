"""report.html: a well-formed, self-contained page with the fault windows shaded and labelled on
both charts, the verdicts and the violations."""

import os
import re
import shutil
import tempfile
import unittest
import xml.etree.ElementTree as ET

import store_fixture
from store_fixture import T0_MS, StoreBuilder

from weftjepsen.check import check_store
from weftjepsen.report import write_report

SVG = "{http://www.w3.org/2000/svg}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def parse(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doctype, rest = text.split("\n", 1)
    assert doctype == "<!DOCTYPE html>", doctype
    return text, ET.fromstring(rest)  # raises on anything that is not well-formed


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="weft-jepsen-report-")
        self.b = StoreBuilder()
        # A second fault that overlaps the kill, so their labels need two rows.
        self.b.fault("partition", T0_MS + 11_000, T0_MS + 20_000,
                     {"kind": "isolate", "nodes": ["n1"], "shards": [0, 1, 2, 3]})

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self):
        self.b.write(self.dir)
        results = check_store(self.dir)
        return results, write_report(self.dir, results)

    def test_report_is_well_formed_with_fault_windows(self):
        results, path = self.write()
        self.assertEqual(path, os.path.join(self.dir, "report.html"))
        text, root = parse(path)
        svgs = root.findall(f".//{SVG}svg")
        self.assertEqual(len(svgs), 2, "a throughput chart and a latency chart")
        for svg in svgs:
            faults = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "fault"]
            self.assertEqual(len(faults), 2)
            labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "fault-label"]
            self.assertEqual(labels, ["kill n2", "partition isolate n1"])
            ys = {float(t.get("y")) for t in svg.iter(f"{SVG}text")
                  if t.get("class") == "fault-label"}
            self.assertEqual(len(ys), 2, "overlapping windows get their own label rows")
            # The kill window spans 10 s to 12 s of the run: its shading is where the axis says.
            kill = faults[0]
            self.assertLess(float(kill.get("x")), float(faults[1].get("x")))
            self.assertGreater(float(kill.get("width")), 1.0)
            self.assertTrue(svg.findall(f"{SVG}polyline"), "the series are drawn")
        self.assertNotRegex(text, r"(src|href)=\"https?:", "nothing is loaded from the internet")
        verdicts = root.find(f".//{XHTML}table[@id='verdicts']")
        self.assertEqual(len(verdicts.findall(f"{XHTML}tr")), 1 + len(results["checkers"]))
        self.assertIn("valid", text)
        summary = root.find(f".//{XHTML}p[@id='summary']").text
        self.assertIn("faults: 1 kill, 1 partition", summary)

    def test_report_shows_violations_and_escapes_them(self):
        self.b.logs["n1"] += "weft: assertion failed: a < b && c > d (x.c:1, f)\n"
        results, path = self.write()
        self.assertFalse(results["valid"])
        text, root = parse(path)
        self.assertIn("INVALID", text)
        self.assertIn("a &lt; b &amp;&amp; c &gt; d", text)
        items = [li.text for li in root.iter(f"{XHTML}li")]
        self.assertTrue(any(i and i.startswith("assertion-failed") for i in items), items)

    def test_report_of_an_unreadable_history_still_renders(self):
        self.b.write(self.dir)
        with open(os.path.join(self.dir, "history", "c1.jsonl"), "a") as f:
            f.write("{broken\n")
        results = check_store(self.dir)
        _, root = parse(write_report(self.dir, results))
        self.assertTrue(re.search("could not be read", ET.tostring(root, encoding="unicode")))


if __name__ == "__main__":
    unittest.main()
