"""node_logs.py: no node asserted or tripped a sanitizer (logs/<node>.log).

weft's assertions print "weft: assertion failed: EXPR (FILE:LINE, FUNC)" before abort()
(proto/base.c); a C assert() prints "Assertion `EXPR' failed."; AddressSanitizer,
LeakSanitizer, ThreadSanitizer and UndefinedBehaviorSanitizer print the markers below. Every
node of run.json must have a log.
"""

import os

from weftjepsen.checkers.verdict import Verdict

NAME = "node-logs"

# (violation kind, text that marks it in a log line). One kind per line: the first that matches.
LOG_MARKERS = (
    ("assertion-failed", "weft: assertion failed:"),
    ("assertion-failed", "' failed."),  # glibc assert(): "Assertion `x' failed."
    ("address-sanitizer", "ERROR: AddressSanitizer"),
    ("leak-sanitizer", "ERROR: LeakSanitizer"),
    ("undefined-behaviour", "runtime error:"),
    ("undefined-behaviour", "ERROR: UndefinedBehaviorSanitizer"),
    ("thread-sanitizer", "WARNING: ThreadSanitizer"),
)

# Characters of a matching log line kept in a violation's message.
LOG_LINE_CHARS_MAX = 300


def _scan(v, path, name):
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            v.count("lines")
            for kind, marker in LOG_MARKERS:
                if marker in line and (marker != "' failed." or "Assertion `" in line):
                    v.violation(kind, f"logs/{name}:{lineno}: "
                                f"{line.strip()[:LOG_LINE_CHARS_MAX]}", log=name, line=lineno)
                    break


def check(store):
    v = Verdict(NAME)
    logs = store.path("logs")
    names = sorted(n for n in os.listdir(logs) if n.endswith(".log")) if os.path.isdir(logs) \
        else []
    for node in store.node_names:
        if f"{node}.log" not in names:
            v.violation("missing-log", f"logs/{node}.log is missing: node {node}'s failures "
                        "cannot be checked", node=node)
    for name in names:
        v.count("logs")
        _scan(v, os.path.join(logs, name), name)
    return v.result()
