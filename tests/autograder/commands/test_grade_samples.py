"""The whole pipeline on the real assignments: release -> sample submissions -> grade."""

import csv
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.run import once
from tests.support.samples import ONCE_KEY, grade_samples_locally

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_samples")]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    r = once(ONCE_KEY, tmp_path_factory, grade_samples_locally)
    expected = {(s, a): v for s, a, v in r["expected"]}
    return expected, Path(r["out"]), SimpleNamespace(**r["proc"]), Path(r["course"])


def test_every_sample_scores_exactly_as_expected(graded):
    """perfect scores max_score, empty 0, and each mistake loses exactly its parts; every
    student of the gradebook has a row for every assignment, the work a sample student did not
    hand in scoring 0 with the reason "no submission"."""
    expected, out, proc, _ = graded
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out) as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    students, assignments = {s for s, _ in expected}, {a for _, a in expected}
    assert set(rows) == {(s, a) for s in students for a in assignments}
    got = {k: float(r["score"]) for k, r in rows.items() if k in expected}
    assert got == pytest.approx(expected)
    missing = [r for k, r in rows.items() if k not in expected]
    assert missing and all((float(r["score"]), r["reason"]) == (0.0, "no submission")
                           for r in missing)
    for (student, assignment), r in rows.items():
        if student == "perfect" and (student, assignment) in expected:
            assert float(r["score"]) == float(r["max_score"]) > 0


def test_autograded_notebooks_are_in_the_course(graded):
    """formgrader finds every autograded notebook under autograded/."""
    expected, _, _, course = graded
    for student, assignment in expected:
        assert os.path.exists(course / "autograded" / student / assignment
                              / f"{assignment}.ipynb")
