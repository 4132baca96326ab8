"""What grade --student/--assignment/--part chooses, and what it refuses."""

import argparse

import pytest

from autograder.grading.jobs import Job
from autograder.grading.selection import Selection, part_arg
from tests.support.toy import ASSIGNMENTS

JOBS = [Job("alice", "toy"), Job("bob", "toy"), Job("bob", "quiz")]


def test_students_and_assignments_narrow_the_run():
    """--student and --assignment choose the submissions matching both; --part chooses its
    assignment's submissions and only that part; --assignment chooses a whole notebook."""
    assert [j.ident for j in JOBS if Selection(("bob",)).chooses(j)] == [
        ("bob", "toy"), ("bob", "quiz")]
    sel = Selection(("bob",), parts=(("toy", "toy-sum"),))
    assert [j.ident for j in JOBS if sel.chooses(j)] == [("bob", "toy")]
    assert sel.parts_of("toy") == ("toy-sum",) and sel.describe(JOBS[1]) == "bob/toy (toy-sum)"
    assert Selection(assignments=("toy",), parts=(("toy", "toy-sum"),)).parts_of("toy") == ()
    assert not Selection().chooses(JOBS[0])


@pytest.mark.parametrize("sel, fresh, why", [
    (Selection(("zed",)), False, "no submission folder for student zed"),
    (Selection(assignments=("nope",)), False, "unknown assignment 'nope'"),
    (Selection(parts=(("toy", "toy-mul"),)), False, "has no part 'toy-mul'"),
    (Selection(("alice",)), True, "--fresh regrades everything"),
    (Selection(("alice",), parts=(("toy", "toy-sum"),)), False, ""),
])
def test_a_selection_that_names_nothing_is_refused(sel, fresh, why):
    """An unknown student, assignment or part, or --fresh with a selection, is refused."""
    problem = sel.check(JOBS, ASSIGNMENTS, fresh)
    assert (why in problem) if why else problem == ""


def test_part_arguments_need_an_assignment_and_a_part():
    """--part takes ASSIGNMENT:PART-ID."""
    assert part_arg("toy:toy-sum") == ("toy", "toy-sum")
    with pytest.raises(argparse.ArgumentTypeError, match="ASSIGNMENT:PART-ID"):
        part_arg("toy-sum")
