"""Issue 6 again, on a real assignment (batchnorm): the attacks that do not depend on the toy
assignment's functions, put before the release stubs, must score no more than the empty
notebook; the solution notebook scores max_score; faults get reasons; the grader stays within
its memory."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder.assignments import ASSIGNMENTS
from tests.support import hostile
from tests.support.run import REPO, env, once, read_csv, run_watched

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("hostile_real")]
A = hostile.REAL_ASSIGNMENT


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    r = once("hostile_real", tmp_path_factory, _batch)
    samples = {k: hostile.Sample(**v) for k, v in r["samples"].items()}
    return Path(r["out"]), samples, SimpleNamespace(**r["proc"], memory=r["memory"])


def _batch(base):
    course, subs, out = base / "course", base / "subs", base / "out" / "grades.csv"
    subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(course),
                    "--assignment", A], cwd=REPO, env=env(), check=True, capture_output=True)
    samples = hostile.write_real(str(subs), str(course), str(out))
    proc, memory = run_watched(
        [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out), "--course",
         str(course), "--registry", "tests.support.hostile:REAL_REGISTRY", "--workers", "2",
         "--cell-timeout", "30", "--notebook-timeout", "240", "--memory", "2G"], timeout=1200)
    return {"out": str(out), "memory": memory, "proc": proc,
            "samples": {k: dataclasses.asdict(v) for k, v in samples.items()}}


def test_batch_finishes_and_every_submission_has_a_row(batch):
    """The run exits 0 with one row per sample and no failure of the grader itself."""
    out, samples, proc = batch
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(out)
    assert {s for s, _ in rows} == set(samples)
    assert [s for (s, _), r in rows.items() if "internal grader error" in r["reason"]] == []


def test_attacks_score_no_more_than_empty_and_perfect_full(batch):
    """Perfect scores max_score, and no attack scores more than the empty notebook."""
    out, samples, _ = batch
    score = {s: float(r["score"]) for (s, _), r in read_csv(out).items()}
    assert score["perfect"] == ASSIGNMENTS[A].max_score and score["empty"] == 0.0
    assert {s: score[s] for s, v in samples.items() if v.kind == "attack"
            and score[s] > score["empty"]} == {}


def test_faults_have_reasons(batch):
    """Each fault names what happened."""
    out, samples, _ = batch
    rows = {s: r for (s, _), r in read_csv(out).items()}
    for s, v in samples.items():
        if v.kind == "fault":
            assert v.reason in rows[s]["reason"], (s, rows[s]["reason"])
    assert os.path.exists(out)


def test_the_grader_stays_within_its_memory(batch):
    """The grader's own processes together never hold more than 1.5 GiB resident."""
    memory = batch[2].memory
    assert 0 < memory["peak_sum"] < 1.5 * 2**30, memory
