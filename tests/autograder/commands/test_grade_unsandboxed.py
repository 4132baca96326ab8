"""Without a sandbox the grader refuses untrusted code unless explicitly allowed."""

import os

import pytest

from tests.support import toy
from tests.support.run import REPO, env, grade_cmd

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_unsandboxed")]


def _run(args):
    import subprocess
    e = env()
    e["AUTOGRADER_BWRAP"] = "none"
    return subprocess.run(args, cwd=REPO, env=e, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("unsb")
    course = toy.build_course(str(base / "course"))
    toy.write_submission(base / "subs", "alice", toy.solution_notebook())
    probe = toy.with_answers(toy.solution_notebook(), scale_impl=(
        "import importlib.util\n"
        "assert importlib.util.find_spec('solutions') is None, 'solutions importable'\n"
        "assert importlib.util.find_spec('autograder') is None, 'autograder importable'\n"
        + toy.SOLUTIONS["scale-impl"]))
    toy.write_submission(base / "subs", "bob", probe)
    return base, course


def test_refuses_without_flag(setup):
    """With no sandbox available the run stops with exit 3 and says so plainly."""
    base, course = setup
    proc = _run(grade_cmd(base / "subs", base / "g.csv", course, auto_allow=False))
    assert proc.returncode == 3
    assert "isolation: NONE" in proc.stdout and "--allow-unsandboxed" in proc.stderr
    assert not os.path.exists(base / "g.csv")


def test_runs_with_flag_and_still_hides_project_modules(setup):
    """--allow-unsandboxed grades, and the kernel still cannot import solutions/autograder."""
    base, course = setup
    proc = _run(grade_cmd(base / "subs", base / "g.csv", course, "--allow-unsandboxed",
                          auto_allow=False))
    assert proc.returncode == 0, proc.stderr
    text = (base / "g.csv").read_text()
    assert ",alice,,,,5.0," in text and ",bob,,,,5.0," in text
