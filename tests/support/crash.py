"""Helpers of the tests that kill or interrupt the grader: a class of toy submissions (one of
which starts processes meant to outlive the grader), an uninterrupted reference run, the two
isolation modes, and the search for processes a stopped grader left behind."""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import time

import pytest

from tests.support import toy
from tests.support.run import REPO, env, grade_cmd, once

# the sandboxed mode needs bubblewrap (its tests skip where it is missing); the unsandboxed mode
# runs everywhere, as an instructor without bubblewrap would (--allow-unsandboxed)
MODES = [pytest.param("sandboxed", marks=pytest.mark.sandbox, id="sandboxed"),
         pytest.param("unsandboxed", id="unsandboxed")]
TIMESTAMP = "2026-12-01 10:00:00.000000 UTC"   # the same grades.csv in every test's folder
SLOW = 12           # seconds the spawning submission sleeps after starting its processes


def survivor_cell(token: str, sleep: float = SLOW) -> str:
    """Student code that starts two processes meant to outlive the kernel, both with ``token``
    in their command lines: one in a session of its own (``start_new_session``), one detached
    by a double fork (its parent exits, it calls ``setsid``); then it sleeps ``sleep`` s."""
    sleeper = f"[sys.executable, '-c', 'import time; time.sleep(900)', {token!r}]"
    double_fork = ("import os, sys, time\n"
                   "if os.fork() == 0:\n"
                   "    os.setsid()\n"
                   "    if os.fork() == 0:\n"
                   "        time.sleep(900)\n"
                   "    os._exit(0)\n"
                   "os.wait()\n")
    return ("import subprocess, sys, time\n"
            f"subprocess.Popen({sleeper}, start_new_session=True)\n"
            f"subprocess.run([sys.executable, '-c', {double_fork!r}, {token!r}])\n"
            f"time.sleep({sleep})\n")


def write_class(root, course: str, token: str) -> None:
    """Eight submissions: s1 correct (and starting processes marked ``token``), s2 the release
    notebook, s3-s7 wrong answers, s8 an empty file; each with the same ``timestamp.txt``."""
    toy.write_submission(root, "s1", toy.with_answers(
        toy.solution_notebook(), scale_impl=survivor_cell(token) + toy.SOLUTIONS["scale-impl"]))
    toy.write_submission(root, "s2", toy.release_notebook(course))
    for i in range(3, 8):
        wrong = toy.with_answers(toy.solution_notebook(),
                                 scale_impl=f"def scale(x, a):\n    return a * x + {i % 2}\n")
        toy.write_submission(root, f"s{i}", wrong)
    toy.write_submission(root, "s8", "")
    for student in os.listdir(root):
        with open(os.path.join(root, student, "toy", "timestamp.txt"), "w") as f:
            f.write(TIMESTAMP)


def mode_cmd(mode: str, subs, out, course) -> list[str]:
    """The grade command of ``mode``."""
    extra = ["--allow-unsandboxed"] if mode == "unsandboxed" else []
    return grade_cmd(subs, out, course, *extra, auto_allow=False)


def mode_env(mode: str, scratch) -> dict:
    """The environment of ``mode``, with ``scratch`` as the grader's TMPDIR."""
    e = {**env(), "TMPDIR": str(scratch)}
    if mode == "unsandboxed":
        e["AUTOGRADER_BWRAP"] = "none"
    return e


def _reference(folder) -> dict:
    course = toy.build_course(str(folder / "course"))
    write_class(folder / "subs", course, f"{folder}/ref-survivor")
    out = folder / "ref.csv"
    proc = subprocess.run(grade_cmd(folder / "subs", out, course), cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return {"csv": out.read_text()}


def reference_csv(tmp_path_factory) -> str:
    """grades.csv of an uninterrupted run over :func:`write_class` (once per test session)."""
    return once("crash-reference", tmp_path_factory, _reference)["csv"]


class Setup:
    """A fresh course, the class (its processes marked with a token of this test), the output
    path and a scratch folder (the grader's TMPDIR) under ``tmp_path``."""

    def __init__(self, tmp_path, mode: str):
        self.mode = mode
        self.course = toy.build_course(str(tmp_path / "course"))
        self.subs, self.out = tmp_path / "subs", tmp_path / "out" / "grades.csv"
        self.scratch = tmp_path / "t"
        self.scratch.mkdir()
        self.token = f"{tmp_path}/survivor"
        write_class(self.subs, self.course, self.token)
        self.cmd = mode_cmd(mode, self.subs, self.out, self.course)
        self.env = mode_env(mode, self.scratch)
        self.markers = [str(self.out), str(self.scratch), self.token]

    def grade(self, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd, cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=timeout)


def integrity(course) -> str:
    """SQLite's integrity check of the course's gradebook ("ok")."""
    con = sqlite3.connect(os.path.join(course, "gradebook.db"))
    try:
        return con.execute("pragma integrity_check").fetchone()[0]
    finally:
        con.close()


def _alive_with(token: str) -> list[str]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if token.encode() in f.read():
                        pids.append(pid)
            except OSError:
                pass
    return pids


def leftovers(markers: list[str]) -> list[str]:
    """Processes of a stopped run still alive: any whose command line names one of its paths or
    tokens (workers, supervisors, kernels, relays, what the student's code started), and any in
    an autograder cgroup whose worker is gone."""
    me = str(os.getpid())
    left = [p for m in markers for p in _alive_with(m) if p != me]
    for group in glob.glob("/sys/fs/cgroup/*/autograder/ag-*") + glob.glob(
            "/sys/fs/cgroup/autograder/ag-*"):
        owner = os.path.basename(group)[3:].split("-", 1)[0]
        if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
            try:
                with open(os.path.join(group, "cgroup.procs")) as f:
                    left += f.read().split()
            except OSError:
                pass
    return left


def wait_gone(markers: list[str], timeout: float = 20.0) -> list[str]:
    """:func:`leftovers` once they are gone or ``timeout`` seconds have passed (processes need
    a moment to die after their parent)."""
    deadline = time.monotonic() + timeout
    while leftovers(markers) and time.monotonic() < deadline:
        time.sleep(0.2)
    return leftovers(markers)


def wait_for(condition, timeout: float = 300.0, what: str = "") -> None:
    """Poll ``condition()`` every 50 ms until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)
