"""The student's feedback page, and its place in nbgrader's feedback folder."""

import datetime as dt
import hashlib
import os
import subprocess
import sys

from autograder.grading.jobs import CheckResult, PartResult, Result
from autograder.results import feedback
from autograder.results.deadlines import LatePolicy, PenaltyKind, Per
from autograder.results.gradebook import GradeRow
from autograder.results.term import Term
from tests.support.hostile import HOSTILE_TEXT
from tests.support.shown import forbidden

DUE = dt.datetime(2026, 10, 20, 21, 59)       # naive UTC, as nbgrader keeps it
TERM = Term("Europe/Berlin", LatePolicy(PenaltyKind.PERCENT, percent=10, per=Per.DAY, cap=50))


def entry(**grade):
    parts = [PartResult("toy-scale", "Scaling", 2.0, 2.0, "passed all 3 hidden cases"),
             PartResult("toy-sum", "Column sums", 3.0, 0.0, "case 1 of 3: s <b>differs</b>")]
    res = Result("alice", "toy", "k", None, 5.0, 2.0, "", parts)
    base = dict(assignment="toy", student="alice", max_score=5.0, duedate=DUE, student_due=DUE,
                submitted=True, raw_score=2.0, parts={"toy-scale": 2.0, "toy-sum": 0.0})
    return feedback.Entry("toy", res, GradeRow(**{**base, **grade}))


def test_the_page_shows_the_late_penalty_in_the_course_s_timezone():
    """A late submission's page names the submission time and due date in the course's
    timezone, how late it was, the penalty and the policy, and the score after it."""
    page = feedback.feedback_html("alice", [entry(
        timestamp=DUE + dt.timedelta(hours=25), seconds_late=90000.0, penalty=0.4)], TERM)
    assert "toy: 1.6 / 5" in page
    assert "Handed in 2026-10-22 00:59 CEST, 1 d 1 h after the due date (2026-10-20 23:59 CEST)"\
        in page
    assert "late penalty &minus;0.4 points (10% of the score per started day late, at most " \
           "50%); score before the penalty 2" in page


def test_the_page_shows_a_score_changed_by_the_instructor():
    """A part whose score was changed by hand shows the new score and says so; student text
    is escaped."""
    page = feedback.feedback_html("alice", [entry(timestamp=DUE, raw_score=4.0, adjusted=True,
                                                  parts={"toy-scale": 2.0, "toy-sum": 2.0})])
    assert "2 / 3" in page and "score changed by your instructor (the autograder gave 0)" in page
    assert "<b>differs</b>" not in page and "&lt;b&gt;differs&lt;/b&gt;" in page
    assert "on time" in page


def _course(tmp_path, secret=True):
    course = tmp_path / "course"
    sub = course / "submitted" / "alice" / "toy"
    sub.mkdir(parents=True)
    (sub / "timestamp.txt").write_text("2026-10-20 20:00:00.000000 UTC")
    if secret:
        (sub / "submission_secret.txt").write_text("s3cret")
    return course


def test_a_page_goes_where_nbgrader_expects_it(tmp_path):
    """feedback/<student>/<assignment>/<notebook>.html with timestamp.txt and
    submission_secret.txt beside it, readable as nbgrader's generate_feedback leaves it."""
    course = _course(tmp_path)
    assert feedback.place_for_nbgrader(str(course), "alice", entry(timestamp=DUE), "toy.ipynb",
                                       TERM) == ""
    folder = course / "feedback" / "alice" / "toy"
    assert sorted(os.listdir(folder)) == ["submission_secret.txt", "timestamp.txt", "toy.html"]
    assert (folder / "submission_secret.txt").read_text() == "s3cret"
    assert os.stat(folder / "toy.html").st_mode & 0o777 == 0o644


def test_a_submission_without_a_secret_is_not_placed(tmp_path):
    """A submission that did not come through the exchange is reported, not placed (nbgrader's
    release_feedback would stop at it)."""
    course = _course(tmp_path, secret=False)
    why = feedback.place_for_nbgrader(str(course), "alice", entry(), "toy.ipynb", TERM)
    assert "submission_secret.txt" in why and not (course / "feedback").exists()


def test_nbgrader_release_feedback_hands_out_our_page(tmp_path):
    """nbgrader's own release_feedback copies the placed page into the exchange under the hash
    of the submission's secret and notebook name."""
    course = _course(tmp_path)
    feedback.place_for_nbgrader(str(course), "alice", entry(timestamp=DUE), "toy.ipynb", TERM)
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    proc = subprocess.run([exe, "release_feedback", "toy", "--course", "toycourse",
                           f"--Exchange.root={exchange}", f"--CourseDirectory.root={course}"],
                          cwd=course, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    digest = hashlib.md5(b"s3cret" + b"toy").hexdigest()
    released = exchange / "toycourse" / "feedback" / f"{digest}.html"
    assert released.read_text() == (course / "feedback" / "alice" / "toy" / "toy.html"
                                    ).read_text()
    assert "_grading_harness" not in released.read_text()


def test_a_part_scored_by_checks_shows_one_row_per_check():
    """Each check of a part gets a row: passed or not, its points and, when failed, why; a
    passed part's row shows its message without a "passed:" prefix."""
    checks = [CheckResult("running mean", 1, 1), CheckResult("running variance", 1, 0,
                                                             "wrong on every hidden case")]
    parts = [PartResult("stats", "Running statistics", 2, 1, "running variance: wrong", checks),
             PartResult("eval", "Evaluation", 1, 1, "right on all 3 hidden cases",
                        [CheckResult("hidden cases", 1, 1)])]
    page = feedback.feedback_html("ada", [feedback.Entry("bn", Result("ada", "bn", "k", None, 3,
                                                                        2, "", parts))])
    assert "<td>&#10003; running mean</td><td>1 / 1</td><td>right</td>" in page
    assert "<td>&#10007; running variance</td><td>0 / 1</td><td>wrong on every hidden case" in page
    assert "<td>right on all 3 hidden cases</td>" in page and "passed:" not in page
    assert page.count("class='check") == 2


def test_feedback_shows_student_text_escaped_and_bounded():
    """Reason, part titles, ids and messages holding control and bidi characters, markup and
    50,000 characters appear escaped and cut; no tag of theirs survives."""
    r = Result("alice", HOSTILE_TEXT, "k", None, 5.0, 2.0, HOSTILE_TEXT + "<script>x</script>",
               [PartResult(HOSTILE_TEXT, HOSTILE_TEXT, 2.0, 2.0, "<b>" + HOSTILE_TEXT)])
    page = feedback.feedback_html("alice", [feedback.Entry(r.assignment, r)])
    assert forbidden(page) == [] and "<script>x" not in page and "<b>\\x1b" not in page
    assert "\\x1b[2J\\x07\\r\\n" in page and len(page) < 60_000
