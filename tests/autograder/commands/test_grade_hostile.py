"""Issues 6 and 11: a batch of attacks and faults mixed with a perfect and an empty submission.

The batch is graded once (module fixture, small limits), its grader's memory watched from
outside; each test checks one property. Every attack must score no more than its honest code
earns (for most, nothing: the empty submission's score) and no less for what it recorded
correctly, the perfect one full marks, each fault its expected score and reason; the grader
stays within its memory, writes no control character and leaves nothing behind, and nobody
else may be harmed.
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
from tests.support.run import grade_watched, once, read_csv
from tests.support.shown import forbidden

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("hostile")]
CELL, NOTEBOOK = 6, 15
GRADER_MEMORY = 1.5 * 2**30   # the grader's own processes together (kernels not included)
ROUND_TWO = ["record_sizes", "record_exceptions", "record_bloat", "self_kill", "fill_inodes",
             "many_cells", "ts_forgery", "nb_forgery", hostile.FORGING_NAME, "plot_markup"]


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
            SimpleNamespace(**r["proc"], memory=r["memory"]), r["before"])


def _batch(base):
    course = toy.build_course(str(base / "course"))
    out = base / "out" / "grades.csv"
    samples = hostile.write_all(str(base / "subs"), course, str(out), cell_timeout=CELL,
                                notebook_timeout=NOTEBOOK, cgroup=detect().cgroup is not None)
    before = {"source": _digest(os.path.join(course, "source")),
              "victim": _digest(base / "subs" / "perfect")}
    (base / "t").mkdir()
    proc, memory = grade_watched(base / "subs", out, course, "--cell-timeout", CELL,
                                 "--notebook-timeout", NOTEBOOK, "--memory", "1G",
                                 "--processes", "64", env_extra={"TMPDIR": str(base / "t")})
    return {"base": str(base), "course": course, "out": str(out), "proc": proc,
            "memory": memory, "before": before,
            "samples": {k: dataclasses.asdict(v) for k, v in samples.items()}}


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
    found = {(display_name(s), display_name(a)) for s in os.listdir(base / "subs")
             for a in os.listdir(base / "subs" / s)}
    assert set(rows) == found
    assert len(found) == len([k for k in samples if not k.startswith("_")])


def test_perfect_full_marks_and_attackers_no_more_than_their_honest_code(batch):
    """Perfect scores 5/5; every attack scores at most what its honest code earns (for most
    attacks nothing, what the empty notebook scores) and at least what it recorded
    correctly."""
    _, _, out, samples, _, _ = batch
    rows = read_csv(out)
    score = {s: float(_row(rows, s)["score"]) for s in samples if not s.startswith("_")}
    assert score["perfect"] == 5.0 and score["empty"] == 0.0
    attackers = [s for s, v in samples.items() if v.kind == "attack"]
    assert len(attackers) >= 20
    assert {s: score[s] for s in attackers if score[s] > samples[s].max_expected} == {}
    assert {s: score[s] for s in attackers if score[s] < samples[s].min_expected} == {}


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
    """A 10 MB error message reaches neither grades.csv, the state file nor the feedback in
    full: each string is cut with a note."""
    base, course, out, _, _, _ = batch
    row = _row(read_csv(out), "huge_error")
    assert len(row["reason"]) < 10_000
    state = os.path.join(course, ".autograder_state", "toy", "huge_error.json")
    assert os.path.getsize(state) < 100_000
    parts = json.load(open(state))["parts"]
    assert all(len(p["message"]) < 10_000 for p in parts)
    assert re.search(r"truncated: 100000\d\d characters", parts[1]["message"])
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


@pytest.mark.parametrize("student", ROUND_TWO)
def test_round_two_attacks_score_and_reason(batch, student):
    """Each attack of round two keeps what its honest code earns, and its reason (where the
    sample names one) says what happened."""
    _, _, out, samples, _, _ = batch
    sample, row = samples[student], _row(read_csv(out), student)
    assert sample.min_expected <= float(row["score"]) <= sample.max_expected, row
    assert sample.reason.lower() in row["reason"].lower(), row


def test_records_that_cannot_be_decoded_fail_their_part_only(batch):
    """A record of negative shape over a gigabyte of deflated zeros, and one whose reading
    raises LZMAError, fail their part with the reason; the part recorded before counts and
    no row says the grader failed."""
    _, course, _, _, _, _ = batch
    for student, why in (("record_sizes", "non-negative"), ("record_exceptions", "method 14")):
        result = json.load(open(os.path.join(course, ".autograder_state", "toy",
                                             f"{student}.json")))
        scale, total = result["parts"]
        assert scale["score"] == 2.0 and total["score"] == 0.0, result
        assert "rejected" in total["message"] and why in total["message"], total
        assert not result["retry"] and "internal" not in result["reason"]


def test_the_grader_stays_within_its_memory(batch):
    """The grader's own processes (coordinator, workers, relays) together never hold more than
    1.5 GiB resident, whatever the kernels send (watched every 0.1 s; each process's own peak
    is exact)."""
    memory = batch[4].memory
    assert 0 < memory["peak_sum"] < GRADER_MEMORY, memory
    assert memory["peak_one"] < GRADER_MEMORY, memory


def test_no_control_character_in_grades_csv_the_log_or_the_terminal(batch):
    """Student folder names, a notebook file name and a timestamp.txt made to forge a log line
    reach grades.csv, grades.log and the terminal escaped: no control or bidi character (but
    the progress bar's own carriage returns on stderr), and no line starts with the forged
    one."""
    base, _, out, _, proc, _ = batch
    log = (base / "out" / "grades.log").read_text()
    csv_text = out.read_text()
    terminal = proc.stdout + proc.stderr.replace("\r", "\n")
    for text in (csv_text, log, terminal):
        assert forbidden(text) == []
        assert not any(line.startswith(hostile.FORGED_LINE[:10]) for line in
                       text.splitlines()), text
    assert "\\x1b]0;owned\\x07" in log and "\\x1b]0;owned\\x07" in csv_text


def test_the_class_histogram_is_drawn_despite_a_mathtext_folder_name(batch):
    """An assignment folder named as mathtext gets its row and the histogram is written."""
    base, _, out, _, _, _ = batch
    png = base / "out" / "grades_histogram.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "no histogram" not in (base / "out" / "grades.log").read_text()
    assert any(a == hostile.MATHTEXT_NAME for _, a in read_csv(out))


def test_a_kernel_that_kills_itself_is_graded_once(batch):
    """A kernel SIGKILLed by its own child earns no second attempt (nothing outside the
    notebook caused its death), nor does one that sends SIGKILL to every process it sees."""
    _, _, out, _, _, _ = batch
    rows = read_csv(out)
    reason = _row(rows, "self_kill")["reason"]
    assert "graded twice" not in reason and "killed by SIGKILL" in reason, reason
    assert "graded twice" not in _row(rows, "harm_others")["reason"]


def test_no_control_group_mount_or_scratch_is_left(batch):
    """After the run no control group of any of its worker processes remains (however full
    their kernels' scratch space was), nothing is mounted below the run's folders and the
    temporary folder is empty."""
    base, _, _, _, proc, _ = batch
    spec = detect().cgroup
    pids = set(proc.memory["pids"])
    assert len(pids) >= 3
    if spec is not None:
        for root in spec.split(":", 1)[1].split(","):
            left = [d for d in os.listdir(root) if d.startswith("ag-")
                    and d[3:].split("-")[0].isdigit() and int(d[3:].split("-")[0]) in pids]
            assert left == [], (root, left)
    with open("/proc/self/mountinfo") as f:
        assert str(base) not in f.read()
    assert os.listdir(base / "t") == []


def test_autograded_notebooks_are_stored_once(batch):
    """The autograded notebook in the course is the state folder's file under a second name,
    not a second copy."""
    _, course, _, _, _, _ = batch
    state = os.stat(os.path.join(course, ".autograder_state", "toy", "perfect.ipynb"))
    graded = os.stat(os.path.join(course, "autograded", "perfect", "toy", "toy.ipynb"))
    assert state.st_ino == graded.st_ino and state.st_nlink == 2

