"""Tests of autograder.build.checkfile: the setup and self-check cells every notebook gets, and
check.py, which describes the release notebook without giving anything away."""

from __future__ import annotations

import ast
import os

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.build import cells
from autograder.build.assemble import assemble
from autograder.build.checkfile import CHECK_FILE, setup_cell


@pytest.fixture(scope="module")
def assembled():
    return {name: assemble(spec) for name, spec in ASSIGNMENTS.items()}


def test_every_notebook_starts_with_the_setup_cell_and_ends_with_the_self_check(assembled):
    """First a locked cell naming the helper files (check.py among them), last a note on the
    self-check and a locked cell that runs it: a new assignment gets both for free."""
    for name, a in assembled.items():
        first, note, last = a.notebook.cells[0], a.notebook.cells[-2], a.notebook.cells[-1]
        assert cells.grade_id(first) == f"{name}-files" and cells.is_locked(first)
        for filename in a.files:
            assert filename in first.source
        assert CHECK_FILE in a.files
        assert f"python check.py {name}.ipynb" in note.source
        assert cells.grade_id(last) == f"{name}-selfcheck" and cells.is_locked(last)
        assert "check_this_notebook()" in last.source


def test_setup_cell_names_the_missing_files_and_where_to_get_them(tmp_path, monkeypatch):
    """Run where a helper file is missing, the first cell raises FileNotFoundError naming the
    file, the zip to download and where; with the files there it says so."""
    source = setup_cell("batchnorm", ["gradcheck.py", "bn_oracle.py", "check.py"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gradcheck.py").write_text("")
    with pytest.raises(FileNotFoundError) as err:
        exec(source, {})  # noqa: S102
    message = str(err.value)
    assert "bn_oracle.py, check.py" in message and "gradcheck.py" not in message
    assert "Download batchnorm.zip from the Assignments page of the course book" in message
    assert "Colab" in message
    for f in ("bn_oracle.py", "check.py"):
        (tmp_path / f).write_text("")
    exec(source, {})  # noqa: S102


def test_check_py_is_standalone_and_carries_no_hidden_test_or_solution(assembled):
    """check.py imports only the standard library (nbformat and nbclient when there), and
    holds no line of any hidden block or solution region, only checksums of the cells."""
    stdlib = set(__import__("sys").stdlib_module_names) | {"nbformat", "nbclient", "IPython",
                                                           "google"}
    for name, a in assembled.items():
        text = a.files[CHECK_FILE]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [x.name for x in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""]
                assert all(m.split(".")[0] in stdlib for m in modules), (name, modules)
        secret = [line.strip() for c in a.notebook.cells if c.cell_type == "code"
                  for line in cells.split_hidden(c.source)[1].splitlines()]
        secret += [line.strip() for region in a.regions for line in region.splitlines()]
        leaked = {line for line in secret if len(line) > 25 and line in text}
        assert leaked == set(), (name, sorted(leaked)[:3])
        given = [c.source for c in a.notebook.cells if cells.is_locked(c)]
        assert not any(len(g) > 200 and g in text for g in given), name


def test_check_py_sees_the_solution_notebook_as_released(assembled, tmp_path):
    """The self-check, without running the notebook, finds no problem in the solution
    notebook of any assignment (same cells, same order, locked cells unchanged)."""
    import importlib.util
    import io

    import nbformat

    from autograder.build.assemble import solution_notebook
    for name, a in assembled.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / CHECK_FILE).write_text(a.files[CHECK_FILE])
        nbformat.write(solution_notebook(a), folder / f"{name}.ipynb")
        spec = importlib.util.spec_from_file_location(f"check_{name}", folder / CHECK_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out = io.StringIO()
        status = module.check(os.fspath(folder / f"{name}.ipynb"), module.RELEASE, run=False,
                              out=out)
        assert status == 0, out.getvalue()
