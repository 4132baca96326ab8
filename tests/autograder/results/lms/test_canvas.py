"""Canvas's download names parsed, users matched, and its gradebook import CSV written."""

import csv
import datetime as dt
import io

import pytest

from autograder.results.lms import canvas
from autograder.results.lms.bulk import Status, Upload
from autograder.results.lms.roster import Roster, Student
from tests.support.lms import canvas_times

ROSTER = Roster([Student("alice", "Jörg", "Müller", lms_id="1001", sis_user_id="S1",
                         sis_login_id="jmueller", section="Mon"),
                 Student("carol", "Anna", "van der Smith"),
                 Student("eve", "Eve", "=1+1", lms_id="1005")])


@pytest.mark.parametrize("entry, user, name, filename, order, late", [
    ("müllerjörg_1001_5001_toy.ipynb", "1001", "müllerjörg", "toy.ipynb", 5001, False),
    ("obrienmary_LATE_1002_5002_toy-1.ipynb", "1002", "obrienmary", "toy-1.ipynb", 5002, True),
    ("vandersmithanna_1003_5003_My Notebook_v2.ipynb", "1003", "vandersmithanna",
     "My Notebook_v2.ipynb", 5003, False),
    ("leekim2_1004_5004_toy.ipynb", "1004", "leekim2", "toy.ipynb", 5004, False),
])
def test_named_entries_are_parsed(entry, user, name, filename, order, late):
    """Name, LATE mark, user id, attachment id and the file's own name (which may hold spaces
    and underscores) are read from Canvas's file names."""
    u = canvas.parse(entry)
    assert (u.lms_user, u.name, u.filename, u.order, u.late, u.status) == (
        user, name, filename, order, late, None)


def test_anonymous_text_and_foreign_entries():
    """Anonymous grading hides the user; text entries and files not named by Canvas are set
    aside with a note."""
    anon = canvas.parse("LATE_anon_Xy7Qz_5005_toy.ipynb")
    assert (anon.lms_user, anon.late, anon.filename) == ("", True, "toy.ipynb")
    assert canvas.parse("chenwei_1006_text.html").status is Status.TEXT
    assert canvas.parse("README.txt").status is Status.UNKNOWN


def test_users_are_matched_by_id_else_by_the_name_canvas_writes():
    """A roster lms_id matches first; a student without one is found by the name Canvas makes
    of "Last, First" (lower case, no spaces or punctuation, accents kept); without a roster the
    Canvas id is the student id."""
    match = canvas.Matcher(ROSTER)
    assert match(Upload("e", "1001", "whatever")) == ("alice", "")
    assert match(Upload("e", "1003", canvas.name_key("van der Smith, Anna"))) == ("carol", "")
    student, why = match(Upload("e", "1999", "strangerdanger"))
    assert student is None and "Canvas user 1999" in why
    assert match(Upload("e", "", "anonymous x"))[0] is None
    assert canvas.Matcher()(Upload("e", "1999", "x")) == ("1999", "")
    assert canvas.name_key("Müller, Jörg") == "müllerjörg"


def test_submission_times_come_from_the_submissions_api(tmp_path):
    """submitted_at of Canvas's Submissions API becomes the upload's time (UTC)."""
    path = canvas_times(tmp_path / "subs.json", {1001: "2026-10-21T01:16:27Z"})
    match = canvas.Matcher(ROSTER, canvas.read_times(path))
    upload = match.with_time(canvas.parse("müllerjörg_1001_5001_toy.ipynb"))
    assert upload.submitted_at == dt.datetime(2026, 10, 21, 1, 16, 27, tzinfo=dt.UTC)
    (tmp_path / "bad.json").write_text('[{"user_id": 1, "submitted_at": "2026-10-21 01:00"}]')
    with pytest.raises(ValueError, match="no timezone"):
        canvas.read_times(str(tmp_path / "bad.json"))


def test_the_import_csv_has_canvas_s_layout():
    """Header Student, ID, SIS User ID, SIS Login ID, Section, then "<title> (<id>)" per
    assignment (title alone without an id); the Points Possible row; a row per roster
    student with its Canvas ID; a name starting with = is quoted as Canvas quotes it."""
    columns = [canvas.Column("A1: Dropout", "48213", 10.0), canvas.Column("toy2", "", 5.0)]
    text = canvas.gradebook_csv(ROSTER, columns, lambda s, i: {"alice": "9.5"}.get(s, "0"))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "A1: Dropout (48213)", "toy2"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10", "5"]
    assert rows[2] == ["Müller, Jörg", "1001", "S1", "jmueller", "Mon", "9.5", "9.5"]
    assert rows[3][:2] == ["van der Smith, Anna", ""]
    assert rows[4][0] == '="=1+1, Eve"'
