"""Tests for autograder.results.report: the class summary of a partial run."""

from autograder.grading.jobs import Result
from autograder.results import report


def _result(student, score, interrupted=False):
    r = Result(student, "toy", "k", None, 5.0, score, "not graded" if interrupted else "")
    r.interrupted = r.retry = interrupted
    return r


def test_a_partial_run_says_so_and_leaves_ungraded_rows_out_of_its_figures():
    """Submissions an interrupted run did not grade are counted as not graded, not as
    zeros, and the summary says the grades are partial."""
    text = report.summary([_result("a", 5.0), _result("b", 3.0), _result("c", 0.0, True)])
    assert text.splitlines()[0] == ("class summary (partial: 1 of 3 submissions not graded, "
                                    "the run was interrupted):")
    assert "toy: 2 submissions, mean 4.00 / 5" in text and "min 3" in text
    assert report.summary([_result("a", 5.0)]).splitlines()[0] == "class summary:"
