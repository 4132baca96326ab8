"""``python -m autograder deadlines``: the term installed into the course and its gradebook."""

import datetime as dt
import os

import pytest
from nbgrader.api import Gradebook

from autograder.results import term
from tests.support.graded import URL, cli, graded_course, term_text, with_toy_registry
from tests.support.run import once

pytestmark = pytest.mark.xdist_group("deadlines_cli")

@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return once("graded_toy_deadlines", tmp_path_factory,
                lambda folder: graded_course(folder))


def install(tmp_path, template, kind="percent", due="2026-11-01 23:59"):
    course = graded_course(tmp_path, template)
    path = tmp_path / "term.toml"
    path.write_text(term_text(kind, due))
    return course, cli("deadlines", *with_toy_registry(path, "--course", course))


def penalties(course):
    with Gradebook(URL.format(course), course_id="toycourse") as gb:
        return {s.student_id: (s.assignment.duedate, s.late_submission_penalty)
                for s in gb.find_assignment("toy").submissions}


def test_due_dates_land_in_the_gradebook_with_the_penalties(tmp_path, template):
    """The due date (23:59 EST, after the DST change: 04:59 UTC) is nbgrader's
    Assignment.duedate; bob, 1 d 1 min late, loses 20% of 2 points; alice, at 23:00 EST, is on
    time (read as EDT she would be late); the table shows both times; the term is installed."""
    course, proc = install(tmp_path, template)
    assert proc.returncode == 0, proc.stderr
    assert "toy: due 2026-11-01 23:59 EST (2026-11-02 04:59 UTC)" in proc.stdout
    due = dt.datetime(2026, 11, 2, 4, 59)
    assert penalties(course) == {"alice": (due, 0.0), "bob": (due, pytest.approx(0.4)),
                                 "carol": (due, 0.0)}
    assert term.installed(course).assignments["toy"].due == due.replace(tzinfo=dt.UTC)


def test_changing_the_policy_changes_the_grades_without_regrading(tmp_path, template):
    """Installing the term again with 'zero' recomputes bob's penalty from his score."""
    course, _ = install(tmp_path, template)
    path = tmp_path / "term.toml"
    path.write_text(term_text("zero"))
    proc = cli("deadlines", *with_toy_registry(path, "--course", course))
    assert proc.returncode == 0, proc.stderr
    assert penalties(course)["bob"][1] == 2.0


def test_a_time_the_clock_skips_is_refused_and_nothing_installed(tmp_path, template):
    """02:30 on the spring-forward night does not exist in New York: exit 2, the message names
    the entry, and neither the course nor the gradebook changes."""
    course, proc = install(tmp_path, template, due="2026-03-08 02:30")
    assert proc.returncode == 2
    assert "[assignments.toy] due: '2026-03-08 02:30' does not exist" in proc.stderr
    assert not os.path.exists(os.path.join(course, term.INSTALLED))
    assert penalties(course)["bob"] == (None, 0.0)


def test_a_missing_course_folder_is_exit_2(tmp_path):
    """Without a course folder the command says to run release first."""
    (tmp_path / "t.toml").write_text(term_text("none"))
    proc = cli("deadlines", *with_toy_registry(tmp_path / "t.toml", "--course",
                                               tmp_path / "nope"))
    assert proc.returncode == 2 and "release" in proc.stderr
