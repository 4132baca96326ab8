"""Run ``python -m autograder grade`` on the toy registry as a subprocess (as an instructor
would), with small limits for the tests."""

from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY_REGISTRY = "tests.support.toy:ASSIGNMENTS"


_SANDBOXED: list[bool] = []


def sandboxed() -> bool:
    """Whether this machine can run the bubblewrap sandbox (asked once per process)."""
    if not _SANDBOXED:
        from autograder.sandbox.isolation import detect
        _SANDBOXED.append(detect().sandboxed)
    return _SANDBOXED[0]


def grade_cmd(subs, out, course, *extra, auto_allow: bool = True) -> list[str]:
    """The grade command for the toy course; on a machine without the sandbox (no user
    namespaces) the end-to-end tests of the pipeline run with --allow-unsandboxed (the hostile
    tests are skipped there instead)."""
    allow = [] if not auto_allow or sandboxed() else ["--allow-unsandboxed"]
    return [sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
            "--course", str(course), "--registry", TOY_REGISTRY, "--workers", "2",
            "--cell-timeout", "10", "--notebook-timeout", "60", *allow, *map(str, extra)]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = REPO + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["MPLBACKEND"] = "Agg"
    return e


def grade(subs, out, course, *extra, timeout=600, env_extra=None) -> subprocess.CompletedProcess:
    return subprocess.run(grade_cmd(subs, out, course, *extra), cwd=REPO,
                          env={**env(), **(env_extra or {})}, capture_output=True, text=True,
                          timeout=timeout)


def run_watched(cmd: list[str], timeout=900, env_extra=None) -> tuple[dict, dict]:
    """Run ``cmd`` (a grade command) with its grader's resident memory watched while it runs:
    (:func:`proc_dict`'s form of the run, :meth:`tests.support.watch.TreeWatch.stop`'s
    figures)."""
    from .watch import TreeWatch
    proc = subprocess.Popen(cmd, cwd=REPO, env={**env(), **(env_extra or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watch = TreeWatch(proc.pid)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        memory = watch.stop()
    return {"returncode": proc.returncode, "stdout": stdout, "stderr": stderr}, memory


def grade_watched(subs, out, course, *extra, timeout=900, env_extra=None) -> tuple[dict, dict]:
    """:func:`grade` with the grader's memory watched (:func:`run_watched`)."""
    return run_watched(grade_cmd(subs, out, course, *extra), timeout, env_extra)


def read_csv(path) -> dict:
    import csv
    with open(path) as f:
        return {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}



def once(key: str, tmp_path_factory, make):
    """``make(folder) -> JSON-able`` computed once per test session, even across pytest-xdist
    workers (which may split a module's tests, and so its module fixtures, between them): the
    first caller computes under a file lock in the session's shared temporary folder, the
    others read its JSON result."""
    import fcntl
    import json
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    folder = shared / f"once-{key}"
    with open(shared / f"once-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = folder / "result.json"
        if done.exists():
            return json.loads(done.read_text())
        folder.mkdir(exist_ok=True)
        result = make(folder)
        done.write_text(json.dumps(result))
        return result


def proc_dict(proc) -> dict:
    return {"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
