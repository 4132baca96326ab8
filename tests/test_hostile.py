"""Issue 6: a batch of attacks and faults mixed with a perfect and an empty submission.

The batch is graded once (module fixture, small limits); each test checks one property. Every
attack must score no more than the empty submission, the perfect one full marks, each fault its
expected score and reason, and nobody else may be harmed.
"""

import dataclasses
import hashlib
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fixtures import hostile, toy
from tests.fixtures.run import grade, once, proc_dict, read_csv, sandboxed

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hostile")]
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
    if not sandboxed():
        pytest.skip("the bubblewrap sandbox cannot run on this machine (see "
                    "python -c 'import autograder.sandbox as s; print(s.detect())')")
    r = once("hostile", tmp_path_factory, _batch)
    samples = {k: hostile.Sample(**v) for k, v in r["samples"].items()}
    return (Path(r["base"]), r["course"], Path(r["out"]), samples,
            SimpleNamespace(**r["proc"]), r["before"])


def _batch(base):
    course = toy.build_course(str(base / "course"))
    out = base / "out" / "grades.csv"
    samples = hostile.write_all(str(base / "subs"), course, str(out), cell_timeout=CELL,
                                notebook_timeout=NOTEBOOK)
    before = {"source": _digest(os.path.join(course, "source")),
              "victim": _digest(base / "subs" / "perfect")}
    proc = grade(base / "subs", out, course, "--cell-timeout", CELL, "--notebook-timeout",
                 NOTEBOOK, "--memory", "1G", "--processes", "64")
    return {"base": str(base), "course": course, "out": str(out), "proc": proc_dict(proc),
            "samples": {k: dataclasses.asdict(v) for k, v in samples.items()},
            "before": before}


def test_batch_finishes_with_exit_zero(batch):
    """The whole batch is handled and the command exits 0."""
    proc = batch[4]
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_one_row_per_submission(batch):
    """grades.csv has exactly one row per (student, assignment) folder."""
    base, _, out, samples, _, _ = batch
    rows = read_csv(out)
    found = {(s, a) for s in os.listdir(base / "subs")
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
    "symlinked"])
def test_fault_scores_and_reason(batch, student):
    """Each fault gets its expected score range and a reason naming what happened."""
    _, _, out, samples, _, _ = batch
    sample = samples[student]
    row = [r for (s, _), r in read_csv(out).items() if s == student][0]
    assert sample.min_expected <= float(row["score"]) <= sample.max_expected, row
    assert sample.reason.lower() in row["reason"].lower(), row


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
    """Background and detached processes started by submissions are all gone."""
    tokens = batch[3]["_token"].what.split()
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
