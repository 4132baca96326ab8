"""Crash safety: ``kill -9`` the grader at several moments, rerun, same grades.csv."""

import glob
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.support import toy
from tests.support.run import REPO, env, grade, grade_cmd

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_resume")]


def _submissions(root, course):
    toy.write_submission(root, "s1", toy.solution_notebook())
    toy.write_submission(root, "s2", toy.release_notebook(course))
    for i in range(3, 8):
        wrong = toy.with_answers(toy.solution_notebook(),
                                 scale_impl=f"def scale(x, a):\n    return a * x + {i % 2}\n")
        toy.write_submission(root, f"s{i}", wrong)
    toy.write_submission(root, "s8", "")


def _integrity(course):
    db = os.path.join(course, "gradebook.db")
    con = sqlite3.connect(db)
    try:
        return con.execute("pragma integrity_check").fetchone()[0]
    finally:
        con.close()


def _alive_with(token):
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if token in open(f"/proc/{pid}/cmdline").read():
                    pids.append(pid)
            except OSError:
                pass
    return pids


def _reference_run_and_fresh_course(tmp_path):
    """Grade the submissions once, uninterrupted, into tmp_path/ref.csv; return the
    submissions, a fresh course for the interrupted runs and their grades.csv path."""
    subs = tmp_path / "subs"
    ref_course = toy.build_course(str(tmp_path / "ref"))
    _submissions(subs, ref_course)
    ref = grade(subs, tmp_path / "ref.csv", ref_course)
    assert ref.returncode == 0, ref.stderr
    return subs, toy.build_course(str(tmp_path / "crash")), tmp_path / "out" / "grades.csv"


def test_kill_9_at_several_points_then_rerun_gives_the_same_grades(tmp_path):
    """After kill -9 at several moments and a final rerun, grades.csv equals an uninterrupted
    run's, the gradebook passes SQLite's integrity check, and no worker is left behind."""
    subs, course, out = _reference_run_and_fresh_course(tmp_path)
    for delay in (1.0, 2.0, 3.0, 4.5):
        proc = subprocess.Popen(grade_cmd(subs, out, course), cwd=REPO, env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_gone([str(out)]) == [], "workers outlived the killed grader"
        assert _integrity(course) == "ok"
    final = grade(subs, out, course)
    assert final.returncode == 0, final.stderr
    assert out.read_text() == (tmp_path / "ref.csv").read_text()
    assert _integrity(course) == "ok"


def _leftovers(markers):
    """Processes of a killed run still alive: any whose command line names one of its paths
    (workers, kernels, relays), and any in an autograder cgroup whose worker is gone."""
    left = _alive_with_any(markers)
    for group in glob.glob("/sys/fs/cgroup/*/autograder/ag-*") + glob.glob(
            "/sys/fs/cgroup/autograder/ag-*"):
        owner = os.path.basename(group)[3:].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                left += open(os.path.join(group, "cgroup.procs")).read().split()
            except OSError:
                pass
    return left


def _alive_with_any(markers):
    return [p for m in markers for p in _alive_with(m) if str(os.getpid()) != p]


def _wait_gone(markers, timeout=15.0):
    deadline = time.monotonic() + timeout
    while _leftovers(markers) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _leftovers(markers)


KILL_POINTS = [("result", 2), ("state", 2), ("gradebook", 3), ("rename:grades.csv", 1),
               ("rename:.html", 3), ("rename:_histogram.png", 1)]


def test_kill_9_at_chosen_points_then_rerun_gives_the_same_grades(tmp_path):
    """Killed with SIGKILL when a result has arrived but is not in the gradebook, while a
    worker puts a state file in place, right after a gradebook write, and while grades.csv,
    a feedback page or the histogram is being renamed into place: each time no worker,
    kernel or relay survives, grades.csv is either absent or whole, the gradebook passes
    SQLite's integrity check, and a final rerun writes an uninterrupted run's grades.csv."""
    subs, course, out = _reference_run_and_fresh_course(tmp_path)
    scratch = tmp_path / "t"
    scratch.mkdir()
    markers = [str(out), str(scratch)]
    for point, nth in KILL_POINTS:
        cmd = [sys.executable, "-m", "tests.support.crash_driver", point, str(nth),
               *grade_cmd(subs, out, course)[4:]]
        proc = subprocess.run(cmd, cwd=REPO, env={**env(), "TMPDIR": str(scratch)},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        assert _wait_gone(markers) == [], f"processes outlived the grader killed at {point}"
        assert _integrity(course) == "ok"
        if out.exists():
            assert out.read_text().count("\n") == (tmp_path / "ref.csv").read_text().count("\n")
    final = grade(subs, out, course, env_extra={"TMPDIR": str(scratch)})
    assert final.returncode == 0, final.stderr
    assert out.read_text() == (tmp_path / "ref.csv").read_text()
    assert _integrity(course) == "ok"
    assert os.listdir(scratch) == []
