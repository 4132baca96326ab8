"""The self-check agrees with the grader (issue 14): structural mutations of a correct dropout
notebook (cells cut, moved, edited, duplicated or turned into text, a renamed file, a notebook
that passed only in the order its cells were run) go through both ``python check.py`` in an
unpacked release folder and ``python -m autograder grade``. A notebook the self-check passes
never loses a point at grading; every mutation that does cost points is one it reports."""

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.assignments import ASSIGNMENTS
from tests.support import structural
from tests.support.run import REPO, env, once, proc_dict, read_csv, sandboxed

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_selfcheck")]
A = structural.NAME


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    r = once("grade_selfcheck", tmp_path_factory, _both)
    return r["checks"], read_csv(r["out"]), SimpleNamespace(**r["proc"])


def _check(folder: Path, filename: str) -> dict:
    student_env = {k: v for k, v in env().items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "check.py", filename], cwd=folder, env=student_env,
                          capture_output=True, text=True, timeout=900)
    return {"status": proc.returncode, "report": proc.stdout + proc.stderr}


def _both(base):
    course, subs, out = base / "course", base / "subs", base / "out" / "grades.csv"
    subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(course),
                    "--assignment", A], cwd=REPO, env=env(), check=True, capture_output=True)
    jobs = {}
    for name in structural.MUTATIONS:
        folder = base / "students" / name
        shutil.copytree(course / "release" / A, folder)  # the unpacked zip ...
        os.remove(folder / f"{A}.ipynb")
        path = Path(structural.write(folder, name))  # ... with the student's notebook
        (subs / name / A).mkdir(parents=True)
        shutil.copy(path, subs / name / A / path.name)
        jobs[name] = (folder, path.name)
    with ThreadPoolExecutor(2) as pool:
        checks = dict(zip(jobs, pool.map(lambda j: _check(*j), jobs.values()), strict=True))
    allow = [] if sandboxed() else ["--allow-unsandboxed"]
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out",
                           str(out), "--course", str(course), "--workers", "2", *allow],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    return {"checks": checks, "out": str(out), "proc": proc_dict(proc)}


def test_grading_finishes_with_a_row_per_notebook(both):
    """The grade run exits 0 with one row per mutated notebook."""
    _, rows, proc = both
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {s for s, _ in rows} == set(structural.MUTATIONS)


def test_a_notebook_the_self_check_passes_loses_no_point_at_grading(both):
    """Whatever the self-check passes (exit 0) scores full marks; the untouched notebook and
    one with cells of the student's own are such notebooks."""
    checks, rows, _ = both
    passed = {name for name, c in checks.items() if c["status"] == 0}
    assert passed == structural.HARMLESS, {n: checks[n]["report"] for n in passed}
    for name in passed:
        assert float(rows[(name, A)]["score"]) == ASSIGNMENTS[A].max_score, rows[(name, A)]


def test_every_structural_mistake_that_costs_points_is_reported(both):
    """Each mutation the grader takes points for is one the self-check reports, with exit
    status 1 and a message saying what; the others it reports too (the grader repairs them,
    but what is graded would not be what the student ran)."""
    checks, rows, _ = both
    lost = {name for (name, a), r in rows.items()
            if a == A and float(r["score"]) < ASSIGNMENTS[A].max_score}
    assert lost == structural.COSTS_POINTS
    for name, says in structural.SAYS.items():
        assert checks[name]["status"] == 1, (name, checks[name]["report"])
        assert says in checks[name]["report"], (name, checks[name]["report"])
