"""The book's configuration and the built site: the table of contents, the publishing settings,
and no graded answer anywhere in what the site serves.

The site tests need ``make book`` first; without a built site they skip (or fail with
``REQUIRE_BROWSER=1``, which CI sets, since CI always builds the book first).
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "_build" / "html"
SOLUTIONS = ROOT / "solutions"
LECTURE_CHAPTERS = ["book/dropout", "book/per_layer_normalization",
                    "book/learnable_normalization", "book/minibatch_normalization",
                    "book/conv_batchnorm"]
MIN_STATEMENT = 30          # shorter statements (x = np.asarray(x)) are too generic to flag
# The modules whose code answers graded assignments (the experiments' training code is not
# graded, and the GPU chapter is meant to show its kernels).
GRADED_MODULES = ["dropout.py", "per_layer_normalization.py", "batchnorm.py",
                  "torch_bn/reference.py"]


def _need_site():
    if not (SITE / "index.html").is_file():
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("the book is not built (_build/html/index.html missing)")
        pytest.skip("the book is not built (run make book)")


def _toc_files(node) -> list[str]:
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


# --- configuration ------------------------------------------------------------------------

def test_toc_lists_the_lecture_chapters_in_order_and_every_file_exists():
    """_toc.yml lists the five lecture chapters in the lecture's order, and each entry exists."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = _toc_files(toc["parts"])
    assert [f for f in files if f in LECTURE_CHAPTERS] == LECTURE_CHAPTERS
    for entry in [toc["root"], *files]:
        assert any((ROOT / f"{entry}{ext}").is_file() for ext in (".md", ".ipynb")), entry


def test_toc_marks_the_place_of_the_gpu_and_experiments_chapters():
    """The GPU and experiments chapters go right after the convolutional BN chapter."""
    lines = (ROOT / "_toc.yml").read_text().splitlines()
    conv = next(i for i, line in enumerate(lines) if "book/conv_batchnorm" in line)
    following = "\n".join(lines[conv + 1:conv + 5])
    assert "book/gpu_batchnorm" in following and "book/experiments" in following


def test_every_book_page_is_in_the_toc():
    """No page under book/ is left out of the table of contents (other than the extension
    folder), so nothing is silently not built."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = set(_toc_files(toc["parts"])) | {toc["root"]}
    pages = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "book").glob("*.md")}
    assert pages <= listed, pages - listed


def test_config_publishes_with_download_and_launch_buttons_and_a_bibliography():
    """_config.yml enables .ipynb downloads, Binder and Colab launch buttons, the repository
    link and the BibTeX file with the two papers the course rests on."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["html"]["use_download_button"] is True
    assert config["launch_buttons"]["binderhub_url"].startswith("https://")
    assert config["launch_buttons"]["colab_url"].startswith("https://colab")
    assert config["repository"]["url"].startswith("https://github.com/")
    assert config["execute"]["allow_errors"] is False
    bib = (ROOT / config["bibtex_bibfiles"][0]).read_text()
    assert "ioffe2015batch" in bib and "srivastava2014dropout" in bib


# --- no graded answer in the built site ----------------------------------------------------

def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def solution_statements() -> dict[str, str]:
    """Distinctive simple statements of every function body in the graded modules of
    solutions/ (docstrings and short statements left out), mapped to where they come from."""
    found = {}
    for path in (SOLUTIONS / name for name in GRADED_MODULES):
        source = path.read_text(encoding="utf-8")
        for func in ast.walk(ast.parse(source)):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if not isinstance(node, ast.stmt) or isinstance(
                        node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.If
                        | ast.For | ast.While | ast.With | ast.Try):
                    continue
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                    continue                                           # a docstring
                if isinstance(node, ast.Raise):
                    continue                                           # error messages
                text = _normalize(ast.get_source_segment(source, node) or "")
                if len(text) >= MIN_STATEMENT:
                    found[text] = f"{path.name}:{func.name}"
    return found


def served_text(path: Path) -> str:
    """What a reader sees of a served file: HTML without tags, notebooks' cell sources."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".html":
        raw = html.unescape(re.sub(r"<[^>]+>", "", raw))
    elif path.suffix == ".ipynb":
        cells = json.loads(raw).get("cells", [])
        raw = "\n".join("".join(c.get("source", "")) for c in cells)
    return _normalize(raw)


def leaked_statements(site: Path) -> list[str]:
    statements = solution_statements()
    leaks = []
    for path in sorted(site.rglob("*")):
        if not path.is_file() or "_static" in path.parts:
            continue
        if path.suffix not in (".html", ".ipynb", ".md", ".txt", ".js", ".py"):
            continue
        text = served_text(path)
        for statement, origin in statements.items():
            if statement in text:
                leaks.append(f"{path.relative_to(site)} contains {origin}: {statement[:80]}")
    return leaks


def test_solution_statements_are_found():
    """The leak detector knows the bodies of the graded reference functions."""
    statements = solution_statements()
    assert len(statements) > 50
    assert any("batchnorm.py:batch_norm_backward" == o for o in statements.values())
    assert any("dropout.py:dropout_forward" == o for o in statements.values())


def test_leak_detector_flags_copied_solution_code(tmp_path):
    """A page (HTML or notebook) that shows a line of a reference function is reported."""
    statement, origin = next((s, o) for s, o in solution_statements().items()
                             if o == "batchnorm.py:batch_norm_backward")
    (tmp_path / "page.html").write_text(
        f"<pre><span>{html.escape(statement)}</span></pre>")
    (tmp_path / "nb.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "code", "source": [statement]}]}))
    (tmp_path / "clean.html").write_text("<p>from solutions.batchnorm import batch_norm</p>")
    leaks = leaked_statements(tmp_path)
    assert len(leaks) == 2 and all(origin in leak for leak in leaks)


def test_built_site_contains_no_solution_code():
    """Nothing the site serves (pages, _sources, downloadable notebooks, search index)
    contains a statement of a solutions/ function body."""
    _need_site()
    assert leaked_statements(SITE) == []


def test_built_site_offers_notebook_downloads_and_launch_links():
    """Every lecture chapter's page links its executed .ipynb, Binder and Colab."""
    _need_site()
    for chapter in LECTURE_CHAPTERS:
        page = (SITE / f"{chapter}.html").read_text(encoding="utf-8")
        name = chapter.split("/")[-1]
        assert f"_sources/{chapter}.ipynb" in page, chapter
        assert (SITE / "_sources" / f"{chapter}.ipynb").is_file(), chapter
        assert "mybinder.org/v2/gh/" in page and f"{name}.md" in page, chapter
        assert "colab.research.google.com/github/" in page, chapter


def test_figures_are_opaque_so_they_read_in_the_dark_theme_too():
    """Every figure the site serves is an opaque PNG: black axes and labels on a white
    background stay readable when a reader switches the theme to dark (a transparent figure
    would put black text on a dark page)."""
    _need_site()
    import matplotlib.image as mpimg

    images = sorted((SITE / "_images").glob("*.png"))
    assert len(images) >= 10
    for path in images:
        pixels = mpimg.imread(path)
        if pixels.ndim == 3 and pixels.shape[-1] == 4:
            assert pixels[..., 3].min() == 1.0, f"{path.name} has transparent pixels"
