"""The score an LMS import gets for one gradebook row."""

from __future__ import annotations

import datetime as dt

from ..deadlines import aware
from ..gradebook import GradeRow


def number(x: float) -> str:
    """A score as LMS exports write it (at most two decimals, no trailing zeros)."""
    return f"{round(float(x), 2):g}"


def lms_score(row: GradeRow, now: dt.datetime) -> str:
    """The gradebook's score after the late penalty; for missing work 0 once the student's due
    date has passed (or where there is none), and "" before it, so the LMS keeps what it has
    rather than showing a 0 for work not yet due."""
    if row.submitted:
        return number(row.score)
    due = aware(row.student_due)
    return "" if due is not None and due > now else "0"
