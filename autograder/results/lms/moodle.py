"""Moodle: the assignment's "Download all submissions" zip in, its grading worksheet out.

The formats, as Moodle's assignment module writes and reads them (``mod/assign/locallib.php``
``download_submissions`` and ``mod/assign/classes/downloader.php``, and the offline grading
worksheet of ``mod/assign/feedback/offline``):

* **Download all submissions** holds one folder per participant and submission plugin:
  ``<Full Name>_<participant id>_assignsubmission_file/<file>`` (Moodle 4.1 on,
  ``mod/assign/classes/downloader.php``), ``..._assignsubmission_file_/<file>`` (3.1 to 4.0);
  before 3.1, and with the "download as folders" preference off, the same prefix joined to the
  file name: ``<Full Name>_<participant id>_assignsubmission_file_<file>``. Underscores in the
  name are replaced by spaces, characters not allowed in file names are removed, spaces and
  accents stay. The participant id is Moodle's number for the user in this assignment (it differs
  between assignments); with blind marking the name is ``Participant``. Online text is under
  ``..._assignsubmission_onlinetext_/``. The zip carries no submission time.
* **Grading worksheet** ("Download grading worksheet", a CSV) has the columns ``Identifier``
  (``Participant <participant id>``), ``Full name``, the identity fields shown (``Email
  address`` by default), ``Status``, ``Grade``, ``Maximum Grade``, ``Grade can be changed``,
  ``Last modified (submission)`` (a local time, written in the downloading user's timezone
  without naming it), ``Last modified (grade)`` and the feedback columns. "Upload grading
  worksheet" reads ``Identifier``, ``Grade`` and ``Last modified (grade)`` back (it skips a
  grade changed in Moodle after that time), so the export fills in ``Grade`` of the downloaded
  worksheet and leaves every other cell as it was.

A participant is matched to the roster by the worksheet's email address, else by full name
(first-last or last-first); without a roster the email address is the student id.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from dateutil import parser as dateparser

from ... import files
from ...text import is_safe_name, shown
from ..deadlines import DeadlineError, localize
from .bulk import Status, Upload
from .roster import Roster, name_key

ENTRY = re.compile(r"(?P<who>[^/]*?)_(?P<pid>\d+)_assignsubmission_(?P<type>[a-z0-9]+)"
                   r"(?:_/|/|_)(?P<rest>.*)", re.S)
MAX_WORKSHEET_BYTES = 16 * 2**20
ID, NAME, EMAIL, GRADE = "Identifier", "Full name", "Email address", "Grade"
SUBMITTED = "Last modified (submission)"
PARTICIPANT = re.compile(r"\D*(\d+)\s*")


def parse(entry: str) -> Upload:
    """One entry of the download (see the module docstring)."""
    m = ENTRY.fullmatch(entry)
    if m is None:
        return Upload(entry, filename=entry.rsplit("/", 1)[-1], status=Status.UNKNOWN,
                      note="not named as Moodle names a submission "
                           "(<Full Name>_<participant id>_assignsubmission_<plugin>_...)")
    if m.group("type") != "file":
        return Upload(entry, m.group("pid"), m.group("who"), entry.rsplit("/", 1)[-1],
                      status=Status.TEXT,
                      note=f"a Moodle {m.group('type')} entry, not an uploaded file")
    return Upload(entry, m.group("pid"), m.group("who"), m.group("rest").rsplit("/", 1)[-1])


@dataclass
class Worksheet:
    """A grading worksheet as downloaded: its columns, rows and byte-order mark."""

    columns: list[str]
    rows: list[dict[str, str]]
    bom: bool = False
    by_participant: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self):
        for row in self.rows:
            m = PARTICIPANT.fullmatch(row.get(ID) or "")
            if m:
                self.by_participant[m.group(1)] = row


def read_worksheet(path: str) -> Worksheet:
    try:
        raw = files.read_regular(path, MAX_WORKSHEET_BYTES)
        text = raw.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot be read as a UTF-8 CSV file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    if ID not in columns or GRADE not in columns:
        raise ValueError(f"{path}: not a Moodle grading worksheet (needs the columns {ID!r} "
                         f"and {GRADE!r}; found {columns})")
    return Worksheet(columns, list(reader), raw.startswith(b"\xef\xbb\xbf"))


def write_worksheet(sheet: Worksheet, grades: dict[str, str]) -> str:
    """The worksheet with ``Grade`` set for the participants in ``grades`` (participant id ->
    grade text); every other cell as downloaded."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=sheet.columns, lineterminator="\n",
                       extrasaction="ignore")
    w.writeheader()
    by_row = {id(row): pid for pid, row in sheet.by_participant.items()}
    for row in sheet.rows:
        pid = by_row.get(id(row))
        w.writerow({**row, GRADE: grades[pid]} if pid in grades else row)
    return ("\ufeff" if sheet.bom else "") + buf.getvalue()


@dataclass
class Matcher:
    """Whose an upload is (see the module docstring); ``tz`` is the timezone the worksheet's
    times are written in, which gives each upload its submission time."""

    roster: Roster | None = None
    sheet: Worksheet | None = None
    tz: object | None = None

    def __post_init__(self):
        self.last_first: dict[str, list] = {}
        for s in self.roster.students if self.roster else []:
            self.last_first.setdefault(name_key(f"{s.last_name} {s.first_name}"), []).append(s)

    def row(self, upload: Upload) -> dict[str, str]:
        return self.sheet.by_participant.get(upload.lms_user, {}) if self.sheet else {}

    def submitted_at(self, upload: Upload) -> dt.datetime | None:
        text = (self.row(upload).get(SUBMITTED) or "").strip()
        if not text or text == "-" or self.tz is None:
            return None
        try:
            return localize(dateparser.parse(text), self.tz, text)
        except (ValueError, OverflowError, DeadlineError) as exc:
            raise ValueError(f"participant {upload.lms_user}: {SUBMITTED} {text!r}: {exc}"
                             ) from None

    def with_time(self, upload: Upload) -> Upload:
        when = self.submitted_at(upload) if upload.status is None else None
        return upload if when is None else dataclasses.replace(upload, submitted_at=when)

    def student_of(self, pid: str, shown_name: str) -> tuple[str | None, str]:
        """The student id of participant ``pid`` (``shown_name``: the name Moodle shows)."""
        row = self.sheet.by_participant.get(pid, {}) if self.sheet else {}
        email = (row.get(EMAIL) or "").strip()
        name = (row.get(NAME) or shown_name).strip()
        if self.roster is None:
            if is_safe_name(email):
                return email, ""
            return None, (f"participant {pid} ({shown(name, 80)}): without a roster the student "
                          "id is the worksheet's email address, and there is none usable")
        if email:
            student, why = self.roster.find(self.roster.by_email, email.casefold())
            if student is not None:
                return student.student_id, ""
        student, why = self.roster.find(self.roster.by_name, name_key(name))
        if student is None:
            student, _ = self.roster.find(self.last_first, name_key(name))
        if student is None:
            return None, f"participant {pid} ({shown(name, 80)}): {why}"
        return student.student_id, ""

    def __call__(self, upload: Upload) -> tuple[str | None, str]:
        return self.student_of(upload.lms_user, upload.name)
