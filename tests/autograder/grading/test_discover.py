"""Discovery of submissions on hostile submission folders (no kernels)."""

import os

import pytest

from autograder.grading.course import CourseAssignment
from autograder.grading.discover import discover

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
    """timestamp.txt that does not parse, overflows or is too long is ignored with a note: the
    submission time is unknown (the notebook's modification time never stands in)."""
    folder = _sub(tmp_path / "subs", "alice")
    with open(os.path.join(folder, "timestamp.txt"), "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    assert job.timestamp is None and not job.problem
    assert "timestamp.txt ignored" in job.notes[0] and why in job.notes[0]


def test_the_time_comes_from_timestamp_txt_never_from_the_file(tmp_path, course):
    """A notebook copied with a plain cp (a new modification time) and no timestamp.txt has no
    submission time; with timestamp.txt its time (converted to UTC) is the submission time."""
    folder = _sub(tmp_path / "subs", "alice")
    os.utime(os.path.join(folder, "toy.ipynb"), (1e9, 1e9))
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    assert job.timestamp is None and job.notes == ()
    with open(os.path.join(folder, "timestamp.txt"), "w") as f:
        f.write("2026-03-29 03:30:00.000000 Europe/Berlin")
    [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
    assert job.timestamp == "2026-03-29 01:30:00.000000"


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
    assert job.timestamp is None and "timestamp.txt ignored" in job.notes[0]


def test_unreadable_folders_get_rows(tmp_path, course):
    """An assignment folder that cannot be listed becomes a row with a reason."""
    if os.geteuid() == 0:
        pytest.skip("root reads every folder")
    folder = _sub(tmp_path / "subs", "alice")
    os.chmod(folder, 0)
    try:
        [job] = discover(str(tmp_path / "subs"), REGISTRY, course)
        assert "cannot be read" in job.problem
    finally:
        os.chmod(folder, 0o755)


def test_names_and_timestamps_reach_reasons_as_shown_text(tmp_path, course):
    """A timestamp.txt and notebook file names made to forge a log line reach the notes and
    problems only escaped (no control or bidi character) and bounded."""
    from tests.support.hostile import FORGING_NOTEBOOK, FORGING_TIMESTAMP
    from tests.support.shown import forbidden
    folder = _sub(tmp_path / "subs", "alice")
    with open(os.path.join(folder, "timestamp.txt"), "w") as f:
        f.write(FORGING_TIMESTAMP)
    bob = _sub(tmp_path / "subs", "bob")
    os.rename(os.path.join(bob, "toy.ipynb"), os.path.join(bob, FORGING_NOTEBOOK))
    for i in range(30):
        with open(os.path.join(bob, f"x\x1b{i}.ipynb"), "w") as f:
            f.write("{}")
    jobs = {j.student: j for j in discover(str(tmp_path / "subs"), REGISTRY, course)}
    note, problem = jobs["alice"].notes[0], jobs["bob"].problem
    assert "timestamp.txt ignored" in note and "misnamed" in problem
    assert forbidden(note) == [] and forbidden(problem) == [] and "and 21 more" in problem
    assert "\\x1b]0;owned\\x07" in note and len(problem) < 2000
