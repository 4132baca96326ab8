"""Canvas: its "Download Submissions" zip in, its gradebook import CSV out.

The formats, as Canvas's own code writes and reads them (``lib/content_zipper.rb``,
``lib/gradebook_exporter.rb`` and ``lib/gradebook_importer.rb`` of instructure/canvas-lms):

* **Download Submissions** holds one flat file per uploaded file,
  ``<name>[_LATE]_<user id>_<attachment id>_<file name>``. ``<name>`` is the student's sortable
  name ("Last, First") in lower case with every character that is not a letter, digit or ``_``
  removed (spaces, commas, apostrophes; accents stay); ``LATE`` marks a submission Canvas
  counts late; the ids are numbers; the file name is the uploaded file's display name with
  ``\\ / : * ? " < > |`` replaced by ``_``. A file handed in again under the same name is
  renamed by Canvas (``dropout-1.ipynb``). Only each student's latest submission is in the zip.
  With anonymous grading the name and user id are replaced by ``anon_<anonymous id>``; text and
  URL entries are ``<name>[_LATE]_<user id>_text.html`` and ``..._link.html``. The zip carries
  no submission time: the times come from Canvas's Submissions API (``GET
  /api/v1/courses/:course/assignments/:assignment/submissions``, saved as JSON), whose objects
  have ``user_id`` and ``submitted_at``.
* **Gradebook import** reads a CSV whose header starts ``Student, ID``, followed by
  ``SIS User ID, SIS Login ID`` (both) or ``SIS Login ID``, then ``Section`` as the last
  student column, then one column per assignment titled ``<title> (<assignment id>)`` (a title
  without an id is matched by title, or creates a new assignment). A row whose first cell holds
  ``Points Possible`` gives each assignment's points. Students are found by ``ID`` (the Canvas
  user id), else by SIS User ID or SIS Login ID, else by name. An empty cell changes nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import unicodedata
from dataclasses import dataclass

from ... import files
from ...text import shown
from .bulk import Status, Upload
from .grades import number
from .roster import Roster

NAMED = re.compile(r"(?P<who>.*?)(?:_(?P<late>LATE))?_(?P<user>\d+)_(?P<att>\d+)_(?P<file>.+)",
                   re.S)
ANONYMOUS = re.compile(r"(?:(?P<late>LATE)_)?anon_(?P<anon>[A-Za-z0-9]+)_(?P<att>\d+)_"
                       r"(?P<file>.+)", re.S)
ONLINE = re.compile(r"(?P<who>.*?)(?:_(?P<late>LATE))?_(?P<user>\d+|anon_[A-Za-z0-9]+)_"
                    r"(?P<kind>text|link)\.html", re.S)
MAX_TIMES_BYTES = 64 * 2**20
HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
POINTS_POSSIBLE = "    Points Possible"


def name_key(sortable_name: str) -> str:
    """A sortable name as Canvas writes it into a download's file names."""
    text = unicodedata.normalize("NFC", sortable_name).lower()
    text = re.sub(r"_(\d+)_", r"\1", text)
    return re.sub(r"[^\w]", "", text)


def parse(entry: str) -> Upload:
    """One entry of the download (see the module docstring)."""
    base = entry.rsplit("/", 1)[-1]
    m = ONLINE.fullmatch(base)
    if m:
        return Upload(entry, m.group("user"), m.group("who"), base, late=bool(m.group("late")),
                      status=Status.TEXT, note=f"a Canvas online {m.group('kind')} entry, not "
                                               "an uploaded file")
    m = ANONYMOUS.fullmatch(base)
    if m:
        return Upload(entry, "", f"anonymous {m.group('anon')}", m.group("file"),
                      int(m.group("att")), bool(m.group("late")))
    m = NAMED.fullmatch(base)
    if m:
        return Upload(entry, m.group("user"), m.group("who"), m.group("file"),
                      int(m.group("att")), bool(m.group("late")))
    return Upload(entry, filename=base, status=Status.UNKNOWN,
                  note="not named as Canvas names a submission "
                       "(<name>[_LATE]_<user id>_<attachment id>_<file>)")


def read_times(path: str) -> dict[str, dt.datetime]:
    """Each Canvas user id's ``submitted_at`` from the Submissions API's JSON (a list of
    submission objects, or an object holding one under ``submissions``)."""
    try:
        data = json.loads(files.read_regular(path, MAX_TIMES_BYTES).decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot be read as JSON ({exc})") from None
    if isinstance(data, dict):
        data = data.get("submissions")
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected Canvas's list of submission objects")
    times = {}
    for i, sub in enumerate(data):
        if not isinstance(sub, dict) or "user_id" not in sub:
            raise ValueError(f"{path}: submission {i} has no user_id")
        if sub.get("submitted_at"):
            try:
                when = dt.datetime.fromisoformat(str(sub["submitted_at"]).replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"{path}: submission {i}: submitted_at: {exc}") from None
            if when.tzinfo is None:
                raise ValueError(f"{path}: submission {i}: submitted_at has no timezone")
            times[str(sub["user_id"])] = when.astimezone(dt.UTC)
    return times


@dataclass
class Matcher:
    """Whose an upload is: the roster student with that Canvas user id (``lms_id``), else the
    one whose sortable name Canvas would write as the file's name; without a roster, the Canvas
    user id itself. ``times`` adds each user's submission time to the upload."""

    roster: Roster | None = None
    times: dict[str, dt.datetime] | None = None

    def __post_init__(self):
        self.by_name: dict[str, list] = {}
        for s in self.roster.students if self.roster else []:
            if s.sortable_name:
                self.by_name.setdefault(name_key(s.sortable_name), []).append(s)

    def with_time(self, upload: Upload) -> Upload:
        when = (self.times or {}).get(upload.lms_user)
        return upload if when is None else dataclasses.replace(upload, submitted_at=when)

    def __call__(self, upload: Upload) -> tuple[str | None, str]:
        if not upload.lms_user:
            return None, "Canvas hides who handed it in (anonymous grading)"
        if self.roster is None:
            return upload.lms_user, ""
        student = self.roster.by_lms_id.get(upload.lms_user)
        if student is not None:
            return student.student_id, ""
        student, why = self.roster.find(self.by_name, upload.name)
        if student is None:
            return None, (f"Canvas user {upload.lms_user} ({shown(upload.name, 80)}): {why} "
                          "(neither by lms_id nor by name)")
        return student.student_id, ""


@dataclass(frozen=True)
class Column:
    """One assignment column of the import: its title, Canvas id ("" to match by title) and
    points."""

    title: str
    canvas_id: str
    points: float

    @property
    def header(self) -> str:
        return f"{self.title} ({self.canvas_id})" if self.canvas_id else self.title


def _guard(name: str) -> str:
    """A name starting with ``=`` quoted as Canvas's export does, so no spreadsheet runs it."""
    return f'="{name}"' if name.lstrip().startswith("=") else name


def gradebook_csv(roster: Roster, columns: list[Column], cell) -> str:
    """The import CSV: Canvas's header, the Points Possible row, one row per roster student;
    ``cell(student_id, column_index)`` gives each score as text ("" leaves Canvas's as it is)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER + [c.header for c in columns])
    w.writerow([POINTS_POSSIBLE, "", "", "", ""] + [number(c.points) for c in columns])
    for s in roster.students:
        w.writerow([_guard(shown(s.sortable_name or s.student_id)), shown(s.lms_id),
                    shown(s.sis_user_id), shown(s.sis_login_id), shown(s.section)]
                   + [cell(s.student_id, i) for i in range(len(columns))])
    return buf.getvalue()
