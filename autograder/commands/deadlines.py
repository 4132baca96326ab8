"""``python -m autograder deadlines TERM.toml [--course DIR] [--db URL]``: install the term's
due dates, extensions and late policy into the course.

The term file (:mod:`autograder.results.term`) is checked against the course's assignments;
then the gradebook gets each assignment's due date (``Assignment.duedate``, which nbgrader's
own tools read too) and each graded submission its extension
(``SubmittedAssignment.extension``); every graded submission's late penalty is recomputed with
the policy (:func:`autograder.results.gradebook.apply_late_penalties`); and the checked term is
kept in the course folder (``.autograder_term.json``), where ``grade``, ``export`` and
``feedback`` read it. Running it again after changing the term file (a moved due date, a new
extension, another policy) changes the grades already in the gradebook accordingly: no
regrading is needed. A table of the due dates, in the course's timezone and in UTC, is printed.

Exit status: 0 when installed; 1 when the gradebook could not be written (nothing is
installed then); 2 for a term file that cannot be used (the message names the entry and why:
an unknown timezone, a local time the clock skips or shows twice, an unknown assignment, a bad
extension) or a missing course folder.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ..assignments import DEFAULT_REGISTRY, load_registry
from ..results import term
from ..results.deadlines import local_text, zone
from ..results.gradebook import apply_term, course_gradebook


@dataclass(frozen=True)
class DeadlinesOptions:
    """What the ``deadlines`` command was asked to do."""

    term: str
    course: str = "_build/course"
    db: str | None = None
    registry: str = DEFAULT_REGISTRY


def describe(t: term.Term) -> str:
    """The due dates, extensions and policy as a table for the terminal."""
    utc = zone("UTC")
    counts: dict[str, int] = {}
    for _, a in t.extensions:
        counts[a] = counts.get(a, 0) + 1
    lines = [f"timezone {t.timezone}; late policy: {t.policy.describe()}"]
    for name, a in sorted(t.assignments.items()):
        due = (f"due {local_text(a.due, t.tz)} ({local_text(a.due, utc)})" if a.due
               else "no due date")
        ext = f", {counts[name]} extensions" if counts.get(name) else ""
        lms = f", Canvas id {a.canvas_id}" if a.canvas_id else ""
        lines.append(f"  {name}: {due}{ext}{lms}")
    return "\n".join(lines)


def run(options: DeadlinesOptions) -> int:
    """The ``deadlines`` command (see the module docstring); its exit status."""
    course_dir = os.path.abspath(options.course)
    if not os.path.isdir(course_dir):
        print(f"deadlines: course folder {course_dir} does not exist; run 'python -m "
              "autograder release' first", file=sys.stderr)
        return 2
    try:
        checked = term.load(options.term, set(load_registry(options.registry)))
    except term.TermError as exc:
        print(f"deadlines: {exc}", file=sys.stderr)
        return 2
    try:
        with course_gradebook(course_dir, options.db) as gb:
            apply_term(gb, checked)
    except Exception as exc:  # a database that cannot be reached or written
        print(f"deadlines: the gradebook could not be updated: {exc}", file=sys.stderr)
        return 1
    path = term.install(checked, course_dir)
    print(describe(checked))
    print(f"installed in {path}; the gradebook's due dates, extensions and late penalties are "
          "set")
    return 0
