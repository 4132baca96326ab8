"""The term file: due dates, extensions, policy and LMS ids, checked and installed."""

import datetime as dt
import os

import pytest

from autograder.results import term
from autograder.results.deadlines import PenaltyKind, Per

KNOWN = {"dropout", "batchnorm"}
TERM = """
timezone = "America/New_York"
[late_policy]
kind = "percent"
percent = 10
per = "day"
cap = 50
[assignments.dropout]
due = "2026-11-01 23:59"
canvas_id = "48213"
title = "A1: Dropout"
[assignments.batchnorm]
[extensions]
file = "ext.csv"
"""


def write(tmp_path, text=TERM, ext="student_id,assignment,due,extra\nalice,dropout,,2d\n"
          "bob,dropout,2026-11-08 12:00,\n"):
    (tmp_path / "ext.csv").write_text(ext)
    path = tmp_path / "term.toml"
    path.write_text(text)
    return str(path)


def test_a_term_file_is_read_in_its_timezone(tmp_path):
    """Due dates, extensions (as a new date or a length of time), policy and Canvas ids are
    read; the due date after the DST change is 23:59 EST = 04:59 UTC."""
    t = term.load(write(tmp_path), KNOWN)
    a = t.assignments["dropout"]
    assert a.due == dt.datetime(2026, 11, 2, 4, 59, tzinfo=dt.UTC)
    assert (a.canvas_id, a.lms_title) == ("48213", "A1: Dropout")
    assert t.assignments["batchnorm"].due is None
    assert t.extension("alice", "dropout") == dt.timedelta(days=2)
    assert t.extensions[("bob", "dropout")] == dt.datetime(2026, 11, 8, 17, 0, tzinfo=dt.UTC)
    assert t.extension("carol", "dropout") is None
    assert (t.policy.kind, t.policy.per, t.policy.cap) == (PenaltyKind.PERCENT, Per.DAY, 50)


def test_installed_term_reads_back_the_same(tmp_path):
    """The copy kept in the course folder is the same term, readable by the group only."""
    t = term.load(write(tmp_path), KNOWN)
    course = tmp_path / "course"
    course.mkdir()
    path = term.install(t, str(course))
    assert term.installed(str(course)) == t
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert term.installed(str(tmp_path / "none")) is None


@pytest.mark.parametrize("text, why", [
    ('timezone = "UTC"\n[assignments.quiz]\ndue = "2026-11-01 10:00"\n', "unknown assignment"),
    ('[assignments.dropout]\ndue = "2026-11-01 10:00"\n', "timezone is missing"),
    ('timezone = "Europe/Berlin"\n[assignments.dropout]\ndue = "2026-03-29 02:30"\n',
     r"\[assignments.dropout\] due: .*does not exist"),
    ('timezone = "UTC"\n[assignments.dropout]\ncanvas_id = "abc"\n', "canvas_id must be"),
    ('timezone = "UTC"\ndeadline = 3\n', "unknown keys"),
    ('timezone = "UTC"\n[assignments\n', "cannot be read as TOML"),
])
def test_mistakes_in_the_term_file_are_named(tmp_path, text, why):
    """Each mistake names the file, the entry and the problem."""
    with pytest.raises(term.TermError, match=why):
        term.load(write(tmp_path, text), KNOWN)


@pytest.mark.parametrize("ext, why", [
    ("student_id,assignment,extra\nalice,batchnorm,1d\n", "has no due date"),
    ("student_id,assignment,extra\nal ice,dropout,1d\n", "not a valid student id"),
    ("student_id,assignment,due,extra\nalice,dropout,2026-11-05 10:00,1d\n", "not both"),
    ("student_id,assignment,extra\nalice,dropout,1d\nalice,dropout,2d\n", "a second extension"),
    ("student,assignment,extra\n", "needs the columns"),
])
def test_mistakes_in_the_extensions_file_name_the_line(tmp_path, ext, why):
    """An extension for an assignment without a due date, a bad id, an ambiguous or repeated
    row, or missing columns are refused with the line."""
    with pytest.raises(term.TermError, match=why):
        term.load(write(tmp_path, ext=ext), KNOWN)
