"""Write grading results into nbgrader's gradebook and its course folder layout.

Uses :class:`nbgrader.api.Gradebook` (SQLite by default, any SQLAlchemy URL such as
PostgreSQL with ``--db``). Each submission is written in its own transaction, and writing the
same result twice leaves the same rows, so a rerun after a crash simply writes again. The
submitted and autograded notebooks are copied (atomically) to ``submitted/<student>/<a>/`` and
``autograded/<student>/<a>/`` so that formgrader and ``nbgrader export`` work on the course.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from . import reconstruct, safefs


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
        gid = reconstruct.grade_id(cell)
        if gid is None:
            continue
        meta = reconstruct.nbgrader_meta(cell)
        if reconstruct.is_grade(cell):
            gb.update_or_create_grade_cell(gid, nb_name, name, max_score=float(meta["points"]),
                                           cell_type=cell.cell_type)
        if reconstruct.is_solution(cell):
            gb.update_or_create_solution_cell(gid, nb_name, name)


def write_result(gb: Gradebook, result: dict, scores_by_cell: dict[str, float]) -> None:
    """Store one submission's grades (one transaction for the scores)."""
    student, assignment = result["student"], result["assignment"]
    gb.update_or_create_student(student)
    kwargs = {"timestamp": result["timestamp"]} if result.get("timestamp") else {}
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


def place_file(src: str, dest: str, limit: int = 2**31) -> None:
    """Copy the regular file ``src`` (no link followed, at most ``limit`` bytes, else
    :class:`autograder.safefs.UnsafeFile`) to ``dest`` atomically (temporary file + rename)."""
    data = safefs.read_regular(src, limit)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
