"""A bulk download put in place: notebooks into the submissions folder, everything else kept
aside and listed, hostile entries refused (with Canvas's names; Moodle's go the same way)."""

import csv
import datetime as dt
import os

import pytest

from autograder.results.lms import bulk, canvas
from autograder.results.lms.roster import Roster, Student
from tests.support.lms import notebook_bytes, write_zip

ROSTER = Roster([Student("alice", "Jörg", "Müller", lms_id="1001"),
                 Student("bob", "Mary", "O'Brien", lms_id="1002")])
WHEN = dt.datetime(2026, 10, 21, 1, 16, 27, tzinfo=dt.UTC)


def run(tmp_path, entries, times=None, **zip_kw):
    path = write_zip(tmp_path / "bulk.zip", entries, **zip_kw)
    match = canvas.Matcher(ROSTER, times)
    placed, manifest = bulk.collect(path, lambda e: match.with_time(canvas.parse(e)), match,
                                    str(tmp_path / "subs"), "toy", "toy.ipynb")
    return {p.upload.entry: p for p in placed}, manifest


def test_the_newest_file_counts_and_the_others_are_kept(tmp_path):
    """Two notebooks of one student for one name: Canvas's renamed re-upload (higher
    attachment id) is toy.ipynb with timestamp.txt; the older is kept aside as a duplicate;
    a data file is kept as extra; all listed in the manifest."""
    old, new = notebook_bytes(), notebook_bytes() + b" "
    got, manifest = run(tmp_path, {"müllerjörg_1001_5001_toy.ipynb": old,
                                   "müllerjörg_1001_5010_toy-1.ipynb": new,
                                   "müllerjörg_1001_5011_data.csv": b"1,2\n"},
                        times={"1001": WHEN})
    subs = tmp_path / "subs"
    assert (subs / "alice" / "toy" / "toy.ipynb").read_bytes() == new
    assert (subs / "alice" / "toy" / "timestamp.txt").read_text() == \
        "2026-10-21 01:16:27.000000 UTC\n"
    assert "renamed from toy-1.ipynb" in got["müllerjörg_1001_5010_toy-1.ipynb"].note
    dup = got["müllerjörg_1001_5001_toy.ipynb"]
    assert dup.status is bulk.Status.DUPLICATE and open(dup.path, "rb").read() == old
    assert got["müllerjörg_1001_5011_data.csv"].status is bulk.Status.EXTRA
    rows = list(csv.DictReader(open(manifest)))
    assert sorted(r["status"] for r in rows) == ["collected", "duplicate", "extra"]


def test_hostile_entries_never_leave_the_folder_and_links_are_refused(tmp_path):
    """An entry named with ../ lands (by its base name) inside the folder; a symbolic link
    entry is refused, not extracted; a name the LMS would not write is kept as unknown."""
    got, _ = run(tmp_path, {"../../../müllerjörg_1001_5001_toy.ipynb": notebook_bytes(),
                            "README": b"hi"},
                 links={"obrienmary_1002_5002_toy.ipynb": "/etc/passwd"})
    assert got["../../../müllerjörg_1001_5001_toy.ipynb"].path == str(
        tmp_path / "subs" / "alice" / "toy" / "toy.ipynb")
    link = got["obrienmary_1002_5002_toy.ipynb"]
    assert link.status is bulk.Status.REFUSED and "symbolic link" in link.note
    assert not (tmp_path / "subs" / "bob").exists()
    assert got["README"].status is bulk.Status.UNKNOWN
    assert sorted(os.listdir(tmp_path)) == ["bulk.zip", "subs"]


def test_a_file_too_large_is_refused(tmp_path, monkeypatch):
    """A notebook over the size bound is reported as refused and not written."""
    monkeypatch.setattr(bulk, "MAX_NOTEBOOK_BYTES", 100)
    got, _ = run(tmp_path, {"müllerjörg_1001_5001_toy.ipynb": b"x" * 1000})
    assert got["müllerjörg_1001_5001_toy.ipynb"].status is bulk.Status.REFUSED
    assert "too large" in got["müllerjörg_1001_5001_toy.ipynb"].note


def test_names_stored_without_the_utf8_flag_are_read_as_utf8(tmp_path):
    """A writer that stores UTF-8 names without the zip's UTF-8 flag still gives "müller"."""
    got, _ = run(tmp_path, {"m__llerj__rg_1001_5001_toy.ipynb": notebook_bytes()},
                 raw_names={"m__llerj__rg": "müllerjörg"})
    assert list(got) == ["müllerjörg_1001_5001_toy.ipynb"]


def test_a_later_download_moves_the_earlier_notebook_aside(tmp_path):
    """Collecting a newer download replaces a different notebook only after moving it, with
    its timestamp.txt, to replaced/; an identical notebook is left as it is."""
    first = notebook_bytes()
    run(tmp_path, {"müllerjörg_1001_5001_toy.ipynb": first}, times={"1001": WHEN})
    got, _ = run(tmp_path, {"müllerjörg_1001_5001_toy.ipynb": first})
    assert got["müllerjörg_1001_5001_toy.ipynb"].note == ""
    got, _ = run(tmp_path, {"müllerjörg_1001_5020_toy.ipynb": first + b"\n"})
    assert "earlier notebook moved" in got["müllerjörg_1001_5020_toy.ipynb"].note
    replaced = tmp_path / "subs" / ".collect" / "toy" / "replaced" / "alice"
    assert sorted(os.listdir(replaced)) == ["timestamp.txt", "toy.ipynb"]
    assert not (tmp_path / "subs" / "alice" / "toy" / "timestamp.txt").exists()


def test_a_late_mark_without_a_time_is_noted(tmp_path):
    """Canvas's LATE without a submission time: collected, and the note says no penalty can
    apply."""
    got, _ = run(tmp_path, {"obrienmary_LATE_1002_5002_toy.ipynb": notebook_bytes()})
    assert "no late penalty can apply" in got["obrienmary_LATE_1002_5002_toy.ipynb"].note


def test_an_unreadable_zip_is_a_clear_error(tmp_path):
    """A file that is not a zip raises CollectError naming it."""
    (tmp_path / "x.zip").write_text("not a zip")
    with pytest.raises(bulk.CollectError, match="cannot be read as a zip"):
        bulk.collect(str(tmp_path / "x.zip"), canvas.parse, canvas.Matcher(), str(tmp_path),
                     "toy", "toy.ipynb")
