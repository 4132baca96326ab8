"""The typed data that flows through grading: a :class:`Job` goes to a worker, a :class:`Result`
comes back, with one :class:`PartResult` per graded part.

Jobs and results are plain data: every field is a string, number, bool, list or dict of those
(:class:`~autograder.sandbox.limits.Limits` and :class:`~autograder.sandbox.isolation.Isolation`
are dataclasses of plain fields), so they travel between processes (and, as dicts, between
machines: :meth:`Job.to_dict` / :meth:`Job.from_dict`, :meth:`Result.to_dict` /
:meth:`Result.from_dict`) unchanged. A result is kept in the state folder as JSON
(:meth:`Result.to_json`) and read back with :meth:`Result.from_json`, which refuses anything
that is not a result. Each result carries the :class:`~autograder.grading.timings.Timings` of
its grading.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..sandbox.isolation import Isolation
from ..sandbox.limits import Limits
from .timings import Timings


@dataclass
class CheckResult:
    """The verdict on one check of a part (:class:`~autograder.assignments.spec.Check`): points
    earned of ``points`` and, when not all were, what was wrong."""

    name: str
    points: float
    score: float
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.points

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(name=str(data["name"]), points=float(data["points"]),
                   score=float(data["score"]), message=str(data.get("message", "")))


@dataclass
class PartResult:
    """The verdict on one graded part: points earned of ``points`` (the sum of its checks'),
    a message saying why, and the outcome of each check. The gradebook keeps ``score`` as the
    part's grade cell's score. ``usage`` holds what running the part's test cell took, where
    measured: ``seconds`` (wall clock), ``cpu_seconds`` and ``memory_peak`` (the kernel's
    peak, in bytes, by the end of the part)."""

    id: str
    title: str
    points: float
    score: float
    message: str
    checks: list[CheckResult] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.score >= self.points

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartResult:
        usage = data.get("usage") or {}
        return cls(id=str(data["id"]), title=str(data["title"]), points=float(data["points"]),
                   score=float(data["score"]), message=str(data["message"]),
                   checks=[CheckResult.from_dict(c) for c in data.get("checks", [])],
                   usage={str(k): float(v) for k, v in dict(usage).items()})


@dataclass(frozen=True)
class Job:
    """One (student, assignment) folder to grade, or to report.

    ``notebook`` is the handed-in notebook's path (None when ``problem`` says why there is
    nothing to run); ``notes`` are remarks that go into the result's reason (e.g. an unusable
    ``timestamp.txt``). The fields after ``notes`` are filled in by the grade command before the
    job goes to a worker: ``key`` (what the result depends on, see
    :func:`autograder.grading.state.job_key`), where the result is kept, the course's source
    and release notebooks and helper files, the registry to load the assignment from, the
    limits and isolation, the run's temporary folder and whether a fault with evidence of a
    cause outside the notebook (a busy machine) earns a second attempt.
    """

    student: str
    assignment: str
    notebook: str | None = None
    problem: str = ""
    max_score: float = 0.0
    timestamp: str | None = None
    notes: tuple[str, ...] = ()
    key: str = ""
    state_file: str = ""
    source: str | None = None
    release: str | None = None
    helpers: dict[str, str] = field(default_factory=dict)
    registry: str = ""
    limits: Limits = field(default_factory=Limits)
    isolation: Isolation | None = None
    tmp_root: str | None = None
    fault_retry: bool = False
    regrade_parts: tuple[str, ...] = ()
    kept_parts: tuple[PartResult, ...] = ()

    @property
    def ident(self) -> tuple[str, str]:
        return self.student, self.assignment

    def with_(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The job as plain data (strings, numbers, bools, lists, dicts, None)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["notes"] = list(self.notes)
        data["helpers"] = dict(self.helpers)
        data["limits"] = self.limits.as_dict()
        data["isolation"] = (dataclasses.asdict(self.isolation)
                             if self.isolation is not None else None)
        data["regrade_parts"] = list(self.regrade_parts)
        data["kept_parts"] = [dataclasses.asdict(p) for p in self.kept_parts]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Job:
        """A job from :meth:`to_dict`'s form; ``ValueError`` for anything else."""
        if not isinstance(data, dict):
            raise ValueError("a job is a dict")
        try:
            fields = {f.name for f in dataclasses.fields(cls)}
            unknown = set(data) - fields
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)}")
            kw = dict(data)
            kw["notes"] = tuple(str(n) for n in kw.get("notes", ()))
            kw["helpers"] = {str(k): str(v) for k, v in kw.get("helpers", {}).items()}
            kw["limits"] = Limits(**kw.get("limits", {}))
            iso = kw.get("isolation")
            kw["isolation"] = Isolation(**iso) if iso is not None else None
            kw["regrade_parts"] = tuple(str(p) for p in kw.get("regrade_parts", ()))
            kw["kept_parts"] = tuple(PartResult.from_dict(p) for p in kw.get("kept_parts", ()))
            return cls(**kw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a job: {exc}") from None


@dataclass
class Result:
    """What grading one job gave. ``retry`` marks a result the grader itself could not
    produce (it is graded again on the next run); ``autograded`` names the autograded notebook
    kept beside the result in the state folder; ``cleanup`` says what temporary files could not
    be removed; ``timings`` where the grading time went. ``outside`` (evidence that a fault came
    from outside the notebook, e.g. a machine short of CPU or memory) and ``notebook_text`` (the
    autograded notebook) travel from the grading of a notebook to the worker only; they are not
    kept. ``interrupted`` marks a result the stop of a run cut short
    (:mod:`autograder.grading.interrupt`): it is never kept."""

    student: str
    assignment: str
    key: str
    timestamp: str | None
    max_score: float
    score: float
    reason: str
    parts: list[PartResult] = field(default_factory=list)
    autograded: str | None = None
    retry: bool = False
    cleanup: str = ""
    outside: str = field(default="", compare=False)
    timings: Timings = field(default_factory=Timings, compare=False)
    notebook_text: str | None = field(default=None, compare=False, repr=False)
    interrupted: bool = field(default=False, compare=False)

    KEPT = ("student", "assignment", "key", "timestamp", "max_score", "score", "reason",
            "parts", "autograded", "retry", "cleanup", "timings")

    @property
    def ident(self) -> tuple[str, str]:
        return self.student, self.assignment

    def scores_by_part(self) -> dict[str, float]:
        return {p.id: p.score for p in self.parts}

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.KEPT}
        data["parts"] = [dataclasses.asdict(p) for p in self.parts]
        data["timings"] = self.timings.to_dict()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> Result:
        """A result from :meth:`to_dict`'s form; ``ValueError`` for anything else."""
        if not isinstance(data, dict):
            raise ValueError("a result is a JSON object")
        try:
            return cls(student=str(data["student"]), assignment=str(data["assignment"]),
                       key=str(data["key"]), timestamp=data.get("timestamp"),
                       max_score=float(data["max_score"]), score=float(data["score"]),
                       reason=str(data.get("reason", "")),
                       parts=[PartResult.from_dict(p) for p in data.get("parts", [])],
                       autograded=data.get("autograded"), retry=bool(data.get("retry")),
                       cleanup=str(data.get("cleanup", "")),
                       timings=Timings.from_dict(data.get("timings", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a result: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Result:
        return cls.from_dict(json.loads(text))

    def add_reason(self, text: str) -> None:
        """Append ``text`` to the reason ("; "-separated)."""
        self.reason = "; ".join(r for r in (self.reason, text) if r)

    def keep_parts(self, kept: tuple[PartResult, ...], regraded: tuple[str, ...]) -> None:
        """Take this run's verdicts only for the parts in ``regraded``; every other part keeps
        its verdict from ``kept`` (an earlier run's), and the score is their sum."""
        earlier = {p.id: p for p in kept}
        self.parts = [p if p.id in regraded or p.id not in earlier else earlier[p.id]
                      for p in self.parts]
        self.score = float(sum(p.score for p in self.parts))
        self.add_reason(f"only {', '.join(regraded)} graded again; the other parts keep "
                        "their earlier scores")
