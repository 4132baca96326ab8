"""What a grading run leaves beside grades.csv (the feedback pages are
:mod:`autograder.results.feedback`'s, the class report :mod:`autograder.results.class_report`'s):

* ``grades.csv``, read from the gradebook (:func:`autograder.results.gradebook.read_grades`), so
  a score changed by hand in formgrader and the late penalty appear in it: nbgrader's
  ``export`` columns (assignment, duedate, timestamp, student_id, last_name, first_name, email,
  raw_score, late_submission_penalty, score, max_score) plus ``late_by`` (seconds past the
  student's due date; empty where the due date or the submission time is unknown) and
  ``reason``. Every student of the gradebook (and roster) has a row per assignment, missing work
  included (score 0, reason "no submission"); a handed-in folder the gradebook cannot hold (an
  unknown assignment, a folder name that is not a student id) still gets its row from the
  grader's result. Written atomically, readable by the instructor's group.
* a class summary (text) naming the students with missing work and with work that could not
  be graded, and what this run regraded; ``<stem>_histogram.png`` (score distribution per
  assignment).

Rows of submissions an interrupted run did not grade (``Result.interrupted``) say so in their
reason and score 0; the summary leaves them out of its figures and says the grades are partial,
and the histogram leaves them out.

Every text cell and label is student-shaped (folder names, reasons quoting what a submission
held, names from a roster) and passes through :func:`autograder.text.shown` (names through
:func:`~autograder.text.display_name`, plot labels through :func:`~autograder.text.plot_label`,
drawn without TeX), so no control character reaches the files and no name is read as markup.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from .. import files
from ..grading.jobs import Result
from ..text import MAX_TEXT, display_name, plot_label, shown
from .deadlines import aware, human_duration
from .gradebook import GradeRow
from .term import Term

COLUMNS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
           "email", "raw_score", "late_submission_penalty", "score", "max_score", "late_by",
           "reason"]
NO_SUBMISSION = "no submission"
MAX_NAMES = 30


@dataclass(frozen=True)
class Row:
    """One line of grades.csv."""

    assignment: str
    student: str
    duedate: str = ""
    timestamp: str = ""
    last_name: str = ""
    first_name: str = ""
    email: str = ""
    raw_score: float = 0.0
    penalty: float = 0.0
    score: float = 0.0
    max_score: float = 0.0
    late_by: str = ""
    reason: str = ""
    submitted: bool = True
    due_later: bool = False         # missing work whose due date has not come yet
    interrupted: bool = False       # not graded: the run was interrupted before it was

    def cells(self) -> list[str]:
        return [self.assignment, self.duedate, self.timestamp, self.student, self.last_name,
                self.first_name, self.email, _fmt(self.raw_score), _fmt(self.penalty),
                _fmt(self.score), _fmt(self.max_score), self.late_by, self.reason]


def _fmt(x: float) -> str:
    return repr(float(x))


def _time(when: dt.datetime | None) -> str:
    return "" if when is None else str(when)   # as nbgrader's export writes it


def _due_later(g: GradeRow, now: dt.datetime) -> bool:
    due = aware(g.student_due)
    return not g.submitted and due is not None and due > now


def _notes(g: GradeRow, result: Result | None, term: Term | None, now: dt.datetime) -> list[str]:
    """The reason of a gradebook row: the grader's, then what the gradebook says."""
    notes = [result.reason] if result is not None and result.reason else []
    if not g.submitted and result is None:
        notes.append(f"{NO_SUBMISSION} (due {aware(g.student_due):%Y-%m-%d %H:%M} UTC, not yet)"
                     if _due_later(g, now) else NO_SUBMISSION)
    elif g.submitted and result is None:
        notes.append("graded in an earlier run; not in this submissions folder")
    if g.submitted and g.student_due is not None and g.timestamp is None:
        notes.append("no submission time (no timestamp.txt), so lateness was not checked")
    if g.seconds_late > 0:
        late = f"late by {human_duration(g.seconds_late)}"
        if g.penalty and term is not None:
            late += f": late penalty {g.penalty:g} points ({term.policy.describe()})"
        elif g.penalty:
            late += f": late penalty {g.penalty:g} points"
        notes.append(late)
    if result is not None and g.submitted and abs(g.raw_score - result.score) > 1e-9:
        notes.append(f"score changed in the gradebook (the autograder gave {result.score:g})")
    elif g.adjusted:
        notes.append("score adjusted by hand in the gradebook")
    return notes


def rows(grades: Iterable[GradeRow], results: Iterable[Result], term: Term | None = None,
         now: dt.datetime | None = None) -> list[Row]:
    """grades.csv's rows: one per gradebook row (the grader's result, where there is one, adds
    its reason) and one per result the gradebook does not hold; sorted by assignment, then
    student."""
    now = now or dt.datetime.now(dt.UTC)
    by_ident = {r.ident: r for r in results}
    out, seen = [], set()
    for g in grades:
        seen.add(g.ident)
        result = by_ident.get(g.ident)
        if result is not None and result.interrupted:
            continue                    # a row of its own below: not graded this run
        known = g.student_due is not None and g.timestamp is not None
        out.append(Row(
            display_name(g.assignment), display_name(g.student), _time(g.duedate),
            _time(g.timestamp), shown(g.last_name), shown(g.first_name), shown(g.email),
            g.raw_score, g.penalty, g.score, g.max_score, _fmt(g.seconds_late) if known else "",
            shown("; ".join(_notes(g, result, term, now)), 4 * MAX_TEXT),
            g.submitted or result is not None, result is None and _due_later(g, now)))
    for ident, r in by_ident.items():
        if ident not in seen or r.interrupted:
            score = 0.0 if r.interrupted else r.score
            out.append(Row(display_name(r.assignment), display_name(r.student),
                           timestamp=r.timestamp or "", raw_score=score, score=score,
                           max_score=r.max_score, reason=shown(r.reason),
                           interrupted=r.interrupted))
    return sorted(out, key=lambda row: (row.assignment, row.student))


def write_csv(path: str, table: list[Row]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in table:
        w.writerow(row.cells())
    files.atomic_write(path, buf.getvalue(), mode=files.output_mode())


def _names(names: list[str]) -> str:
    """The first :data:`MAX_NAMES` of ``names``, shown (:func:`autograder.text.shown`)."""
    more = f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else ""
    return ", ".join(shown(n, 200) for n in names[:MAX_NAMES]) + more


def summary(table: list[Row], not_graded: Iterable[tuple[str, str, str]] = (),
            regraded: Iterable[str] = ()) -> str:
    """The class summary: per assignment the submissions' scores and who handed nothing in;
    then the work that could not be graded (``(student, assignment, why)``) and what this run
    regraded."""
    cut = sum(row.interrupted for row in table)
    lines = ["class summary:" if not cut else
             f"class summary (partial: {cut} of {len(table)} rows not graded, the run was "
             "interrupted):"]
    by_a: dict[str, list[Row]] = {}
    for row in table:
        if not row.interrupted:
            by_a.setdefault(row.assignment, []).append(row)
    for a, rs in sorted(by_a.items()):
        handed = [r for r in rs if r.submitted]
        missing = [r.student for r in rs if not r.submitted and not r.due_later]
        later = sum(r.due_later for r in rs)
        if handed:
            scores = [r.score for r in handed]
            top = max(r.max_score for r in rs)
            lines.append(
                f"  {display_name(a)}: {len(handed)} submissions, "
                f"mean {statistics.fmean(scores):.2f} / {top:g}, "
                f"median {statistics.median(scores):g}, min {min(scores):g}, "
                f"max {max(scores):g}, full marks {sum(s >= top > 0 for s in scores)}, "
                f"with a reason {sum(bool(r.reason) for r in handed)}")
        else:
            lines.append(f"  {display_name(a)}: no submissions")
        if missing:
            lines.append(f"    no submission from {len(missing)}: {_names(missing)}")
        if later:
            lines.append(f"    not handed in yet, not due yet: {later}")
    problems = [f"{display_name(s)}/{display_name(a)} ({shown(why, 120)})"
                for s, a, why in not_graded]
    if problems:
        lines.append(f"  handed in but not gradable ({len(problems)}): {_names(problems)}")
    done = list(regraded)
    if done:
        lines.append(f"  regraded this run ({len(done)}): {_names(done)}")
    return "\n".join(lines)


def histogram(path: str, table: list[Row]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_a: dict[str, list[float]] = {}
    for r in table:
        if r.submitted and not r.interrupted:
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
    files.atomic_write(path, buf.getvalue(), mode=files.output_mode())
