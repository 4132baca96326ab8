"""Interrupting is safe: Ctrl-C (SIGINT) or SIGTERM, once or twice, at several moments, to a
real ``python -m autograder grade``; the run stops within its grace period, keeps what is
finished, never keeps a cut-short result as final, leaves no process behind, and the same
command run again ends with an uninterrupted run's grades.csv."""

import csv
import glob
import io
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from autograder.grading.interrupt import NOT_GRADED, RERUN
from tests.support.crash import (
    MODES,
    Setup,
    integrity,
    leftovers,
    reference_csv,
    wait_for,
    wait_gone,
)
from tests.support.run import REPO

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_interrupt")]


def _rows(text: str) -> dict:
    return {r["student_id"]: r for r in csv.DictReader(io.StringIO(text))}


def _log_grew(log, size: int) -> bool:
    """Whether grades.log holds a "graded" line written after its first ``size`` bytes."""
    return log.exists() and "graded " in log.read_bytes()[size:].decode(errors="replace")


def _interrupt(s: Setup, when: str, signals: list[int]) -> tuple[int, str, str]:
    """Run grade, send ``signals`` at ``when`` ("running": while the student's processes of s1
    run; "first result": once a result has come back while they run); (exit status, stdout,
    stderr). With two signals, the run is made to hang in its wind-down (before it renames
    grades.csv, :mod:`tests.support.crash_driver`), and the second signal is sent once the
    first has been acknowledged: only the second can end it."""
    log = s.out.with_suffix(".log")
    size = log.stat().st_size if log.exists() else 0
    err_path = s.out.parent.parent / "stderr.txt"
    cmd = s.cmd if len(signals) == 1 else [
        sys.executable, "-m", "tests.support.crash_driver", "hang:grades.csv", "1", *s.cmd[4:]]
    with open(err_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=s.env, stdout=subprocess.PIPE,
                                stderr=err, text=True)
        if when == "running":
            ready = lambda: leftovers([s.token])  # noqa: E731
        else:
            ready = lambda: leftovers([s.token]) and _log_grew(log, size)  # noqa: E731
        wait_for(lambda: ready() or proc.poll() is not None, what=when)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signals[0])
        if len(signals) > 1:
            wait_for(lambda: "stopping:" in err_path.read_text() or proc.poll() is not None,
                     timeout=60, what="the first signal's message")
            proc.send_signal(signals[1])
        out, _ = proc.communicate(timeout=120)
    return proc.returncode, out, err_path.read_text()


def _check_partial(s: Setup, ref: dict, out: str, err: str) -> None:
    """grades.csv has every row: each graded one as in the reference run, s1 (cut short)
    not graded; no state file keeps a result other than the reference's as final."""
    rows = _rows(s.out.read_text())
    assert rows.keys() == ref.keys()
    assert rows["s1"]["reason"] == NOT_GRADED and rows["s1"]["score"] == "0.0"
    for student, row in rows.items():
        assert row == ref[student] or row["reason"] == NOT_GRADED, student
    assert "class summary (partial: " in out
    assert f"interrupted: {RERUN}" in err
    for path in glob.glob(os.path.join(s.course, ".autograder_state", "toy", "*.json")):
        kept = json.load(open(path))
        student = os.path.basename(path)[:-5]
        assert kept["retry"] or str(kept["score"]) == ref[student]["score"], student
        assert student != "s1" or kept["retry"], "a result cut short was kept as final"


@pytest.mark.parametrize("mode", MODES)
def test_interrupts_keep_what_is_done_and_the_rerun_ends_as_an_uninterrupted_run(
        mode, tmp_path, tmp_path_factory):
    """SIGINT once right after the first results came back, SIGINT once and SIGTERM once while
    a kernel runs, and SIGINT twice: each run exits with 130 (143 for SIGTERM) without a
    traceback and leaves no process behind; the single ones write a partial grades.csv (rows
    graded as in the reference run, the notebook cut short "not graded: the run was
    interrupted" and not kept); the double one exits at once. Running the same command again
    reuses the finished results and writes the reference run's grades.csv."""
    ref_text = reference_csv(tmp_path_factory)
    ref = _rows(ref_text)
    s = Setup(tmp_path, mode)
    for when, signals, status in (
            ("first result", [signal.SIGINT], 130),
            ("running", [signal.SIGINT], 130),
            ("running", [signal.SIGTERM], 143),
            ("running", [signal.SIGINT, signal.SIGINT], 130)):
        code, out, err = _interrupt(s, when, signals)
        assert code == status, (when, signals, err[-2000:])
        assert "Traceback" not in err, err[-3000:]
        assert wait_gone(s.markers) == [], f"processes outlived the interrupted run ({when})"
        assert integrity(s.course) == "ok"
        if len(signals) == 1:
            _check_partial(s, ref, out, err)
        else:
            assert "again: exiting at once" in err
    final = s.grade()
    assert final.returncode == 0, final.stderr
    reused = re.search(r"(\d+) submissions already graded by an earlier run: reused; 0 graded "
                       "again", final.stdout)
    assert reused and int(reused[1]) >= 1, final.stdout
    assert s.out.read_text() == ref_text
    assert wait_gone(s.markers) == []
