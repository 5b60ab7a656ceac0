"""report.py: report.html for a checked run: throughput and latency over time as inline SVG with
the fault windows shaded and labelled, the verdicts, the counts and example violations.

The page is one self-contained file (nothing is loaded from the internet) and well-formed XML,
so any parser can read it. Times on the charts are seconds since the run's start_ms.
"""

import html
import math
import os

from weftjepsen.history import Store, StoreError

REPORT_FILE = "report.html"

# Time buckets per chart at most: fine enough to see a stall, few enough to stay small.
CHART_BUCKETS_MAX = 300
# The smallest bucket: one second, so throughput reads as operations per second.
CHART_BUCKET_MS_MIN = 1000
# Chart geometry, in SVG user units (pixels).
CHART_WIDTH = 1000
CHART_HEIGHT = 240
CHART_MARGIN_LEFT = 70
CHART_MARGIN_RIGHT = 20
CHART_MARGIN_TOP = 20
CHART_MARGIN_BOTTOM = 36
# Fault labels above a chart: the height of a row, how many rows at most (labels that would
# collide take the next row), and the width of a character at the 11 px font.
LABEL_ROW_HEIGHT = 14
LABEL_ROWS_MAX = 4
LABEL_CHAR_WIDTH = 6.2
# Characters of an error message shown in the report (results.json has them whole).
ERROR_TEXT_CHARS_MAX = 600

TYPE_COLOURS = {"ok": "#2b8a3e", "info": "#e67700", "fail": "#c92a2a"}
LATENCY_COLOURS = {"p50": "#1971c2", "p99": "#7048e8", "max": "#868e96"}
FAULT_COLOURS = {"kill": "#ff8787", "pause": "#ffc078", "partition": "#74c0fc",
                 "clock": "#b197fc", "slow": "#8ce99a", "disk": "#ffd43b"}
FAULT_COLOUR_DEFAULT = "#ced4da"

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #212529; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
td, th { border: 1px solid #dee2e6; padding: 0.25em 0.6em; text-align: left;
         vertical-align: top; font-size: 0.9em; }
th { background: #f1f3f5; }
.valid { color: #2b8a3e; font-weight: bold; }
.invalid { color: #c92a2a; font-weight: bold; }
.mono { font-family: monospace; font-size: 0.85em; }
svg text { font-size: 11px; font-family: sans-serif; }
"""


def esc(value):
    return html.escape(str(value), quote=True)


class Timeline:
    """Maps harness times to x coordinates, and buckets them."""

    def __init__(self, t0_ms, t1_ms):
        self.t0_ms = t0_ms
        self.t1_ms = max(t1_ms, t0_ms + CHART_BUCKET_MS_MIN)
        span = self.t1_ms - self.t0_ms
        self.bucket_ms = max(CHART_BUCKET_MS_MIN,
                             math.ceil(span / CHART_BUCKETS_MAX / 1000) * 1000)
        self.buckets = math.ceil(span / self.bucket_ms)

    def x(self, t_ms):
        inner = CHART_WIDTH - CHART_MARGIN_LEFT - CHART_MARGIN_RIGHT
        frac = (min(max(t_ms, self.t0_ms), self.t1_ms) - self.t0_ms) / (self.t1_ms - self.t0_ms)
        return CHART_MARGIN_LEFT + frac * inner

    def bucket(self, t_ms):
        return min(self.buckets - 1, max(0, (t_ms - self.t0_ms) // self.bucket_ms))

    def bucket_mid_ms(self, i):
        return self.t0_ms + i * self.bucket_ms + self.bucket_ms // 2


def _nice_step(span, ticks):
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _label_width(text):
    """Roughly how wide a label is drawn at the charts' 11 px font."""
    return LABEL_CHAR_WIDTH * len(text) + 4


def _labels(tl, windows):
    """([(text, row)] per window, rows used). Each window's label goes on the first row where
    it does not run into the label before it; when none has room, the short label "#n" (the
    window's number in the faults table) is tried the same way, and failing that no text is
    drawn (the shading keeps its tooltip)."""
    row_ends, placed = [], []
    for n, w in enumerate(windows, 1):
        x0 = tl.x(w["start_ms"])
        for text in (w["label"], f"#{n}"):
            row = next((i for i, end in enumerate(row_ends) if x0 >= end), None)
            if row is None and len(row_ends) < LABEL_ROWS_MAX:
                row_ends.append(0.0)
                row = len(row_ends) - 1
            if row is not None:
                row_ends[row] = x0 + _label_width(text)
                placed.append((text, row))
                break
        else:
            placed.append((None, None))
    return placed, max(1, len(row_ends))


def _fault_layer(tl, windows, top, bottom):
    out = []
    labels, _ = _labels(tl, windows)
    for n, (w, (text, row)) in enumerate(zip(windows, labels), 1):
        x0, x1 = tl.x(w["start_ms"]), tl.x(w["end_ms"])
        colour = FAULT_COLOURS.get(w["fault"], FAULT_COLOUR_DEFAULT)
        out.append(f'<rect class="fault" x="{x0:.1f}" y="{top}" width="{max(1.0, x1 - x0):.1f}" '
                   f'height="{bottom - top}" fill="{colour}" fill-opacity="0.35">'
                   f'<title>#{n} {esc(w["label"])}: {esc((w["start_ms"] - tl.t0_ms) / 1000)} s '
                   f'to {esc((w["end_ms"] - tl.t0_ms) / 1000)} s</title></rect>')
        if text is not None:
            y = CHART_MARGIN_TOP + (row + 1) * LABEL_ROW_HEIGHT - 3
            out.append(f'<line x1="{x0:.1f}" y1="{y + 3}" x2="{x0:.1f}" y2="{top}" '
                       f'stroke="{colour}"/>')
            out.append(f'<text class="fault-label" x="{x0 + 2:.1f}" y="{y}">{esc(text)}</text>')
    return out


def _axes(tl, top, bottom, y_ticks, y_label):
    out = [f'<line x1="{CHART_MARGIN_LEFT}" y1="{bottom}" x2="{CHART_WIDTH - CHART_MARGIN_RIGHT}"'
           f' y2="{bottom}" stroke="#495057"/>',
           f'<line x1="{CHART_MARGIN_LEFT}" y1="{top}" x2="{CHART_MARGIN_LEFT}" y2="{bottom}" '
           'stroke="#495057"/>']
    span_s = (tl.t1_ms - tl.t0_ms) / 1000
    step = _nice_step(span_s, 10)
    s = 0.0
    while s <= span_s + 1e-9:
        x = tl.x(tl.t0_ms + s * 1000)
        out.append(f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 4}" '
                   'stroke="#495057"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{s:g}</text>')
        s += step
    out.append(f'<text x="{(CHART_WIDTH + CHART_MARGIN_LEFT) / 2:.0f}" y="{bottom + 31}" '
               'text-anchor="middle">seconds since start</text>')
    for y, text in y_ticks:
        x_end = CHART_WIDTH - CHART_MARGIN_RIGHT
        out.append(f'<line x1="{CHART_MARGIN_LEFT - 4}" y1="{y:.1f}" x2="{x_end}" '
                   f'y2="{y:.1f}" stroke="#e9ecef"/>')
        out.append(f'<text x="{CHART_MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{esc(text)}</text>')
    out.append(f'<text x="12" y="{(top + bottom) / 2:.0f}" text-anchor="middle" '
               f'transform="rotate(-90 12 {(top + bottom) / 2:.0f})">{esc(y_label)}</text>')
    return out


def _segments(pts):
    """The runs of consecutive points that have a value."""
    segment = []
    for t, y in pts:
        if y is None:
            if segment:
                yield segment
            segment = []
        else:
            segment.append((t, y))
    if segment:
        yield segment


def _chart(title, tl, windows, series, y_label, log_y):
    """One SVG chart. series: [(name, colour, [(t_ms, y or None)])]."""
    _, rows = _labels(tl, windows)
    top = CHART_MARGIN_TOP + rows * LABEL_ROW_HEIGHT
    height = CHART_HEIGHT + rows * LABEL_ROW_HEIGHT
    bottom = height - CHART_MARGIN_BOTTOM
    ys = [y for _, _, pts in series for _, y in pts if y is not None and (y > 0 or not log_y)]
    y_max = max(ys, default=1)
    if log_y:
        lo, hi = 0, max(1, math.ceil(math.log10(max(y_max, 1))))
        def ypos(v): return bottom - (math.log10(max(v, 1)) - lo) / (hi - lo) * (bottom - top)
        ticks = [(ypos(10 ** e), f"{10 ** e:g}") for e in range(lo, hi + 1)]
    else:
        step = _nice_step(max(y_max, 1), 5)
        hi = step * math.ceil(max(y_max, 1) / step)
        def ypos(v): return bottom - v / hi * (bottom - top)
        ticks = [(ypos(k * step), f"{k * step:g}") for k in range(int(hi / step) + 1)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{height}" '
           f'viewBox="0 0 {CHART_WIDTH} {height}" role="img"><title>{esc(title)}</title>']
    out += _fault_layer(tl, windows, top, bottom)
    out += _axes(tl, top, bottom, ticks, y_label)
    legend_x = CHART_WIDTH - CHART_MARGIN_RIGHT - 90 * len(series)
    for i, (name, colour, pts) in enumerate(series):
        for segment in _segments(pts):  # a bucket with no value breaks the line
            path = " ".join(f"{tl.x(t):.1f},{ypos(y):.1f}" for t, y in segment)
            if len(segment) == 1:
                out.append(f'<circle cx="{tl.x(segment[0][0]):.1f}" '
                           f'cy="{ypos(segment[0][1]):.1f}" r="2" fill="{colour}"/>')
            dash = ' stroke-dasharray="4 3"' if name.startswith("max") else ""
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{dash} '
                       f'points="{path}"><title>{esc(name)}</title></polyline>')
        lx = legend_x + 90 * i
        out.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="13">{esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _series(store, tl):
    """(throughput series, latency series) from the paired operations."""
    counts = {t: [0] * tl.buckets for t in TYPE_COLOURS}
    latencies = [[] for _ in range(tl.buckets)]
    for op in store.ops:
        if op.complete_ms is None:
            continue
        b = tl.bucket(op.complete_ms)
        counts[op.type][b] += 1
        latencies[b].append(op.complete_ms - op.invoke_ms)
    per_s = 1000 / tl.bucket_ms
    throughput = [(f"{t} /s", colour, [(tl.bucket_mid_ms(i), n * per_s)
                                       for i, n in enumerate(counts[t])])
                  for t, colour in TYPE_COLOURS.items()]
    latency = []
    for name, colour in LATENCY_COLOURS.items():
        pts = []
        for i, lat in enumerate(latencies):
            if not lat:
                pts.append((tl.bucket_mid_ms(i), None))
                continue
            lat.sort()
            at = {"p50": 0.5, "p99": 0.99, "max": 1.0}[name]
            pts.append((tl.bucket_mid_ms(i), lat[min(len(lat) - 1, int(at * len(lat)))]))
        latency.append((f"{name} ms", colour, pts))
    return throughput, latency


def _verdict_table(results):
    rows = ['<table id="verdicts"><tr><th>checker</th><th>verdict</th><th>violations</th>'
            '<th>counts</th></tr>']
    for name, r in results.get("checkers", {}).items():
        cls = "valid" if r.get("valid") else "invalid"
        counts = ", ".join(f"{k}: {v}" for k, v in sorted(r.get("counts", {}).items()))
        rows.append(f'<tr><td>{esc(name)}</td><td class="{cls}">'
                    f'{"valid" if r.get("valid") else "INVALID"}</td>'
                    f'<td>{esc(r.get("violations", 0))}</td><td>{esc(counts)}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def _distribution_table(title, dists):
    rows = [f"<h3>{esc(title)}</h3><table><tr><th></th><th>count</th><th>p50</th><th>p90</th>"
            "<th>p99</th><th>max</th></tr>"]
    for name, d in dists.items():
        cells = "".join(f"<td>{esc(d.get(k, '-'))}</td>" for k in ("count", "p50", "p90", "p99",
                                                                    "max"))
        rows.append(f"<tr><td>{esc(name)}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _errors_section(results):
    out = ["<h2>Violations</h2>"]
    any_errors = False
    for name, r in results.get("checkers", {}).items():
        errors = r.get("errors") or []
        if not errors:
            continue
        any_errors = True
        out.append(f'<details open="open"><summary>{esc(name)}: {esc(r.get("violations"))} '
                   f'violation(s), first {len(errors)} shown</summary><ul>')
        for e in errors:
            text = f'{e.get("kind")}: {e.get("message")}'[:ERROR_TEXT_CHARS_MAX]
            out.append(f'<li class="mono">{esc(text)}</li>')
        out.append("</ul></details>")
    if not any_errors:
        out.append("<p>None.</p>")
    return "\n".join(out)


def _faults_table(tl, windows):
    rows = ['<table id="faults"><tr><th>#</th><th>fault</th><th>from (s)</th><th>to (s)</th>'
            '<th>length (s)</th></tr>']
    for n, w in enumerate(windows, 1):
        rows.append(f'<tr><td>{n}</td><td>{esc(w["label"])}</td>'
                    f'<td>{(w["start_ms"] - tl.t0_ms) / 1000:g}</td>'
                    f'<td>{(w["end_ms"] - tl.t0_ms) / 1000:g}</td>'
                    f'<td>{(w["end_ms"] - w["start_ms"]) / 1000:g}</td></tr>')
    rows.append("</table>")
    return "\n".join(rows)


def _timeline(store, windows):
    run = store.run
    times = [op.invoke_ms for op in store.ops[:1]]
    t0 = run.get("start_ms") or (times[0] if times else 0)
    t1 = max([run.get("end_ms") or 0, run.get("healed_ms") or 0] +
             [w["end_ms"] for w in windows] +
             [op.complete_ms for op in store.ops if op.complete_ms is not None])
    return Timeline(t0, t1)


def _summary_line(summary):
    faults = ", ".join(f"{n} {k}" for k, n in sorted(summary.get("faults", {}).items()))
    late = summary.get("timer_lateness_ms", {})
    return (f'<p id="summary">{esc(summary.get("operations"))} operations, '
            f'{esc(summary.get("unknown"))} with an unknown outcome; faults: '
            f'{esc(faults or "none")}; timer lateness p50 {esc(late.get("p50"))} ms, p99 '
            f'{esc(late.get("p99"))} ms, max {esc(late.get("max"))} ms; longest recovery after '
            f'a heal {esc(summary.get("longest_recovery_ms"))} ms.</p>')


def _body(store, results):
    windows = results.get("faults", [])
    tl = _timeline(store, windows)
    throughput, latency = _series(store, tl)
    run = store.run
    verdict, cls = ("valid", "valid") if results.get("valid") else ("INVALID", "invalid")
    parts = [f'<h1>weft jepsen run {esc(run.get("run"))}: '
             f'<span class="{cls}">{verdict}</span></h1>',
             f'<p>workload <b>{esc(run.get("workload"))}</b>, nemesis '
             f'<b>{esc(run.get("nemesis"))}</b>, seed {esc(run.get("seed"))}, '
             f'{esc(len(store.node_names))} nodes, {esc(run.get("shards"))} shards, '
             f'replication {esc(run.get("replication"))}, {esc(run.get("time_s"))} s; one bucket '
             f'is {tl.bucket_ms / 1000:g} s. Bounds: timer lateness '
             f'{esc(run.get("timer_late_bound_ms"))} ms, recovery '
             f'{esc(run.get("recovery_bound_ms"))} ms, clock offset '
             f'{esc(run.get("max_clock_offset_ms"))} ms.</p>',
             _summary_line(results.get("summary", {})),
             "<h2>Verdicts</h2>", _verdict_table(results),
             "<h2>Throughput</h2>",
             _chart("completions per second by outcome", tl, windows, throughput, "ops/s", False),
             "<h2>Latency</h2>",
             _chart("operation latency (ms, log scale)", tl, windows, latency, "ms", True),
             "<h2>Faults</h2>", _faults_table(tl, windows)]
    ops = results.get("ops", {})
    parts.append("<h2>Operations</h2><table id=\"ops\"><tr><th>operation</th><th>count</th></tr>" +
                 "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>"
                         for k, v in sorted(ops.items())) + "</table>")
    g6 = results.get("checkers", {}).get("G6-timers", {})
    if "lateness_ms" in g6:
        parts.append(_distribution_table("Timer lateness by the shard clock (ms)",
                                         g6["lateness_ms"]))
        parts.append(_distribution_table("Wake lateness in real time (ms)",
                                         {"all": g6.get("real_time_lateness_ms", {})}))
    live = results.get("checkers", {}).get("liveness", {})
    if "recovery_ms" in live:
        parts.append(_distribution_table("Recovery after a heal (ms)",
                                         {"all shards": live["recovery_ms"]}))
    parts.append(_errors_section(results))
    return "\n".join(parts)


def write_report(store_dir, results):
    """Writes store_dir/report.html for `results` (as check_store returned them) and returns its
    path. Raises StoreError if run.json cannot be read."""
    store = Store(store_dir)
    try:
        body = _body(store, results)
    except StoreError as e:  # a history the checkers could not read: report without charts
        body = (f"<h1>weft jepsen run {esc(store.run.get('run'))}</h1><p class=\"invalid\">"
                f"The history could not be read: {esc(e)}</p>" + _verdict_table(results) +
                _errors_section(results))
    page = ("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n"
            f"<head><meta charset=\"utf-8\"/><title>weft jepsen {esc(store.run.get('run'))}"
            f"</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body>\n</html>\n")
    path = os.path.join(store_dir, REPORT_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
    return path
