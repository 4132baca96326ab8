"""``python -m autograder export``: the gradebook's grades, hand changes and late penalties
included, as Canvas's import CSV and Moodle's grading worksheet."""

import csv
import io
import os

import pytest
from nbgrader.api import Gradebook

from tests.support.graded import URL, cli, graded_course, term_text, with_toy_registry
from tests.support.lms import roster, worksheet
from tests.support.run import once

pytestmark = pytest.mark.xdist_group("export_cli")

ROSTER = [
    {"student_id": "alice", "first_name": "Jörg", "last_name": "Müller", "lms_id": "1001",
     "sis_login_id": "jmueller", "section": "Mon", "email": "j.mueller@uni.example"},
    {"student_id": "bob", "first_name": "Mary", "last_name": "O'Brien", "lms_id": "1002"},
    {"student_id": "erin", "first_name": "Erin", "last_name": "Empty", "lms_id": "1005"},
]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return once("graded_toy_export", tmp_path_factory, lambda folder: graded_course(folder))


@pytest.fixture
def course(tmp_path, template):
    course = graded_course(tmp_path, template)
    (tmp_path / "term.toml").write_text(term_text())
    proc = cli("deadlines", *with_toy_registry(tmp_path / "term.toml", "--course", course))
    assert proc.returncode == 0, proc.stderr
    return course


def test_canvas_export_has_hand_changes_penalties_and_missing_work(tmp_path, course):
    """bob's toy-sum changed by hand to 3 (through nbgrader's API, as formgrader does) is
    exported with the late penalty recomputed from the new score (5 - 20% = 4); erin, in the
    roster with no submission after the due date, gets 0; carol, not in the roster, is named;
    the file has Canvas's layout and is readable by the group only."""
    with Gradebook(URL.format(course), course_id="toycourse") as gb:
        gb.find_grade("toy-sum", "toy", "toy", "bob").manual_score = 3.0
        gb.db.commit()
    out = tmp_path / "canvas.csv"
    proc = cli("export", "canvas", "--roster", roster(tmp_path / "r.csv", ROSTER), "--out", out,
               "--course", course)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "Toy: scaling and sums (48213)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "5"]
    assert rows[2:] == [["Müller, Jörg", "1001", "", "jmueller", "Mon", "5"],
                        ["O'Brien, Mary", "1002", "", "", "", "4"],
                        ["Empty, Erin", "1005", "", "", "", "0"]]
    assert "not in the roster and are left out: carol" in proc.stdout
    assert os.stat(out).st_mode & 0o777 == 0o640


def test_moodle_export_fills_the_worksheet_s_grades(tmp_path, course):
    """The downloaded worksheet comes back with Grade filled for matched participants (bob's
    after his late penalty); an unmatched participant keeps its grade and is reported."""
    sheet = worksheet(tmp_path / "w.csv", [
        {"Identifier": "Participant 31", "Full name": "Jörg Müller",
         "Email address": "j.mueller@uni.example"},
        {"Identifier": "Participant 32", "Full name": "Mary O'Brien"},
        {"Identifier": "Participant 33", "Full name": "Someone Else", "Grade": "1.00"}])
    out = tmp_path / "graded.csv"
    proc = cli("export", "moodle", "--worksheet", sheet, "--assignment", "toy", "--roster",
               roster(tmp_path / "r.csv", ROSTER), "--out", out, "--course", course)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [r["Grade"] for r in rows] == ["5", "1.6", "1.00"]
    assert "2 of 3 participants graded" in proc.stdout and "participant 33" in proc.stdout


@pytest.mark.parametrize("args, why", [
    (["canvas"], "needs --roster"),
    (["moodle", "--assignment", "toy"], "needs --worksheet"),
    (["canvas", "--roster", "R", "--assignment", "quiz"], "has no assignment quiz"),
])
def test_bad_arguments_are_exit_2(tmp_path, course, args, why):
    """A missing roster or worksheet and an unknown assignment are named; nothing is written."""
    args = [str(roster(tmp_path / "r.csv", ROSTER)) if a == "R" else a for a in args]
    proc = cli("export", *args, "--out", tmp_path / "x.csv", "--course", course)
    assert proc.returncode == 2 and why in proc.stderr
    assert not (tmp_path / "x.csv").exists()
