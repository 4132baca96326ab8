"""Tests for autograder.results.timing: where the grading time went, in words."""

from autograder.grading.timings import Span, Timings
from autograder.results import timing


def test_summary_adds_the_class_up_per_phase():
    """The summary counts the notebooks and sums each phase over them, with its share."""
    one = Timings(kernel=Span(2.0, 1.0), imports=Span(1.0, 1.0), total=Span(4.0, 2.0))
    text = timing.summary([one, one])
    assert "2 notebooks graded" in text
    kernel = next(line for line in text.splitlines() if "kernel start" in line).split()
    assert kernel[-5:] == ["4.0", "50.0%", "2.0", "50.0%", "2.00"]
    other = next(line for line in text.splitlines() if "other" in line).split()
    assert other[-5:-3] == ["2.0", "25.0%"]


def test_line_names_every_phase():
    """A notebook's log line gives the total and every phase, 'other' included."""
    text = timing.line(Timings(hidden=Span(0.25, 0.125), total=Span(1.0, 0.5)))
    assert text.startswith("wall 1.00 s, cpu 0.50 s")
    for name in ("references", "sandbox", "kernel", "imports", "student", "hidden 0.25/0.12",
                 "other 0.75/0.38"):
        assert name in text
