"""Tests of autograder.release: the nbgrader course it builds, release notebooks free of
solutions and hidden tests, and notebooks that run in a plain kernel."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.assignments import ASSIGNMENTS
from autograder.build.assemble import ROOT, assemble
from autograder.build.release import build_course
from autograder.cli import main as cli_main

NAMES = list(ASSIGNMENTS)


def main(argv: list[str]) -> int:
    """`python -m autograder release ARGV...`, in this process."""
    return cli_main(["release", *argv])


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def regions():
    return {name: assemble(spec).regions for name, spec in ASSIGNMENTS.items()}


@contextlib.contextmanager
def _plain_environment():
    """The kernel sees no PYTHONPATH (so it cannot import solutions/) and draws no windows;
    the notebook's self-check cell stays quiet (tests/autograder/test_selfcheck.py runs it)."""
    saved = os.environ.get("PYTHONPATH")
    os.environ.pop("PYTHONPATH", None)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["SELFCHECK_RUNNING"] = "1"
    try:
        yield
    finally:
        os.environ.pop("SELFCHECK_RUNNING", None)
        if saved is not None:
            os.environ["PYTHONPATH"] = saved


NO_SOLUTIONS_CELL = (
    "import sys as _sys\n"
    "_leaked = sorted(m for m in _sys.modules if m == 'solutions' or m.startswith('solutions.'))\n"
    "assert not _leaked, f'the notebook imported the reference library: {_leaked}'")


def execute(path: Path, allow_errors: bool) -> nbformat.NotebookNode:
    """Run the notebook in a python3 kernel in its folder, with a last cell that fails if
    anything imported ``solutions``."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(NO_SOLUTIONS_CELL))
    client = NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=allow_errors,
                            resources={"metadata": {"path": str(path.parent)}})
    with _plain_environment():
        client.execute(cwd=str(path.parent))
    return nb


def errors(nb):
    """(cell index, ename, evalue) of every error output."""
    return [(i, o.ename, o.evalue) for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def test_course_is_a_standard_nbgrader_course(course):
    """The course folder has nbgrader's config, gradebook and one folder per assignment in
    source/, release/ and solution/, each with its notebook and helper files."""
    assert (course / "nbgrader_config.py").is_file()
    assert (course / "gradebook.db").is_file()
    for name in NAMES:
        for kind in ("source", "release", "solution"):
            assert (course / kind / name / f"{name}.ipynb").is_file(), (kind, name)
        helpers = {p.name for p in (course / "source" / name).iterdir()
                   if p.suffix == ".py" and p.name != "_grading_harness.py"}
        for kind in ("release", "solution"):
            assert helpers <= {p.name for p in (course / kind / name).iterdir()}, (kind, name)


def test_gradebook_knows_every_assignment_and_part(course):
    """nbgrader's gradebook records each assignment with its graded cells and max score."""
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for name, spec in ASSIGNMENTS.items():
            assignment = gb.find_assignment(name)
            assert assignment.max_score == pytest.approx(spec.max_score)
            cells = {c.name for nb in assignment.notebooks for c in nb.grade_cells}
            assert cells == {p.id for p in spec.parts}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def leaks(folder: Path, regions: dict[str, list[str]]) -> list[str]:
    """What in a release folder gives answers away: hidden-test or solution markers, the
    harness, or the text (whitespace ignored) of any assignment's solution region."""
    found = []
    files = {p.name: "\n".join(c.source for c in nbformat.read(p, as_version=4).cells)
             for p in folder.glob("*.ipynb")}
    files.update({p.name: p.read_text() for p in folder.glob("*.py")})
    for filename, content in files.items():
        for marker in ("HIDDEN TESTS", "_grading_harness", "BEGIN SOLUTION", "END SOLUTION"):
            if marker in content:
                found.append(f"{filename}: {marker}")
        squashed = _squash(content)
        for owner, texts in regions.items():
            found += [f"{filename}: a solution region of {owner}" for region in texts
                      if _squash(region) in squashed]
    return found


@pytest.mark.parametrize("name", NAMES)
def test_release_contains_no_solution_or_hidden_tests(course, regions, name):
    """No file of a release folder contains the text of any assignment's solution regions
    (releases are published together), hidden tests or the harness."""
    assert leaks(course / "release" / name, regions) == []


@pytest.mark.parametrize("kind", ["release", "solution"])
def test_the_self_check_finds_the_released_notebooks_as_released(course, kind):
    """`python check.py --no-run` in each release and solution folder (no course repository on
    the path) finds no problem: check.py's checksums are those of the notebooks nbgrader
    released, hidden tests removed."""
    for name in NAMES:
        folder = course / kind / name
        proc = subprocess.run([sys.executable, "check.py", "--no-run"], cwd=folder,
                              env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (kind, name, proc.stdout + proc.stderr)
        assert "PROBLEM" not in proc.stdout


def test_leak_check_catches_a_pasted_solution(course, regions, tmp_path):
    """A release notebook with a solution region pasted in, re-indented, is caught."""
    folder = tmp_path / "batchnorm"
    shutil.copytree(course / "release" / "batchnorm", folder)
    path = folder / "batchnorm.ipynb"
    nb = nbformat.read(path, as_version=4)
    region = regions["conv-batchnorm"][-1]
    nb.cells.append(nbformat.v4.new_code_cell(
        "def f(dy, cache):\n" + "\n".join("        " + ln for ln in region.splitlines())))
    nbformat.write(nb, path)
    assert leaks(folder, regions) == ["batchnorm.ipynb: a solution region of batchnorm",
                                      "batchnorm.ipynb: a solution region of conv-batchnorm"]
    (folder / "helper.py").write_text("# ### BEGIN HIDDEN TESTS")
    assert "helper.py: HIDDEN TESTS" in leaks(folder, regions)


@pytest.mark.parametrize("kind", ["release", "solution"])
def test_no_shipped_code_imports_solutions(course, kind):
    """Nothing students or instructors run standalone imports solutions/."""
    import ast
    for name in NAMES:
        folder = course / kind / name
        sources = [c.source for c in nbformat.read(folder / f"{name}.ipynb", as_version=4).cells
                   if c.cell_type == "code"] + [p.read_text() for p in folder.glob("*.py")]
        for src in sources:
            for node in ast.walk(ast.parse(src)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any(m.split(".")[0] == "solutions" for m in mods), (kind, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_solution_notebook_runs_with_all_visible_tests_passing(course, name):
    """Each solution notebook runs top to bottom in a plain python3 kernel without errors."""
    nb = execute(course / "solution" / name / f"{name}.ipynb", allow_errors=True)
    assert errors(nb) == []
    passed = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(passed) == len(ASSIGNMENTS[name].parts)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_release_notebook_stubs_raise_not_implemented(course, name):
    """Each release notebook runs; every error is NotImplementedError and every graded test
    cell fails with it."""
    nb = execute(course / "release" / name / f"{name}.ipynb", allow_errors=True)
    errs = errors(nb)
    assert errs and {e[1] for e in errs} == {"NotImplementedError"}, errs
    failing = {i for i, _, _ in errs}
    graded = [i for i, c in enumerate(nb.cells)
              if c.metadata.get("nbgrader", {}).get("grade")]
    assert set(graded) <= failing


def test_main_builds_one_assignment(tmp_path, capsys):
    """`release --out DIR --assignment NAME` builds that assignment and prints its folders."""
    assert main(["--out", str(tmp_path), "--assignment", "dropout"]) == 0
    assert (tmp_path / "release" / "dropout" / "dropout.ipynb").is_file()
    assert not (tmp_path / "release" / "batchnorm").exists()
    assert "release/dropout" in capsys.readouterr().out


def test_main_zips_exactly_the_release_folder(tmp_path):
    """`release` writes downloads/<name>.zip holding the release folder's files, nothing else."""
    import zipfile

    main(["--out", str(tmp_path), "--assignment", "dropout"])
    with zipfile.ZipFile(tmp_path / "downloads" / "dropout.zip") as archive:
        zipped = {n for n in archive.namelist() if not n.endswith("/")}
    released = {p.relative_to(tmp_path / "release").as_posix()
                for p in (tmp_path / "release" / "dropout").rglob("*") if p.is_file()}
    assert zipped == released and "dropout/dropout.ipynb" in zipped


def test_main_rejects_an_unknown_assignment(tmp_path):
    """An unknown assignment name is a usage error naming the choices."""
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--assignment", "no-such"])


def test_release_folder_has_no_stock_harness(course):
    """The stock-nbgrader harness sits in source/ only, never in release/ or solution/."""
    for name in NAMES:
        assert (course / "source" / name / "_grading_harness.py").is_file()
        assert not (course / "release" / name / "_grading_harness.py").exists()
        assert not (course / "solution" / name / "_grading_harness.py").exists()


@pytest.mark.slow
def test_stock_nbgrader_autograde_grades_the_course(course):
    """nbgrader's own autograde (unsandboxed, via the stock harness) gives each test cell the
    points its hidden checks earn, as our grader does, except that a test cell whose visible
    tests fail earns nothing there: the solution scores full marks, a mistake the visible
    tests catch loses its whole part."""
    from nbgrader.api import Gradebook

    from autograder.testing.inprocess import run_inprocess, with_source_tests
    from autograder.testing.samples import write_samples
    write_samples(course, course / "samples")
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    source = nbformat.read(course / "source" / "dropout" / "dropout.ipynb", as_version=4)
    expected = {}
    for student in ("perfect", "no-rescale"):
        dest = course / "submitted" / student / "dropout"
        shutil.copytree(course / "samples" / student / "dropout", dest, dirs_exist_ok=True)
        run = run_inprocess(with_source_tests(nbformat.read(dest / "dropout.ipynb", 4), source),
                            course / "release" / "dropout", ASSIGNMENTS["dropout"])
        expected[student] = {p: 0.0 if r.visible_error else r.score
                             for p, r in run.parts.items()}
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "dropout",
                               "--student", student, "--force"], cwd=course, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sum(expected["perfect"].values()) == ASSIGNMENTS["dropout"].max_score
    assert expected["no-rescale"]["inverted-dropout"] == 0.0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("perfect", "no-rescale"):
            sub = gb.find_submission("dropout", student)
            got = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
            assert got == pytest.approx(expected[student]), student


def test_rerelease_with_changed_cells_is_refused_before_anything_changes(tmp_path, capsys,
                                                                         monkeypatch):
    """Once an assignment has graded submissions, a release that would change its cells is
    refused with a message naming the cells, and the existing release folder is kept."""
    import copy

    from nbgrader.api import Gradebook

    from autograder.build.release import COURSE_ID, graded_cells_conflict

    build_course(tmp_path, ["dropout"])
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        gb.add_student("ada")
        gb.add_submission("dropout", "ada")
    nb = assemble(ASSIGNMENTS["dropout"]).notebook
    assert graded_cells_conflict(tmp_path, "dropout", nb) is None
    changed = copy.deepcopy(nb)
    cell = next(c for c in changed.cells if c.metadata.get("nbgrader", {}).get("solution"))
    cell.metadata["nbgrader"]["grade_id"] = "renamed"
    problem = graded_cells_conflict(tmp_path, "dropout", changed)
    assert problem and "1 graded submission" in problem and "renamed" in problem
    import dataclasses

    import autograder.build.release as release

    original = release.assemble
    monkeypatch.setattr(release, "assemble",
                        lambda spec: dataclasses.replace(original(spec), notebook=changed))
    assert main(["--out", str(tmp_path), "--assignment", "dropout"]) == 1
    assert "nbgrader cannot change the cells" in capsys.readouterr().err
    assert (tmp_path / "release" / "dropout" / "dropout.ipynb").is_file()
