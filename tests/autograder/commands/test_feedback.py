"""``python -m autograder feedback``: the grader's pages where nbgrader's release_feedback
takes them, from the gradebook and the kept verdicts."""

import os

import pytest
from nbgrader.api import Gradebook

from tests.support.graded import URL, cli, graded_course
from tests.support.run import once

pytestmark = pytest.mark.xdist_group("feedback_cli")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return once("graded_toy_feedback", tmp_path_factory, lambda folder: graded_course(folder))


def test_pages_are_placed_for_release_feedback(tmp_path, template):
    """alice, handed in through the exchange (a submission secret), gets
    feedback/alice/toy/toy.html with the secret and time beside it, showing a score changed by
    hand; bob, collected from an LMS (no secret), is reported and gets only the page in --out;
    no page shows hidden-test code."""
    course = graded_course(tmp_path, template)
    for student in ("alice", "bob"):
        os.makedirs(os.path.join(course, "submitted", student, "toy"), exist_ok=True)
    with open(os.path.join(course, "submitted", "alice", "toy", "submission_secret.txt"),
              "w") as f:
        f.write("abc123")
    with Gradebook(URL.format(course), course_id="toycourse") as gb:
        gb.find_grade("toy-scale", "toy", "toy", "alice").manual_score = 1.0
        gb.db.commit()
    proc = cli("feedback", "--course", course, "--student", "alice", "--student", "bob",
               "--out", tmp_path / "pages")
    assert proc.returncode == 0, proc.stderr
    placed = os.path.join(course, "feedback", "alice", "toy")
    assert sorted(os.listdir(placed)) == ["submission_secret.txt", "timestamp.txt", "toy.html"]
    page = open(os.path.join(placed, "toy.html")).read()
    assert "toy: 4 / 5" in page and "score changed by your instructor" in page
    assert "1 pages placed" in proc.stdout and "bob/toy: no usable submission_secret.txt" \
        in proc.stdout
    assert not os.path.exists(os.path.join(course, "feedback", "bob"))
    assert sorted(os.listdir(tmp_path / "pages")) == ["alice.html", "bob.html"]
    for text in (page, (tmp_path / "pages" / "bob.html").read_text()):
        assert "_grading_harness" not in text and "BEGIN HIDDEN TESTS" not in text


def test_a_missing_course_is_exit_2(tmp_path):
    """Without a course folder: exit 2 and a message."""
    proc = cli("feedback", "--course", tmp_path / "nope")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
