"""What a grading run leaves beside grades.csv (the feedback pages are
:mod:`autograder.results.feedback`'s):

* ``grades.csv``: nbgrader's ``export`` columns (assignment, duedate, timestamp, student_id,
  last_name, first_name, email, raw_score, late_submission_penalty, score, max_score) plus
  ``reason``; one row per (student, assignment) found; written atomically.
* a class summary (text) and ``<stem>_histogram.png`` (score distribution per assignment).

Rows of submissions an interrupted run did not grade (``Result.interrupted``) are in grades.csv
with their reason; the summary leaves them out of its figures and says the grades are partial,
and the histogram leaves them out.
"""

from __future__ import annotations

import csv
import io
import statistics

from ..files import atomic_write
from ..grading.jobs import Result
from ..text import display_name

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
           "email", "raw_score", "late_submission_penalty", "score", "max_score", "reason"]


def _fmt(x: float) -> str:
    return repr(float(x))


def write_csv(path: str, results: list[Result], students: dict[str, dict] | None = None,
              duedates: dict[str, str | None] | None = None) -> None:
    students, duedates = students or {}, duedates or {}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in sorted(results, key=lambda r: (r.assignment, r.student)):
        info = students.get(r.student, {})
        w.writerow([display_name(r.assignment), duedates.get(r.assignment) or "",
                    r.timestamp or "", display_name(r.student),
                    info.get("last_name") or "", info.get("first_name") or "",
                    info.get("email") or "", _fmt(r.score), _fmt(0.0), _fmt(r.score),
                    _fmt(r.max_score), r.reason])
    atomic_write(path, buf.getvalue())


def summary(results: list[Result]) -> str:
    missing = sum(r.interrupted for r in results)
    lines = ["class summary:" if not missing else
             f"class summary (partial: {missing} of {len(results)} submissions not graded, "
             "the run was interrupted):"]
    by_a: dict[str, list[Result]] = {}
    for r in results:
        if not r.interrupted:
            by_a.setdefault(r.assignment, []).append(r)
    for a, rs in sorted(by_a.items()):
        scores = [r.score for r in rs]
        top = max(r.max_score for r in rs)
        lines.append(
            f"  {display_name(a)}: {len(rs)} submissions, "
            f"mean {statistics.fmean(scores):.2f} / {top:g}, "
            f"median {statistics.median(scores):g}, min {min(scores):g}, max {max(scores):g}, "
            f"full marks {sum(s >= top > 0 for s in scores)}, "
            f"with a reason {sum(bool(r.reason) for r in rs)}")
    return "\n".join(lines)


def histogram(path: str, results: list[Result]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_a: dict[str, list[float]] = {}
    for r in results:
        if r.interrupted:
            continue
        frac = r.score / r.max_score if r.max_score else 0.0
        by_a.setdefault(r.assignment, []).append(100 * frac)
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
