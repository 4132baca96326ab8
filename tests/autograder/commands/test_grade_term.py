"""A term on the toy course, end to end with real kernels: a Canvas download collected, due
dates installed (a deadline just after New York's DST change), the class graded with a roster,
one part fixed and regraded for everyone, a score changed by hand and one student regraded,
the grades exported to Canvas."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbgrader.api import Gradebook

from tests.support import toy
from tests.support.answers import COPY, ORIGINAL
from tests.support.graded import cli, term_text
from tests.support.lms import canvas_times, notebook_bytes, roster, write_zip
from tests.support.run import REPO, env, grade_cmd, once, proc_dict

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_term")]

REGISTRY = '''
"""The toy registry with each part's reference scaled (a wrong factor: a test with a bug)."""
import dataclasses

from autograder.assignments.spec import Assignment
from tests.support.toy import TOY

SCALE, SUM = {scale}, {sum}
_scale = dataclasses.replace(TOY.parts[0], reference=lambda c: {{"y": SCALE * c["a"] * c["x"]}})
_sum = dataclasses.replace(TOY.parts[1], reference=lambda c: {{"s": SUM * c["x"].sum(axis=0)}})
ASSIGNMENTS = {{"toy": Assignment("toy", (_scale, _sum))}}
'''
PEOPLE = [("alice", "Ada", "Lovelace", "1001"), ("bob", "Bob", "Ödegaard", "1002"),
          ("carol", "Carol", "Shaw", "1003"), ("dave", "Dave", "Cutler", "1004"),
          ("erin", "Erin", "Catto", "1005"), ("frank", "Frank", "Liu", "1006")]


def _registry(base: Path, scale: float, col_sum: float) -> None:
    (base / "mods").mkdir(exist_ok=True)
    (base / "mods" / "termtoy.py").write_text(REGISTRY.format(scale=scale, sum=col_sum))


def _grade(base: Path, *extra) -> dict:
    cmd = grade_cmd(base / "subs", base / "out" / "grades.csv", base / "course", "--roster",
                    base / "roster.csv", *extra)
    cmd[cmd.index("--registry") + 1] = "termtoy:ASSIGNMENTS"
    e = env()
    e["PYTHONPATH"] = f"{base / 'mods'}:{e['PYTHONPATH']}"
    proc = subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=900)
    return {**proc_dict(proc), "csv": read_csv_text(base / "out" / "grades.csv")}


def read_csv_text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def _term(base: Path) -> dict:
    course = toy.build_course(str(base / "course"))
    roster(base / "roster.csv", [{"student_id": s, "first_name": f, "last_name": last,
                                  "lms_id": lms} for s, f, last, lms in PEOPLE])
    sol = toy.solution_notebook()
    notebooks = {
        "lovelaceada_1001_501_toy.ipynb": notebook_bytes(sol),
        "ödegaardbob_LATE_1002_502_toy-1.ipynb": notebook_bytes(toy.with_answers(
            sol, sum_impl="def col_sum(x):\n    return x.sum(axis=1)\n")),
        "shawcarol_1003_503_toy.ipynb": notebook_bytes(toy.with_answers(sol, sum_impl=ORIGINAL)),
        "cutlerdave_1004_504_toy.ipynb": notebook_bytes(toy.with_answers(
            sol, sum_impl=COPY)),
        "liufrank_1006_506_homework.ipynb": notebook_bytes(sol)}
    write_zip(base / "submissions.zip", notebooks)
    times = canvas_times(base / "times.json", {
        1001: "2026-11-02T04:30:00Z", 1002: "2026-11-03T05:01:00Z", 1003: "2026-11-01T12:00:00Z",
        1004: "2026-11-01T13:00:00Z", 1006: "2026-11-01T14:00:00Z"})
    (base / "term.toml").write_text(term_text())
    _registry(base, 1.0, 2.0)                                # the sum test has a bug
    steps = {"collect": proc_dict(cli("collect", "canvas", base / "submissions.zip",
                                      "--assignment", "toy", "--out", base / "subs",
                                      "--roster", base / "roster.csv", "--times", times,
                                      "--course", course)),
             "deadlines": proc_dict(cli("deadlines", base / "term.toml", "--course", course,
                                        "--registry", "tests.support.toy:ASSIGNMENTS"))}
    steps["first"] = _grade(base)
    steps["report"] = (base / "out" / "report.html").read_text()
    _registry(base, 3.0, 1.0)                  # the sum test fixed, the scale test broken
    steps["part"] = _grade(base, "--part", "toy:toy-sum")
    with Gradebook(f"sqlite:///{course}/gradebook.db", course_id="toycourse") as gb:
        gb.find_grade("toy-sum", "toy", "toy", "bob").manual_score = 3.0
        gb.db.commit()
    steps["student"] = _grade(base, "--student", "bob")
    steps["export"] = proc_dict(cli("export", "canvas", "--roster", base / "roster.csv",
                                    "--out", base / "canvas.csv", "--course", course))
    steps["canvas"] = read_csv_text(base / "canvas.csv")
    return {"base": str(base), "steps": steps}


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    r = once("grade_term", tmp_path_factory, _term)
    return Path(r["base"]), SimpleNamespace(**r["steps"])


def _rows(text: str) -> dict:
    return {r["student_id"]: r for r in csv.DictReader(text.splitlines())}


def test_every_step_succeeds(term):
    """collect, deadlines, three grade runs and the export all exit 0."""
    _, s = term
    for name in ("collect", "deadlines", "first", "part", "student", "export"):
        assert getattr(s, name)["returncode"] == 0, (name, getattr(s, name)["stderr"][-3000:])


def test_every_roster_student_has_a_row_and_the_summary_names_who_is_missing(term):
    """Six roster students, six rows: erin handed nothing in (0, "no submission"), frank's
    notebook is misnamed; the summary names both."""
    _, s = term
    rows = _rows(s.first["csv"])
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    assert (rows["erin"]["score"], rows["erin"]["reason"]) == ("0.0", "no submission")
    assert "misnamed notebook (homework.ipynb" in rows["frank"]["reason"]
    assert rows["alice"]["last_name"] == "Lovelace"
    assert "no submission from 1: erin" in s.first["stdout"]
    assert "handed in but not gradable (1): frank/toy (misnamed notebook" in s.first["stdout"]


def test_lateness_is_measured_against_the_deadline_in_its_own_timezone(term):
    """The deadline 23:59 EST is 04:59 UTC: alice at 04:30 UTC is on time (against EDT she
    would be late); bob, 24 h 2 min late, loses 20% (two started days) of his 2 points."""
    _, s = term
    rows = _rows(s.first["csv"])
    assert (rows["alice"]["late_by"], rows["alice"]["late_submission_penalty"]) == ("0.0", "0.0")
    assert rows["bob"]["late_by"] == "86520.0"
    assert (rows["bob"]["raw_score"], rows["bob"]["late_submission_penalty"],
            rows["bob"]["score"]) == ("2.0", "0.4", "1.6")
    assert "late by 1 d 2 min" in rows["bob"]["reason"]


def test_the_class_report_flags_the_copied_answer(term):
    """report.html flags carol and dave's col_sum (renamed variables, a comment added), and
    groups the failures of the buggy sum test by cause."""
    _, s = term
    assert "<td>carol, dave</td><td>1.00</td>" in s.report
    assert "toy-sum" in s.report and "students</th><th>cause" in s.report


def test_part_regrade_takes_only_the_fixed_part(term):
    """After the sum test is fixed (and, by mistake, the scale test broken), --part
    toy:toy-sum reruns every toy notebook but takes only toy-sum's new verdict: the correct
    sums now score and every scale score stays; the summary says what was regraded."""
    _, s = term
    rows = _rows(s.part["csv"])
    assert {k: rows[k]["raw_score"] for k in ("alice", "bob", "carol", "dave")} == {
        "alice": "5.0", "bob": "2.0", "carol": "5.0", "dave": "5.0"}
    assert "regrading 5 submissions chosen" in s.part["stdout"]
    assert "alice/toy (toy-sum)" in s.part["stdout"]
    assert "only toy-sum graded again" in rows["alice"]["reason"]


def test_student_regrade_keeps_the_hand_change_and_leaves_the_others(term):
    """--student bob regrades bob alone (his whole notebook: the broken scale test now fails
    him) and leaves the other four as they were; his toy-sum, changed by hand to 3, stays 3,
    and his late penalty is recomputed from it (20% of 3)."""
    _, s = term
    rows = _rows(s.student["csv"])
    assert (rows["bob"]["raw_score"], rows["bob"]["late_submission_penalty"],
            rows["bob"]["score"]) == ("3.0", "0.6", "2.4")
    assert "score changed in the gradebook (the autograder gave 0)" in rows["bob"]["reason"]
    assert rows["alice"]["score"] == "5.0"
    assert "regrading 1 submissions" in s.student["stdout"]
    assert "4 others left as they were" in s.student["stdout"]
    assert "regraded this run (1): bob/toy" in s.student["stdout"]


def test_the_canvas_export_matches_grades_csv(term):
    """The Canvas import has each roster student's score as grades.csv has it: bob's hand
    change after the penalty, erin's and frank's 0."""
    _, s = term
    rows = list(csv.reader(s.canvas.splitlines()))
    assert rows[0][-1] == "Toy: scaling and sums (48213)"
    assert {r[1]: r[-1] for r in rows[2:]} == {"1001": "5", "1002": "2.4", "1003": "5",
                                               "1004": "5", "1005": "0", "1006": "0"}
