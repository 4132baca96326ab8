"""Crash safety: ``kill -9`` the grader at several moments, rerun, same grades.csv; nothing the
grader started (workers, supervisors, kernels, relays, processes the student's code detached)
outlives it, with the sandbox and without it."""

import os
import signal
import subprocess
import sys
import time

import pytest

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

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_resume")]


@pytest.mark.parametrize("mode", MODES)
def test_kill_9_at_several_points_then_rerun_gives_the_same_grades(mode, tmp_path,
                                                                   tmp_path_factory):
    """After kill -9 while the processes of a student's notebook run, and at several later
    moments, nothing of the run is left each time, and a final rerun gives an uninterrupted
    run's grades.csv and a gradebook that passes SQLite's integrity check."""
    ref = reference_csv(tmp_path_factory)
    s = Setup(tmp_path, mode)
    for delay in (None, 1.0, 3.0):
        proc = subprocess.Popen(s.cmd, cwd=REPO, env=s.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        if delay is None:   # once the student's detached processes run
            wait_for(lambda p=proc: len(leftovers([s.token])) >= 2 or p.poll() is not None,
                     what="the student's processes")
        else:
            time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_gone(s.markers) == [], f"processes outlived the grader killed ({delay})"
        assert integrity(s.course) == "ok"
    final = s.grade()
    assert final.returncode == 0, final.stderr
    assert s.out.read_text() == ref
    assert integrity(s.course) == "ok"
    assert wait_gone(s.markers) == []


KILL_POINTS = [("result", 2), ("state", 2), ("gradebook", 3), ("rename:grades.csv", 1),
               ("rename:.html", 3), ("rename:_histogram.png", 1)]


@pytest.mark.parametrize("mode", MODES)
def test_kill_9_at_chosen_points_then_rerun_gives_the_same_grades(mode, tmp_path,
                                                                  tmp_path_factory):
    """Killed with SIGKILL when a result has arrived but is not in the gradebook, while a
    worker puts a state file in place, right after a gradebook write, and while grades.csv,
    a feedback page or the histogram is being renamed into place: each time no worker,
    supervisor, kernel, relay or student process survives, grades.csv is either absent or
    whole, the gradebook passes SQLite's integrity check, and a final rerun writes an
    uninterrupted run's grades.csv."""
    ref = reference_csv(tmp_path_factory)
    s = Setup(tmp_path, mode)
    for point, nth in KILL_POINTS:
        cmd = [sys.executable, "-m", "tests.support.crash_driver", point, str(nth), *s.cmd[4:]]
        proc = subprocess.run(cmd, cwd=REPO, env=s.env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr[-2000:])
        assert wait_gone(s.markers) == [], f"processes outlived the grader killed at {point}"
        assert integrity(s.course) == "ok"
        if s.out.exists():
            assert s.out.read_text().count("\n") == ref.count("\n")
    final = s.grade()
    assert final.returncode == 0, final.stderr
    assert s.out.read_text() == ref
    assert integrity(s.course) == "ok"
    assert wait_gone(s.markers) == []
    assert os.listdir(s.scratch) == []
