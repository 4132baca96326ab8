"""What ``grade --student S --assignment A --part A:PART`` asks to regrade.

A selection narrows a run: the chosen submissions are graded again whatever the state folder
holds, every other submission is left as it was (its kept result and gradebook entry stand;
only one that was never graded, or that the grader could not grade, is graded now, since it
has no result to keep). ``--student`` and ``--assignment`` choose submissions (each repeatable;
both given: the submissions of those students to those assignments); ``--part A:PART`` chooses
every submission of assignment A (of the chosen students) and takes only that part's new
verdict: the notebook runs again as a whole (parts share one kernel, so a part cannot run
alone), and the other parts keep their earlier verdicts, so fixing one part's test moves no
other score (:meth:`autograder.grading.jobs.Result.keep_parts`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass

from ..text import display_name
from .jobs import Job


@dataclass(frozen=True)
class Selection:
    """The students, assignments and ``(assignment, part)`` pairs chosen; empty: all."""

    students: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()
    parts: tuple[tuple[str, str], ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.students or self.assignments or self.parts)

    @property
    def chosen_assignments(self) -> set[str]:
        return set(self.assignments) | {a for a, _ in self.parts}

    def chooses(self, job: Job) -> bool:
        """Whether ``job`` is to be regraded."""
        return self.active and (not self.students or job.student in self.students) and (
            not self.chosen_assignments or job.assignment in self.chosen_assignments)

    def parts_of(self, assignment: str) -> tuple[str, ...]:
        """The parts of ``assignment`` to regrade alone; () when the whole notebook counts (no
        ``--part`` for it, or ``--assignment`` chose it whole)."""
        if assignment in self.assignments:
            return ()
        return tuple(p for a, p in self.parts if a == assignment)

    def describe(self, job: Job) -> str:
        parts = self.parts_of(job.assignment)
        return (f"{display_name(job.student)}/{display_name(job.assignment)}"
                + (f" ({', '.join(parts)})" if parts else ""))

    def check(self, jobs: Iterable[Job], registry: dict, fresh: bool = False) -> str:
        """"" when the selection can be done, else what is wrong with it."""
        if not self.active:
            return ""
        if fresh:
            return "--fresh regrades everything; it cannot be combined with --student, " \
                   "--assignment or --part"
        jobs = list(jobs)
        for a in sorted(self.chosen_assignments):
            if a not in registry:
                return f"unknown assignment {a!r} (known: {', '.join(sorted(registry))})"
        for a, p in self.parts:
            ids = [part.id for part in registry[a].parts]
            if p not in ids:
                return f"assignment {a!r} has no part {p!r} (its parts: {', '.join(ids)})"
        found = {job.student for job in jobs}
        missing = [s for s in self.students if s not in found]
        if missing:
            return f"no submission folder for student {', '.join(missing)} in the submissions"
        if not any(self.chooses(job) for job in jobs):
            return "nothing to regrade: no submission matches the given --student, " \
                   "--assignment and --part"
        return ""


def part_arg(text: str) -> tuple[str, str]:
    """``ASSIGNMENT:PART-ID`` for ``--part`` (argparse type)."""
    assignment, sep, part = text.partition(":")
    if not sep or not assignment or not part:
        raise argparse.ArgumentTypeError(f"--part takes ASSIGNMENT:PART-ID (e.g. "
                                         f"dropout:dropout-forward), not {text!r}")
    return assignment, part
