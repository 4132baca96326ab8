"""The score an LMS import gets for a gradebook row."""

import datetime as dt

from autograder.results.gradebook import GradeRow
from autograder.results.lms.grades import lms_score

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_scores_after_penalty_and_missing_work_by_due_date():
    """A submission exports its score after the penalty; missing work is 0 after the due date
    (or without one) and empty before it, so the LMS keeps what it has."""
    handed = GradeRow("toy", "a", submitted=True, raw_score=4.256, penalty=1.0)
    assert lms_score(handed, NOW) == "3.26"
    past, future = dt.datetime(2026, 10, 20), dt.datetime(2026, 12, 1)
    assert lms_score(GradeRow("toy", "b", student_due=past), NOW) == "0"
    assert lms_score(GradeRow("toy", "b"), NOW) == "0"
    assert lms_score(GradeRow("toy", "b", student_due=future), NOW) == ""
