"""Crash safety: ``kill -9`` the grader at several moments, rerun, same grades.csv."""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from tests.fixtures import toy
from tests.fixtures.run import REPO, env, grade, grade_cmd

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


def test_kill_9_at_several_points_then_rerun_gives_the_same_grades(tmp_path):
    """After kill -9 at several moments and a final rerun, grades.csv equals an uninterrupted
    run's, the gradebook passes SQLite's integrity check, and no worker is left behind."""
    subs = tmp_path / "subs"
    ref_course = toy.build_course(str(tmp_path / "ref"))
    _submissions(subs, ref_course)
    ref = grade(subs, tmp_path / "ref.csv", ref_course)
    assert ref.returncode == 0, ref.stderr
    course = toy.build_course(str(tmp_path / "crash"))
    out = tmp_path / "out" / "grades.csv"
    for delay in (1.0, 2.0, 3.0, 4.5):
        proc = subprocess.Popen(grade_cmd(subs, out, course), cwd=REPO, env=env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        time.sleep(1.0)
        assert _alive_with(str(out)) == [], "workers outlived the killed grader"
        assert _integrity(course) == "ok"
    final = grade(subs, out, course)
    assert final.returncode == 0, final.stderr
    assert out.read_text() == (tmp_path / "ref.csv").read_text()
    assert _integrity(course) == "ok"
