"""Issue 6: a batch of attacks and faults mixed with a perfect and an empty submission.

The batch is graded once (module fixture, small limits); each test checks one property. Every
attack must score no more than the empty submission, the perfect one full marks, each fault its
expected score and reason, and nobody else may be harmed.
"""

import dataclasses
import glob
import hashlib
import json
import os
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from autograder.sandbox.isolation import detect
from autograder.text import display_name
from tests.support import hostile, toy
from tests.support.run import grade, once, proc_dict, read_csv

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("hostile")]
CELL, NOTEBOOK = 6, 15


def _digest(folder):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(folder)):
        dirs.sort()
        for f in sorted(files):
            h.update(f.encode())
            with open(os.path.join(root, f), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    r = once("hostile", tmp_path_factory, _batch)
    samples = {k: hostile.Sample(**v) for k, v in r["samples"].items()}
    return (Path(r["base"]), r["course"], Path(r["out"]), samples,
            SimpleNamespace(**r["proc"]), r["before"])


def _batch(base):
    course = toy.build_course(str(base / "course"))
    out = base / "out" / "grades.csv"
    samples = hostile.write_all(str(base / "subs"), course, str(out), cell_timeout=CELL,
                                notebook_timeout=NOTEBOOK, cgroup=detect().cgroup is not None)
    before = {"source": _digest(os.path.join(course, "source")),
              "victim": _digest(base / "subs" / "perfect")}
    (base / "t").mkdir()
    proc = grade(base / "subs", out, course, "--cell-timeout", CELL, "--notebook-timeout",
                 NOTEBOOK, "--memory", "1G", "--processes", "64",
                 env_extra={"TMPDIR": str(base / "t")})
    return {"base": str(base), "course": course, "out": str(out), "proc": proc_dict(proc),
            "samples": {k: dataclasses.asdict(v) for k, v in samples.items()},
            "before": before}


def _row(rows, student):
    return [r for (s, _), r in rows.items() if s == display_name(student)][0]


def test_batch_finishes_with_exit_zero(batch):
    """The whole batch is handled and the command exits 0."""
    proc = batch[4]
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_one_row_per_submission(batch):
    """grades.csv has exactly one row per (student, assignment) folder."""
    base, _, out, samples, _, _ = batch
    rows = read_csv(out)
    found = {(display_name(s), a) for s in os.listdir(base / "subs")
             for a in os.listdir(base / "subs" / s)}
    assert set(rows) == found
    assert len(found) == len([k for k in samples if not k.startswith("_")])


def test_perfect_full_marks_and_attackers_no_more_than_empty(batch):
    """Perfect scores 5/5; every attack scores at most what the empty notebook scores."""
    _, _, out, samples, _, _ = batch
    rows = read_csv(out)
    score = {s: float(r["score"]) for (s, _), r in rows.items()}
    assert score["perfect"] == 5.0 and score["empty"] == 0.0
    attackers = [s for s, v in samples.items() if v.kind == "attack"]
    assert len(attackers) >= 10
    assert {s: score[s] for s in attackers if score[s] > score["empty"]} == {}


@pytest.mark.parametrize("student", [
    "deleted_tests_good", "infinite_loop", "ignore_interrupt", "slow_notebook", "memory_bomb",
    "fork_bomb", "big_output", "os_exit", "sys_exit", "crash", "corrupt_json", "empty_file",
    "not_a_notebook", "missing_nb", "misnamed_nb", "other_assignment", "unknown_assignment",
    "symlinked", "output_flood", "message_flood", "malformed_messages", "planted_files",
    "huge_error", "active_output", "added_cells", "bom", "huge_int", "lone_surrogate",
    "too_large", "ts_fifo", "ts_overflow", "ts_symlink", hostile.LONG_NAME, hostile.ODD_NAME])
def test_fault_scores_and_reason(batch, student):
    """Each fault gets its expected score range and a reason naming what happened."""
    _, _, out, samples, _, _ = batch
    sample = samples[student]
    row = _row(read_csv(out), student)
    assert sample.min_expected <= float(row["score"]) <= sample.max_expected, row
    assert sample.reason.lower() in row["reason"].lower(), row


def test_every_fault_has_a_reason(batch):
    """A submission that scores less than its sample allows only with a reason: no fault
    (time limit, death, limit, refused input) ever leaves the reason empty."""
    _, _, out, samples, _, _ = batch
    rows = read_csv(out)
    silent = [s for s, v in samples.items() if v.kind == "fault" and v.reason == ""
              and not _row(rows, s)["reason"] and float(_row(rows, s)["score"]) < v.max_expected]
    assert silent == []
    for s, v in samples.items():
        if v.kind == "fault" and v.reason:
            assert _row(rows, s)["reason"], s


def test_reasons_and_messages_are_capped(batch):
    """A 20 MB error message reaches neither grades.csv, the state file nor the feedback in
    full: each string is cut with a note."""
    base, course, out, _, _, _ = batch
    row = _row(read_csv(out), "huge_error")
    assert len(row["reason"]) < 10_000
    state = os.path.join(course, ".autograder_state", "toy", "huge_error.json")
    assert os.path.getsize(state) < 100_000
    parts = json.load(open(state))["parts"]
    assert all(len(p["message"]) < 10_000 for p in parts)
    assert re.search(r"truncated: 200000\d\d characters", parts[1]["message"])
    assert os.path.getsize(base / "out" / "feedback" / "huge_error.html") < 100_000


def test_autograded_notebooks_hold_no_active_content(batch):
    """What formgrader shows the instructor holds no HTML, JavaScript or SVG output, and the
    student's Markdown is shown as code; the added helper cell is kept."""
    _, course, _, _, _, _ = batch
    allowed = {"text/plain", "image/png", "image/jpeg", "image/gif"}
    paths = glob.glob(os.path.join(course, "autograded", "*", "toy", "toy.ipynb"))
    assert len(paths) > 20
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                assert set(output.get("data", {})) <= allowed, (path, output)
            if cell.cell_type == "markdown" and "<script" in cell.source:
                assert cell.source.startswith("```"), (path, cell.source)
    nb = nbformat.read(os.path.join(course, "autograded", "added_cells", "toy", "toy.ipynb"),
                       as_version=4)
    assert any(c.source == hostile.ADDED_HELPER for c in nb.cells)


def test_no_temporary_files_left(batch):
    """Everything the kernels wrote on the grader's side (their temporary folders, whatever
    they planted there) is gone after the run."""
    base = batch[0]
    assert os.listdir(base / "t") == []


def test_oversized_notebook_is_not_copied(batch):
    """A notebook over the size limit gets a reason and is not copied into the course."""
    _, course, _, _, _, _ = batch
    assert not os.path.exists(os.path.join(course, "submitted", "too_large", "toy", "toy.ipynb"))


def test_no_submission_causes_a_grader_error(batch):
    """Whatever a submission does, its row never reports a failure of the grader itself."""
    rows = read_csv(batch[2])
    assert [s for (s, _), r in rows.items() if "internal grader error" in r["reason"]
            or "did not start" in r["reason"]] == []


def test_nobody_else_harmed(batch):
    """Course sources, the other students' files and the gradebook are intact."""
    base, course, out, _, _, before = batch
    assert _digest(os.path.join(course, "source")) == before["source"]
    assert _digest(base / "subs" / "perfect") == before["victim"]
    con = sqlite3.connect(os.path.join(course, "gradebook.db"))
    assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert "pwned" not in out.read_text() and "100" not in out.read_text().split("\n")[0]
    assert not os.path.exists("/tmp/PWNED_BY_PICKLE")


def test_no_processes_left_behind(batch):
    """Background and detached processes started by submissions, and the kernels and relays
    themselves (found by their temporary folder), are all gone."""
    tokens = batch[3]["_token"].what.split() + [str(batch[0] / "t")]
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline").read()
            except OSError:
                continue
            if any(t in cmd for t in tokens) and "pytest" not in cmd:
                left.append(cmd[:100])
    assert left == []


def test_stealing_found_nothing(batch):
    """Inside the sandbox neither the project, the course nor the gradebook could be found."""
    _, course, _, _, _, _ = batch
    import nbformat
    nb = nbformat.read(os.path.join(course, "autograded", "steal_solutions", "toy", "toy.ipynb"),
                       as_version=4)
    printed = [o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    found = [t for t in printed if t.startswith("FOUND")]
    assert len(found) == 1
    found = found[0]
    assert "import solutions" not in found and "import autograder" not in found
    assert course not in found and "toy.ipynb" not in found


def test_feedback_never_shows_hidden_tests(batch):
    """No feedback page contains hidden-test code."""
    base = batch[0]
    folder = base / "out" / "feedback"
    pages = os.listdir(folder)
    assert "perfect.html" in pages
    for page in pages:
        text = (folder / page).read_text()
        assert "BEGIN HIDDEN TESTS" not in text and "_grading_harness" not in text
