"""grades.csv, the class summary and the histogram with student-shaped text in every field."""

import csv
import io

from autograder.grading.jobs import PartResult, Result
from autograder.results import report
from tests.support.hostile import FORGED_LINE, HOSTILE_TEXT, MATHTEXT_NAME
from tests.support.shown import forbidden


def _results():
    return [Result(HOSTILE_TEXT, "toy", "k", HOSTILE_TEXT, 5.0, 2.0, HOSTILE_TEXT,
                   [PartResult("p", HOSTILE_TEXT, 2.0, 2.0, HOSTILE_TEXT)]),
            Result("bob", MATHTEXT_NAME, "k", None, 0.0, 0.0, "unknown assignment"),
            Result("carol", HOSTILE_TEXT, "k", None, 0.0, 0.0, "")]


def test_grades_csv_holds_no_control_character_and_no_forged_line(tmp_path):
    """Every cell (names, timestamp, reason, the gradebook's name fields, due date) is shown
    text: no control or bidi character, no line that starts with the forged log line, every
    cell bounded; the file parses back to one row per result."""
    path = tmp_path / "grades.csv"
    info = {"last_name": HOSTILE_TEXT, "first_name": "\x1b]0;x\x07", "email": "\u202e@x"}
    report.write_csv(str(path), _results(), {HOSTILE_TEXT: info}, {"toy": HOSTILE_TEXT})
    text = path.read_text()
    assert forbidden(text) == []
    assert not any(line.startswith(FORGED_LINE[:10]) for line in text.splitlines())
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3 and all(len(v) < 10_000 for r in rows for v in r.values())
    assert rows[1]["assignment"] == MATHTEXT_NAME


def test_summary_holds_no_control_character():
    """The class summary printed on the terminal and logged shows names escaped."""
    text = report.summary(_results())
    assert forbidden(text) == [] and "\\x1b[2J" in text


def test_the_histogram_is_drawn_whatever_the_names(tmp_path):
    """Assignment names made of mathtext, control characters and 50,000 characters are drawn
    as text: the histogram is written (no mathtext error)."""
    path = tmp_path / "h.png"
    report.histogram(str(path), _results())
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
