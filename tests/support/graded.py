"""A toy course whose gradebook and state folder already hold results, written through the
grader's own code (no kernels): for the tests of the commands that read grades back
(``deadlines``, ``export``, ``feedback``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from nbgrader.api import Gradebook

from autograder import files
from autograder.grading import state
from autograder.grading.jobs import PartResult, Result
from autograder.results.gradebook import write_result
from tests.support import toy
from tests.support.run import REPO, TOY_REGISTRY, env

URL = "sqlite:///{}/gradebook.db"
TERM = """timezone = "America/New_York"
[late_policy]
kind = "{kind}"
percent = 10
per = "day"
cap = 50
[assignments.toy]
due = "{due}"
canvas_id = "48213"
title = "Toy: scaling and sums"
"""


def term_text(kind: str = "percent", due: str = "2026-11-01 23:59") -> str:
    """The toy's term file: New York time, 10% per started day at most 50% (or ``kind``), due
    just after the night the clocks go back."""
    return TERM.format(kind=kind, due=due)


def result(student, scale, col_sum, timestamp=None, message="case 1 of 3: s differs"):
    parts = [PartResult("toy-scale", "Scaling", 2.0, scale, "passed all 3 hidden cases"
                        if scale else message),
             PartResult("toy-sum", "Column sums", 3.0, col_sum, "passed all 3 hidden cases"
                        if col_sum else message)]
    return Result(student, "toy", "k", timestamp, 5.0, scale + col_sum, "", parts)


RESULTS = [result("alice", 2.0, 3.0, "2026-11-02 04:00:00.000000"),
           result("bob", 2.0, 0.0, "2026-11-03 05:00:30.000000"),
           result("carol", 2.0, 3.0)]


def graded_course(folder, template=None) -> str:
    """A toy course (copied from ``template`` when given, as nbgrader's generate_assignment
    takes seconds) with alice, bob and carol graded: kept results in the state folder and
    their scores and times in the gradebook."""
    course = os.path.join(str(folder), "course")
    if template:
        shutil.copytree(template, course)
        return course
    toy.build_course(course)
    with Gradebook(URL.format(course), course_id="toycourse") as gb:
        for r in RESULTS:
            gb.update_or_create_assignment("toy")
            write_result(gb, r)
            path = state.state_file(os.path.join(course, state.STATE_DIR), r.student, "toy")
            files.atomic_write(path, r.to_json())
    return course


def cli(*args, timeout=300) -> subprocess.CompletedProcess:
    """``python -m autograder ARGS`` as the instructor runs it."""
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=timeout)


def with_toy_registry(*args) -> list[str]:
    return [*map(str, args), "--registry", TOY_REGISTRY]
