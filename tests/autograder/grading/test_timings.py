"""Tests for autograder.grading.timings: the phases of a notebook's grading time."""

import time

import pytest

from autograder.grading.timings import PHASES, Span, Stopwatch, Timings


def test_other_is_what_the_phases_do_not_cover():
    """other() is the total less every phase, for wall and CPU time alike."""
    t = Timings(kernel=Span(2.0, 1.0), student=Span(1.0, 0.5), total=Span(4.0, 2.0))
    assert t.other() == Span(1.0, 0.5)


def test_timings_add_up_over_a_class_and_travel_as_plain_data():
    """+ adds every phase; to_dict/from_dict give the same timings; a malformed dict is
    refused."""
    a = Timings(**{p: Span(1.0, 0.5) for p in PHASES}, total=Span(7.0, 3.0))
    b = Timings(hidden=Span(2.0, 2.0), total=Span(2.0, 2.0))
    s = a + b
    assert s.hidden == Span(3.0, 2.5) and s.total == Span(9.0, 5.0) and s.kernel == Span(1, .5)
    assert Timings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        Timings.from_dict({"kernel": "fast"})


def test_stopwatch_counts_this_threads_cpu_and_the_external_source():
    """A lap holds the thread's CPU work and what the external counter added meanwhile."""
    extra = [10.0]
    watch = Stopwatch(lambda: extra[0])
    t = time.thread_time()
    while time.thread_time() - t < 0.05:
        pass
    extra[0] += 2.0
    lap = watch.lap()
    assert lap.cpu >= 2.05 and lap.wall > 0
    assert watch.lap().cpu < 1.0
