"""The chapters' numbers are computed by ``solutions/`` and asserted: when a reference function
drifts, the chapter's notebook fails.

Each test executes one chapter (a MyST notebook under ``book/``) in a fresh kernel after a first
cell that perturbs one function of ``solutions/`` slightly, and expects an ``AssertionError``
from the chapter's own checks. An unperturbed run is what ``make book`` does (with
``allow_errors: false``), so together they show that the book builds with the reference values
and fails with any others.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"

# chapter -> code run before the chapter: it replaces a reference function by a drifted one
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


def test_every_lecture_chapter_has_a_perturbation():
    """Each of the five lecture chapters and the chapters on dropout in practice, why batch norm
    helps and where it bites exists, imports solutions/, and has a drift test."""
    for chapter in PERTURBATIONS:
        source = (BOOK / f"{chapter}.md").read_text(encoding="utf-8")
        assert "from solutions" in source, chapter
    assert {"dropout", "per_layer_normalization", "learnable_normalization",
            "minibatch_normalization", "conv_batchnorm", "why_batchnorm_helps",
            "normalization_pitfalls", "dropout_in_practice"} <= set(PERTURBATIONS)


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(PERTURBATIONS))
def test_chapter_fails_when_a_reference_number_drifts(chapter, monkeypatch):
    """A chapter stops executing with an AssertionError when a solutions/ function it relies on
    returns slightly different numbers."""
    with pytest.raises(CellExecutionError) as caught:
        _run(chapter, PERTURBATIONS[chapter], monkeypatch)
    assert caught.value.ename == "AssertionError", caught.value
