"""What a grading run leaves beside grades.csv: the CSV, feedback pages, summary, histogram.

* ``grades.csv``: nbgrader's ``export`` columns (assignment, duedate, timestamp, student_id,
  last_name, first_name, email, raw_score, late_submission_penalty, score, max_score) plus
  ``reason``; one row per (student, assignment) found; written atomically.
* ``feedback/<student>.html``: per assignment, each part's title, points and message. It is
  generated from the verdicts, never from the notebook, so hidden-test code cannot leak into
  it; every string from a submission is HTML-escaped.
* a class summary (text) and ``<stem>_histogram.png`` (score distribution per assignment).
"""

from __future__ import annotations

import csv
import html
import io
import os
import statistics

from .untrusted import display_name, is_safe_name
from .worker import atomic_write

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
           "email", "raw_score", "late_submission_penalty", "score", "max_score", "reason"]


def _fmt(x: float) -> str:
    return repr(float(x))


def write_csv(path: str, results: list[dict], students: dict[str, dict] | None = None,
              duedates: dict[str, str | None] | None = None) -> None:
    students, duedates = students or {}, duedates or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sorted(results, key=lambda r: (r["assignment"], r["student"])):
        info = students.get(r["student"], {})
        w.writerow([display_name(r["assignment"]), duedates.get(r["assignment"]) or "",
                    r.get("timestamp") or "", display_name(r["student"]),
                    info.get("last_name") or "", info.get("first_name") or "",
                    info.get("email") or "", _fmt(r["score"]), _fmt(0.0), _fmt(r["score"]),
                    _fmt(r["max_score"]), r.get("reason", "")])
    atomic_write(path, buf.getvalue())


def feedback_html(student: str, results: list[dict]) -> str:
    e = html.escape
    rows = []
    for r in sorted(results, key=lambda r: r["assignment"]):
        rows.append(f"<h2>{e(r['assignment'])}: {r['score']:g} / {r['max_score']:g}</h2>")
        if r.get("reason"):
            rows.append(f"<p class='reason'><b>Note:</b> {e(r['reason'])}</p>")
        if r["parts"]:
            rows.append("<table><tr><th>part</th><th>points</th><th>result</th></tr>")
            for p in r["parts"]:
                mark = "passed" if p["score"] >= p["points"] else "not passed"
                rows.append(f"<tr class='{'ok' if mark == 'passed' else 'fail'}'>"
                            f"<td>{e(p['title'])}<br><code>{e(p['id'])}</code></td>"
                            f"<td>{p['score']:g} / {p['points']:g}</td>"
                            f"<td>{mark}: {e(p['message'])}</td></tr>")
            rows.append("</table>")
    body = "\n".join(rows)
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>Feedback for {e(student)}</title><style>"
            "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
            "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;"
            "padding:.4em;text-align:left;vertical-align:top}tr.ok td{background:#eefbea}"
            "tr.fail td{background:#fdecea}</style></head><body>"
            f"<h1>Feedback for {e(student)}</h1>\n{body}\n</body></html>\n")


def write_feedback(folder: str, results: list[dict]) -> tuple[list[str], list[str]]:
    """Write one page per student; returns (paths written, problems). Folder names that are
    not valid student ids get no page (their row in grades.csv says why)."""
    by_student: dict[str, list[dict]] = {}
    for r in results:
        if is_safe_name(r["student"]):
            by_student.setdefault(r["student"], []).append(r)
    paths, problems = [], []
    for student, rs in sorted(by_student.items()):
        path = os.path.join(folder, f"{student}.html")
        try:
            atomic_write(path, feedback_html(student, rs))
            paths.append(path)
        except Exception as exc:  # one page must not cost the others
            problems.append(f"feedback for {student} not written: {exc}")
    return paths, problems


def summary(results: list[dict]) -> str:
    lines = ["class summary:"]
    by_a: dict[str, list[dict]] = {}
    for r in results:
        by_a.setdefault(r["assignment"], []).append(r)
    for a, rs in sorted(by_a.items()):
        scores = [r["score"] for r in rs]
        top = max(r["max_score"] for r in rs)
        lines.append(
            f"  {display_name(a)}: {len(rs)} submissions, "
            f"mean {statistics.fmean(scores):.2f} / {top:g}, "
            f"median {statistics.median(scores):g}, min {min(scores):g}, max {max(scores):g}, "
            f"full marks {sum(s >= top > 0 for s in scores)}, "
            f"with a reason {sum(bool(r.get('reason')) for r in rs)}")
    return "\n".join(lines)


def histogram(path: str, results: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_a: dict[str, list[float]] = {}
    for r in results:
        frac = r["score"] / r["max_score"] if r["max_score"] else 0.0
        by_a.setdefault(r["assignment"], []).append(100 * frac)
    fig, ax = plt.subplots(figsize=(7, 4))
    if by_a:
        names = sorted(by_a)
        ax.hist([by_a[n] for n in names], bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01],
                label=names)
        ax.legend(fontsize=8)
    ax.set_xlabel("score (% of max)")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
