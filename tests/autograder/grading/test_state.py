"""The state folder: keys of what a result depends on, and safe state-file names."""

import os

import pytest

from autograder.grading.course import CourseAssignment
from autograder.grading.discover import discover
from autograder.grading.state import job_key, state_file

REGISTRY = {"toy": object()}


@pytest.fixture
def course(tmp_path):
    src = tmp_path / "course" / "toy.ipynb"
    src.parent.mkdir()
    src.write_text("{}")
    return {"toy": CourseAssignment("toy", str(src), None, {}, 5.0)}


def _sub(root, student, notebook=b"{}"):
    folder = os.path.join(os.fsencode(root), os.fsencode(student), b"toy")
    os.makedirs(folder)
    with open(os.path.join(folder, b"toy.ipynb"), "wb") as f:
        f.write(notebook)
    return os.fsdecode(folder)


def test_odd_folder_names_get_rows_and_safe_state_files(tmp_path, course):
    """Names too long for a file name beside a suffix, or not UTF-8, are reported as invalid
    ids and their state files have hashed names short enough to write."""
    long_name, odd = "s" * 251, os.fsdecode(b"a\xffb")
    for name in (long_name, odd, "alice"):
        _sub(tmp_path / "subs", name)
    jobs = {j.student: j for j in discover(str(tmp_path / "subs"), REGISTRY, course)}
    assert set(jobs) == {long_name, odd, "alice"}
    for name in (long_name, odd):
        assert "not a valid student id" in jobs[name].problem
        path = state_file(str(tmp_path / "state"), name, "toy")
        assert len(os.path.basename(path)) < 64
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    assert state_file("/s", "alice", "toy") == "/s/toy/alice.json"


def test_job_key_does_not_read_oversized_notebooks(tmp_path, course, monkeypatch):
    """The key of a notebook over the size limit comes from its size and time, so hashing
    never reads more than the limit (and a FIFO never blocks it)."""
    monkeypatch.setattr("autograder.grading.state.MAX_NOTEBOOK_BYTES", 10)
    folder = _sub(tmp_path / "subs", "alice", b"x" * 11)
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    key = job_key(job)
    with open(os.path.join(folder, "toy.ipynb"), "ab") as f:
        f.write(b"y")
    assert job_key(job) != key
    os.unlink(os.path.join(folder, "toy.ipynb"))
    os.mkfifo(os.path.join(folder, "toy.ipynb"))
    assert job_key(job)


def test_job_key_covers_limits_course_files_and_code(tmp_path, monkeypatch):
    """The key changes with the limits, the source and release notebooks, a helper file, the
    assignment's code and the grader's code, and with nothing else."""
    from autograder.grading import state
    from autograder.grading.jobs import Job
    from autograder.sandbox.limits import Limits

    files = {n: tmp_path / n for n in ("src.ipynb", "rel.ipynb", "helper.py", "sub.ipynb")}
    for path in files.values():
        path.write_text("x")
    job = Job("alice", "batchnorm", notebook=str(files["sub.ipynb"]),
              source=str(files["src.ipynb"]), release=str(files["rel.ipynb"]),
              helpers={"helper.py": str(files["helper.py"])}, max_score=10.0)
    key = job_key(job)
    assert job_key(job) == key
    assert job_key(job.with_(limits=Limits(memory=2**30))) != key
    assert job_key(job.with_(isolation=None, tmp_root="/elsewhere")) == key
    for name in ("src.ipynb", "rel.ipynb", "helper.py"):
        files[name].write_text("y")
        assert job_key(job) != key, name
        key = job_key(job)
    monkeypatch.setattr(state, "grader_fingerprint", lambda: "another grader")
    assert job_key(job) != key
    monkeypatch.undo()
    monkeypatch.setattr(state, "code_fingerprint", lambda registry, name: "other tests")
    assert job_key(job) != key


def test_previous_result_says_why_it_is_not_reused(tmp_path):
    """A kept result is reused only under the same key and when it is not marked for retry."""
    from autograder.grading import state
    from autograder.grading.jobs import Job, Result

    job = Job("alice", "toy", key="k1", state_file=str(tmp_path / "toy" / "alice.json"))
    assert state.previous_result(job) == (state.Kept.NONE, None)
    state.save(job, Result("alice", "toy", "k1", None, 5.0, 5.0, ""), None)
    assert state.previous_result(job)[0] is state.Kept.REUSE
    assert state.previous_result(job.with_(key="k2"))[0] is state.Kept.CHANGED
    state.save(job, Result("alice", "toy", "k1", None, 5.0, 0.0, "", retry=True), None)
    assert state.previous_result(job)[0] is state.Kept.RETRY
    (tmp_path / "toy" / "alice.json").write_text("[1, 2]")
    assert state.previous_result(job)[0] is state.Kept.NONE
