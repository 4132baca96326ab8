"""Tests for autograder.worker without kernels: reading notebooks, retries, saving results."""

import json
import os

import nbformat

from autograder import worker
from tests.fixtures import toy


def _write(tmp_path, data: bytes, name: str = "nb.ipynb"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    """A notebook saved with a UTF-8 BOM reads like one without."""
    text = nbformat.writes(toy.solution_notebook()).encode()
    nb, why = worker.read_student_notebook(_write(tmp_path, b"\xef\xbb\xbf" + text))
    assert why == "" and len(nb["cells"]) == len(toy.solution_notebook().cells)


def test_huge_integers_and_surrogates_do_not_stop_reading(tmp_path):
    """An integer of 5000 digits (beyond Python's limit for int()) and an unpaired surrogate
    are read; the notebook is graded."""
    nb = json.loads(nbformat.writes(toy.solution_notebook()))
    nb["metadata"]["x"] = 1
    nb["cells"][2]["source"] = "# \ud800\n"
    text = json.dumps(nb).replace('"x": 1', '"x": ' + "9" * 5000)
    data, why = worker.read_student_notebook(_write(tmp_path, text.encode()))
    assert why == "" and data["metadata"]["x"] is None
    assert data["cells"][2]["source"] == "# \ud800\n"


def test_unreadable_notebooks_give_reasons(tmp_path):
    """A FIFO, a deep nesting, bad UTF-8 and a non-object each give a reason, never raise."""
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    for path, why in ((str(fifo), "not a regular file"),
                      (_write(tmp_path, b"[" * 100_000, "a"), "not valid JSON"),
                      (_write(tmp_path, b"\xff\xfe{}", "b"), "UTF-8"),
                      (_write(tmp_path, b"[1]", "c"), "not a JSON object"),
                      (_write(tmp_path, b"  \n", "d"), "empty")):
        data, reason = worker.read_student_notebook(path)
        assert data is None and why in reason, (path, reason)


def _job(tmp_path, **kw):
    return {"student": "alice", "assignment": "toy", "key": "k", "max_score": 5.0,
            "state_file": str(tmp_path / "state" / "toy" / "alice.json"), **kw}


def _fake(scores, suspect):
    calls = []

    def grade(job):
        calls.append(1)
        score = scores[len(calls) - 1]
        return {**worker.zero_result(job, f"attempt {len(calls)}"), "score": score,
                "suspect": suspect, "notebook_text": f"nb{len(calls)}"}
    return grade, calls


def test_a_suspect_fault_is_graded_again_and_the_better_attempt_counts(tmp_path, monkeypatch):
    """After a time limit or a killed kernel beside other kernels the notebook is graded once
    more; the better result counts, with its notebook, and the reason says so."""
    grade, calls = _fake([2.0, 5.0], True)
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, fault_retry=True))
    assert len(calls) == 2 and r["score"] == 5.0 and "graded twice" in r["reason"]
    assert (tmp_path / "state" / "toy" / "alice.ipynb").read_text() == "nb2"
    saved = json.loads((tmp_path / "state" / "toy" / "alice.json").read_text())
    assert saved["score"] == 5.0 and "suspect" not in saved and "notebook_text" not in saved


def test_no_second_attempt_without_neighbours_or_fault(tmp_path, monkeypatch):
    """A lone kernel (no fault_retry) or a clean run is graded once."""
    for retry, suspect in ((False, True), (True, False)):
        grade, calls = _fake([2.0, 5.0], suspect)
        monkeypatch.setattr(worker, "_grade", grade)
        assert worker.grade_job(_job(tmp_path, fault_retry=retry))["score"] == 2.0
        assert len(calls) == 1


def test_grade_job_never_raises(tmp_path, monkeypatch):
    """A state file that cannot be written (name too long) or a crash of the grading code
    still yields a row, marked to be graded again."""
    grade, _ = _fake([5.0], False)
    monkeypatch.setattr(worker, "_grade", grade)
    r = worker.grade_job(_job(tmp_path, state_file=str(tmp_path / ("x" * 300 + ".json"))))
    assert r["retry"] and "could not be saved" in r["reason"] and r["score"] == 5.0

    def boom(job):
        raise RuntimeError("bug")
    monkeypatch.setattr(worker, "_grade", boom)
    r = worker.grade_job(_job(tmp_path))
    assert r["retry"] and "internal grader error: RuntimeError: bug" in r["reason"]


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
