"""Find what was handed in: one :class:`~autograder.grading.jobs.Job` per (student, assignment)
folder of ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``.

Nothing is run here. A folder that cannot be graded (an unknown assignment, no notebook, a
misnamed notebook or the notebook of another assignment, a symbolic link, a folder name that is
not a valid id, a folder that cannot be read) becomes a job whose ``problem`` says why, so it
still gets its row. The submission time is read from ``timestamp.txt`` as nbgrader writes it
(:func:`read_timestamp`), never from a file's modification time. File names and what
``timestamp.txt`` held reach reasons only as :func:`autograder.text.display_name` /
:func:`~autograder.text.shown` text (no control or bidi character, bounded length).
"""

from __future__ import annotations

import os

from nbgrader.utils import parse_utc

from .. import files
from ..text import display_name, is_safe_name, shown
from .course import CourseAssignment
from .jobs import Job

MAX_TIMESTAMP_BYTES = 200


def read_timestamp(folder: str) -> tuple[str | None, str]:
    """(submission time, note): ``timestamp.txt`` as nbgrader writes it (a regular file, not
    followed if a link, at most :data:`MAX_TIMESTAMP_BYTES`), else None. A file's modification
    time is never used (a plain ``cp`` changes it): without ``timestamp.txt`` the time is
    unknown, and grades.csv says so where a due date makes it matter. A timestamp file that
    cannot be used is ignored with a note; nothing here raises."""
    ts_file = os.path.join(folder, "timestamp.txt")
    if not os.path.lexists(ts_file):
        return None, ""
    try:
        text = files.read_regular(ts_file, MAX_TIMESTAMP_BYTES).decode("utf-8").strip()
        return parse_utc(text).strftime("%Y-%m-%d %H:%M:%S.%f"), ""
    except Exception as exc:  # dateutil raises ValueError, OverflowError, TypeError, ...
        return None, f"timestamp.txt ignored, so the submission time is unknown ({shown(exc, 100)})"


def _listdir(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return None


def _find_notebook(adir: str, sdir: str, names: list[str], ca: CourseAssignment,
                   known: dict) -> tuple[str | None, str]:
    """(notebook path, problem) in one assignment folder."""
    expected = ca.notebook_name
    nbs = [f for f in names if f.endswith(".ipynb") and os.path.isfile(os.path.join(adir, f))]
    if os.path.islink(sdir) or os.path.islink(adir) or os.path.islink(
            os.path.join(adir, expected)):
        return None, "the submission is a symbolic link, not a file"
    if expected in nbs:
        return os.path.join(adir, expected), ""
    if not nbs:
        return None, f"no notebook found (expected {expected})"
    others = [n for n in nbs if n[:-6] in known]
    if others:
        return None, (f"notebook of another assignment handed in ({_names(others)}; "
                      f"expected {expected})")
    return None, f"misnamed notebook ({_names(nbs)}; expected {expected})"


def _names(names: list[str], most: int = 10) -> str:
    """File names for a reason: shown safely, at most ``most`` of them."""
    shown_names = [display_name(n) for n in names[:most]]
    return ", ".join(shown_names) + (f" and {len(names) - most} more" if len(names) > most
                                     else "")


def discover(root: str, registry: dict, course: dict[str, CourseAssignment]) -> list[Job]:
    """One job per (student, assignment) folder under ``root``, sorted by student then
    assignment: a notebook to grade or a problem to report."""
    jobs = []
    for student in sorted(os.listdir(root)):
        sdir = os.path.join(root, student)
        if not os.path.isdir(sdir) or student.startswith("."):
            continue
        assignments = _listdir(sdir)
        if assignments is None:
            jobs.append(Job(student, "?", problem="the student folder cannot be read"))
            continue
        for assignment in assignments:
            adir = os.path.join(sdir, assignment)
            if not os.path.isdir(adir) or assignment.startswith("."):
                continue
            notebook, problem, max_score = None, "", 0.0
            names = _listdir(adir)
            if not is_safe_name(student):
                problem = ("the student folder name is not a valid student id (letters, "
                           "digits and ._@+- only, at most 128 characters)")
            elif assignment not in registry:
                problem = (f"unknown assignment '{display_name(assignment)}' (known: "
                           f"{', '.join(sorted(registry))})")
            elif names is None:
                problem = "the assignment folder cannot be read"
            else:
                max_score = course[assignment].max_score
                notebook, problem = _find_notebook(adir, sdir, names, course[assignment],
                                                   registry)
            timestamp, note = read_timestamp(adir)
            jobs.append(Job(student, assignment, notebook=notebook, problem=problem,
                            max_score=max_score, timestamp=timestamp,
                            notes=(note,) if note else ()))
    return jobs
