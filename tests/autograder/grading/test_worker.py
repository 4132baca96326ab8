"""Tests for autograder.grading.worker without kernels: retries, saving results, cleanup."""

import json
import os

from autograder.grading import interrupt, worker
from autograder.grading.jobs import Job


def _job(tmp_path, **kw):
    kw.setdefault("state_file", str(tmp_path / "state" / "toy" / "alice.json"))
    return Job("alice", "toy", key="k", max_score=5.0, **kw)


def _fake(scores, outside):
    """A stand-in for grading one notebook: attempt i scores ``scores[i]`` and reports
    ``outside[i]`` as evidence of an outside cause."""
    calls = []

    def grade(job, slot):
        calls.append(1)
        n = len(calls) - 1
        r = worker.zero_result(job, f"attempt {len(calls)}")
        r.score, r.outside, r.notebook_text = scores[n], outside[n], f"nb{len(calls)}"
        return r
    return grade, calls


BUSY = "the machine was overloaded: the kernel waited for a CPU 80% of those 6 s"


def test_an_outside_cause_earns_a_second_attempt_and_the_second_counts(tmp_path, monkeypatch):
    """With evidence that the first attempt was disturbed from outside, the notebook is graded
    once more and the second attempt counts, even when it scores less; the reason says which
    attempt counted and why, and the kept result carries no evidence field."""
    grade, calls = _fake([5.0, 2.0], [BUSY, ""])
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, fault_retry=True))
    assert len(calls) == 2 and r.score == 2.0
    assert "the second attempt counts (the first scored 5)" in r.reason and BUSY in r.reason
    assert (tmp_path / "state" / "toy" / "alice.ipynb").read_text() == "nb2"
    saved = json.loads((tmp_path / "state" / "toy" / "alice.json").read_text())
    assert saved["score"] == 2.0 and "outside" not in saved and "notebook_text" not in saved


def test_when_both_attempts_were_disturbed_the_better_counts(tmp_path, monkeypatch):
    """Two disturbed attempts: the better one counts, and the reason names both causes."""
    grade, calls = _fake([5.0, 2.0], [BUSY, "killed by the machine's out-of-memory killer"])
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, fault_retry=True))
    assert len(calls) == 2 and r.score == 5.0
    assert "both attempts were disturbed" in r.reason and "the first attempt, counts" in r.reason


def test_no_second_attempt_without_evidence_or_permission(tmp_path, monkeypatch):
    """A fault with no evidence of an outside cause (e.g. a kernel that killed itself), or a
    job that does not allow retries, is graded once."""
    for retry, outside in ((False, BUSY), (True, "")):
        grade, calls = _fake([2.0, 5.0], [outside, ""])
        monkeypatch.setattr(worker, "_grade", grade)
        assert worker.grade_job(_job(tmp_path, fault_retry=retry)).score == 2.0
        assert len(calls) == 1


def test_grade_job_never_raises(tmp_path, monkeypatch):
    """A state file that cannot be written (name too long) or a crash of the grading code
    still yields a row, marked to be graded again."""
    grade, _ = _fake([5.0], [""])
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


def test_after_the_stop_nothing_is_graded_or_kept(tmp_path, monkeypatch):
    """With the worker's stop set, grade_job grades nothing and keeps nothing; a result whose
    grading saw the stop (a kernel ended under it) is interrupted and not kept either, so the
    rerun grades it again."""
    monkeypatch.setattr(interrupt, "STOP", interrupt.StopFlag())
    grade, calls = _fake([5.0, 5.0], False)
    monkeypatch.setattr(worker, "_grade", grade)
    interrupt.STOP.set()
    r = worker.grade_job(_job(tmp_path))
    assert calls == [] and r.interrupted and r.retry and r.reason == interrupt.NOT_GRADED

    monkeypatch.setattr(interrupt, "STOP", interrupt.StopFlag())

    def stopped_midway(job, slot):
        interrupt.STOP.set()
        return grade(job, slot)
    monkeypatch.setattr(worker, "_grade", stopped_midway)
    r = worker.grade_job(_job(tmp_path, fault_retry=True))
    assert len(calls) == 1 and r.interrupted and r.score == 0.0
    assert not (tmp_path / "state").exists()
