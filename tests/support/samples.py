"""The sample class (the real assignments, one student per common mistake) graded once by the
local pool: shared by the tests that check those grades and those that compare another way of
grading with them (use it through :func:`tests.support.run.once` with the key
:data:`ONCE_KEY`)."""

from __future__ import annotations

import subprocess
import sys

from tests.support.run import REPO, env, proc_dict, sandboxed

ONCE_KEY = "grade_samples"


def grade_samples_locally(base) -> dict:
    """Release the course into ``base/course``, write the sample submissions into
    ``base/subs`` and grade them with the local pool into ``base/out/grades.csv``."""
    from autograder.testing.samples import write_samples
    course, subs, out = base / "course", base / "subs", base / "out" / "grades.csv"
    subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(course)],
                   cwd=REPO, env=env(), check=True, capture_output=True)
    expected = write_samples(course, subs)
    allow = [] if sandboxed() else ["--allow-unsandboxed"]
    proc = subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out",
                           str(out), "--course", str(course), "--workers", "2", *allow],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=900)
    return {"expected": [[s, a, v] for (s, a), v in expected.items()], "out": str(out),
            "proc": proc_dict(proc), "course": str(course), "subs": str(subs)}
