"""``python -m autograder collect``: Canvas's and Moodle's bulk downloads, odd names and all,
into the submissions folder, nothing dropped silently."""

import csv
import os

import pytest

from tests.support.graded import cli
from tests.support.lms import canvas_times, notebook_bytes, roster, worksheet, write_zip

pytestmark = pytest.mark.xdist_group("collect_cli")

ROSTER = [
    {"student_id": "alice", "first_name": "Jörg", "last_name": "Müller", "lms_id": "1001",
     "email": "j.mueller@uni.example"},
    {"student_id": "bob", "first_name": "Mary", "last_name": "O'Brien", "lms_id": "1002"},
    {"student_id": "carol", "first_name": "Anna", "last_name": "van der Smith"},
    {"student_id": "dave", "first_name": "Wei", "last_name": "Chen", "lms_id": "1006"},
]


def manifest(subs):
    with open(subs / ".collect" / "toy" / "collect.csv", encoding="utf-8") as f:
        return {r["entry"]: r for r in csv.DictReader(f)}


def test_a_canvas_download_with_odd_names(tmp_path):
    """Accents, apostrophes and spaces in names, a LATE re-upload renamed toy-1.ipynb, a
    student matched by name alone, anonymous grading, a text entry, an unknown user and a
    stray file: notebooks land with Canvas's submission times, everything else is kept aside,
    listed and named in the summary."""
    nb = notebook_bytes()
    bulk = write_zip(tmp_path / "submissions.zip", {
        "müllerjörg_1001_5001_toy.ipynb": nb,
        "obrienmary_LATE_1002_5002_toy-1.ipynb": nb,
        "vandersmithanna_1003_5003_My Notebook.ipynb": nb,
        "LATE_anon_Xy7Qz_5004_toy.ipynb": nb,
        "chenwei_1006_text.html": b"<p>I forgot to upload</p>",
        "strangerdanger_1999_5009_toy.ipynb": nb,
        "desktop.ini": b"[x]"})
    times = canvas_times(tmp_path / "times.json", {1001: "2026-11-02T04:00:00Z",
                                                   1002: "2026-11-03T05:00:30Z"})
    subs = tmp_path / "subs"
    proc = cli("collect", "canvas", bulk, "--assignment", "toy", "--out", subs, "--roster",
               roster(tmp_path / "r.csv", ROSTER), "--times", times,
               "--course", tmp_path / "none")
    assert proc.returncode == 0, proc.stderr
    assert (subs / "alice" / "toy" / "timestamp.txt").read_text() == \
        "2026-11-02 04:00:00.000000 UTC\n"
    assert (subs / "bob" / "toy" / "toy.ipynb").read_bytes() == nb
    assert (subs / "bob" / "toy" / "timestamp.txt").read_text().startswith("2026-11-03 05:00:30")
    assert os.listdir(subs / "carol" / "toy") == ["My_Notebook.ipynb"]
    assert sorted(os.listdir(subs)) == [".collect", "alice", "bob", "carol"]
    rows = manifest(subs)
    assert {e: r["status"] for e, r in rows.items()} == {
        "müllerjörg_1001_5001_toy.ipynb": "collected",
        "obrienmary_LATE_1002_5002_toy-1.ipynb": "collected",
        "vandersmithanna_1003_5003_My Notebook.ipynb": "collected",
        "LATE_anon_Xy7Qz_5004_toy.ipynb": "unmatched",
        "chenwei_1006_text.html": "text",
        "strangerdanger_1999_5009_toy.ipynb": "unmatched",
        "desktop.ini": "unknown"}
    assert rows["obrienmary_LATE_1002_5002_toy-1.ipynb"]["late"] == "LATE"
    assert "collected 3 notebooks of 3 students" in proc.stdout
    assert "1 marked LATE" in proc.stdout and "anonymous grading" in proc.stdout
    assert "Canvas user 1999 (strangerdanger): not in the roster" in proc.stdout
    assert "4 files were not collected" in proc.stderr
    assert (subs / ".collect" / "toy" / "unmatched" / "strangerdanger_1999_5009_toy.ipynb"
            ).read_bytes() == nb


def test_a_moodle_download_with_the_worksheet_s_times(tmp_path):
    """Folders per participant (names with spaces and accents) and an old-style flat name;
    the worksheet maps participants to students by email or name and gives the submission
    time, read in the given timezone; online text is kept aside."""
    nb = notebook_bytes()
    bulk = write_zip(tmp_path / "moodle.zip", {
        "Jörg Müller_31_assignsubmission_file_/toy.ipynb": nb,
        "Mary O'Brien_32_assignsubmission_file_toy.ipynb": nb,
        "Mary O'Brien_32_assignsubmission_onlinetext_/onlinetext.html": b"<p>hi</p>"})
    sheet = worksheet(tmp_path / "w.csv", [
        {"Identifier": "Participant 31", "Full name": "Jörg Müller",
         "Email address": "j.mueller@uni.example",
         "Last modified (submission)": "Sunday, 1 November 2026, 11:00 PM"},
        {"Identifier": "Participant 32", "Full name": "Mary O'Brien",
         "Last modified (submission)": "-"}])
    subs = tmp_path / "subs"
    proc = cli("collect", "moodle", bulk, "--assignment", "toy", "--out", subs, "--roster",
               roster(tmp_path / "r.csv", ROSTER), "--worksheet", sheet, "--timezone",
               "America/New_York", "--course", tmp_path / "none")
    assert proc.returncode == 0, proc.stderr
    assert (subs / "alice" / "toy" / "timestamp.txt").read_text() == \
        "2026-11-02 04:00:00.000000 UTC\n"                      # 11 PM EST
    assert sorted(os.listdir(subs / "bob" / "toy")) == ["toy.ipynb"]
    assert manifest(subs)["Mary O'Brien_32_assignsubmission_onlinetext_/onlinetext.html"][
        "status"] == "text"


@pytest.mark.parametrize("extra, why", [
    ([], "moodle needs --roster or --worksheet"),
    (["--worksheet", "W"], "give --timezone"),
    (["--worksheet", "W", "--timezone", "Mars/Base"], "unknown timezone"),
])
def test_moodle_without_the_means_to_name_students_or_times_is_exit_2(tmp_path, extra, why):
    """Moodle's participant numbers cannot be student ids, and the worksheet's times carry no
    zone: both must be given; nothing is written."""
    bulk = write_zip(tmp_path / "m.zip", {"A B_1_assignsubmission_file_/toy.ipynb": b"{}"})
    sheet = worksheet(tmp_path / "w.csv", [{"Identifier": "Participant 1", "Full name": "A B",
                                            "Last modified (submission)": "1 Nov 2026, 9:00"}])
    extra = [str(sheet) if a == "W" else a for a in extra]
    proc = cli("collect", "moodle", bulk, "--assignment", "toy", "--out", tmp_path / "subs",
               *extra)
    assert proc.returncode == 2 and why in proc.stderr
    assert not (tmp_path / "subs").exists()


def test_a_file_that_is_not_a_zip_is_exit_2(tmp_path):
    """A broken download is named."""
    (tmp_path / "x.zip").write_bytes(b"PK\x03\x04broken")
    proc = cli("collect", "canvas", tmp_path / "x.zip", "--assignment", "toy", "--out",
               tmp_path / "subs")
    assert proc.returncode == 2 and "cannot be read as a zip" in proc.stderr
