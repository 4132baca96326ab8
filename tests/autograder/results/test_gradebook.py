"""nbgrader's gradebook as the truth: results written into it, deadlines and late penalties set
the way nbgrader sets them, grades (hand changes included) read back, on SQLite and
PostgreSQL."""

import datetime as dt
import logging
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.plugins.export import CsvExportPlugin
from nbgrader.preprocessors import AssignLatePenalties
from traitlets.config import Config

from autograder.grading.jobs import Job, PartResult, Result
from autograder.results.deadlines import LatePolicy, PenaltyKind, Per
from autograder.results.gradebook import (
    GradebookSync,
    add_students,
    apply_late_penalties,
    apply_term,
    ensure_assignment,
    read_grades,
    write_result,
)
from autograder.results.term import AssignmentTerm, Term
from tests.support import toy
from tests.support.postgres import postgres_server

DUE = dt.datetime(2026, 10, 20, 21, 59, tzinfo=dt.UTC)


def result(student, scale, col_sum, assignment="toy", timestamp=None):
    parts = [PartResult("toy-scale", "Scaling", 2.0, scale, "m"),
             PartResult("toy-sum", "Column sums", 3.0, col_sum, "m")]
    return Result(student, assignment, "k", timestamp, 5.0, scale + col_sum, "", parts)


def gradebook(tmp_path, url=None) -> Gradebook:
    """A gradebook with two toy assignments (as the grade command sets them up); a SQLite one
    starts as a copy of the module's first (creating a gradebook runs nbgrader's migrations,
    which takes seconds)."""
    src = tmp_path / "toy.ipynb"
    nbformat.write(toy.source_notebook(), src)
    if url is None:
        url = f"sqlite:///{tmp_path}/gradebook.db"
        if TEMPLATE:
            shutil.copyfile(TEMPLATE[0], tmp_path / "gradebook.db")
    gb = Gradebook(url, course_id="default_course")
    for name in ("toy", "toy2"):
        ensure_assignment(gb, name, str(src))
    if not TEMPLATE and url.startswith("sqlite:///"):
        TEMPLATE.append(tmp_path.parent / "template.db")
        shutil.copyfile(tmp_path / "gradebook.db", TEMPLATE[0])
    return gb


TEMPLATE: list = []


def test_a_failing_gradebook_write_costs_a_note_not_the_run():
    """Should storing one result fail (here the gradebook raises), the result gets a reason
    and is marked to be graded again; nothing is raised."""
    class Sync(GradebookSync):
        def __init__(self):
            self.log = logging.getLogger("test")
            self.gb = None

        def write(self, result, job):
            raise OSError(36, "File name too long")

    result_ = Result("alice", "toy", "k", None, 1.0, 1.0, "")
    Sync().store(result_, Job("alice", "toy"))
    assert result_.retry and "could not be stored" in result_.reason


def test_every_student_gets_a_row_per_assignment_missing_work_included(tmp_path):
    """Two students, two assignments, one submission: four rows; the three without a
    submission score 0 of the maximum; a roster student the gradebook lacks gets rows too."""
    with gradebook(tmp_path) as gb:
        write_result(gb, result("alice", 2, 3))
        gb.update_or_create_student("bob")
        rows = read_grades(gb, ["toy", "toy2"], extra_students=["zoe"])
    got = {(r.student, r.assignment): (r.submitted, r.score, r.max_score) for r in rows}
    assert got == {("alice", "toy"): (True, 5.0, 5.0), ("alice", "toy2"): (False, 0.0, 5.0),
                   ("bob", "toy"): (False, 0.0, 5.0), ("bob", "toy2"): (False, 0.0, 5.0),
                   ("zoe", "toy"): (False, 0.0, 5.0), ("zoe", "toy2"): (False, 0.0, 5.0)}


def _hand_changes_are_read_back(gb):
    write_result(gb, result("alice", 2, 0))
    grade = gb.find_grade("toy-sum", "toy", "toy", "alice")
    grade.manual_score = 2.5                      # as formgrader stores a grader's change
    gb.find_grade("toy-scale", "toy", "toy", "alice").extra_credit = 0.5
    gb.db.commit()
    write_result(gb, result("alice", 2, 0))       # a rerun writes auto scores only
    [row] = [r for r in read_grades(gb, ["toy"]) if r.student == "alice"]
    assert (row.raw_score, row.score, row.adjusted) == (5.0, 5.0, True)
    assert row.parts == {"toy-scale": 2.5, "toy-sum": 2.5}


def test_hand_changes_in_the_gradebook_are_read_back(tmp_path):
    """A manual score and extra credit set through nbgrader's API survive a rerun's write and
    are in the row (nbgrader's Grade.score: manual first, extra credit added)."""
    with gradebook(tmp_path) as gb:
        _hand_changes_are_read_back(gb)


def test_penalties_are_what_nbgrader_s_own_preprocessor_stores(tmp_path):
    """With the 'zero' policy, our penalty equals what nbgrader's AssignLatePenalties with
    LateSubmissionPlugin.penalty_method='zero' stores for the same late submission."""
    url = f"sqlite:///{tmp_path}/gradebook.db"
    with gradebook(tmp_path) as gb:
        gb.update_or_create_assignment("toy", duedate=DUE.replace(tzinfo=None))
        write_result(gb, result("alice", 2, 3, timestamp="2026-10-20 23:00:00.000000"))
    config = Config()
    config.LateSubmissionPlugin.penalty_method = "zero"
    resources = {"nbgrader": {"notebook": "toy", "assignment": "toy", "student": "alice",
                              "db_url": url}}
    AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)
    with Gradebook(url) as gb:
        theirs = gb.find_submission_notebook("toy", "toy", "alice").late_submission_penalty
        apply_late_penalties(gb, LatePolicy(PenaltyKind.ZERO))
        ours = gb.find_submission_notebook("toy", "toy", "alice").late_submission_penalty
    assert theirs == ours == 5.0


def _deadlines_and_penalties(gb):
    policy = LatePolicy(PenaltyKind.PERCENT, percent=10, per=Per.DAY, cap=50)
    term = Term("Europe/Berlin", policy, {"toy": AssignmentTerm("toy", DUE)},
                {("bob", "toy"): DUE + dt.timedelta(days=2)})
    write_result(gb, result("alice", 2, 3, timestamp="2026-10-21 23:00:00.000000"))
    write_result(gb, result("bob", 2, 3, timestamp="2026-10-21 23:00:00.000000"),
                 term.extension("bob", "toy"))
    write_result(gb, result("carol", 2, 3))                       # no submission time
    apply_term(gb, term)
    rows = {r.student: r for r in read_grades(gb, ["toy"])}
    assert rows["alice"].duedate == DUE.replace(tzinfo=None)
    assert (rows["alice"].seconds_late, rows["alice"].penalty, rows["alice"].score) == (
        90060.0, 1.0, 4.0)                                        # 2 started days: 20%
    assert (rows["bob"].seconds_late, rows["bob"].penalty) == (0.0, 0.0)   # extended
    assert (rows["carol"].timestamp, rows["carol"].penalty) == (None, 0.0)
    gb.find_grade("toy-sum", "toy", "toy", "alice").manual_score = 0.0
    gb.db.commit()
    apply_term(gb, term)                                          # a hand change: 2 points
    assert {r.student: r.penalty for r in read_grades(gb, ["toy"])}["alice"] == 0.4


def test_deadlines_extensions_and_penalties_follow_the_term(tmp_path):
    """The term's due date and a student's extension are set; a submission 1 d 1 min late
    loses 20% (10% per started day), the extended one nothing, one without a time nothing;
    after a score is changed by hand the penalty is recomputed from the new score."""
    with gradebook(tmp_path) as gb:
        _deadlines_and_penalties(gb)


def test_nbgrader_s_export_reads_the_same_penalty(tmp_path):
    """nbgrader's own CSV export of the gradebook shows the penalty and score we set."""
    url = f"sqlite:///{tmp_path}/gradebook.db"
    with gradebook(tmp_path) as gb:
        _deadlines_and_penalties(gb)
    out = tmp_path / "export.csv"
    with Gradebook(url) as gb:
        CsvExportPlugin(to=str(out), assignment=["toy"]).export(gb)
    lines = {line.split(",")[3]: line.split(",") for line in out.read_text().splitlines()[1:]}
    assert lines["alice"][7:10] == ["2.0", "0.4", "1.6"]


def test_roster_students_are_added_with_their_names(tmp_path):
    """Roster students are added as nbgrader db student import does, names and email too."""
    with gradebook(tmp_path) as gb:
        add_students(gb, [{"id": "zoe", "first_name": "Zoë", "last_name": "Ångström",
                           "email": "zoe@example.org"}])
        [row] = [r for r in read_grades(gb, ["toy"]) if r.student == "zoe"]
    assert (row.first_name, row.last_name, row.email) == ("Zoë", "Ångström", "zoe@example.org")


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


def test_the_same_on_postgresql(tmp_path, pg):
    """Hand changes, deadlines, extensions and penalties behave the same on a real PostgreSQL
    server (nbgrader's models through SQLAlchemy only)."""
    with gradebook(tmp_path, pg.create_database("g13_hand")) as gb:
        _hand_changes_are_read_back(gb)
    with gradebook(tmp_path, pg.create_database("g13_late")) as gb:
        _deadlines_and_penalties(gb)
