"""A changed hidden test regrades: results are reused only while the code they depend on is
unchanged."""

from __future__ import annotations

import subprocess

import pytest

from tests.support import toy
from tests.support.run import REPO, env, grade_cmd, read_csv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_regrade")]

REGISTRY_MODULE = '''
"""A toy registry whose 'Scaling' reference is multiplied by FACTOR."""
import dataclasses

from autograder.assignments.spec import Assignment
from tests.support.toy import TOY

FACTOR = {factor}
_scale = dataclasses.replace(TOY.parts[0], reference=lambda c: {{"y": FACTOR * c["a"] * c["x"]}})
ASSIGNMENT = Assignment("toy", (_scale, TOY.parts[1]))
ASSIGNMENTS = {{"toy": ASSIGNMENT}}
'''


def _grade(subs, out, course, pythonpath):
    cmd = grade_cmd(subs, out, course)
    cmd[cmd.index("--registry") + 1] = "regtoy:ASSIGNMENTS"
    e = env()
    e["PYTHONPATH"] = f"{pythonpath}:{e['PYTHONPATH']}"
    return subprocess.run(cmd, cwd=REPO, env=e, capture_output=True, text=True, timeout=600)


def test_a_changed_reference_regrades_that_assignment(tmp_path):
    """Grade, change one part's reference, grade again without --fresh: every submission of
    the assignment is graded again (the summary says so) and the scores follow the new
    reference (s1's correct scale now fails the changed hidden cases, s2's doubled scale
    matches them); a third run with nothing changed reuses every result."""
    course = toy.build_course(str(tmp_path / "course"))
    subs, out, mods = tmp_path / "subs", tmp_path / "out" / "grades.csv", tmp_path / "mods"
    mods.mkdir()
    toy.write_submission(subs, "s1", toy.solution_notebook())
    toy.write_submission(subs, "s2", toy.with_answers(
        toy.solution_notebook(), scale_impl="def scale(x, a):\n    return 2 * a * x\n"))
    (mods / "regtoy.py").write_text(REGISTRY_MODULE.format(factor=1.0))
    first = _grade(subs, out, course, mods)
    assert first.returncode == 0, first.stderr
    before = read_csv(out)
    assert [before[(s, "toy")]["score"] for s in ("s1", "s2")] == ["5.0", "3.0"]

    (mods / "regtoy.py").write_text(REGISTRY_MODULE.format(factor=2.0))
    second = _grade(subs, out, course, mods)
    assert second.returncode == 0, second.stderr
    assert "0 submissions already graded by an earlier run: reused; 2 graded again" \
        in second.stdout
    after = read_csv(out)
    assert [after[(s, "toy")]["score"] for s in ("s1", "s2")] == ["3.0", "5.0"]

    third = _grade(subs, out, course, mods)
    assert "2 submissions already graded by an earlier run: reused; 0 graded again" \
        in third.stdout
    assert read_csv(out) == after
