"""The term file: due dates per assignment in the course's timezone, per-student extensions, the
late policy and the LMS's ids of the assignments, in one TOML file the instructor keeps::

    timezone = "Europe/Berlin"            # IANA name; every local time below is read in it

    [late_policy]
    kind = "percent"                      # none | zero | percent
    percent = 10                          # of the score earned, per started day (or hour)
    per = "day"                           # day | hour
    cap = 50                              # percent at most
    grace = "15min"                       # optional

    [assignments.dropout]
    due = "2026-10-20 23:59"              # or "2026-10-20 23:59 -04:00", "...Z"
    canvas_id = "48213"                   # optional: the Canvas assignment id, for the export
    title = "Assignment 1: Dropout"       # optional: the LMS column's title (default: the name)

    [extensions]
    file = "extensions.csv"               # optional, relative to this file

``extensions.csv`` has the columns ``student_id``, ``assignment`` and either ``due`` (the
student's own due date, a local time as above) or ``extra`` (``2d``, ``36h``, ``90min``).

:func:`load` reads and checks it (:class:`TermError` names the file, the entry and what is
wrong); ``python -m autograder deadlines`` installs the checked :class:`Term` into the course
folder as :data:`INSTALLED` (JSON, UTC times) and writes the due dates and extensions into the
gradebook, where nbgrader's own tools read them (``Assignment.duedate``,
``SubmittedAssignment.extension``). The grade, export and feedback commands read the installed
copy (:func:`installed`), so the course folder carries its own term.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .. import files
from ..text import is_safe_name, shown
from .deadlines import (
    UTC,
    DeadlineError,
    LatePolicy,
    aware,
    parse_duration,
    parse_time,
    zone,
)

INSTALLED = ".autograder_term.json"
MAX_TERM_BYTES = 4 * 2**20


class TermError(ValueError):
    """A term file or extensions file that cannot be used; ``str()`` says where and why."""


@dataclass(frozen=True)
class AssignmentTerm:
    """One assignment's entry: its due date (aware UTC, None for none), the Canvas assignment
    id and the title its LMS column has."""

    name: str
    due: dt.datetime | None = None
    canvas_id: str = ""
    title: str = ""

    @property
    def lms_title(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class Term:
    """A checked term: timezone, late policy, assignments and extensions (each the student's
    own due date, aware UTC)."""

    timezone: str = "UTC"
    policy: LatePolicy = LatePolicy()
    assignments: dict[str, AssignmentTerm] = field(default_factory=dict)
    extensions: dict[tuple[str, str], dt.datetime] = field(default_factory=dict)

    @property
    def tz(self):
        return zone(self.timezone)

    def extension(self, student: str, assignment: str) -> dt.timedelta | None:
        """The extension of ``student`` on ``assignment`` as nbgrader stores it (the time added
        to the assignment's due date), None for none."""
        own = self.extensions.get((student, assignment))
        entry = self.assignments.get(assignment)
        if own is None or entry is None or entry.due is None:
            return None
        return own - entry.due

    def to_json(self) -> str:
        data = {
            "timezone": self.timezone, "late_policy": self.policy.to_dict(),
            "assignments": {n: {"due": a.due.isoformat() if a.due else None,
                                "canvas_id": a.canvas_id, "title": a.title}
                            for n, a in sorted(self.assignments.items())},
            "extensions": [{"student_id": s, "assignment": a, "due": d.isoformat()}
                           for (s, a), d in sorted(self.extensions.items())]}
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Term:
        data = json.loads(text)
        assignments = {n: AssignmentTerm(n, aware(dt.datetime.fromisoformat(a["due"]))
                                         if a.get("due") else None,
                                         str(a.get("canvas_id") or ""), str(a.get("title") or ""))
                       for n, a in data.get("assignments", {}).items()}
        extensions = {(e["student_id"], e["assignment"]):
                      aware(dt.datetime.fromisoformat(e["due"]))
                      for e in data.get("extensions", [])}
        return cls(str(data.get("timezone", "UTC")), LatePolicy.from_dict(data["late_policy"]),
                   assignments, extensions)


def _fail(where: str, why: Any) -> TermError:
    return TermError(f"{where}: {why}")


def _assignment(where: str, name: str, entry: Any, tz, known) -> AssignmentTerm:
    if known is not None and name not in known:
        raise _fail(where, f"unknown assignment {shown(name, 80)!r} (known: "
                           f"{', '.join(sorted(known))})")
    if not isinstance(entry, dict):
        raise _fail(where, f"[assignments.{name}] must be a table (due, canvas_id, title)")
    unknown = sorted(set(entry) - {"due", "canvas_id", "title"})
    if unknown:
        raise _fail(where, f"[assignments.{name}]: unknown keys {unknown}")
    try:
        due = parse_time(entry["due"], tz) if entry.get("due") not in (None, "") else None
    except DeadlineError as exc:
        raise _fail(where, f"[assignments.{name}] due: {exc}") from None
    canvas_id = str(entry.get("canvas_id", "")).strip()
    if canvas_id and not canvas_id.isdigit():
        raise _fail(where, f"[assignments.{name}] canvas_id must be Canvas's number for the "
                           f"assignment, not {canvas_id!r}")
    return AssignmentTerm(name, due, canvas_id, str(entry.get("title", "")).strip())


def read_extensions(path: str, tz, assignments: dict[str, AssignmentTerm]
                    ) -> dict[tuple[str, str], dt.datetime]:
    """The extensions CSV (see the module docstring): each student's own due date."""
    try:
        text = files.read_regular(path, MAX_TERM_BYTES).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(path, f"cannot be read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    need = {"student_id", "assignment"}
    if not reader.fieldnames or not need <= set(reader.fieldnames) or not (
            {"due", "extra"} & set(reader.fieldnames)):
        raise _fail(path, "needs the columns student_id, assignment and due or extra "
                          f"(found {reader.fieldnames})")
    out: dict[tuple[str, str], dt.datetime] = {}
    for line, row in enumerate(reader, start=2):
        where = f"{path}, line {line}"
        student, name = (row.get("student_id") or "").strip(), (row.get("assignment") or
                                                                  "").strip()
        due_text, extra = (row.get("due") or "").strip(), (row.get("extra") or "").strip()
        if not is_safe_name(student):
            raise _fail(where, f"{shown(student, 80)!r} is not a valid student id")
        entry = assignments.get(name)
        if entry is None or entry.due is None:
            raise _fail(where, f"assignment {shown(name, 80)!r} has no due date in the term "
                               "file, so it cannot be extended")
        if bool(due_text) == bool(extra):
            raise _fail(where, "give either due (a new due date) or extra (e.g. 2d), not "
                               "both or neither")
        try:
            own = parse_time(due_text, tz) if due_text else entry.due + parse_duration(extra)
        except DeadlineError as exc:
            raise _fail(where, exc) from None
        if (student, name) in out:
            raise _fail(where, f"a second extension for {student} on {name}")
        out[(student, name)] = own
    return out


def load(path: str, known: set[str] | None = None) -> Term:
    """Read and check the term file ``path`` (``known``: the course's assignment names)."""
    try:
        data = tomllib.loads(files.read_regular(path, MAX_TERM_BYTES).decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _fail(path, f"cannot be read as TOML ({exc})") from None
    unknown = sorted(set(data) - {"timezone", "late_policy", "assignments", "extensions"})
    if unknown:
        raise _fail(path, f"unknown keys {unknown} (known: timezone, late_policy, "
                          "assignments, extensions)")
    if "timezone" not in data:
        raise _fail(path, "timezone is missing (e.g. timezone = \"Europe/Berlin\"); due dates "
                          "are read in it")
    try:
        tz = zone(data["timezone"])
        policy = LatePolicy.from_dict(data.get("late_policy", {}))
    except DeadlineError as exc:
        raise _fail(path, exc) from None
    table = data.get("assignments", {})
    if not isinstance(table, dict):
        raise _fail(path, "[assignments] must hold one table per assignment")
    assignments = {name: _assignment(path, name, entry, tz, known)
                   for name, entry in table.items()}
    extensions: dict[tuple[str, str], dt.datetime] = {}
    ext = data.get("extensions", {})
    if not isinstance(ext, dict) or set(ext) - {"file"}:
        raise _fail(path, "[extensions] takes one key, file")
    if ext.get("file"):
        ext_path = os.path.join(os.path.dirname(os.path.abspath(path)), str(ext["file"]))
        extensions = read_extensions(ext_path, tz, assignments)
    return Term(tz.key, policy, assignments, extensions)


def install(term: Term, course_dir: str) -> str:
    """Keep ``term`` in the course folder (:data:`INSTALLED`); its path."""
    path = os.path.join(course_dir, INSTALLED)
    files.atomic_write(path, term.to_json(), mode=files.output_mode())
    return path


def installed(course_dir: str) -> Term | None:
    """The term installed in the course folder, None when there is none. A copy that cannot
    be read is a :class:`TermError` (it was written by this module, so it was tampered with)."""
    path = os.path.join(course_dir, INSTALLED)
    if not os.path.lexists(path):
        return None
    try:
        return Term.from_json(files.read_regular(path, MAX_TERM_BYTES).decode("utf-8"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(path, f"cannot be read ({exc}); run 'python -m autograder deadlines "
                          "TERM.toml' again") from None


def now() -> dt.datetime:
    return dt.datetime.now(UTC)
