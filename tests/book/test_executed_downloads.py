"""book/_ext/executed_downloads.py: a chapter's downloadable .ipynb keeps its outputs even
when the page was rebuilt from the execution cache."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"

_spec = importlib.util.spec_from_file_location(
    "executed_downloads", ROOT / "book" / "_ext" / "executed_downloads.py")
downloads = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(downloads)


def _cached_notebook(cache_dir: Path) -> nbformat.NotebookNode:
    """A two-cell notebook, executed into a jupyter-cache at cache_dir; returns it unexecuted."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t"),
                                         nbformat.v4.new_code_cell("print(6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    executed = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    executed.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    get_cache(str(cache_dir)).cache_notebook_bundle(
        CacheBundleIn(executed, "uri://t"), check_validity=False)
    return nb


def test_outputs_missing_from_the_written_notebook_are_merged_from_the_cache(tmp_path):
    """A written notebook without outputs gets the cached ones; the file is rewritten."""
    nb = _cached_notebook(tmp_path / "cache")
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    assert downloads.restore_outputs(path, tmp_path / "cache") is True
    restored = nbformat.read(path, as_version=4)
    assert restored.cells[1].outputs[0]["text"] == "42\n"


def test_a_notebook_with_outputs_or_without_a_cache_entry_is_left_alone(tmp_path):
    """Outputs already there, a notebook the cache does not know, or no cache: nothing done."""
    nb = _cached_notebook(tmp_path / "cache")
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="own\n")]
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    assert downloads.restore_outputs(path, tmp_path / "cache") is False
    assert nbformat.read(path, as_version=4).cells[1].outputs[0]["text"] == "own\n"
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(other, path)
    assert downloads.restore_outputs(path, tmp_path / "cache") is False
    assert downloads.restore_outputs(path, tmp_path / "no-cache") is False


def test_built_downloads_of_every_chapter_carry_outputs():
    """Every chapter's _sources/<chapter>.ipynb in the built site has outputs."""
    if not (SITE / "index.html").is_file():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("the book is not built (_build/html/index.html missing)")
        pytest.skip("the book is not built (run make book)")
    for path in sorted((SITE / "_sources" / "book").glob("*.ipynb")):
        if path.stem == "assignments":
            continue
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), path.name
