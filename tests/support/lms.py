"""Bulk downloads and files as the LMSs write them, for the tests: zips with the entry names of
Canvas's "Download Submissions" and Moodle's "Download all submissions", a Canvas Submissions
API JSON, a Moodle grading worksheet and a roster (see :mod:`autograder.results.lms.canvas` and
:mod:`autograder.results.lms.moodle` for the formats and where they were checked)."""

from __future__ import annotations

import csv
import io
import json
import stat
import zipfile

import nbformat

from tests.support import toy

WORKSHEET_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade",
                     "Maximum Grade", "Grade can be changed", "Last modified (submission)",
                     "Last modified (grade)", "Feedback comments"]


def notebook_bytes(nb=None) -> bytes:
    return nbformat.writes(nb if nb is not None else toy.solution_notebook()).encode()


def write_zip(path, entries: dict[str, bytes], links: dict[str, str] | None = None,
              raw_names: dict[str, str] | None = None) -> str:
    """A zip of ``entries``; ``links``: entries stored as symbolic links (name -> target);
    ``raw_names``: an ASCII placeholder name -> the UTF-8 name to store in its place without
    the UTF-8 flag (as some zip writers do)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    if raw_names:
        data = open(path, "rb").read()
        for placeholder, real in raw_names.items():
            encoded = real.encode()
            assert len(encoded) == len(placeholder.encode()), "same length, or offsets move"
            data = data.replace(placeholder.encode(), encoded)
        open(path, "wb").write(data)
    return str(path)


def canvas_times(path, times: dict[int, str]) -> str:
    """Canvas's Submissions API answer: a list of submission objects."""
    subs = [{"id": 9000 + i, "user_id": uid, "submitted_at": when, "workflow_state": "submitted",
             "late": False, "attempt": 1} for i, (uid, when) in enumerate(times.items())]
    with open(path, "w") as f:
        json.dump(subs, f)
    return str(path)


def worksheet(path, rows: list[dict], bom: bool = True) -> str:
    """A Moodle grading worksheet with ``rows`` (missing cells as Moodle leaves them)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=WORKSHEET_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({"Status": "Submitted for grading", "Grade": "", "Maximum Grade": "5.00",
                    "Grade can be changed": "Yes", "Last modified (grade)": "-",
                    "Feedback comments": "", **row})
    with open(path, "w", encoding="utf-8") as f:
        f.write(("\ufeff" if bom else "") + buf.getvalue())
    return str(path)


def roster(path, rows: list[dict]) -> str:
    columns = ["student_id", "first_name", "last_name", "email", "lms_id", "sis_user_id",
               "sis_login_id", "section"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow(row)
    return str(path)
