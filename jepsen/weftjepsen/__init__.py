"""weftjepsen: weft's chaos harness driver (jepsen/README.md; the files it writes: FORMAT.md).

The driver sets up network namespaces and weftd nodes (netns, nodes), schedules faults from a
seed (nemesis, proxy), runs the C client weft-jepsen for the workloads and probes (workloads),
heals and collects the final state (collect), then hands the store to the checkers (check,
report). Debian's /usr/bin/python3, standard library only.
"""

import json
import os
import subprocess
import sys
import time

# Every name the harness creates starts with this, so that `jepsen/run --clean` finds leftovers:
# network namespaces wj-n1.., the bridge wj-br0, veths wj-n1-v, iptables comments wj-jepsen.
PREFIX = "wj"
# Only one run at a time per machine: its namespaces, subnet and bridge are fixed names.
LOCK_PATH = "/run/weft-jepsen.lock"


def now_ms():
    """CLOCK_REALTIME in ms: FORMAT.md's time_ms. The harness host's clock is never skewed."""
    return int(time.time() * 1000)


def log(msg):
    """One line on stderr, with the time, for the person watching a run."""
    sys.stderr.write("jepsen %s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def sh(argv, check=True, quiet=False, timeout=60, input_text=None):
    """Runs a command; returns its CompletedProcess. check=True raises with its stderr."""
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input_text)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(argv), p.returncode,
                                                         p.stderr.strip()))
    if not quiet and p.returncode != 0:
        log("%s: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr.strip()))
    return p


class JsonLines:
    """A file of JSON lines appended one line per write (O_APPEND), like the C client's."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, obj):
        os.write(self.fd, (json.dumps(obj, sort_keys=True) + "\n").encode())

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
