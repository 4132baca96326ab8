"""An LMS's bulk download (a zip of every student's files) turned into the grader's submissions
folder, ``SUBS/<student>/<assignment>/<notebook>.ipynb`` with nbgrader's ``timestamp.txt``
where the LMS gives the submission time. The LMS modules (:mod:`.canvas`, :mod:`.moodle`) say
whose each file is (:class:`Upload`); this module decides where it goes and writes it.

Nothing is dropped silently: every entry of the zip ends in exactly one :class:`Status`, listed
in ``SUBS/.collect/<assignment>/collect.csv`` (the grader skips folders starting with a dot) and
summed up by the ``collect`` command. Files that are not a student's notebook are kept, as the
zip has them, under ``SUBS/.collect/<assignment>/<status>/``:

* a notebook whose LMS user no roster student matches (``unmatched``), a notebook of a student
  who handed in a newer file of the same name (``duplicate``; the newest counts), a file that
  is not a notebook (``extra``), an online text or link entry (``text``), an entry whose name is
  not in the LMS's format (``unknown``);
* a notebook that replaces one an earlier ``collect`` put in place, with its ``timestamp.txt``,
  is moved to ``replaced/`` first.

A file the LMS renamed because the student handed in a file of the same name again (Canvas's
``dropout-1.ipynb``) takes the assignment's notebook name. The zip is read as hostile: entry
names never become paths (only a cleaned base name is used), each file is read with a size
bound (so a zip bomb stops at the bound), and links and encrypted entries are refused
(``refused``, not extracted).
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from ... import files
from ...grading.notebook import MAX_NOTEBOOK_BYTES
from ...text import shown
from ..deadlines import timestamp_text

MAX_EXTRA_BYTES = 64 * 2**20
COLLECT_DIR = ".collect"


class CollectError(ValueError):
    """A bulk download that cannot be read at all; ``str()`` says why."""


class Status(enum.Enum):
    """Where an entry of the bulk download ended up."""

    COLLECTED = "collected"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"
    EXTRA = "extra"
    TEXT = "text"
    UNKNOWN = "unknown"
    REFUSED = "refused"


@dataclass(frozen=True)
class Upload:
    """One entry of the bulk download as the LMS named it: the LMS's id of the submitter, the
    name it shows, the uploaded file's own name, a number that grows with later uploads, the
    LMS's late mark and submission time where known. ``status`` is set (TEXT or UNKNOWN) for an
    entry that holds no uploaded file."""

    entry: str
    lms_user: str = ""
    name: str = ""
    filename: str = ""
    order: int = 0
    late: bool = False
    submitted_at: dt.datetime | None = None
    status: Status | None = None
    note: str = ""


@dataclass(frozen=True)
class Placed:
    """What happened to one entry."""

    upload: Upload
    status: Status
    student: str = ""
    path: str = ""
    note: str = ""


Matcher = Callable[[Upload], tuple[str | None, str]]


def safe_file_name(name: str, fallback: str = "file") -> str:
    """``name`` as a file name the grader accepts: accents dropped, anything but letters,
    digits and ``._+-`` replaced by ``_``, not starting with a dot, at most 128 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    clean = re.sub(r"[^A-Za-z0-9._+-]+", "_", ascii_name).lstrip("._") or fallback
    if len(clean) > 128:
        stem, ext = os.path.splitext(clean)
        clean = stem[:128 - len(ext)] + ext
    return clean


def entry_names(zf: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, str]]:
    """The zip's file entries with their names; a name stored without the UTF-8 flag that is
    UTF-8 in fact (as many zip writers store it) is read as UTF-8."""
    out = []
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if not info.flag_bits & 0x800:
            try:
                name = name.encode("cp437").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
        out.append((info, unicodedata.normalize("NFC", name)))
    return out


def _refusal(info: zipfile.ZipInfo, limit: int) -> str:
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted"
    if info.file_size > limit:
        return f"too large ({info.file_size} bytes, at most {limit})"
    return ""


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with zf.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise CollectError(f"more than {limit} bytes once unpacked")
    return data


def _unique(path: str) -> str:
    stem, ext = os.path.splitext(path)
    n, candidate = 1, path
    while os.path.lexists(candidate):
        candidate = f"{stem}-{n}{ext}"
        n += 1
    return candidate


def target_name(filename: str, notebook: str) -> tuple[str, str]:
    """(file name in the submission folder, note): the LMS's renamed copy of a notebook handed
    in again (``dropout-1.ipynb``) takes the notebook's name."""
    stem = os.path.splitext(notebook)[0]
    if re.fullmatch(re.escape(stem) + r"-\d+\.ipynb", filename, re.I):
        return notebook, f"renamed from {filename} (the LMS numbers a file handed in again)"
    return safe_file_name(filename), ""


class Collector:
    """Puts one bulk download's files in place (see the module docstring)."""

    def __init__(self, out: str, assignment: str, notebook: str):
        self.out, self.assignment, self.notebook = out, assignment, notebook
        self.aside_root = os.path.join(out, COLLECT_DIR, assignment)

    def aside(self, zf, info, upload: Upload, status: Status, student: str = "",
              note: str = "") -> Placed:
        """Keep an entry, as the zip has it, under ``.collect/<assignment>/<status>/``."""
        why = _refusal(info, MAX_EXTRA_BYTES)
        if why:
            return Placed(upload, Status.REFUSED, student, "",
                          "; ".join(x for x in (note, f"not extracted: {why}") if x))
        folder = os.path.join(self.aside_root, status.value, student)
        base = safe_file_name(os.path.basename(upload.entry))
        path = _unique(os.path.join(folder, base))
        try:
            files.atomic_write(path, _read(zf, info, MAX_EXTRA_BYTES), mode=files.output_mode())
        except (CollectError, OSError, zipfile.BadZipFile, EOFError) as exc:
            return Placed(upload, Status.REFUSED, student, "",
                          "; ".join(x for x in (note, f"not extracted: {exc}") if x))
        return Placed(upload, status, student, path, note)

    def _retire(self, student: str, path: str) -> str:
        """Move a file an earlier collect put in place to ``replaced/<student>/``."""
        folder = os.path.join(self.aside_root, "replaced", student)
        os.makedirs(folder, exist_ok=True)
        moved = _unique(os.path.join(folder, os.path.basename(path)))
        os.replace(path, moved)
        return moved

    def place(self, zf, info, upload: Upload, student: str, name: str, note: str) -> Placed:
        """Write a student's notebook into the submission folder, with ``timestamp.txt`` where
        the submission time is known; a different notebook an earlier collect put there moves
        to ``replaced/`` with its ``timestamp.txt``."""
        why = _refusal(info, MAX_NOTEBOOK_BYTES)
        if why:
            return Placed(upload, Status.REFUSED, student, "", f"not extracted: {why}")
        try:
            data = _read(zf, info, MAX_NOTEBOOK_BYTES)
        except (CollectError, OSError, zipfile.BadZipFile, EOFError) as exc:
            return Placed(upload, Status.REFUSED, student, "", f"not extracted: {exc}")
        folder = os.path.join(self.out, student, self.assignment)
        path, stamp = os.path.join(folder, name), os.path.join(folder, "timestamp.txt")
        notes = [note] if note else []
        if os.path.lexists(path):
            try:
                same = files.read_regular(path, MAX_NOTEBOOK_BYTES) == data
            except OSError:
                same = False
            if not same:
                notes.append(f"an earlier notebook moved to {self._retire(student, path)}")
                if os.path.lexists(stamp):
                    self._retire(student, stamp)
        files.atomic_write(path, data, mode=files.output_mode())
        if upload.submitted_at is not None:
            files.atomic_write(stamp, timestamp_text(upload.submitted_at) + "\n",
                               mode=files.output_mode())
        elif upload.late:
            notes.append("the LMS marked it late but gave no submission time, so no late "
                         "penalty can apply")
        return Placed(upload, Status.COLLECTED, student, path, "; ".join(notes))

    def write_manifest(self, placed: list[Placed]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["entry", "status", "student", "path", "lms_user", "late", "submitted_at",
                    "note"])
        for p in placed:
            u = p.upload
            w.writerow([shown(u.entry, 500), p.status.value, p.student, p.path, shown(u.lms_user),
                        "LATE" if u.late else "",
                        u.submitted_at.isoformat() if u.submitted_at else "", shown(p.note)])
        path = os.path.join(self.aside_root, "collect.csv")
        files.atomic_write(path, buf.getvalue(), mode=files.output_mode())
        return path


def collect(zip_path: str, parse: Callable[[str], Upload], match: Matcher, out: str,
            assignment: str, notebook: str) -> tuple[list[Placed], str]:
    """Put every entry of the bulk download ``zip_path`` in its place; (what happened to each
    entry, in the zip's order; the manifest's path)."""
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CollectError(f"{zip_path} cannot be read as a zip file: {exc}") from None
    collector = Collector(out, assignment, notebook)
    with zf:
        found = [(info, parse(name)) for info, name in entry_names(zf)]
        decided: dict[int, Placed] = {}
        chosen: dict[tuple[str, str], list[tuple[int, Upload, str]]] = {}
        for i, (info, upload) in enumerate(found):
            if upload.status is not None:
                decided[i] = collector.aside(zf, info, upload, upload.status, note=upload.note)
                continue
            student, why = match(upload)
            if student is None:
                decided[i] = collector.aside(zf, info, upload, Status.UNMATCHED, note=why)
            elif not upload.filename.lower().endswith(".ipynb"):
                decided[i] = collector.aside(zf, info, upload, Status.EXTRA, student,
                                             "not a notebook")
            else:
                name, note = target_name(upload.filename, notebook)
                chosen.setdefault((student, name), []).append((i, upload, note))
        for (student, name), uploads in chosen.items():
            uploads.sort(key=lambda t: t[1].order)
            *older, (i, upload, note) = uploads
            decided[i] = collector.place(zf, found[i][0], upload, student, name, note)
            for j, old, _ in older:
                decided[j] = collector.aside(
                    zf, found[j][0], old, Status.DUPLICATE, student,
                    f"a newer {name} of {student} is in this download ({upload.entry})")
        placed = [decided[i] for i in range(len(found))]
    return placed, collector.write_manifest(placed)
