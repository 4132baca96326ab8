"""The students' self-check (autograder.selfcheck, shipped as check.py): the cell matching it
shares with the grader, the structural problems it finds, its run from the top, its exit
status, and its quiet when the notebook is graded."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys

import nbformat
import pytest

from autograder import selfcheck
from tests.support import structural


def _load_check(folder):
    """check.py as written into ``folder``, imported as a module of its own."""
    spec = importlib.util.spec_from_file_location("check_under_test", folder / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain_env() -> dict:
    """A student's environment: no course repository on the path."""
    env = {k: v for k, v in os.environ.items() if k not in selfcheck.GRADING_MARKERS}
    env.pop("PYTHONPATH", None)
    env["MPLBACKEND"] = "Agg"
    return env


def _report(folder, mutation: str, run: bool = False) -> tuple[int, str]:
    path = structural.write(folder, mutation)
    check = _load_check(folder)
    out = io.StringIO()
    return check.check(path, check.RELEASE, run=run, out=out), out.getvalue()


def test_match_cells_pairs_by_grade_id_then_id_and_keeps_the_first_of_duplicates():
    """A cell matches the reference cell of its grade_id (or, without one, of its id) and
    type; a second claim on a matched cell is a duplicate; anything else is added."""
    ref = [{"cell_type": "code", "id": "a", "metadata": {"nbgrader": {"grade_id": "g"}}},
           {"cell_type": "code", "id": "b", "metadata": {}}]
    student = [{"cell_type": "code", "id": "zz", "metadata": {"nbgrader": {"grade_id": "g"}}},
               {"cell_type": "markdown", "id": "b", "metadata": {}},
               {"cell_type": "code", "id": "b"},
               {"cell_type": "code", "id": "b"},
               {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "g"}}},
               {"cell_type": "code", "id": "new"}]
    assert selfcheck.match_cells(ref, student) == [
        (selfcheck.MATCHED, 0), (selfcheck.ADDED, None), (selfcheck.MATCHED, 1),
        (selfcheck.DUPLICATE, 1), (selfcheck.DUPLICATE, 0), (selfcheck.ADDED, None)]


def test_digest_ignores_trailing_spaces_and_blank_lines_only():
    """Editors' trailing whitespace is no edit; any other change is."""
    assert selfcheck.digest("a = 1  \nb = 2\n\n") == selfcheck.digest("a = 1\nb = 2")
    assert selfcheck.digest("a = 1\nb = 2") != selfcheck.digest("a = 1\nb = 3")


@pytest.mark.parametrize("mutation", sorted(structural.SAYS))
def test_each_structural_problem_is_reported(tmp_path, mutation):
    """Every structural mutation the grader would meet is a problem with a message that says
    what and why (the run is left out here, except for the out-of-order state)."""
    status, report = _report(tmp_path, mutation, run=mutation == "out-of-order")
    assert status == selfcheck.EXIT_PROBLEM
    assert structural.SAYS[mutation] in report, report


@pytest.mark.parametrize("mutation", sorted(structural.HARMLESS))
def test_a_notebook_as_released_or_with_cells_of_ones_own_has_no_structural_problem(
        tmp_path, mutation):
    """The solution notebook, with or without cells the student added, passes the checks of
    the file and its cells."""
    status, report = _report(tmp_path, mutation)
    assert status == selfcheck.EXIT_OK, report
    assert "PROBLEM" not in report


def test_another_assignments_notebook_or_a_broken_file_is_a_problem(tmp_path):
    """A notebook with none of the assignment's answer cells, or a file that is not JSON, is
    reported (the grader would give it nothing)."""
    path = structural.write(tmp_path, "untouched")
    check = _load_check(tmp_path)
    nb = json.loads(open(path).read())
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("nbgrader", None)
        cell["id"] = "x" + cell.get("id", "")
    with open(path, "w") as f:
        json.dump(nb, f)
    out = io.StringIO()
    assert check.check(path, check.RELEASE, run=False, out=out) == selfcheck.EXIT_PROBLEM
    assert "is it the notebook of another assignment?" in out.getvalue()
    with open(path, "w") as f:
        f.write("{not json")
    out = io.StringIO()
    assert check.check(path, check.RELEASE, run=False, out=out) == selfcheck.EXIT_PROBLEM
    assert "not a notebook the grader can read" in out.getvalue()


@pytest.mark.slow
def test_check_py_runs_the_solution_from_the_top_outside_the_course(tmp_path):
    """`python check.py` in an unpacked folder, without the course repository, runs the
    solution in a fresh kernel: every part's visible tests pass, exit status 0, and the report
    says that hidden tests come at grading."""
    structural.write(tmp_path, "untouched")
    proc = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, env=_plain_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == selfcheck.EXIT_OK, proc.stdout + proc.stderr
    assert proc.stdout.count("visible tests pass") == 5
    assert "hidden tests on inputs you have not seen" in proc.stdout
    assert "necessary, not sufficient" in proc.stdout


@pytest.mark.slow
def test_a_stub_is_not_implemented_yet_and_an_error_elsewhere_is_a_problem(tmp_path):
    """Run from the top, a blank stub's part reads "not implemented yet" and an error in a
    cell of the student's own is reported with the cell's number."""
    path = structural.write(tmp_path, "untouched")
    nb = nbformat.read(path, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get(
        "grade_id") == "dropout-solution-2")
    answer.source = ("def lecture_dropout_train(x, p=0.5, rng=None):\n"
                     "    raise NotImplementedError()\n\n\n"
                     "def lecture_dropout_inference(x, p=0.5):\n"
                     "    raise NotImplementedError()\n")
    nb.cells.insert(3, nbformat.v4.new_code_cell("1 / 0"))
    nbformat.write(nb, path)
    check = _load_check(tmp_path)
    out = io.StringIO()
    assert check.check(path, check.RELEASE, out=out) == selfcheck.EXIT_PROBLEM
    report = out.getvalue()
    assert ("The lecture's dropout and inference rule (1 point): not implemented yet"
            in report), report
    assert "cell 4 (a cell of yours) raises ZeroDivisionError: division by zero" in report
    assert report.count("visible tests pass") == 4


@pytest.mark.slow
def test_the_notebooks_last_cell_runs_the_self_check_in_a_fresh_process(tmp_path):
    """Run in Jupyter, the solution notebook's last cell checks the notebook as saved (in a
    separate process and a fresh kernel) and prints the report; the run it starts does not
    start another."""
    from nbclient import NotebookClient
    path = structural.write(tmp_path, "untouched")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    saved = {k: os.environ.pop(k) for k in ("PYTHONPATH", *selfcheck.GRADING_MARKERS)
             if k in os.environ}
    try:
        client.execute(cwd=str(tmp_path))
    finally:
        os.environ.update(saved)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "Self-check of dropout.ipynb" in text and "No problems found" in text, text
    assert text.count("visible tests pass") == 5


def test_the_plain_runner_runs_cells_in_order_without_jupyter(tmp_path, monkeypatch):
    """Without nbclient the cells run in order in a new Python process, each cell's error
    kept and a cell that takes too long stopped."""
    monkeypatch.setenv("SELFCHECK_RUNNING", "1")
    nb = {"cells": [{"cell_type": "code", "source": "x = 1"},
                    {"cell_type": "markdown", "source": "text"},
                    {"cell_type": "code", "source": ["y = x +", " 1"]},
                    {"cell_type": "code", "source": "z = undefined_name"},
                    {"cell_type": "code", "source": "import time\ntime.sleep(30)"}]}
    results, how = selfcheck.run_plain(nb, str(tmp_path), timeout=2)
    assert "new Python process" in how
    assert results[0] == ("ok", "") and results[2] == ("ok", "")
    assert results[3][0] == "error" and results[3][1].startswith("NameError")
    assert results[4][0] == "error" and "did not finish within 2 s" in results[4][1]


def test_a_kernel_that_is_not_installed_falls_back_to_python3(tmp_path, monkeypatch):
    """A notebook saved with a kernel this machine lacks runs in the python3 kernel, the one
    the grader uses, cells given as lists of lines or without metadata alike."""
    monkeypatch.setenv("SELFCHECK_RUNNING", "1")
    nb = {"metadata": {"kernelspec": {"name": "no-such-kernel"}},
          "cells": [{"cell_type": "code", "source": ["x = ", "1"]},
                    {"cell_type": "code", "source": "x // 0"}]}
    results, how = selfcheck.run_notebook(nb, str(tmp_path), timeout=60)
    assert how == "in a fresh python3 kernel"
    assert results == {0: ("ok", ""), 1: ("error", "ZeroDivisionError: integer division or "
                                                    "modulo by zero")}


def test_cli_exit_status_2_names_the_notebooks_it_found(tmp_path):
    """`python check.py NAME` for a file that is not there exits with 2 and lists the
    notebooks of the folder, naming the one the grader looks for."""
    structural.write(tmp_path, "renamed")
    proc = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, env=_plain_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == selfcheck.EXIT_USAGE
    assert "Copy of dropout.ipynb (the grader looks for dropout.ipynb)" in proc.stderr


def test_the_notebooks_self_check_cell_does_nothing_while_graded(tmp_path, monkeypatch,
                                                                  capsys):
    """check_this_notebook() only prints a line when the grader (ours or nbgrader's) or the
    self-check itself runs the notebook."""
    structural.write(tmp_path, "untouched")
    check = _load_check(tmp_path)
    for marker in selfcheck.GRADING_MARKERS:
        monkeypatch.setenv(marker, "1")
        check.check_this_notebook()
        quiet = "(the self-check runs in your copy of the notebook only)\n"
        assert capsys.readouterr().out == quiet
        monkeypatch.delenv(marker)
