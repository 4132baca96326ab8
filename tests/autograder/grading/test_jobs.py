"""Tests for autograder.grading.jobs: jobs and results as plain data."""

import pytest

from autograder.grading.jobs import Job, PartResult, Result
from autograder.grading.timings import Span, Timings
from autograder.sandbox.isolation import Isolation
from autograder.sandbox.limits import Limits


def test_a_job_travels_as_plain_data_unchanged():
    """Job.to_dict holds only plain values, and Job.from_dict gives back an equal job."""
    job = Job("alice", "toy", notebook="/s/alice/toy/toy.ipynb", notes=("a note",),
              helpers={"data.txt": "/c/release/toy/data.txt"}, limits=Limits(cell_timeout=7),
              isolation=Isolation("/usr/bin/bwrap", False, None, ["n"]), fault_retry=True)
    data = job.to_dict()
    assert isinstance(data["limits"], dict) and isinstance(data["isolation"], dict)
    assert isinstance(data["notes"], list)
    assert Job.from_dict(data) == job


def test_something_else_is_not_a_job():
    """Unknown fields or a non-dict are refused with ValueError."""
    with pytest.raises(ValueError):
        Job.from_dict({"student": "a", "assignment": "b", "shell": "rm -rf /"})
    with pytest.raises(ValueError):
        Job.from_dict(["alice"])


def test_a_result_keeps_its_timings_through_json():
    """The timings of a result are kept in its JSON and read back."""
    r = Result("alice", "toy", "k", None, 5.0, 2.0, "why",
               parts=[PartResult("p", "P", 5.0, 2.0, "")],
               timings=Timings(kernel=Span(1.5, 0.5), total=Span(3.0, 1.0)))
    back = Result.from_json(r.to_json())
    assert back == r and back.timings == r.timings
