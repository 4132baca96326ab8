"""The chapters' numbers are computed by the library and asserted: when a function the chapter
relies on drifts, the chapter's notebook fails.

Each test executes one page of ``_toc.yml`` (a MyST notebook) in a fresh kernel after a first
cell that perturbs one function it uses slightly, and expects an ``AssertionError`` from the
page's own checks. An unperturbed run is what ``make book`` does (with ``allow_errors: false``),
so together they show that the book builds with the reference values and fails with any others.

The pages come from the table of contents, not from a list kept here: every *executable* page
(a MyST notebook: a ``kernelspec`` in its front matter and at least one code cell) must have a
perturbation, so a new chapter cannot skip its drift test. Pages that execute nothing (the
intro, the bibliography, the index) state no computed number and are exempt by that rule.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
_spec = importlib.util.spec_from_file_location("launch_notebooks",
                                               BOOK / "_ext" / "launch_notebooks.py")
launch = importlib.util.module_from_spec(_spec)     # the one reader of _toc.yml's pages
_spec.loader.exec_module(launch)


def is_executable(source: Path) -> bool:
    """A page the build executes: a MyST notebook with at least one code cell."""
    if source.suffix != ".md" or not source.is_file():
        return False
    text = source.read_text(encoding="utf-8")
    return "kernelspec:" in text[:500] and "```{code-cell}" in text


def executable_pages(root: Path = ROOT) -> list[str]:
    """The pages of _toc.yml (its root included) that the build executes, as ``book/<name>``."""
    return [page for page in launch.toc_pages(root) if is_executable(root / f"{page}.md")]


# page -> code run before the page: it replaces a function the page relies on by a drifted one
PERTURBATIONS = {
    "dropout": """
import solutions.dropout as _m
_orig = _m.sum_network_gradient
_m.sum_network_gradient = lambda *a, **k: _orig(*a, **k) * 1.01
""",
    "per_layer_normalization": """
import solutions.per_layer_normalization as _m
_orig = _m.layer_statistics
def _drifted(z):
    C, S = _orig(z)
    return C, S * 1.01
_m.layer_statistics = _drifted
""",
    "learnable_normalization": """
import solutions.per_layer_normalization as _m
_orig = _m.layer_statistics
def _drifted(z):
    C, S = _orig(z)
    return C + 0.01, S
_m.layer_statistics = _drifted
""",
    "minibatch_normalization": """
import solutions.batchnorm as _m
_orig = _m.batch_norm_backward
def _drifted(dy, cache):
    dx, dw, db = _orig(dy, cache)
    return dx * 1.001, dw, db
_m.batch_norm_backward = _drifted
""",
    "conv_batchnorm": """
import solutions.batchnorm as _m
_orig = _m.batch_norm
_m.batch_norm = lambda *a, **k: _orig(*a, **k) + 1e-3
""",
    "dropout_in_practice": """
import solutions.dropout_practice as _m
_orig = _m.expected_dropout_batch_variance
_m.expected_dropout_batch_variance = lambda *a, **k: _orig(*a, **k) * 1.05
""",
    "why_batchnorm_helps": """
import solutions.normalization_experiments as _m
_orig = _m.landscape_experiment
def _drifted(*a, **k):
    out = _orig(*a, **k)
    for kind in ("plain", "bn"):
        out[kind]["beta"] = out[kind]["beta"] * 1.01
    return out
_m.landscape_experiment = _drifted
""",
    "normalization_pitfalls": """
import solutions.normalization as _m
_orig = _m.group_norm
_m.group_norm = lambda *a, **k: _orig(*a, **k) + 1e-3
""",
    # the data loader drops one training image: the page states and asserts the split's sizes
    "experiments": """
import dataclasses
import solutions.digits as _m
_orig = _m.load_digits_data
def _drifted(*a, **k):
    d = _orig(*a, **k)
    return dataclasses.replace(d, x_train=d.x_train[:-1], y_train=d.y_train[:-1])
_m.load_digits_data = _drifted
""",
    # the recorded copy bandwidth reads 100 times too high: batch norm would not be memory-bound
    "gpu_batchnorm": """
import dataclasses
import benchmarks.torch_bn_results as _m
_orig = _m.read_results
_m.read_results = lambda path: dataclasses.replace(_orig(path),
                                                   copy_gbs=100 * _orig(path).copy_gbs)
""",
    # the registry names a chapter the book does not have
    "assignments": """
import dataclasses
import autograder.assignments as _m
_m.REGISTRY = _m.REGISTRY + (dataclasses.replace(_m.REGISTRY[0], name="extra",
                                                 chapter="ch-no-such-chapter"),)
""",
}


def _run(chapter: str, prelude: str, monkeypatch) -> None:
    """Execute the chapter, preceded by ``prelude``, in a fresh kernel that imports this
    checkout's solutions/."""
    notebook = jupytext.read(BOOK / f"{chapter}.md")
    notebook.cells.insert(0, nbformat.v4.new_code_cell(prelude))
    env_path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), env_path) if p))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()


def test_every_executable_page_of_the_toc_has_a_perturbation():
    """Every page of _toc.yml that the build executes has a drift test, and every drift test
    belongs to such a page."""
    pages = {page.removeprefix("book/") for page in executable_pages()}
    assert pages == set(PERTURBATIONS), (pages - set(PERTURBATIONS), set(PERTURBATIONS) - pages)


def test_the_rule_exempts_only_pages_that_execute_nothing(tmp_path):
    """A notebook page with a code cell needs a perturbation; a Markdown page, a notebook
    without code, and a page missing from the table of contents do not count."""
    (tmp_path / "book").mkdir()
    head = "---\nkernelspec:\n  name: python3\n---\n"
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "book" / "new.md").write_text(head + "```{code-cell} ipython3\n1\n```\n")
    (tmp_path / "book" / "prose.md").write_text(head + "Only text.\n")
    (tmp_path / "book" / "orphan.md").write_text(head + "```{code-cell} ipython3\n1\n```\n")
    (tmp_path / "_toc.yml").write_text(
        "root: book/intro\nparts:\n  - chapters:\n      - file: book/new\n"
        "      - file: book/prose\n")
    assert executable_pages(tmp_path) == ["book/new"]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(p.removeprefix("book/") for p in executable_pages()))
def test_chapter_fails_when_a_reference_number_drifts(chapter, monkeypatch):
    """A page stops executing with an AssertionError when a function it relies on returns
    slightly different numbers."""
    with pytest.raises(CellExecutionError) as caught:
        _run(chapter, PERTURBATIONS[chapter], monkeypatch)
    assert caught.value.ename == "AssertionError", caught.value
