"""End-to-end tests of ``python -m autograder grade`` on the toy course."""

import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.results import report
from tests.support import toy
from tests.support.run import grade, once, proc_dict, read_csv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_cli")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    r = once("grade_cli", tmp_path_factory, _graded)
    return Path(r["base"]), r["course"], Path(r["out"]), SimpleNamespace(**r["proc"])


def _graded(base):
    course = toy.build_course(str(base / "course"))
    subs = base / "subs"
    toy.write_submission(subs, "alice", toy.solution_notebook())
    toy.write_submission(subs, "bob", toy.release_notebook(course))
    toy.write_submission(subs, "carol", toy.with_answers(
        toy.solution_notebook(), sum_impl="def col_sum(x):\n    return x.sum(axis=1)\n"))
    toy.write_submission(subs, "dave", "{broken")
    (subs / "dave" / "toy" / "timestamp.txt").write_text("2024-03-01 12:00:00.000000 UTC")
    out = base / "out" / "grades.csv"
    proc = grade(subs, out, course)
    return {"base": str(base), "course": course, "out": str(out), "proc": proc_dict(proc)}


def test_exit_zero_and_isolation_stated(graded):
    """The run succeeds and says which isolation is in force, on screen and in its log."""
    base, course, out, proc = graded
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("isolation:")
    log = (base / "out" / "grades.log").read_text()
    assert "isolation:" in log and "limits:" in log


def test_grades_csv_has_export_columns_and_one_row_each(graded):
    """grades.csv has nbgrader's export columns plus reason, one row per submission."""
    _, _, out, _ = graded
    header = out.read_text().splitlines()[0].split(",")
    assert header == report.COLUMNS
    rows = read_csv(out)
    assert {k: float(r["score"]) for k, r in rows.items()} == {
        ("alice", "toy"): 5.0, ("bob", "toy"): 0.0, ("carol", "toy"): 2.0, ("dave", "toy"): 0.0}
    assert rows[("alice", "toy")]["max_score"] == "5.0"
    assert "JSON" in rows[("dave", "toy")]["reason"]
    assert rows[("dave", "toy")]["timestamp"].startswith("2024-03-01 12:00:00")


def test_gradebook_holds_the_scores(graded):
    """nbgrader's gradebook has the submissions with their autograded scores."""
    from nbgrader.api import Gradebook
    _, course, _, _ = graded
    with Gradebook(f"sqlite:///{course}/gradebook.db", course_id="toycourse") as gb:
        assert gb.find_submission("toy", "alice").score == 5.0
        assert gb.find_submission("toy", "carol").score == 2.0
        assert gb.find_submission("toy", "dave").score == 0.0
    con = sqlite3.connect(f"{course}/gradebook.db")
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_course_folder_works_with_nbgrader_export(graded, tmp_path):
    """nbgrader's own export reads the same scores from the course folder."""
    import subprocess
    import sys
    _, course, _, _ = graded
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    subprocess.run([exe, "export", "--to", str(tmp_path / "e.csv"), "--log-level=ERROR"],
                   cwd=course, check=True, capture_output=True)
    rows = read_csv(tmp_path / "e.csv")
    assert float(rows[("carol", "toy")]["score"]) == 2.0
    assert os.path.exists(os.path.join(course, "autograded", "alice", "toy", "toy.ipynb"))
    assert os.path.exists(os.path.join(course, "submitted", "alice", "toy", "toy.ipynb"))


def test_feedback_shows_results_but_not_hidden_tests(graded):
    """Each student's feedback page lists the parts and messages, never hidden-test code."""
    base, _, _, _ = graded
    page = (base / "out" / "feedback" / "carol.html").read_text()
    assert "Column sums" in page and "<tr class='fail'>" in page and "0 / 3" in page
    assert "wrong on every hidden case" in page
    for secret in ("BEGIN HIDDEN TESTS", "_grading_harness", "record(", "_probe"):
        assert secret not in page
    assert sorted(os.listdir(base / "out" / "feedback")) == [
        "alice.html", "bob.html", "carol.html", "dave.html"]


def test_summary_and_histogram(graded):
    """A class summary is printed and a histogram PNG written."""
    base, _, _, proc = graded
    assert "class summary:" in proc.stdout and "toy: 4 submissions" in proc.stdout
    assert (base / "out" / "grades_histogram.png").read_bytes()[:4] == b"\x89PNG"


def test_rerun_reuses_results_and_gives_the_same_csv(graded, tmp_path):
    """A second run finds every result in the state folder and writes the same grades."""
    base, course, out, _ = graded
    out2 = tmp_path / "again.csv"
    proc = grade(base / "subs", out2, course)
    assert proc.returncode == 0 and "4 submissions already graded" in proc.stdout
    assert out2.read_text() == out.read_text()


def test_bad_arguments_exit_2(tmp_path):
    """A missing submissions folder is a usage error."""
    proc = grade(tmp_path / "nope", tmp_path / "g.csv", tmp_path / "course")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
