"""book/_ext/launch_notebooks.py: the launch buttons open a notebook, and the notebooks exist.

The unit tests need nothing built; the site test needs ``make book`` (it skips without a built
site, or fails with ``REQUIRE_BROWSER=1``, which CI sets).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
CHAPTERS = ["book/dropout", "book/dropout_in_practice", "book/per_layer_normalization",
            "book/learnable_normalization", "book/minibatch_normalization",
            "book/why_batchnorm_helps", "book/normalization_pitfalls", "book/conv_batchnorm",
            "book/experiments", "book/gpu_batchnorm"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "book" / "_ext" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


launch = _load("launch_notebooks")


def test_launch_urls_point_at_the_notebook_on_the_launch_branch():
    """Binder and Colab both open <page>.ipynb on the given branch of the GitHub repository."""
    urls = launch.launch_urls("https://github.com/org/repo/", "launch", "book/dropout",
                              "https://mybinder.org/", "https://colab.research.google.com")
    assert urls == {
        "Binder": "https://mybinder.org/v2/gh/org/repo/launch?urlpath=lab/tree/book/dropout.ipynb",
        "Colab": "https://colab.research.google.com/github/org/repo/blob/launch/book/dropout.ipynb",
    }
    assert launch.launch_urls("https://gitlab.com/org/repo", "launch", "p", "b", "c") == {}


def test_every_chapter_gets_a_launch_notebook_and_nothing_else_does():
    """The chapters (notebooks that import solutions/) are launchable; the assignments page,
    the introduction and the bibliography are not."""
    assert launch.chapter_pages() == CHAPTERS


def test_launch_tree_holds_valid_notebooks_with_the_setup_cell_first(tmp_path):
    """Each written notebook validates, starts with the set-up cell naming the library, and
    otherwise has the chapter's cells; Binder gets requirements.txt and postBuild."""
    written = launch.write_launch_tree(tmp_path, library="git+https://example.org/lib@main")
    assert sorted(p.relative_to(tmp_path).with_suffix("").as_posix() for p in written) \
        == sorted(CHAPTERS)
    for path in written:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        first = nb.cells[0]
        assert first.cell_type == "code" and launch.SETUP_TAG in first.metadata["tags"]
        assert "git+https://example.org/lib@main" in first.source
        assert sum(launch.SETUP_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1
        page = path.relative_to(tmp_path).with_suffix("").as_posix()
        code = [c.source for c in nb.cells[1:] if c.cell_type == "code"]
        assert code and code[0] in (ROOT / f"{page}.md").read_text(encoding="utf-8")
    requirements = (tmp_path / "requirements.txt").read_text()
    assert "torch==2.13.0" in requirements and "myst-nb" in requirements
    post_build = tmp_path / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert "pip install --no-deps git+https://example.org/lib@main" in post_build.read_text()


def test_rewriting_keeps_a_single_setup_cell(tmp_path):
    """A notebook that already carries a set-up cell (a rebuilt tree) gets it replaced."""
    nb = launch.launch_notebook("book/dropout", "lib-a")
    nb2 = launch.launch_notebook("book/dropout", "lib-b")
    assert len(nb2["cells"]) == len(nb["cells"]) and "lib-b" in nb2["cells"][0]["source"]


def _run_setup_cell(library: str, *python_flags: str, cwd: Path = ROOT,
                    hide_checkout: bool = False) -> subprocess.CompletedProcess:
    source = launch.SETUP_CELL.format(library=library)
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if hide_checkout:
        env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, *python_flags, "-c", source], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_setup_cell_installs_nothing_where_the_library_is_present():
    """Where solutions/ and myst-nb import, the cell runs pip not at all and prints nothing."""
    done = _run_setup_cell("/nonexistent/library")
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def test_setup_cell_says_what_failed_where_the_library_cannot_be_installed(tmp_path):
    """Without the library in reach (python -S hides site-packages, and the checkout is neither
    the working directory nor on PYTHONPATH), the cell tries pip, and a failed install ends in
    a sentence saying why, not a traceback."""
    done = _run_setup_cell("/nonexistent/library", "-S", cwd=tmp_path, hide_checkout=True)
    assert done.returncode == 0, done.stderr
    assert "Could not install /nonexistent/library" in done.stdout
    assert "reference library solutions/" in done.stdout


def test_built_pages_launch_the_notebook_and_non_chapters_have_no_launch_button():
    """In the built site, a chapter's Binder and Colab links open its .ipynb on the launch
    branch; the assignments page has no launch button."""
    if not (SITE / "index.html").is_file():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("the book is not built (_build/html/index.html missing)")
        pytest.skip("the book is not built (run make book)")
    for chapter in CHAPTERS:
        page = (SITE / f"{chapter}.html").read_text(encoding="utf-8")
        assert f"/blob/launch/{chapter}.ipynb" in page, chapter
        assert f"/launch?urlpath=lab/tree/{chapter}.ipynb" in page, chapter
        assert f"{chapter}.md" not in page.split("launch-buttons", 1)[-1].split("</ul>")[0]
    assert "launch-buttons" not in (SITE / "book" / "assignments.html").read_text()
    notebook = json.loads((ROOT / "_build" / "launch" / "book" / "dropout.ipynb").read_text())
    assert any(c.get("outputs") for c in notebook["cells"]), "launch notebooks carry outputs"
