"""The course folder as the grader sees it: for each assignment, its nbgrader source notebook,
its release notebook and the helper files released beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CourseAssignment:
    """Absolute paths of one assignment's files in the course folder."""

    name: str
    source: str                                   # source/<name>/<notebook>.ipynb
    release: str | None                           # release/<name>/<notebook>.ipynb
    helpers: dict[str, str] = field(default_factory=dict)  # released file name -> path
    max_score: float = 0.0

    @property
    def notebook_name(self) -> str:
        return os.path.basename(self.source)


def course_assignment(course: str, name: str, max_score: float) -> CourseAssignment | None:
    """Assignment ``name`` of the course folder ``course``, or None when it has no source
    notebook there (not released yet)."""
    src_dir = os.path.join(course, "source", name)
    if not os.path.isdir(src_dir):
        return None
    nbs = sorted(f for f in os.listdir(src_dir) if f.endswith(".ipynb"))
    if not nbs:
        return None
    nb = f"{name}.ipynb" if f"{name}.ipynb" in nbs else nbs[0]
    rel_dir = os.path.join(course, "release", name)
    release = os.path.join(rel_dir, nb) if os.path.exists(os.path.join(rel_dir, nb)) else None
    helpers = {}
    if os.path.isdir(rel_dir):
        for f in sorted(os.listdir(rel_dir)):
            path = os.path.join(rel_dir, f)
            if os.path.isfile(path) and not f.endswith(".ipynb") and not f.startswith("."):
                helpers[f] = os.path.abspath(path)
    return CourseAssignment(name, os.path.abspath(os.path.join(src_dir, nb)),
                            release and os.path.abspath(release), helpers, max_score)
