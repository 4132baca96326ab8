"""Where a notebook's grading time goes: wall-clock and CPU seconds per phase
(:class:`Timings`, carried in every :class:`~autograder.grading.jobs.Result`), and the
:class:`Stopwatch` that measures them.

The phases of one notebook, in the order they happen:

* ``references``: the grader draws each part's cases and computes the reference answers
  (and writes the case files), before any kernel starts;
* ``sandbox``: from the launch of the kernel's command (its control group, rlimits, separate
  user, bubblewrap's namespaces and mounts) until the kernel's Python runs its first line;
* ``kernel``: from there until the kernel answers (the interpreter, ipykernel and its
  sockets);
* ``imports``: the code cells before the notebook's first answer (solution) cell, i.e. the
  notebook's set-up: its imports (torch, for the PyTorch assignments) and helpers;
* ``student``: every other code cell as the student handed it in: answers, visible tests;
* ``hidden``: the hidden test blocks run in the kernel, and judging their records in the
  grader.

``total`` is the whole grading of the notebook (reading and rebuilding it, removing its
temporary files and, when it was graded twice, both attempts); what the phases do not cover is
:meth:`Timings.other`. CPU seconds are those of the grading thread plus those of the kernel's
processes (a process the notebook started counts once it has ended).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PHASES = ("references", "sandbox", "kernel", "imports", "student", "hidden")


@dataclass
class Span:
    """Seconds of wall-clock time and of CPU time."""

    wall: float = 0.0
    cpu: float = 0.0

    def __add__(self, other: Span) -> Span:
        return Span(self.wall + other.wall, self.cpu + other.cpu)

    def __sub__(self, other: Span) -> Span:
        return Span(self.wall - other.wall, self.cpu - other.cpu)


@dataclass
class Timings:
    """Wall and CPU seconds of each phase of grading one notebook (see the module docstring);
    sums over a class with ``+``."""

    references: Span = field(default_factory=Span)
    sandbox: Span = field(default_factory=Span)
    kernel: Span = field(default_factory=Span)
    imports: Span = field(default_factory=Span)
    student: Span = field(default_factory=Span)
    hidden: Span = field(default_factory=Span)
    total: Span = field(default_factory=Span)

    def __add__(self, other: Timings) -> Timings:
        return Timings(**{f.name: getattr(self, f.name) + getattr(other, f.name)
                          for f in dataclasses.fields(self)})

    def phase(self, name: str) -> Span:
        return getattr(self, name)

    def other(self) -> Span:
        """What the phases do not cover: reading and rebuilding the notebook, cleaning up."""
        covered = Span()
        for name in PHASES:
            covered = covered + self.phase(name)
        return self.total - covered

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: [round(getattr(self, f.name).wall, 6), round(getattr(self, f.name).cpu, 6)]
                for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> Timings:
        """Timings from :meth:`to_dict`'s form; ``ValueError`` for anything else."""
        if not isinstance(data, dict):
            raise ValueError("timings are a JSON object")
        spans = {}
        for f in dataclasses.fields(cls):
            wall, cpu = data.get(f.name, (0.0, 0.0))
            spans[f.name] = Span(float(wall), float(cpu))
        return cls(**spans)


class Stopwatch:
    """Laps of wall time and of CPU time (this thread's, plus ``external()``: the CPU seconds
    of processes working for it, such as the kernel)."""

    def __init__(self, external: Callable[[], float] | None = None):
        self.external = external or (lambda: 0.0)
        self._wall, self._cpu = time.monotonic(), self._cpu_now()

    def _cpu_now(self) -> float:
        return time.thread_time() + self.external()

    def lap(self) -> Span:
        """The time since the previous lap (or the start)."""
        wall, cpu = time.monotonic(), self._cpu_now()
        span = Span(wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return span
