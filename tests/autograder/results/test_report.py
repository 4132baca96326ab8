"""grades.csv's rows from the gradebook and the grader's results, and the class summary."""

import csv
import datetime as dt
import io
import os

from autograder.grading.jobs import PartResult, Result
from autograder.results import report
from autograder.results.deadlines import LatePolicy, PenaltyKind
from autograder.results.gradebook import GradeRow
from autograder.results.term import Term
from tests.support.hostile import FORGED_LINE, HOSTILE_TEXT, MATHTEXT_NAME
from tests.support.shown import forbidden

DUE = dt.datetime(2026, 10, 20, 21, 59)
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
TERM = Term("Europe/Berlin", LatePolicy(PenaltyKind.ZERO))


def row(student, **kw):
    base = dict(assignment="toy", student=student, max_score=5.0, duedate=DUE, student_due=DUE)
    return GradeRow(**{**base, **kw})


def result(student, score, reason="", assignment="toy"):
    return Result(student, assignment, "k", None, 5.0, score, reason)


def test_missing_work_has_a_row_with_score_zero_and_a_reason():
    """A student without a submission gets 0 and "no submission"; before the due date the
    reason says it is not due yet, and the summary counts it apart from missing work."""
    [missing] = report.rows([row("bob")], [], TERM, NOW)
    assert (missing.score, missing.reason, missing.submitted) == (0.0, "no submission", False)
    future = dt.datetime(2027, 1, 1)
    [early] = report.rows([row("bob", duedate=future, student_due=future)], [], TERM, NOW)
    assert early.reason == "no submission (due 2027-01-01 00:00 UTC, not yet)"
    assert early.due_later and not missing.due_later
    assert "not handed in yet, not due yet: 1" in report.summary([early])
    assert "no submission from" not in report.summary([early])


def test_late_work_shows_the_penalty_and_late_by():
    """A late submission has late_by in seconds and a reason naming the lateness, penalty and
    policy; the score is the gradebook's after the penalty."""
    [late] = report.rows([row("alice", submitted=True, timestamp=DUE + dt.timedelta(hours=2),
                              raw_score=4.0, penalty=4.0, seconds_late=7200.0)],
                         [result("alice", 4.0)], TERM, NOW)
    assert (late.score, late.penalty, late.late_by) == (0.0, 4.0, "7200.0")
    assert late.reason == "late by 2 h: late penalty 4 points (a late submission scores 0)"


def test_an_unknown_submission_time_is_said_where_a_due_date_makes_it_matter():
    """Without timestamp.txt late_by is empty and the reason says lateness was not checked;
    without a due date nothing is said."""
    [unknown] = report.rows([row("carol", submitted=True, raw_score=5.0)],
                            [result("carol", 5.0)], TERM, NOW)
    assert unknown.late_by == "" and "lateness was not checked" in unknown.reason
    [free] = report.rows([row("carol", submitted=True, raw_score=5.0, duedate=None,
                              student_due=None)], [result("carol", 5.0)], TERM, NOW)
    assert (free.late_by, free.reason) == ("", "")


def test_a_score_changed_in_the_gradebook_wins_and_is_noted():
    """The gradebook's score is exported; the reason keeps the autograder's."""
    [changed] = report.rows([row("dave", submitted=True, raw_score=4.5, adjusted=True,
                                 timestamp=DUE)], [result("dave", 2.0)], TERM, NOW)
    assert changed.score == 4.5
    assert changed.reason == "score changed in the gradebook (the autograder gave 2)"


def test_a_result_the_gradebook_cannot_hold_still_gets_its_row():
    """An unknown assignment's folder (never in the gradebook) keeps its row and reason."""
    table = report.rows([], [result("erin", 0.0, "unknown assignment 'quiz'", "quiz")],
                        TERM, NOW)
    assert [(r.assignment, r.student, r.reason) for r in table] == [
        ("quiz", "erin", "unknown assignment 'quiz'")]


def test_control_characters_in_reasons_are_escaped():
    """A reason with a terminal escape or a newline cannot forge a line of grades.csv."""
    [r] = report.rows([row("eve", submitted=True, timestamp=DUE)],
                      [result("eve", 0.0, "boom\x1b[2J\nfake,row")], TERM, NOW)
    assert "\x1b" not in r.reason and "\n" not in r.reason and "\\x1b" in r.reason


def test_grades_csv_has_the_export_columns_and_is_group_readable(tmp_path):
    """The CSV has nbgrader's export columns plus late_by and reason, mode 0640."""
    path = tmp_path / "grades.csv"
    report.write_csv(str(path), report.rows([row("bob")], [], TERM, NOW))
    rows = list(csv.reader(path.open()))
    assert rows[0] == report.COLUMNS and rows[0][-2:] == ["late_by", "reason"]
    assert rows[1][3] == "bob" and rows[1][9] == "0.0"
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_the_summary_names_missing_ungradable_and_regraded_work():
    """The summary lists who handed nothing in, what could not be graded and why, and what
    this run regraded."""
    table = report.rows([row("alice", submitted=True, raw_score=5.0, timestamp=DUE),
                         row("bob")], [result("alice", 5.0)], TERM, NOW)
    text = report.summary(table, [("carol", "toy", "misnamed notebook (hw.ipynb)")],
                          ["alice/toy (toy-sum)"])
    assert "toy: 1 submissions, mean 5.00 / 5" in text
    assert "no submission from 1: bob" in text
    assert "handed in but not gradable (1): carol/toy (misnamed notebook (hw.ipynb))" in text
    assert "regraded this run (1): alice/toy (toy-sum)" in text


def _result(student, score, interrupted=False):
    r = Result(student, "toy", "k", None, 5.0, score, "not graded: the run was interrupted"
               if interrupted else "")
    r.interrupted = r.retry = interrupted
    return r


def test_a_partial_run_says_so_and_leaves_ungraded_rows_out_of_its_figures():
    """Submissions an interrupted run did not grade get a row scoring 0 with the reason, are
    counted as not graded rather than as zeros, and the summary says the grades are partial."""
    table = report.rows([row("c", submitted=True, raw_score=4.0, timestamp=DUE)],
                        [_result("a", 5.0), _result("b", 3.0), _result("c", 0.0, True)],
                        None, NOW)
    cut = [r for r in table if r.interrupted]
    assert [(r.student, r.score, r.reason) for r in cut] == [
        ("c", 0.0, "not graded: the run was interrupted")]
    text = report.summary(table)
    assert text.splitlines()[0] == ("class summary (partial: 1 of 3 rows not graded, the run "
                                    "was interrupted):")
    assert "toy: 2 submissions, mean 4.00 / 5" in text and "min 3" in text
    assert report.summary(report.rows([], [_result("a", 5.0)], None, NOW)).splitlines()[0] \
        == "class summary:"


def _hostile_table():
    """Rows with student-shaped text in every field: a gradebook row of a hostile student id
    and names (from a roster), a result of an assignment folder named in mathtext, one of a
    hostile assignment name."""
    results = [Result(HOSTILE_TEXT, "toy", "k", HOSTILE_TEXT, 5.0, 2.0, HOSTILE_TEXT,
                      [PartResult("p", HOSTILE_TEXT, 2.0, 2.0, HOSTILE_TEXT)]),
               Result("bob", MATHTEXT_NAME, "k", None, 0.0, 0.0, "unknown assignment"),
               Result("carol", HOSTILE_TEXT, "k", None, 0.0, 0.0, "")]
    grades = [row(HOSTILE_TEXT, submitted=True, raw_score=2.0, last_name=HOSTILE_TEXT,
                  first_name="\x1b]0;x\x07", email="\u202e@x")]
    return report.rows(grades, results, TERM, NOW)


def test_grades_csv_holds_no_control_character_and_no_forged_line(tmp_path):
    """Every cell (names, timestamp, reason, the gradebook's name fields, due date) is shown
    text: no control or bidi character, no line that starts with the forged log line, every
    cell bounded; the file parses back to one row per student and assignment."""
    path = tmp_path / "grades.csv"
    report.write_csv(str(path), _hostile_table())
    text = path.read_text()
    assert forbidden(text) == []
    assert not any(line.startswith(FORGED_LINE[:10]) for line in text.splitlines())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and all(len(v) < 10_000 for r in rows for v in r.values())
    assert MATHTEXT_NAME in [r["assignment"] for r in rows]


def test_summary_holds_no_control_character():
    """The class summary printed on the terminal and logged shows names escaped."""
    table = _hostile_table()
    text = report.summary(table, [(HOSTILE_TEXT, "toy", HOSTILE_TEXT)], [HOSTILE_TEXT])
    assert forbidden(text) == [] and "\\x1b[2J" in text


def test_the_histogram_is_drawn_whatever_the_names(tmp_path):
    """Assignment names made of mathtext, control characters and 50,000 characters are drawn
    as text: the histogram is written (no mathtext error)."""
    path = tmp_path / "h.png"
    report.histogram(str(path), _hostile_table())
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
