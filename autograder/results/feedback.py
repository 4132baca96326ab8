"""The student's feedback page, ``feedback/<student>.html``: per assignment, each part's title,
points and message.

It is made from the verdicts (the :class:`~autograder.grading.jobs.Result`), never from the
notebook, so hidden-test code cannot leak into it; every string from a submission is cleaned
(:func:`autograder.text.shown`: no control or bidi character) and HTML-escaped. The page's
frame is the template ``templates/feedback.html`` (``$student`` and ``$body`` are filled in).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from string import Template

from .. import files
from ..grading.jobs import Result
from ..text import MAX_TEXT, is_safe_name, shown

TEMPLATE = Path(__file__).with_name("templates") / "feedback.html"


def feedback_html(student: str, results: list[Result]) -> str:
    def e(text: str) -> str:
        return html.escape(shown(text, 4 * MAX_TEXT))

    rows = []
    for r in sorted(results, key=lambda r: r.assignment):
        rows.append(f"<h2>{e(r.assignment)}: {r.score:g} / {r.max_score:g}</h2>")
        if r.reason:
            rows.append(f"<p class='reason'><b>Note:</b> {e(r.reason)}</p>")
        if r.parts:
            rows.append("<table><tr><th>part</th><th>points</th><th>result</th></tr>")
            for p in r.parts:
                mark = "passed" if p.passed else "not passed"
                rows.append(f"<tr class='{'ok' if p.passed else 'fail'}'>"
                            f"<td>{e(p.title)}<br><code>{e(p.id)}</code></td>"
                            f"<td>{p.score:g} / {p.points:g}</td>"
                            f"<td>{mark}: {e(p.message)}</td></tr>")
            rows.append("</table>")
    return Template(TEMPLATE.read_text()).substitute(student=e(student), body="\n".join(rows))


def write_feedback(folder: str, results: list[Result]) -> tuple[list[str], list[str]]:
    """Write one page per student; returns (paths written, problems). Folder names that are
    not valid student ids get no page (their row in grades.csv says why)."""
    by_student: dict[str, list[Result]] = {}
    for r in results:
        if is_safe_name(r.student):
            by_student.setdefault(r.student, []).append(r)
    paths, problems = [], []
    for student, rs in sorted(by_student.items()):
        path = os.path.join(folder, f"{student}.html")
        try:
            files.atomic_write(path, feedback_html(student, rs))
            paths.append(path)
        except Exception as exc:  # one page must not cost the others
            problems.append(f"feedback for {student} not written: {exc}")
    return paths, problems
