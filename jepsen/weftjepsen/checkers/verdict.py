"""verdict.py: what every checker returns (jepsen/FORMAT.md, "results.json"): a verdict, counts,
and up to ERRORS_KEPT_MAX example violations; plus the percentiles the timer checker reports."""

# Example violations kept per checker: enough to debug from, small enough to read in a report.
ERRORS_KEPT_MAX = 20


class Verdict:
    """Collects one checker's counts and violations. A checker is valid when it found none."""

    def __init__(self, name):
        self.name = name      # the checker's name in results.json
        self.counts = {}      # what was checked, and how often each kind of violation occurred
        self.errors = []      # the first ERRORS_KEPT_MAX violations
        self.violations = 0   # every violation found
        self.extra = {}       # checker-specific results (distributions)

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def violation(self, kind, message, **details):
        """Records one violation: `kind` names the rule broken (it also becomes a count), and
        `message` says in a sentence what was seen, naming the run, process and times."""
        self.violations += 1
        self.count(kind)
        if len(self.errors) < ERRORS_KEPT_MAX:
            err = {"kind": kind, "message": message}
            err.update(details)
            self.errors.append(err)

    def result(self):
        out = {"valid": self.violations == 0, "counts": self.counts,
               "violations": self.violations, "errors": self.errors}
        out.update(self.extra)
        return out


def percentiles(values):
    """{"count", "p50", "p90", "p99", "max"} of a list of numbers (nearest-rank), or just the
    count when it is empty."""
    if not values:
        return {"count": 0}
    v = sorted(values)

    def rank(p):
        return v[min(len(v) - 1, max(0, -(-p * len(v) // 100) - 1))]

    return {"count": len(v), "p50": rank(50), "p90": rank(90), "p99": rank(99), "max": v[-1]}
