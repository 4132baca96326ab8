"""``python -m autograder feedback [--course DIR] [--assignment A] [--student S] [--out DIR]``:
the grader's own feedback pages where nbgrader's ``release_feedback`` takes them.

For every graded submission in the gradebook (of the chosen assignments and students) the
page of :mod:`autograder.results.feedback` is written to
``<course>/feedback/<student>/<assignment>/<notebook>.html``, with the submission's
``timestamp.txt`` and ``submission_secret.txt`` beside it, as nbgrader's ``generate_feedback``
would leave them: ``nbgrader release_feedback`` then hands them out through the exchange. The
page is made from the gradebook (scores changed by hand in formgrader, the late penalty) and
the grader's kept verdicts (the state folder), never from the notebook, so unlike nbgrader's
``generate_feedback`` it shows no hidden-test code. Use this command instead of
``generate_feedback``.

A submission that did not come through nbgrader's exchange (collected from an LMS) has no
``submission_secret.txt``: its page is not placed (``release_feedback`` would stop at it) and
the summary says so. ``--out DIR`` also writes one page per student, all assignments, to
``DIR/<student>.html`` (as ``grade`` does beside grades.csv), e.g. to upload to the LMS.

Exit status: 0 when every page was written (submissions without a secret are reported, not an
error); 1 when the gradebook could not be read or a page not written; 2 for a missing course
folder or an installed term that cannot be read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from ..grading import state
from ..results import feedback, term
from ..results.gradebook import apply_term, course_gradebook, read_grades


@dataclass(frozen=True)
class FeedbackOptions:
    """What the ``feedback`` command was asked to do."""

    course: str = "_build/course"
    db: str | None = None
    assignments: tuple[str, ...] = ()
    students: tuple[str, ...] = ()
    out: str | None = None


def run(options: FeedbackOptions) -> int:
    """The ``feedback`` command (see the module docstring); its exit status."""
    course_dir = os.path.abspath(options.course)
    if not os.path.isdir(course_dir):
        print(f"feedback: course folder {course_dir} does not exist", file=sys.stderr)
        return 2
    try:
        installed = term.installed(course_dir)
    except term.TermError as exc:
        print(f"feedback: {exc}", file=sys.stderr)
        return 2
    try:
        with course_gradebook(course_dir, options.db) as gb:
            apply_term(gb, installed)
            notebooks = {a.name: [nb.name for nb in a.notebooks] for a in gb.assignments
                         if not options.assignments or a.name in options.assignments}
            grades = read_grades(gb, notebooks)
    except Exception as exc:  # a database that cannot be reached
        print(f"feedback: the gradebook could not be read: {exc}", file=sys.stderr)
        return 1
    state_root = os.path.join(course_dir, state.STATE_DIR)
    placed, skipped, entries = 0, [], []
    for g in grades:
        if not g.submitted or (options.students and g.student not in options.students):
            continue
        kept = state.read_kept(state.state_file(state_root, g.student, g.assignment))
        entry = feedback.Entry(g.assignment, kept, g)
        entries.append((g.student, entry))
        for nb in notebooks[g.assignment]:
            try:
                why = feedback.place_for_nbgrader(course_dir, g.student, entry, f"{nb}.ipynb",
                                                  installed)
            except OSError as exc:
                print(f"feedback: {g.student}/{g.assignment}: not written: {exc}",
                      file=sys.stderr)
                return 1
            if why:
                skipped.append(why)
            else:
                placed += 1
    print(f"feedback: {placed} pages placed under {os.path.join(course_dir, 'feedback')}/ for "
          "nbgrader's release_feedback")
    if skipped:
        print(f"feedback: {len(skipped)} submissions not placed there:")
        for why in skipped:
            print(f"  {why}")
    if options.out:
        paths, problems = feedback.write_feedback(options.out, entries, installed)
        print(f"feedback: {len(paths)} student pages in {options.out}/")
        if problems:
            for problem in problems:
                print(f"feedback: {problem}", file=sys.stderr)
            return 1
    return 0
