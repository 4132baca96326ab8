"""``report.html`` beside grades.csv: a view of the whole class for the instructor.

* the score distribution per assignment (from grades.csv's rows, so the gradebook's scores
  after late penalties), drawn as inline SVG, with the count of missing work;
* each part's pass rate over the graded submissions;
* the most common failure reasons per part, grouped by cause: messages that differ only in
  their numbers (a case number, an error size) are one group, shown with its count and a few
  examples, anonymised (no student id, and a student's own id inside a message is blanked);
* time and resources per part (wall-clock and CPU seconds of the part's test cell, the kernel's
  peak memory by the end of the part), where the results carry them;
* pairs of unusually similar answer cells (:mod:`autograder.results.similarity`) for the
  instructor to review, with their similarity score: flagged, never penalised.

The page is self-contained (no script, no external resource) and every string from a
submission is cleaned with :func:`autograder.text.shown` and HTML-escaped. The frame is the
template ``templates/report.html`` (``$title`` and ``$body``).
"""

from __future__ import annotations

import html
import re
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from .. import files
from ..grading.jobs import Result
from ..sandbox.limits import human_size
from ..text import shown
from .report import Row
from .similarity import THRESHOLD, Pair

TEMPLATE = Path(__file__).with_name("templates") / "report.html"
BINS = 10
TOP_CAUSES = 8
EXAMPLES = 3
EXAMPLE_CHARS = 300
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.I)


def cause(message: str) -> str:
    """The cause of a failure message: the message with its numbers replaced by ``#``."""
    return _NUMBER.sub("#", message)


@dataclass
class PartStats:
    """What the class did on one part."""

    assignment: str
    part: str
    title: str
    graded: int = 0
    passed: int = 0
    causes: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    usage: dict[str, list[float]] = field(default_factory=dict)


def part_stats(results: Iterable[Result]) -> list[PartStats]:
    """Per (assignment, part): graded and passed counts, failure causes with anonymised
    examples, and the usage figures the results carry."""
    stats: dict[tuple[str, str], PartStats] = {}
    for r in results:
        for p in r.parts:
            s = stats.setdefault((r.assignment, p.id), PartStats(r.assignment, p.id, p.title))
            s.graded += 1
            s.passed += p.passed
            for key, value in p.usage.items():
                s.usage.setdefault(key, []).append(float(value))
            if not p.passed:
                text = p.message.replace(r.student, "[a student]") if r.student else p.message
                key = cause(text)
                s.causes[key] += 1
                examples = s.examples.setdefault(key, [])
                if len(examples) < EXAMPLES and text not in examples:
                    examples.append(text)
    return [stats[k] for k in sorted(stats)]


def _svg_histogram(fractions: list[float]) -> str:
    counts = [0] * BINS
    for f in fractions:
        counts[min(BINS - 1, max(0, int(f * BINS)))] += 1
    top = max(counts) or 1
    w, h, bar, pad = 400, 140, 36, 16        # pad: room for the tallest bar's count
    parts = [f"<svg class='hist' role='img' width='{w}' height='{pad + h + 30}' "
             f"viewBox='0 0 {w} {pad + h + 30}' xmlns='http://www.w3.org/2000/svg'>"
             "<title>scores in tenths of the maximum</title>"]
    for i, c in enumerate(counts):
        bh = round(h * c / top)
        x, y = 4 + i * (bar + 4), pad + h - bh
        parts.append(f"<rect x='{x}' y='{y}' width='{bar}' height='{bh}'><title>"
                     f"{10 * i}-{10 * (i + 1)}%: {c}</title></rect>")
        parts.append(f"<text x='{x + bar / 2}' y='{y - 3}' text-anchor='middle'>{c}</text>")
        parts.append(f"<text x='{x + bar / 2}' y='{pad + h + 14}' text-anchor='middle'>"
                     f"{10 * i}</text>")
    parts.append(f"<text x='{w / 2}' y='{pad + h + 28}' text-anchor='middle'>% of the maximum"
                 "</text>")
    parts.append("</svg>")
    return "".join(parts)


def _distribution(table: list[Row]) -> list[str]:
    e = html.escape
    out = ["<h2 id='distribution'>Score distribution</h2>"]
    by_a: dict[str, list[Row]] = {}
    for row in table:
        by_a.setdefault(row.assignment, []).append(row)
    if not by_a:
        out.append("<p>No grades.</p>")
    for a, rows in sorted(by_a.items()):
        handed = [r for r in rows if r.submitted]
        scores = [r.score for r in handed]
        top = max((r.max_score for r in rows), default=0.0)
        out.append(f"<h3>{e(a)}</h3>")
        if scores:
            out.append(f"<p>{len(handed)} submissions, {len(rows) - len(handed)} missing; "
                       f"mean {statistics.fmean(scores):.2f} / {top:g}, median "
                       f"{statistics.median(scores):g}, lowest {min(scores):g}, highest "
                       f"{max(scores):g}.</p>")
            out.append(_svg_histogram([s / top if top else 0.0 for s in scores]))
        else:
            out.append(f"<p>No submissions; {len(rows)} missing.</p>")
    return out


def _pass_rates(stats: list[PartStats]) -> list[str]:
    e = html.escape
    out = ["<h2 id='parts'>Pass rate per part</h2>"]
    if not stats:
        return out + ["<p>No part was graded.</p>"]
    out.append("<table><tr><th>assignment</th><th>part</th><th>passed</th><th>rate</th></tr>")
    for s in stats:
        rate = s.passed / s.graded if s.graded else 0.0
        out.append(f"<tr><td>{e(s.assignment)}</td><td>{e(shown(s.title, 200))}<br><code>"
                   f"{e(s.part)}</code></td><td>{s.passed} / {s.graded}</td>"
                   f"<td><span class='bar' style='width:{100 * rate:.0f}px'></span> "
                   f"{100 * rate:.0f}%</td></tr>")
    out.append("</table>")
    return out


def _causes(stats: list[PartStats]) -> list[str]:
    e = html.escape
    out = ["<h2 id='failures'>Why parts failed</h2>",
           "<p>Messages that differ only in their numbers are one cause (# stands for a "
           "number). Examples are anonymised.</p>"]
    failing = [s for s in stats if s.causes]
    if not failing:
        return out + ["<p>No part failed.</p>"]
    for s in failing:
        out.append(f"<h3>{e(s.assignment)}: {e(shown(s.title, 200))} <code>{e(s.part)}</code>"
                   f" &mdash; {s.graded - s.passed} failed</h3>")
        out.append("<table><tr><th>students</th><th>cause</th><th>examples</th></tr>")
        for key, count in s.causes.most_common(TOP_CAUSES):
            examples = "".join(f"<li>{e(shown(x, EXAMPLE_CHARS))}</li>"
                               for x in s.examples.get(key, []))
            out.append(f"<tr><td>{count}</td><td>{e(shown(key, EXAMPLE_CHARS))}</td>"
                       f"<td><ul>{examples}</ul></td></tr>")
        more = len(s.causes) - TOP_CAUSES
        out.append("</table>" + (f"<p>{more} rarer causes not shown.</p>" if more > 0 else ""))
    return out


USAGE_LABELS = (("seconds", "wall-clock s"), ("cpu_seconds", "CPU s"),
                ("memory_peak", "peak memory"))


def _usage(stats: list[PartStats]) -> list[str]:
    e = html.escape
    out = ["<h2 id='usage'>Time and resources per part</h2>"]
    measured = [s for s in stats if s.usage]
    if not measured:
        return out + ["<p>Not recorded: the results of this run carry no time or resource "
                      "figures.</p>"]
    head = "".join(f"<th>{label} (median / max)</th>" for _, label in USAGE_LABELS)
    out.append(f"<table><tr><th>assignment</th><th>part</th><th>measured</th>{head}</tr>")
    for s in measured:
        cells = []
        for key, _ in USAGE_LABELS:
            values = s.usage.get(key, [])
            if not values:
                cells.append("<td>&ndash;</td>")
                continue
            fmt = human_size if key == "memory_peak" else (lambda v: f"{v:.2f}")
            cells.append(f"<td>{fmt(statistics.median(values))} / {fmt(max(values))}</td>")
        n = max(len(v) for v in s.usage.values())
        out.append(f"<tr><td>{e(s.assignment)}</td><td><code>{e(s.part)}</code></td><td>{n}</td>"
                   f"{''.join(cells)}</tr>")
    out.append("</table>")
    return out


def _pairs(pairs: list[Pair]) -> list[str]:
    e = html.escape
    out = ["<h2 id='similar'>Unusually similar answers</h2>",
           f"<p>Pairs of answer cells at least {THRESHOLD:.0%} alike (after renaming variables "
           "and removing the starting stub) and clearly more alike than the class's usual pair. "
           "For review only: nothing here changes a score.</p>"]
    if not pairs:
        return out + ["<p>No pair was flagged.</p>"]
    out.append("<table><tr><th>assignment</th><th>cell</th><th>students</th><th>similarity"
               "</th><th>usual for this cell</th></tr>")
    for p in pairs:
        out.append(f"<tr class='pair'><td>{e(p.assignment)}</td><td><code>{e(p.cell)}</code></td>"
                   f"<td>{e(p.first)}, {e(p.second)}</td><td>{p.score:.2f}</td>"
                   f"<td>{p.baseline:.2f}</td></tr>")
    out.append("</table>")
    return out


def report_html(table: list[Row], results: Iterable[Result], pairs: list[Pair],
                title: str = "Class report") -> str:
    stats = part_stats(results)
    body = (_distribution(table) + _pass_rates(stats) + _causes(stats) + _usage(stats)
            + _pairs(pairs))
    return Template(TEMPLATE.read_text()).substitute(title=html.escape(title),
                                                     body="\n".join(body))


def write_report(path: str, table: list[Row], results: Iterable[Result], pairs: list[Pair],
                 title: str = "Class report") -> None:
    files.atomic_write(path, report_html(table, results, pairs, title), mode=files.output_mode())
