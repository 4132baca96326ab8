"""The roster CSV: student ids, names and LMS ids, with its mistakes named."""

import pytest

from autograder.results.lms.roster import RosterError, name_key, read_roster


def test_a_roster_with_a_spreadsheet_s_byte_order_mark_is_read(tmp_path):
    """Only student_id is required; names keep their accents; look-ups by LMS id, email and
    name work."""
    path = tmp_path / "r.csv"
    path.write_text("\ufeffstudent_id,first_name,last_name,email,lms_id\n"
                    "alice,Jörg,Müller,J@X.org,1001\nbob,,,,\n", encoding="utf-8")
    roster = read_roster(str(path))
    assert [s.student_id for s in roster.students] == ["alice", "bob"]
    assert roster.by_lms_id["1001"].sortable_name == "Müller, Jörg"
    assert roster.find(roster.by_email, "j@x.org")[0].student_id == "alice"
    assert roster.find(roster.by_name, name_key("JÖRG  müller"))[0].student_id == "alice"


@pytest.mark.parametrize("text, why", [
    ("id,name\nalice,A\n", "needs a header row with student_id"),
    ("student_id\nal ice\n", "line 2: 'al ice' is not a valid student id"),
    ("student_id\nalice\nalice\n", "line 3: student alice is listed twice"),
    ("student_id,lms_id\nalice,7\nbob,7\n", "line 3: LMS id 7 is already given on line 2"),
])
def test_mistakes_are_named_with_their_line(tmp_path, text, why):
    """A missing column, an invalid or repeated id and a repeated LMS id are refused."""
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(RosterError, match=why):
        read_roster(str(path))
