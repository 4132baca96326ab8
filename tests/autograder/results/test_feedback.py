"""The feedback page with student-shaped text in every field."""

from autograder.grading.jobs import PartResult, Result
from autograder.results.feedback import feedback_html
from tests.support.hostile import HOSTILE_TEXT
from tests.support.shown import forbidden


def test_feedback_shows_student_text_escaped_and_bounded():
    """Reason, part titles, ids and messages holding control and bidi characters, markup and
    50,000 characters appear escaped and cut; no tag of theirs survives."""
    r = Result("alice", HOSTILE_TEXT, "k", None, 5.0, 2.0, HOSTILE_TEXT + "<script>x</script>",
               [PartResult(HOSTILE_TEXT, HOSTILE_TEXT, 2.0, 2.0, "<b>" + HOSTILE_TEXT)])
    page = feedback_html("alice", [r])
    assert forbidden(page) == [] and "<script>x" not in page and "<b>\\x1b" not in page
    assert "\\x1b[2J\\x07\\r\\n" in page and len(page) < 60_000
