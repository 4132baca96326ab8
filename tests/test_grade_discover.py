"""Discovery, keys and state files of ``grade`` on hostile submission folders (no kernels)."""

import os

import pytest

from autograder import grade
from autograder.grade import CourseAssignment, discover, job_key, state_file

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


@pytest.mark.parametrize("content, why", [
    ("99999999999999999999", "Python int too large"),   # dateutil: OverflowError
    ("not a date", "timestamp.txt ignored"),
    ("x" * 1000, "too large"),
    (b"\xff\xfe", "timestamp.txt ignored"),
])
def test_bad_timestamp_files_are_ignored_with_a_note(tmp_path, course, content, why):
    """timestamp.txt that does not parse, overflows or is too long is ignored with a note and
    the notebook's time stands in."""
    folder = _sub(tmp_path / "subs", "alice")
    with open(os.path.join(folder, "timestamp.txt"), "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    assert job["timestamp"] and not job["problem"]
    assert "timestamp.txt ignored" in job["notes"][0] and why in job["notes"][0]


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_timestamp_fifo_or_link_neither_blocks_nor_is_followed(tmp_path, course, kind):
    """A FIFO would block open() forever and a link could point at any file of the
    instructor's: both are ignored with a note."""
    folder = _sub(tmp_path / "subs", "alice")
    secret = tmp_path / "secret"
    secret.write_text("2020-01-01 00:00:00")
    path = os.path.join(folder, "timestamp.txt")
    os.mkfifo(path) if kind == "fifo" else os.symlink(secret, path)
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    assert not job["timestamp"].startswith("2020") and "timestamp.txt ignored" in job["notes"][0]


def test_odd_folder_names_get_rows_and_safe_state_files(tmp_path, course):
    """Names too long for a file name beside a suffix, or not UTF-8, are reported as invalid
    ids and their state files have hashed names short enough to write."""
    long_name, odd = "s" * 251, os.fsdecode(b"a\xffb")
    for name in (long_name, odd, "alice"):
        _sub(tmp_path / "subs", name)
    jobs = {j["student"]: j for j in discover(str(tmp_path / "subs"), REGISTRY, course)}
    assert set(jobs) == {long_name, odd, "alice"}
    for name in (long_name, odd):
        assert "not a valid student id" in jobs[name]["problem"]
        path = state_file(str(tmp_path / "state"), name, "toy")
        assert len(os.path.basename(path)) < 64
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").close()
    assert state_file("/s", "alice", "toy") == "/s/toy/alice.json"


def test_unreadable_folders_get_rows(tmp_path, course):
    """An assignment folder that cannot be listed becomes a row with a reason."""
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    folder = _sub(tmp_path / "subs", "alice")
    os.chmod(folder, 0)
    try:
        [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
        assert "cannot be read" in job["problem"]
    finally:
        os.chmod(folder, 0o755)


def test_job_key_does_not_read_oversized_notebooks(tmp_path, course, monkeypatch):
    """The key of a notebook over the size limit comes from its size and time, so hashing
    never reads more than the limit (and a FIFO never blocks it)."""
    monkeypatch.setattr(grade, "MAX_NOTEBOOK_BYTES", 10)
    folder = _sub(tmp_path / "subs", "alice", b"x" * 11)
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    key = job_key(job, course)
    with open(os.path.join(folder, "toy.ipynb"), "ab") as f:
        f.write(b"y")
    assert job_key(job, course) != key
    os.unlink(os.path.join(folder, "toy.ipynb"))
    os.mkfifo(os.path.join(folder, "toy.ipynb"))
    assert job_key(job, course)


def test_a_failing_gradebook_write_costs_a_note_not_the_run():
    """Should storing one result fail (here the gradebook raises), the result gets a reason
    and is marked to be graded again; nothing is raised."""
    class Sync(grade._GradebookSync):
        def __init__(self):
            self.log = __import__("logging").getLogger("test")
            self.gb = None

        def write(self, result, job):
            raise OSError(36, "File name too long")

    result = {"student": "alice", "assignment": "toy", "reason": "", "score": 1.0}
    Sync().store(result, {})
    assert result["retry"] and "could not be stored" in result["reason"]
