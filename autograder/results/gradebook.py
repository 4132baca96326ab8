"""nbgrader's gradebook, the truth about grades: results are written into it, due dates,
extensions and late penalties are set in it, and every grade that leaves the grader is read
back from it.

Uses :class:`nbgrader.api.Gradebook` through nbgrader's models only (SQLite by default, any
SQLAlchemy URL such as PostgreSQL with ``--db``). Several runs may write one PostgreSQL
gradebook at the same time (:mod:`autograder.results.dblock`).

* Writing (:class:`GradebookSync`): each submission in its own transaction, and writing the
  same result twice leaves the same rows, so a rerun after a crash simply writes again. Only
  ``Grade.auto_score`` is written: a score changed by hand in formgrader (``manual_score``,
  ``extra_credit``) stays, and nbgrader's ``Grade.score`` puts it first. The submitted and
  autograded notebooks are copied (atomically) to ``submitted/<student>/<a>/`` and
  ``autograded/<student>/<a>/`` so that formgrader and ``nbgrader export`` work on the course.
* Deadlines (:func:`set_deadlines`, :func:`apply_late_penalties`): ``Assignment.duedate``
  and ``SubmittedAssignment.extension`` as nbgrader's own tools read them, and each
  ``SubmittedNotebook.late_submission_penalty`` set the way nbgrader's ``AssignLatePenalties``
  sets it (reset to None; when ``SubmittedAssignment.total_seconds_late`` > 0 the policy's
  penalty, between 0 and the notebook's score). Penalties are recomputed from the current
  scores whenever grades are read out, so a score changed by hand gets the penalty it earns.
* Reading (:func:`read_grades`): one :class:`GradeRow` per student of the gradebook (and any
  other student given, e.g. from a roster) and assignment, with what nbgrader's
  ``export`` reports, missing work included.
  The autograded notebook is a hard link to the state folder's copy, so it is stored once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import nbformat
from nbgrader.api import Gradebook, InvalidEntry, MissingEntry
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import files
from ..build import cells
from ..grading.course import CourseAssignment
from ..grading.jobs import Job, Result
from ..grading.notebook import MAX_NOTEBOOK_BYTES
from ..text import cap, display_name, is_safe_name, shown
from .dblock import WRITE_ATTEMPTS, GradebookLock, engine_url
from .deadlines import LatePolicy, gradebook_time
from .term import Term


def course_settings(course: str) -> tuple[str, str]:
    """(course_id, db_url) from the course's ``nbgrader_config.py`` (nbgrader's defaults)."""
    course_id, db_url = "default_course", f"sqlite:///{os.path.abspath(course)}/gradebook.db"
    cfg = os.path.join(course, "nbgrader_config.py")
    if os.path.exists(cfg):
        from traitlets.config.loader import PyFileConfigLoader
        conf = PyFileConfigLoader(os.path.basename(cfg), path=course).load_config()
        course_id = conf.get("CourseDirectory", {}).get("course_id", None) or course_id
        db_url = conf.get("CourseDirectory", {}).get("db_url", None) or db_url
    return course_id, db_url


def ensure_assignment(gb: Gradebook, name: str, source_nb_path: str) -> None:
    """Make sure the gradebook knows the assignment, its notebook and its cells (as
    ``nbgrader generate_assignment`` records them), without touching existing entries."""
    nb_name = os.path.splitext(os.path.basename(source_nb_path))[0]
    gb.update_or_create_assignment(name)
    try:
        gb.find_notebook(nb_name, name)
        return
    except MissingEntry:
        pass
    gb.add_notebook(nb_name, name)
    nb = nbformat.read(source_nb_path, as_version=4)
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        if gid is None:
            continue
        meta = cells.nbgrader_meta(cell)
        if cells.is_grade(cell):
            gb.update_or_create_grade_cell(gid, nb_name, name, max_score=float(meta["points"]),
                                           cell_type=cell.cell_type)
        if cells.is_solution(cell):
            gb.update_or_create_solution_cell(gid, nb_name, name)


def write_result(gb: Gradebook, result: Result, extension: dt.timedelta | None = None) -> None:
    """Store one submission's grades, its submission time (None where unknown) and the
    student's extension (one transaction for the scores)."""
    student, assignment = result.student, result.assignment
    scores_by_cell = result.scores_by_part()
    gb.update_or_create_student(student)
    sub = gb.update_or_create_submission(assignment, student, timestamp=result.timestamp,
                                         extension=extension)
    try:
        for nb in sub.notebooks:
            for grade in nb.grades:
                grade.auto_score = float(scores_by_cell.get(grade.name, 0.0))
                grade.needs_manual_grade = False
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise


class GradebookSync:
    """The grade command's writer of the gradebook and of the course's ``submitted/`` and
    ``autograded/`` notebooks (in the coordinating process only, one submission at a time)."""

    def __init__(self, db_url: str, course_id: str, course_dir: str,
                 course: dict[str, CourseAssignment], state_root: str, log: logging.Logger,
                 term: Term | None = None):
        self.db_url, self.course_id = db_url, course_id
        self.course_dir, self.course, self.state_root, self.log = (
            course_dir, course, state_root, log)
        self.term = term
        self.lock = GradebookLock(db_url)
        try:
            with self.lock.held():
                self.gb = Gradebook(engine_url(db_url), course_id=course_id)
                for name, ca in course.items():
                    ensure_assignment(self.gb, name, ca.source)
        except BaseException:
            self.lock.close()
            raise

    def store(self, result: Result, job: Job) -> None:
        """:meth:`write`, and should that fail, a note in the result's reason and a mark to
        grade it again on a rerun (the run goes on)."""
        try:
            self._write_serialized(result, job)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.gb.db.rollback()
            why = cap(f"internal grader error: the result could not be stored in the course "
                      f"({type(exc).__name__}: {exc})")
            self.log.info("WARNING: %s/%s: %s", display_name(result.student),
                          display_name(result.assignment), shown(why))
            result.add_reason(why)
            result.retry = True

    def _write_serialized(self, result: Result, job: Job) -> None:
        """:meth:`write` under the writers' lock, again after a unique violation or a lost
        connection (up to :data:`WRITE_ATTEMPTS` times)."""
        for attempt in range(WRITE_ATTEMPTS):
            try:
                with self.lock.held():
                    self.write(result, job)
                return
            except (IntegrityError, InvalidEntry, OperationalError):
                with contextlib.suppress(Exception):
                    self.gb.db.rollback()
                if attempt == WRITE_ATTEMPTS - 1:
                    raise

    def write(self, result: Result, job: Job) -> None:
        a, s = result.assignment, result.student
        if a not in self.course or not is_safe_name(s):
            return
        write_result(self.gb, result, self.term.extension(s, a) if self.term else None)
        nb_name = self.course[a].notebook_name
        if job.notebook:
            dest = os.path.join(self.course_dir, "submitted", s, a, nb_name)
            stamp = os.path.join(os.path.dirname(dest), "timestamp.txt")
            if os.path.abspath(job.notebook) != os.path.abspath(dest):
                try:
                    files.copy_regular(job.notebook, dest, MAX_NOTEBOOK_BYTES)
                except files.UnsafeFile as exc:
                    self.log.info("not copied into submitted/: %s/%s: %s", s, a, shown(exc))
                if not result.timestamp and os.path.lexists(stamp):
                    os.unlink(stamp)  # an earlier submission's time, not this one's
            if result.timestamp:
                files.atomic_write(stamp, result.timestamp)
        if result.autograded:  # the state folder's copy, under a second name: stored once
            src = os.path.join(self.state_root, a, result.autograded)
            if os.path.exists(src):
                files.link_regular(src, os.path.join(self.course_dir, "autograded", s, a,
                                                     nb_name))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.gb.close()
        self.lock.close()


def open_gradebook(db_url: str, course_id: str) -> Gradebook:
    """nbgrader's gradebook at ``db_url`` (use as a context manager, or close it; a
    ``postgresql://`` URL uses psycopg 3, :func:`autograder.results.dblock.engine_url`)."""
    return Gradebook(engine_url(db_url), course_id=course_id)


def course_gradebook(course_dir: str, db: str | None = None) -> Gradebook:
    """The gradebook of the course folder ``course_dir`` as its ``nbgrader_config.py`` names
    it, or at ``db`` (``--db``)."""
    course_id, db_url = course_settings(course_dir)
    return open_gradebook(db or db_url, course_id)


def _submissions(gb: Gradebook, assignments: Iterable[str] | None = None):
    names = set(assignments) if assignments is not None else None
    for a in gb.assignments:
        if names is None or a.name in names:
            yield from a.submissions


def set_deadlines(gb: Gradebook, term: Term) -> None:
    """Write the term's due dates (``Assignment.duedate``, naive UTC as nbgrader keeps it; an
    assignment the term names without a due date gets none) and every graded submission's
    extension (``SubmittedAssignment.extension``) into the gradebook."""
    for name, entry in term.assignments.items():
        gb.update_or_create_assignment(name, duedate=gradebook_time(entry.due))
    try:
        for sub in _submissions(gb, term.assignments):
            sub.extension = term.extension(sub.student_id, sub.assignment.name)
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise


def apply_late_penalties(gb: Gradebook, policy: LatePolicy) -> None:
    """Set each submitted notebook's ``late_submission_penalty`` as nbgrader's
    ``AssignLatePenalties`` does, from the notebook's current score (one transaction)."""
    try:
        for sub in _submissions(gb):
            late = sub.total_seconds_late
            for nb in sub.notebooks:
                nb.late_submission_penalty = (policy.penalty(nb.score, late) if late > 0
                                              else None)
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise


def apply_term(gb: Gradebook, term: Term | None) -> None:
    """Bring the gradebook in line with the installed term (nothing without one): its due
    dates and extensions, then every late penalty from the current scores."""
    if term is not None:
        set_deadlines(gb, term)
        apply_late_penalties(gb, term.policy)


def add_students(gb: Gradebook, students: Iterable[dict]) -> None:
    """Add or update students (dicts with ``id`` and optionally ``first_name``,
    ``last_name``, ``email``), as ``nbgrader db student import`` does."""
    for info in students:
        fields = {k: info[k] for k in ("first_name", "last_name", "email") if info.get(k)}
        gb.update_or_create_student(info["id"], **fields)


@dataclass(frozen=True)
class GradeRow:
    """One (student, assignment) as the gradebook has it. ``duedate`` is the assignment's
    (what nbgrader's export shows), ``student_due`` includes the student's extension; times
    are naive UTC, as nbgrader keeps them. ``parts`` maps each grade cell to its score, hand
    changes included; ``adjusted`` says a cell has a manual score or extra credit."""

    assignment: str
    student: str
    last_name: str = ""
    first_name: str = ""
    email: str = ""
    duedate: dt.datetime | None = None
    student_due: dt.datetime | None = None
    timestamp: dt.datetime | None = None
    submitted: bool = False
    raw_score: float = 0.0
    penalty: float = 0.0
    max_score: float = 0.0
    seconds_late: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    adjusted: bool = False

    @property
    def ident(self) -> tuple[str, str]:
        return self.student, self.assignment

    @property
    def score(self) -> float:
        """The score after the late penalty (nbgrader's export: ``max(0, score - penalty)``)."""
        return max(0.0, self.raw_score - self.penalty)


def _row(a, student, sub) -> GradeRow:
    base = GradeRow(a.name, student.id, student.last_name or "", student.first_name or "",
                    student.email or "", a.duedate, a.duedate, max_score=float(a.max_score or 0))
    if sub is None:
        return base
    parts, adjusted = {}, False
    for nb in sub.notebooks:
        for g in nb.grades:
            parts[g.name] = float(g.score or 0.0)
            adjusted |= g.manual_score is not None or bool(g.extra_credit)
    return dataclasses.replace(
        base, student_due=sub.duedate, timestamp=sub.timestamp, submitted=True,
        raw_score=float(sub.score or 0.0), penalty=float(sub.late_submission_penalty or 0.0),
        seconds_late=float(sub.total_seconds_late or 0.0), parts=parts, adjusted=adjusted)


def read_grades(gb: Gradebook, assignments: Iterable[str],
                extra_students: Iterable[str] = ()) -> list[GradeRow]:
    """A row per assignment of ``assignments`` known to the gradebook and per student of the
    gradebook (plus ``extra_students``, who get rows of missing work where the gradebook does
    not know them), sorted by assignment, then student."""
    students = {s.id: s for s in gb.students}
    for sid in extra_students:
        if sid not in students:
            students[sid] = _Unknown(sid)
    rows = []
    for name in sorted(set(assignments)):
        try:
            a = gb.find_assignment(name)
        except MissingEntry:
            continue
        subs = {sub.student_id: sub for sub in a.submissions}
        rows += [_row(a, students[sid], subs.get(sid)) for sid in sorted(students)]
    return rows


@dataclass(frozen=True)
class _Unknown:
    """A student the gradebook does not know (only the id)."""

    id: str
    last_name: str = ""
    first_name: str = ""
    email: str = ""
