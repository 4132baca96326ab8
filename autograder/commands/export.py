"""``python -m autograder export canvas --roster R --out canvas.csv`` and ``export moodle
--worksheet W.csv --assignment A --out graded.csv``: the grades, read from the gradebook, as
the LMS's import file.

The gradebook is the truth: the installed term's due dates and late penalties are set in it
first (so a score changed by hand in formgrader gets the penalty it earns), then each
student's score after the penalty is read (:func:`autograder.results.lms.grades.lms_score`):
missing work is 0 once the student's due date has passed (or where there is none) and left
empty before it, so the LMS keeps what it has.

* ``canvas``: a CSV that Canvas's gradebook import accepts
  (:mod:`autograder.results.lms.canvas`): one row per roster student (its ``lms_id`` is
  Canvas's ``ID``), one column per assignment titled ``<title> (<Canvas id>)`` from the term
  file (without a Canvas id the title alone: Canvas matches it by title or creates a new
  assignment), and the Points Possible row. ``--assignment`` (repeatable) chooses the columns;
  the default is every assignment with a submission in the gradebook.
* ``moodle``: the assignment's grading worksheet as downloaded from Moodle with its ``Grade``
  column filled in (:mod:`autograder.results.lms.moodle`); a participant who matches no
  student keeps the worksheet's grade and is reported.

Students of the gradebook who are not in the roster (canvas), roster students without a Canvas
id, assignments without one, and unmatched participants (moodle) are reported, never dropped
silently. The file is written atomically, readable by the instructor's group.

Exit status: 0 when written; 1 when the gradebook could not be read or the file not written;
2 for bad arguments (a roster or worksheet that cannot be used, an assignment the gradebook
does not know, a missing course folder).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from dataclasses import dataclass

from .. import files
from ..results import term
from ..results.gradebook import (
    GradeRow,
    apply_term,
    course_gradebook,
    read_grades,
)
from ..results.lms import canvas, moodle
from ..results.lms.grades import lms_score
from ..results.lms.roster import RosterError, read_roster
from ..text import shown


@dataclass(frozen=True)
class ExportOptions:
    """What the ``export`` command was asked to do."""

    lms: str
    out: str
    roster: str | None = None
    assignments: tuple[str, ...] = ()
    worksheet: str | None = None
    course: str = "_build/course"
    db: str | None = None


class ExportError(ValueError):
    """Bad input to the export (exit status 2)."""


def read_rows(options: ExportOptions, extra_students=()) -> tuple[list[GradeRow], list[str],
                                                                   term.Term | None]:
    """(the gradebook's rows of the chosen assignments, those assignments, the term), with the
    term's deadlines and penalties set first."""
    course_dir = os.path.abspath(options.course)
    if not os.path.isdir(course_dir):
        raise ExportError(f"course folder {course_dir} does not exist")
    installed = term.installed(course_dir)
    with course_gradebook(course_dir, options.db) as gb:
        apply_term(gb, installed)
        known = {a.name: len(a.submissions) for a in gb.assignments}
        unknown = [a for a in options.assignments if a not in known]
        if unknown:
            raise ExportError(f"the gradebook has no assignment {', '.join(unknown)} (it has: "
                              f"{', '.join(sorted(known))})")
        names = list(options.assignments) or sorted(a for a, n in known.items() if n)
        return read_grades(gb, names, extra_students), names, installed


def _canvas(options: ExportOptions, now: dt.datetime) -> tuple[str, list[str]]:
    if not options.roster:
        raise ExportError("export canvas needs --roster (Canvas's ID of each student)")
    roster = read_roster(options.roster)
    grades, names, installed = read_rows(options, roster.by_id)
    entries = installed.assignments if installed is not None else {}
    columns = []
    for a in names:
        top = max((g.max_score for g in grades if g.assignment == a), default=0.0)
        entry = entries.get(a)
        columns.append(canvas.Column(entry.lms_title if entry else a,
                                     entry.canvas_id if entry else "", top))
    by_ident = {g.ident: g for g in grades}

    def cell(student: str, i: int) -> str:
        row = by_ident.get((student, names[i]))
        return lms_score(row, now) if row is not None else ""

    notes = []
    outside = sorted({g.student for g in grades if g.student not in roster.by_id and g.submitted})
    if outside:
        notes.append(f"{len(outside)} students with submissions in the gradebook are not in the "
                     f"roster and are left out: {', '.join(outside)}")
    no_id = [s.student_id for s in roster.students
             if not (s.lms_id or s.sis_user_id or s.sis_login_id)]
    if no_id:
        notes.append(f"{len(no_id)} roster students have no Canvas ID or SIS id; Canvas will "
                     f"match them by name: {', '.join(no_id)}")
    by_title = [c.title for c in columns if not c.canvas_id]
    if by_title:
        notes.append(f"no Canvas id for {', '.join(by_title)} (set canvas_id in the term file): "
                     "Canvas matches these columns by title, or creates new assignments")
    return canvas.gradebook_csv(roster, columns, cell), notes


def _moodle(options: ExportOptions, now: dt.datetime) -> tuple[str, list[str]]:
    if not options.worksheet or len(options.assignments) != 1:
        raise ExportError("export moodle needs --worksheet (the assignment's grading worksheet "
                          "from Moodle) and exactly one --assignment")
    sheet = moodle.read_worksheet(options.worksheet)
    roster = read_roster(options.roster) if options.roster else None
    grades, names, _ = read_rows(options, roster.by_id if roster else ())
    by_student = {g.student: g for g in grades if g.assignment == names[0]}
    matcher = moodle.Matcher(roster, sheet)
    values, notes = {}, []
    for pid, row in sorted(sheet.by_participant.items()):
        student, why = matcher.student_of(pid, row.get(moodle.NAME, ""))
        if student is None or student not in by_student:
            notes.append(f"participant {pid} keeps the worksheet's grade: "
                         + (why or f"student {student} is not in the gradebook"))
            continue
        values[pid] = lms_score(by_student[student], now)
    notes.insert(0, f"{len(values)} of {len(sheet.by_participant)} participants graded")
    return moodle.write_worksheet(sheet, values), notes


def run(options: ExportOptions) -> int:
    """The ``export`` command (see the module docstring); its exit status."""
    now = dt.datetime.now(dt.UTC)
    try:
        text, notes = (_canvas if options.lms == "canvas" else _moodle)(options, now)
    except (ExportError, RosterError, term.TermError, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the gradebook (a database) could not be read
        print(f"export: the gradebook could not be read: {exc}", file=sys.stderr)
        return 1
    try:
        files.atomic_write(options.out, text, mode=files.output_mode())
    except OSError as exc:
        print(f"export: cannot write {options.out}: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"export {options.lms}: {shown(note, 4000)}")
    print(f"wrote {options.out}")
    return 0
