"""The student's feedback page (autograder.results.feedback)."""

from autograder.grading.jobs import CheckResult, PartResult, Result
from autograder.results.feedback import feedback_html


def test_a_part_scored_by_checks_shows_one_row_per_check():
    """Each check of a part gets a row: passed or not, its points and, when failed, why; a
    passed part's row shows its message without a "passed:" prefix."""
    checks = [CheckResult("running mean", 1, 1), CheckResult("running variance", 1, 0,
                                                             "wrong on every hidden case")]
    parts = [PartResult("stats", "Running statistics", 2, 1, "running variance: wrong", checks),
             PartResult("eval", "Evaluation", 1, 1, "right on all 3 hidden cases",
                        [CheckResult("hidden cases", 1, 1)])]
    page = feedback_html("ada", [Result("ada", "bn", "k", None, 3, 2, "", parts)])
    assert "<td>&#10003; running mean</td><td>1 / 1</td><td>right</td>" in page
    assert "<td>&#10007; running variance</td><td>0 / 1</td><td>wrong on every hidden case" in page
    assert "<td>right on all 3 hidden cases</td>" in page and "passed:" not in page
    assert page.count("class='check") == 2
