"""Tests for autograder.grading.worker without kernels: retries, saving results, cleanup."""

import json
import os

from autograder.grading import worker
from autograder.grading.jobs import Job


def _job(tmp_path, **kw):
    kw.setdefault("state_file", str(tmp_path / "state" / "toy" / "alice.json"))
    return Job("alice", "toy", key="k", max_score=5.0, **kw)


def _fake(scores, suspect):
    calls = []

    def grade(job, slot):
        calls.append(1)
        score = scores[len(calls) - 1]
        r = worker.zero_result(job, f"attempt {len(calls)}")
        r.score, r.suspect, r.notebook_text = score, suspect, f"nb{len(calls)}"
        return r
    return grade, calls


def test_a_suspect_fault_is_graded_again_and_the_better_attempt_counts(tmp_path, monkeypatch):
    """After a time limit or a killed kernel beside other kernels the notebook is graded once
    more; the better result counts, with its notebook, and the reason says so."""
    grade, calls = _fake([2.0, 5.0], True)
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, fault_retry=True))
    assert len(calls) == 2 and r.score == 5.0 and "graded twice" in r.reason
    assert (tmp_path / "state" / "toy" / "alice.ipynb").read_text() == "nb2"
    saved = json.loads((tmp_path / "state" / "toy" / "alice.json").read_text())
    assert saved["score"] == 5.0 and "suspect" not in saved and "notebook_text" not in saved


def test_no_second_attempt_without_neighbours_or_fault(tmp_path, monkeypatch):
    """A lone kernel (no fault_retry) or a clean run is graded once."""
    for retry, suspect in ((False, True), (True, False)):
        grade, calls = _fake([2.0, 5.0], suspect)
        monkeypatch.setattr(worker, "_grade", grade)
        assert worker.grade_job(_job(tmp_path, fault_retry=retry)).score == 2.0
        assert len(calls) == 1


def test_grade_job_never_raises(tmp_path, monkeypatch):
    """A state file that cannot be written (name too long) or a crash of the grading code
    still yields a row, marked to be graded again."""
    grade, _ = _fake([5.0], False)
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, state_file=str(tmp_path / ("x" * 300 + ".json"))))
    assert r.retry and "could not be saved" in r.reason and r.score == 5.0

    def boom(job, slot):
        raise RuntimeError("bug")
    monkeypatch.setattr(worker, "_grade", boom)
    r = worker.grade_job(_job(tmp_path))
    assert r.retry and "internal grader error: RuntimeError: bug" in r.reason


def test_cleanup_removes_what_a_kernel_left(tmp_path):
    """The worker's cleanup removes a tree deeper than shutil.rmtree can recurse (it raised
    RecursionError on 3.11) and folders without permissions, and reports nothing left."""
    base = tmp_path / "ag-x"
    fd = os.open(tmp_path, os.O_RDONLY)
    os.mkdir("ag-x", dir_fd=fd)
    for name in ["ag-x", "run"] + ["d"] * 1500:
        new = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = new
        if name == "ag-x":
            os.mkdir("run", dir_fd=fd)
        elif name in ("run", "d"):
            os.mkdir("d", dir_fd=fd)
    os.close(fd)
    (base / "locked").mkdir()
    os.chmod(base / "locked", 0)
    assert worker._cleanup(str(base)) == "" and not base.exists()
