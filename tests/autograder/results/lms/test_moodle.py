"""Moodle's download names parsed, participants matched through the grading worksheet, and
the worksheet written back with grades."""

import csv
import datetime as dt
import io

import pytest

from autograder.results.deadlines import zone
from autograder.results.lms import moodle
from autograder.results.lms.bulk import Status
from autograder.results.lms.roster import Roster, Student
from tests.support.lms import worksheet

ROSTER = Roster([Student("alice", "Jörg", "Müller", "j.mueller@uni.example"),
                 Student("bob", "Mary", "O'Brien"), Student("carol", "Ana", "da Silva")])


@pytest.mark.parametrize("entry, pid, name, filename", [
    ("Jörg Müller_123_assignsubmission_file/toy.ipynb", "123", "Jörg Müller", "toy.ipynb"),
    ("Jörg Müller_123_assignsubmission_file_/toy.ipynb", "123", "Jörg Müller", "toy.ipynb"),
    ("Mary O'Brien_124_assignsubmission_file_toy.ipynb", "124", "Mary O'Brien", "toy.ipynb"),
    ("Ana da Silva_125_assignsubmission_file_/sub dir/my toy.ipynb", "125", "Ana da Silva",
     "my toy.ipynb"),
    ("Participant_126_assignsubmission_file_/toy.ipynb", "126", "Participant", "toy.ipynb"),
])
def test_folder_and_flat_entries_are_parsed(entry, pid, name, filename):
    """Folders per participant (Moodle 4.1 on, and 3.1 to 4.0 with a trailing underscore), the
    older flat names, sub-folders, names with spaces and accents, and blind marking's
    "Participant"."""
    u = moodle.parse(entry)
    assert (u.lms_user, u.name, u.filename, u.status) == (pid, name, filename, None)


def test_online_text_and_foreign_entries_are_set_aside():
    """Online text and names not in Moodle's format get a status and a note."""
    assert moodle.parse("Jörg Müller_123_assignsubmission_onlinetext_/onlinetext.html"
                        ).status is Status.TEXT
    assert moodle.parse("notes.txt").status is Status.UNKNOWN


def test_participants_are_matched_by_email_then_by_name(tmp_path):
    """The worksheet's email finds alice; bob has no email and is found by full name; carol's
    worksheet name is last-first; an unknown participant is reported; without a roster the
    email is the student id."""
    sheet = moodle.read_worksheet(worksheet(tmp_path / "w.csv", [
        {"Identifier": "Participant 123", "Full name": "Jörg Müller",
         "Email address": "J.Mueller@uni.example"},
        {"Identifier": "Participant 124", "Full name": "Mary  O'Brien"},
        {"Identifier": "Participant 125", "Full name": "da Silva Ana"},
        {"Identifier": "Participant 127", "Full name": "Nobody Known"}]))
    match = moodle.Matcher(ROSTER, sheet)
    assert [match.student_of(p, "")[0] for p in ("123", "124", "125")] == [
        "alice", "bob", "carol"]
    student, why = match.student_of("127", "")
    assert student is None and "Nobody Known" in why
    assert moodle.Matcher(None, sheet).student_of("123", "")[0] == "J.Mueller@uni.example"


def test_submission_times_are_read_in_the_given_timezone(tmp_path):
    """"Last modified (submission)" is a local time without a zone: read in --timezone, across
    a DST change; a time the clock skips is an error naming the participant."""
    sheet = moodle.read_worksheet(worksheet(tmp_path / "w.csv", [
        {"Identifier": "Participant 123", "Full name": "Jörg Müller",
         "Last modified (submission)": "Sunday, 25 October 2026, 11:30 PM"},
        {"Identifier": "Participant 124", "Full name": "Mary O'Brien",
         "Last modified (submission)": "Sunday, 29 March 2026, 2:30 AM"}]))
    match = moodle.Matcher(ROSTER, sheet, zone("Europe/Berlin"))
    upload = match.with_time(moodle.parse("Jörg Müller_123_assignsubmission_file_/toy.ipynb"))
    assert upload.submitted_at == dt.datetime(2026, 10, 25, 22, 30, tzinfo=dt.UTC)   # CET
    with pytest.raises(ValueError, match="participant 124.*does not exist"):
        match.with_time(moodle.parse("Mary O'Brien_124_assignsubmission_file_/toy.ipynb"))


def test_the_worksheet_goes_back_with_grades_and_nothing_else_changed(tmp_path):
    """Only the Grade cells of graded participants change; the byte-order mark, the columns and
    every other cell are as downloaded, so Moodle's "Upload grading worksheet" reads it."""
    path = worksheet(tmp_path / "w.csv", [
        {"Identifier": "Participant 123", "Full name": "Jörg Müller",
         "Last modified (grade)": "Monday, 26 October 2026, 9:00 AM"},
        {"Identifier": "Participant 124", "Full name": "Mary O'Brien", "Grade": "3.00"}])
    text = moodle.write_worksheet(moodle.read_worksheet(path), {"123": "4.5"})
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r["Identifier"], r["Grade"]) for r in rows] == [
        ("Participant 123", "4.5"), ("Participant 124", "3.00")]
    assert rows[0]["Last modified (grade)"] == "Monday, 26 October 2026, 9:00 AM"
    (tmp_path / "other.csv").write_text("Student,ID\n")
    with pytest.raises(ValueError, match="not a Moodle grading worksheet"):
        moodle.read_worksheet(str(tmp_path / "other.csv"))
