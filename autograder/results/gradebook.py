"""Write grading results into nbgrader's gradebook and its course folder layout.

Uses :class:`nbgrader.api.Gradebook` (SQLite by default, any SQLAlchemy URL such as
PostgreSQL with ``--db``). Each submission is written in its own transaction, and writing the
same result twice leaves the same rows, so a rerun after a crash simply writes again. Several
runs may write one PostgreSQL gradebook at the same time (:mod:`autograder.results.dblock`). The
submitted and autograded notebooks are copied (atomically) to ``submitted/<student>/<a>/`` and
``autograded/<student>/<a>/`` so that formgrader and ``nbgrader export`` work on the course.
"""

from __future__ import annotations

import contextlib
import logging
import os

import nbformat
from nbgrader.api import Gradebook, InvalidEntry, MissingEntry
from sqlalchemy.exc import IntegrityError, OperationalError

from .. import files
from ..build import cells
from ..grading.course import CourseAssignment
from ..grading.jobs import Job, Result
from ..grading.notebook import MAX_NOTEBOOK_BYTES
from ..text import cap, display_name, is_safe_name
from .dblock import WRITE_ATTEMPTS, GradebookLock, engine_url


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


def write_result(gb: Gradebook, result: Result) -> None:
    """Store one submission's grades (one transaction for the scores)."""
    student, assignment = result.student, result.assignment
    scores_by_cell = result.scores_by_part()
    gb.update_or_create_student(student)
    kwargs = {"timestamp": result.timestamp} if result.timestamp else {}
    sub = gb.update_or_create_submission(assignment, student, **kwargs)
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
                 course: dict[str, CourseAssignment], state_root: str, log: logging.Logger):
        self.lock = GradebookLock(db_url)
        try:
            with self.lock.held():
                self.gb = Gradebook(engine_url(db_url), course_id=course_id)
                self.course_dir, self.course, self.state_root, self.log = (
                    course_dir, course, state_root, log)
                self.students: dict[str, dict] = {}
                self.duedates: dict[str, str | None] = {}
                for name, ca in course.items():
                    ensure_assignment(self.gb, name, ca.source)
                    a = self.gb.find_assignment(name)
                    self.duedates[name] = str(a.duedate) if a.duedate else None
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
                          display_name(result.assignment), why)
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
        write_result(self.gb, result)
        st = self.gb.find_student(s)
        self.students[s] = {"last_name": st.last_name, "first_name": st.first_name,
                            "email": st.email}
        nb_name = self.course[a].notebook_name
        if job.notebook:
            dest = os.path.join(self.course_dir, "submitted", s, a, nb_name)
            if os.path.abspath(job.notebook) != os.path.abspath(dest):
                try:
                    files.copy_regular(job.notebook, dest, MAX_NOTEBOOK_BYTES)
                except files.UnsafeFile as exc:
                    self.log.info("not copied into submitted/: %s/%s: %s", s, a, exc)
            if result.timestamp:
                files.atomic_write(os.path.join(os.path.dirname(dest), "timestamp.txt"),
                                   result.timestamp)
        if result.autograded:
            src = os.path.join(self.state_root, a, result.autograded)
            if os.path.exists(src):
                files.copy_regular(src, os.path.join(self.course_dir, "autograded", s, a,
                                                     nb_name))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.gb.close()
        self.lock.close()
