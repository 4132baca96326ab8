"""The course roster: who the students are and who they are in the LMS.

A CSV file (UTF-8, a spreadsheet's byte-order mark accepted) with a header row. ``student_id``
is required (the id the grader uses: the submission folder's name and the gradebook's student
id; letters, digits and ``._@+-``); the other columns are optional:

* ``first_name``, ``last_name``, ``email``: written into the gradebook (as ``nbgrader db
  student import`` does) and used to match Moodle's participants (by email, else by full name);
* ``lms_id``: the Canvas user id (the ``ID`` column of Canvas's gradebook and the number in
  its download's file names);
* ``sis_user_id``, ``sis_login_id``, ``section``: copied into the Canvas export.

:func:`read_roster` refuses a file without ``student_id``, with an invalid or repeated student
id, or with an LMS id given twice, naming the line.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from ... import files
from ...text import is_safe_name, shown

MAX_ROSTER_BYTES = 16 * 2**20
COLUMNS = ("student_id", "first_name", "last_name", "email", "lms_id", "sis_user_id",
           "sis_login_id", "section")


class RosterError(ValueError):
    """A roster that cannot be used; ``str()`` names the file, line and problem."""


def name_key(text: str) -> str:
    """A name compared without case, accents' composition, or runs of spaces."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@dataclass(frozen=True)
class Student:
    """One roster line."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def full_name(self) -> str:
        """"First Last", as Moodle shows it by default."""
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def sortable_name(self) -> str:
        """"Last, First", as Canvas shows it."""
        return ", ".join(p for p in (self.last_name, self.first_name) if p)

    def gradebook_fields(self) -> dict:
        return {"id": self.student_id, "first_name": self.first_name,
                "last_name": self.last_name, "email": self.email}


@dataclass
class Roster:
    """The roster's students, with look-ups by id, LMS id, email and name."""

    students: list[Student] = field(default_factory=list)

    def __post_init__(self):
        self.by_id = {s.student_id: s for s in self.students}
        self.by_lms_id = {s.lms_id: s for s in self.students if s.lms_id}
        self.by_email: dict[str, list[Student]] = {}
        self.by_name: dict[str, list[Student]] = {}
        for s in self.students:
            if s.email:
                self.by_email.setdefault(s.email.casefold(), []).append(s)
            if s.full_name:
                self.by_name.setdefault(name_key(s.full_name), []).append(s)

    def find(self, table: dict[str, list[Student]], key: str) -> tuple[Student | None, str]:
        """The one student under ``key`` in ``table``, or (None, why not)."""
        found = table.get(key, [])
        if len(found) == 1:
            return found[0], ""
        if not found:
            return None, "not in the roster"
        ids = ", ".join(s.student_id for s in found)
        return None, f"{len(found)} roster students match ({ids})"


def read_roster(path: str) -> Roster:
    """The roster at ``path`` (see the module docstring)."""
    try:
        text = files.read_regular(path, MAX_ROSTER_BYTES).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: cannot be read as a UTF-8 CSV file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "student_id" not in reader.fieldnames:
        raise RosterError(f"{path}: needs a header row with student_id (and optionally "
                          f"{', '.join(COLUMNS[1:])}); found {reader.fieldnames}")
    students: list[Student] = []
    ids: set[str] = set()
    lms: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        values = {c: re.sub(r"\s+", " ", (row.get(c) or "")).strip() for c in COLUMNS}
        sid = values["student_id"]
        if not is_safe_name(sid):
            raise RosterError(f"{path}, line {line}: {shown(sid, 80)!r} is not a valid student "
                              "id (letters, digits and ._@+- only, at most 128 characters)")
        if sid in ids:
            raise RosterError(f"{path}, line {line}: student {sid} is listed twice")
        if values["lms_id"] and values["lms_id"] in lms:
            raise RosterError(f"{path}, line {line}: LMS id {values['lms_id']} is already "
                              f"given on line {lms[values['lms_id']]}")
        ids.add(sid)
        if values["lms_id"]:
            lms[values["lms_id"]] = line
        students.append(Student(**values))
    return Roster(students)
