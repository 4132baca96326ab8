"""Where the grading time went, in words: one line per notebook for grades.log (:func:`line`)
and the totals over a class (:func:`summary`), from the
:class:`~autograder.grading.timings.Timings` each result carries (phases defined there)."""

from __future__ import annotations

from ..grading.timings import PHASES, Span, Timings

NAMES = {"references": "references (grader)", "sandbox": "sandbox start",
         "kernel": "kernel start", "imports": "imports (cells before the first answer)",
         "student": "student's cells", "hidden": "hidden checks", "other": "other (read, rebuild, "
         "clean up)"}


def _rows(t: Timings) -> list[tuple[str, Span]]:
    return [(name, t.phase(name)) for name in PHASES] + [("other", t.other())]


def line(t: Timings) -> str:
    """One notebook: ``wall 4.10 s, cpu 3.20 s: references 0.02/0.02, sandbox ...``."""
    parts = ", ".join(f"{name} {span.wall:.2f}/{span.cpu:.2f}" for name, span in _rows(t))
    return f"wall {t.total.wall:.2f} s, cpu {t.total.cpu:.2f} s (wall/cpu s): {parts}"


def summary(timings: list[Timings]) -> str:
    """The class totals per phase (wall and CPU seconds, share of the total, per notebook)."""
    n = len(timings)
    total = Timings()
    for t in timings:
        total = total + t
    head = (f"where the time went ({n} notebooks graded; wall time of the notebooks added up, "
            "CPU of the grader and the kernels):")
    lines = [head, f"  {'phase':42s} {'wall s':>9s} {'share':>6s} {'cpu s':>9s} {'share':>6s} "
                   f"{'wall/nb':>8s}"]
    for name, span in [*_rows(total), ("total", total.total)]:
        ws = span.wall / total.total.wall if total.total.wall > 0 else 0.0
        cs = span.cpu / total.total.cpu if total.total.cpu > 0 else 0.0
        per = span.wall / n if n else 0.0
        lines.append(f"  {NAMES.get(name, name):42s} {span.wall:9.1f} {ws:6.1%} {span.cpu:9.1f} "
                     f"{cs:6.1%} {per:8.2f}")
    return "\n".join(lines)
