"""The student's feedback page: per assignment the score the gradebook holds (a score changed by
hand included), the late penalty with the submission time and due date, and each part's title,
points and message and, for a part scored by several checks, one row per check saying whether
it passed, its points and what was wrong.

It is made from the verdicts (the :class:`~autograder.grading.jobs.Result`) and the gradebook
(:class:`~autograder.results.gradebook.GradeRow`), never from the notebook, so hidden-test code
cannot leak into it; every string from a submission is cleaned (:func:`autograder.text.shown`:
no control or bidi character) and HTML-escaped. The page's frame is the template
``templates/feedback.html`` (``$student`` and ``$body`` are filled in).

Two places take these pages: ``feedback/<student>.html`` beside grades.csv (all of a student's
assignments, written by ``grade``), and nbgrader's own feedback folder,
``<course>/feedback/<student>/<assignment>/<notebook>.html`` with the submission's
``timestamp.txt`` and ``submission_secret.txt`` beside it, which is where nbgrader's
``release_feedback`` takes them from (:func:`place_for_nbgrader`, used by ``python -m
autograder feedback``). nbgrader's own ``generate_feedback`` renders the autograded notebook,
whose test cells carry the grader's harness calls; this page shows none of them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .. import files
from ..grading.jobs import CheckResult, Result
from ..text import MAX_TEXT, is_safe_name, shown
from .deadlines import human_duration, local_text, zone
from .gradebook import GradeRow
from .term import Term

TEMPLATE = Path(__file__).with_name("templates") / "feedback.html"
NBGRADER_MODE = 0o644        # nbgrader's generate_feedback writes its pages so
MAX_SIDE_FILE = 4096


def _e(text: str) -> str:
    """Student-shaped text for the page: cleaned (:func:`autograder.text.shown`), escaped."""
    return html.escape(shown(text, 4 * MAX_TEXT))


def check_row(check: CheckResult) -> str:
    """One check of a part: passed or not, its points, and what was wrong."""
    e = _e
    mark = "&#10003;" if check.passed else "&#10007;"
    return (f"<tr class='check {'ok' if check.passed else 'fail'}'>"
            f"<td>{mark} {e(check.name)}</td><td>{check.score:g} / {check.points:g}</td>"
            f"<td>{e(check.message) if not check.passed else 'right'}</td></tr>")


@dataclass(frozen=True)
class Entry:
    """One assignment of a student: the grader's result and the gradebook's row (either may
    be missing)."""

    assignment: str
    result: Result | None = None
    grade: GradeRow | None = None


def _late(g: GradeRow, term: Term | None) -> str:
    tz = term.tz if term is not None else zone("UTC")
    if g.student_due is None:
        return ""
    if g.timestamp is None:
        return (f"<p class='late'>Due {local_text(g.student_due, tz)}. The time of your "
                "submission is not known, so lateness was not checked.</p>")
    when = f"Handed in {local_text(g.timestamp, tz)}"
    if g.seconds_late <= 0:
        return f"<p class='ontime'>{when}, due {local_text(g.student_due, tz)}: on time.</p>"
    text = (f"{when}, {human_duration(g.seconds_late)} after the due date "
            f"({local_text(g.student_due, tz)})")
    if g.penalty:
        policy = f" ({term.policy.describe()})" if term is not None else ""
        text += (f": late penalty &minus;{g.penalty:g} points{html.escape(policy)}; "
                 f"score before the penalty {g.raw_score:g}")
    elif term is not None:
        text += f"; {html.escape(term.policy.describe())}"
    return f"<p class='late'>{text}.</p>"


def _section(entry: Entry, term: Term | None) -> list[str]:
    e, r, g = _e, entry.result, entry.grade
    score, top = (g.score, g.max_score) if g is not None and g.submitted else (
        (r.score, r.max_score) if r is not None else (0.0, g.max_score if g else 0.0))
    out = [f"<h2>{e(entry.assignment)}: {score:g} / {top:g}</h2>"]
    if g is not None and g.submitted:
        out.append(_late(g, term))
    elif r is None:
        out.append("<p class='reason'>No submission.</p>")
    if r is not None and r.reason:
        out.append(f"<p class='reason'><b>Note:</b> {e(r.reason)}</p>")
    if r is not None and r.parts:
        cells = g.parts if g is not None and g.submitted else {}
        out.append("<table><tr><th>part</th><th>points</th><th>result</th></tr>")
        for p in r.parts:
            got = cells.get(p.id, p.score)
            changed = abs(got - p.score) > 1e-9
            note = (f"<br><i>score changed by your instructor (the autograder gave "
                    f"{p.score:g})</i>" if changed else "")
            out.append(f"<tr class='{'ok' if got >= p.points else 'fail'}'>"
                       f"<td>{e(p.title)}<br><code>{e(p.id)}</code></td>"
                       f"<td>{got:g} / {p.points:g}</td>"
                       f"<td>{e(p.message)}{note}</td></tr>")
            if len(p.checks) > 1:
                out += [check_row(c) for c in p.checks]
        out.append("</table>")
    return out


def feedback_html(student: str, entries: Iterable[Entry], term: Term | None = None) -> str:
    body = []
    for entry in sorted(entries, key=lambda x: x.assignment):
        body += _section(entry, term)
    return Template(TEMPLATE.read_text()).substitute(student=_e(student),
                                                     body="\n".join(body))


def write_feedback(folder: str, entries: Iterable[tuple[str, Entry]],
                   term: Term | None = None) -> tuple[list[str], list[str]]:
    """Write one page per student from ``(student, entry)`` pairs; returns (paths written,
    problems). Folder names that are not valid student ids get no page (their row in
    grades.csv says why)."""
    by_student: dict[str, list[Entry]] = {}
    for student, entry in entries:
        if is_safe_name(student):
            by_student.setdefault(student, []).append(entry)
    paths, problems = [], []
    for student, es in sorted(by_student.items()):
        path = os.path.join(folder, f"{student}.html")
        try:
            files.atomic_write(path, feedback_html(student, es, term), mode=files.output_mode())
            paths.append(path)
        except Exception as exc:  # one page must not cost the others
            problems.append(f"feedback for {student} not written: {exc}")
    return paths, problems


def place_for_nbgrader(course_dir: str, student: str, entry: Entry, notebook: str,
                       term: Term | None = None) -> str:
    """Write the page of one submission where nbgrader's ``release_feedback`` looks for it,
    with the submission's ``timestamp.txt`` and ``submission_secret.txt`` (copied from
    ``submitted/``) beside it; "" when done, else why not. A submission that did not come
    through nbgrader's exchange has no ``submission_secret.txt``: its page is not placed
    (``release_feedback`` would stop at it), and the reason says so."""
    a = entry.assignment
    src = os.path.join(course_dir, "submitted", student, a)
    side = {}
    for name in ("submission_secret.txt", "timestamp.txt"):
        try:
            side[name] = files.read_regular(os.path.join(src, name), MAX_SIDE_FILE)
        except files.UnsafeFile as exc:
            if name == "submission_secret.txt":
                return (f"{student}/{a}: no usable submission_secret.txt in {src} ({exc}); "
                        "it did not come through nbgrader's exchange, so release_feedback "
                        "cannot deliver it")
            side[name] = (entry.grade.timestamp.isoformat(sep=" ") if entry.grade and
                          entry.grade.timestamp else "").encode()
    dest = os.path.join(course_dir, "feedback", student, a)
    stem = os.path.splitext(notebook)[0]
    files.atomic_write(os.path.join(dest, f"{stem}.html"), feedback_html(student, [entry], term),
                       mode=NBGRADER_MODE)
    for name, data in side.items():
        files.atomic_write(os.path.join(dest, name), data, mode=NBGRADER_MODE)
    return ""
