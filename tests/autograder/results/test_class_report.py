"""The class report: distribution, pass rates, failure causes, time per part, similar pairs;
opened in a real browser."""

import pytest

from autograder.grading.jobs import PartResult, Result
from autograder.results import class_report
from autograder.results.report import Row
from autograder.results.similarity import Pair
from tests.support.browser import chromium


def result(student, sum_msg, passed=False, usage=None):
    parts = [PartResult("toy-scale", "Scaling", 2.0, 2.0, "passed", usage=dict(usage or {})),
             PartResult("toy-sum", "Column sums", 3.0, 3.0 if passed else 0.0, sum_msg,
                        usage=dict(usage or {}))]
    return Result(student, "toy", "k", None, 5.0, sum(p.score for p in parts), "", parts)


RESULTS = [
    result("ann", "case 1 of 3: s has shape (2,), expected (4,)"),
    result("ben", "case 2 of 3: s has shape (5,), expected (3,)"),
    result("cat", "case 1 of 3 raised NameError: name 'cat_helper' is not defined"),
    result("dan", "passed all 3 hidden cases", passed=True,
           usage={"seconds": 1.5, "memory_peak": 50 * 2**20}),
]
TABLE = [Row("toy", s, score=r.score, max_score=5.0) for s, r in
         zip("ann ben cat dan".split(), RESULTS, strict=True)] + [
    Row("toy", "eve", max_score=5.0, reason="no submission", submitted=False)]
PAIRS = [Pair("toy", "sum-impl", "ann", "ben", 0.97, 0.12)]


def test_messages_differing_in_numbers_are_one_cause():
    """Two shape errors with other numbers are one cause of two students; the NameError is
    another; the student's own id inside a message is blanked in the examples."""
    [scale, col_sum] = class_report.part_stats(RESULTS)
    assert (scale.passed, scale.graded, col_sum.passed, col_sum.graded) == (4, 4, 1, 4)
    assert col_sum.causes == {"case # of #: s has shape (#,), expected (#,)": 2,
                              "case # of # raised NameError: name '[a student]_helper' is not "
                              "defined": 1}
    examples = col_sum.examples["case # of #: s has shape (#,), expected (#,)"]
    assert examples == ["case 1 of 3: s has shape (2,), expected (4,)",
                        "case 2 of 3: s has shape (5,), expected (3,)"]


def test_the_page_has_every_section():
    """Distribution with the missing count, pass rates, causes, usage where measured and the
    flagged pair (for review, never penalised)."""
    page = class_report.report_html(TABLE, RESULTS, PAIRS)
    assert "4 submissions, 1 missing" in page
    assert "1 / 4" in page and "25%" in page
    assert "case # of #: s has shape (#,), expected (#,)" in page
    assert "1.50 / 1.50" in page and "50 MiB" in page
    assert "ann, ben" in page and "0.97" in page and "nothing here changes a score" in page
    assert "ann" not in page.split("id='failures'")[1].split("id='usage'")[0]


def test_without_usage_figures_the_report_says_so():
    """Results that carry no time or memory figures give a plain note, not an empty table."""
    page = class_report.report_html(TABLE, RESULTS[:3], [])
    assert "Not recorded" in page and "No pair was flagged" in page


@pytest.mark.browser
def test_the_report_renders_in_a_real_browser(tmp_path):
    """Opened in headless Chromium: no console error, no request beyond the page itself, the
    histogram drawn (ten bars, three students at 40%, one at 100%), every table present."""
    path = tmp_path / "report.html"
    class_report.write_report(str(path), TABLE, RESULTS, PAIRS)
    with chromium() as browser:
        browser.get(path.as_uri())
        assert browser.title == "Class report"
        bars = browser.find_elements("css selector", "svg.hist rect")
        heights = [bar.size["height"] for bar in bars]
        assert len(bars) == 10 and heights[4] > heights[9] > 0 == heights[0]  # 3 at 40%, 1 at 100%
        assert len(browser.find_elements("css selector", "table")) == 4
        assert len(browser.find_elements("css selector", "tr.pair")) == 1
        requests = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert requests == []
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == []
