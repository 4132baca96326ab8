"""Tests for autograder.grading.jobs: jobs and results as plain data, their kept JSON form, and
keeping earlier verdicts for grade --part."""

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


def parts(scale, col_sum, message):
    return [PartResult("toy-scale", "Scaling", 2.0, scale, message, usage={"seconds": 1.5}),
            PartResult("toy-sum", "Column sums", 3.0, col_sum, message)]


def test_only_the_regraded_part_takes_the_new_verdict():
    """With --part toy-sum, toy-sum's new verdict counts and toy-scale keeps its earlier one
    (even though the new run failed it); the score is their sum and the reason says so."""
    new = Result("alice", "toy", "k", None, 5.0, 3.0, "", parts(0.0, 3.0, "new"))
    new.keep_parts(tuple(parts(2.0, 0.0, "earlier")), ("toy-sum",))
    assert [(p.id, p.score, p.message) for p in new.parts] == [
        ("toy-scale", 2.0, "earlier"), ("toy-sum", 3.0, "new")]
    assert new.score == 5.0 and "only toy-sum graded again" in new.reason


def test_usage_figures_survive_the_state_file():
    """A part's usage goes into the kept JSON and comes back; an older file without it reads."""
    r = Result("alice", "toy", "k", None, 5.0, 2.0, "", parts(2.0, 0.0, "m"))
    back = Result.from_json(r.to_json())
    assert back == r and back.parts[0].usage == {"seconds": 1.5}
    data = r.to_dict()
    del data["parts"][0]["usage"]
    assert Result.from_dict(data).parts[0].usage == {}


def test_a_job_of_grade_part_travels_with_its_kept_verdicts():
    """A --part job's regrade_parts and kept_parts survive to_dict/from_dict (a Dask worker
    gets them as plain data)."""
    job = Job("alice", "toy", regrade_parts=("toy-sum",),
              kept_parts=tuple(parts(2.0, 0.0, "earlier")))
    data = job.to_dict()
    assert isinstance(data["kept_parts"][0], dict)
    assert Job.from_dict(data) == job
