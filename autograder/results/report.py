"""What a grading run leaves beside grades.csv (the feedback pages are
:mod:`autograder.results.feedback`'s):

* ``grades.csv``: nbgrader's ``export`` columns (assignment, duedate, timestamp, student_id,
  last_name, first_name, email, raw_score, late_submission_penalty, score, max_score) plus
  ``reason``; one row per (student, assignment) found; written atomically.
* a class summary (text) and ``<stem>_histogram.png`` (score distribution per assignment).

Every text cell and label is student-shaped (folder names, reasons quoting what a submission
held) and passes through :func:`autograder.text.shown` (names through
:func:`~autograder.text.display_name`, plot labels through :func:`~autograder.text.plot_label`,
drawn without TeX), so no control character reaches the files and no name is read as markup.
"""

from __future__ import annotations

import csv
import io
import statistics

from ..files import atomic_write
from ..grading.jobs import Result
from ..text import MAX_TEXT, display_name, plot_label, shown

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
        w.writerow([display_name(r.assignment), shown(duedates.get(r.assignment) or ""),
                    shown(r.timestamp or ""), display_name(r.student),
                    *(shown(info.get(k) or "", 200) for k in ("last_name", "first_name",
                                                                "email")),
                    _fmt(r.score), _fmt(0.0), _fmt(r.score), _fmt(r.max_score),
                    shown(r.reason, 4 * MAX_TEXT)])
    atomic_write(path, buf.getvalue())


def summary(results: list[Result]) -> str:
    lines = ["class summary:"]
    by_a: dict[str, list[Result]] = {}
    for r in results:
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
        frac = r.score / r.max_score if r.max_score else 0.0
        by_a.setdefault(r.assignment, []).append(100 * frac)
    with matplotlib.rc_context({"text.usetex": False}):
        fig, ax = plt.subplots(figsize=(7, 4))
        try:
            if by_a:
                names = sorted(by_a)
                ax.hist([by_a[n] for n in names],
                        bins=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100.01],
                        label=[plot_label(display_name(n)) for n in names])
                ax.legend(fontsize=8)
            ax.set_xlabel("score (% of max)")
            ax.set_ylabel("submissions")
            ax.set_title("Score distribution")
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100)
        finally:
            plt.close(fig)
    atomic_write(path, buf.getvalue())
