"""The book's configuration and the built site: the table of contents and the intro's list of
it, the publishing settings (one repository URL), sources cited, pages that read cleanly
(tables with captions, figures with alt texts, no maintainer notes, headings numbered once), and
no graded answer anywhere in what the site serves.

The site tests need ``make book`` first; without a built site they skip (or fail with
``REQUIRE_BROWSER=1``, which CI sets, since CI always builds the book first).
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

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


def test_toc_places_the_experiments_chapter_and_the_gpu_appendix():
    """The experiments chapter follows the lecture's chapters; the GPU chapter is an appendix,
    in a part of its own."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = {part["caption"]: _toc_files(part) for part in toc["parts"]}
    chapters = parts["Chapters"]
    assert chapters.index("book/experiments") > chapters.index("book/conv_batchnorm")
    assert parts["Appendices"] == ["book/gpu_batchnorm"]


def _intro_links() -> set[str]:
    """The pages book/intro.md links with {doc}, as table-of-contents entries."""
    text = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    links = set()
    for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", text):
        links.add(target.lstrip("/") if target.startswith("/") else f"book/{target}")
    return links


def test_intro_lists_every_entry_of_the_table_of_contents():
    """Every chapter, appendix and back-matter page in _toc.yml is linked from the intro, so a
    chapter added to the table of contents cannot be left out of the intro's list."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    missing = set(_toc_files(toc["parts"])) - _intro_links()
    assert not missing, f"book/intro.md does not list {sorted(missing)}"


def test_intro_link_parser_reads_plain_and_titled_links(tmp_path, monkeypatch):
    """{doc}`name`, {doc}`title <name>` and {doc}`/genindex` are all found."""
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text(
        "{doc}`dropout`, {doc}`the GPU <gpu_batchnorm>` and {doc}`/genindex`.")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _intro_links() == {"book/dropout", "book/gpu_batchnorm", "genindex"}


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



# --- sources, one repository URL, pages that read cleanly ---------------------------------

def _chapter_sources() -> dict[str, str]:
    """The text of every page of the table of contents that is a Markdown file under book/."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return {f: (ROOT / f"{f}.md").read_text(encoding="utf-8")
            for f in [toc["root"], *_toc_files(toc["parts"])] if (ROOT / f"{f}.md").is_file()}


def _is_notebook(text: str) -> bool:
    return "kernelspec:" in text[:500] and "```{code-cell}" in text


SEED_KEYS = {"lecture_dropout_minibatch": ("lecture", "Russian"),
             "wiki_batch_normalization": ("wiki page", "Russian"),
             "notes_batch_normalization": ("lecture notes", "Chinese"),
             "blog_batchnorm_multilayer": ("blog post", "German"),
             "summary_ioffe2015": ("paper summary", "Chinese")}


def test_the_lecture_and_the_four_notes_have_bibliography_entries():
    """The course's lecture and its four notes are in references.bib with a title, their kind
    and their language."""
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    for key, (kind, language) in SEED_KEYS.items():
        entry = re.search(r"@\w+\{" + key + r",(.*?)\n\}", bib, re.S)
        assert entry, key
        fields = entry.group(1)
        assert re.search(r"title\s*=\s*\{\{\S", fields), key
        note = re.search(r"note\s*=\s*\{(.*?)\},?\n", fields, re.S).group(1).lower()
        assert kind in note and language.lower() in note, key
        assert re.search(r"language\s*=\s*\{" + language + r"\}", fields), key


def test_every_chapter_cites_its_sources():
    """Every executable chapter cites at least one work, and every seed note is cited somewhere;
    no chapter speaks of "the wiki note" or "the blog post" without a citation beside it."""
    sources = _chapter_sources()
    cited = set()
    for page, text in sources.items():
        keys = set(re.findall(r"\{cite(?::[pt])?\}`([^`]+)`", text))
        cited |= {k.strip() for group in keys for k in group.split(",")}
        if _is_notebook(text) and page != "book/assignments":
            assert keys, f"{page} cites nothing"
        for phrase in ("the wiki note", "the blog post", "the note's", "the course's notes"):
            for match in re.finditer(re.escape(phrase), text, re.I):
                nearby = text[max(0, match.start() - 300):match.end() + 300]
                assert "{cite" in nearby, f"{page}: '{phrase}' without a citation nearby"
    assert set(SEED_KEYS) <= cited, set(SEED_KEYS) - cited


def test_headings_are_not_numbered_by_hand():
    """Jupyter Book numbers the sections; a heading like "## 1. Foo" would be numbered twice."""
    for page, text in _chapter_sources().items():
        numbered = re.findall(r"^#{1,6} +\d+[.)] .*$", text, re.M)
        assert not numbered, f"{page}: {numbered}"


def test_chapters_show_tables_as_tables():
    """No chapter prints a table or displays a Markdown string as one: result tables are
    solutions.display.Table (or a captioned {table} directive)."""
    for page, text in _chapter_sources().items():
        code = "\n".join(re.findall(r"```\{code-cell\}.*?\n(.*?)```", text, re.S))
        assert "Markdown(" not in code, f"{page} displays Markdown"
        for call in re.findall(r"print\((.*?)\)\n", code, re.S):
            assert not re.search(r":[<>^]\d|ljust|rjust|\|", call), f"{page}: print({call})"


def _figure_cells(text: str) -> list[str]:
    return [m for m in re.findall(r"```\{code-cell\}[^\n]*\n---\n(.*?)```", text, re.S)
            if "figure:" in m.split("\n---\n")[0]]


def test_every_figure_cell_has_a_caption_a_name_an_alt_text_and_the_accessible_style():
    """Every figure-producing cell carries myst-nb metadata with a caption, a name and an alt
    text of at least ten words, and draws with solutions.display.accessible_style; every cell
    that shows a plot is such a cell."""
    for page, text in _chapter_sources().items():
        cells = _figure_cells(text)
        for cell in cells:
            meta, code = cell.split("\n---\n", 1)
            data = yaml.safe_load(meta)["mystnb"]
            assert data["figure"]["caption"].strip() and data["figure"]["name"], page
            assert len(data["image"]["alt"].split()) >= 10, (page, data["figure"]["name"])
            assert "accessible_style()" in code, (page, data["figure"]["name"])
        assert text.count("plt.show()") == len(cells), page


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[tuple[dict, list[str]]] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append((dict(attrs), list(self.stack)))
        elif tag not in ("br", "hr", "meta", "link", "input", "source"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass


def alt_text_problem(attrs: dict) -> str | None:
    """Why an <img>'s alt text fails a reader, or None. Decorative images (alt="" with
    aria-hidden="true", beside their link's text) are fine; any other alt must be at least four
    words and not a file name or path."""
    alt = attrs.get("alt")
    if alt is None:
        return "no alt attribute"
    if alt == "":
        return None if attrs.get("aria-hidden") == "true" else "empty alt on a visible image"
    if "_images/" in alt or re.fullmatch(r"\S*(/|\.(png|jpe?g|svg|gif|webp))\S*", alt, re.I):
        return f"alt is a file name: {alt!r}"
    if len(alt.split()) < 4:
        return f"alt has fewer than four words: {alt!r}"
    return None


def test_alt_text_rule_flags_file_names_and_short_alts():
    """The rule rejects missing, file-name and one-word alts and accepts described images."""
    assert alt_text_problem({"src": "a.png"}) == "no alt attribute"
    assert "file name" in alt_text_problem({"alt": "../_images/3f41.png"})
    assert "fewer" in alt_text_problem({"alt": "figure"})
    assert alt_text_problem({"alt": "", "aria-hidden": "true"}) is None
    assert alt_text_problem({"alt": "Two curves of test accuracy against the step"}) is None
    assert alt_text_problem({"alt": "A curve that settles at slope -2/3 after a while"}) is None


def _pages() -> list[Path]:
    return sorted(p for p in SITE.rglob("*.html")
                  if "_static" not in p.parts and "_sources" not in p.parts)


def test_every_image_of_the_site_has_a_meaningful_alt_text():
    """Every <img> of the built site has an alt text of several words that is not a file name
    (decorative logos excepted, see alt_text_problem), and every chapter figure's alt text says
    more than its caption's first words."""
    _need_site()
    problems = []
    for page in _pages():
        parser = _Images()
        parser.feed(page.read_text(encoding="utf-8"))
        for attrs, _ in parser.images:
            why = alt_text_problem(attrs)
            if why:
                problems.append(f"{page.relative_to(SITE)}: {attrs.get('src')}: {why}")
            elif attrs.get("alt") and "_images" in attrs.get("src", ""):
                if len(attrs["alt"].split()) < 10:
                    problems.append(f"{page.relative_to(SITE)}: figure alt too short")
    assert not problems, "\n".join(problems)


class _Tables(HTMLParser):
    """The tags inside each data table of a page (Sphinx's index lays out its columns with
    tables of class "indextable"; those are layout, not data, and are skipped)."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[str]] = []
        self.open: list[list[str] | None] = []     # None: a layout table

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            layout = "indextable" in (dict(attrs).get("class") or "")
            self.open.append(None if layout else [])
            if not layout:
                self.tables.append(self.open[-1])
        elif self.open and self.open[-1] is not None:
            self.open[-1].append(tag)

    def handle_endtag(self, tag):
        if tag == "table" and self.open:
            self.open.pop()


def _table_pages() -> list[str]:
    if not (SITE / "index.html").is_file():
        return ["<not built>"]
    return [p.relative_to(SITE).as_posix() for p in _pages()]


@pytest.mark.parametrize("page", _table_pages())
def test_every_table_has_a_caption(page):
    """Every <table> of a page has a <caption> and column headers."""
    if page == "<not built>":
        _need_site()
    parser = _Tables()
    parser.feed((SITE / page).read_text(encoding="utf-8"))
    for tags in parser.tables:
        assert "caption" in tags and "th" in tags, f"{page}: a table without caption or headers"


MAINTAINER_NOTES = [r"make book", r"book-clean", r"MNIST_DIR", r"not recorded yet",
                    r"has been measured yet", r"run the command above", r"at 0x[0-9a-f]{6,}",
                    r"&lt;torch\._C\.", r"<torch\._C\."]


def _reader_text(path: Path) -> str:
    """The text a reader sees in a page's article (no navigation, scripts or styles)."""
    raw = path.read_text(encoding="utf-8")
    raw = re.sub(r"<(script|style)\b.*?</\1>", "", raw, flags=re.S)
    article = re.search(r'<article class="bd-article".*?</article>', raw, re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", article.group(0) if article else raw))


def test_reader_pages_carry_no_maintainer_notes_or_object_reprs():
    """No page tells the reader how to rebuild the book or set MNIST_DIR, announces work not
    done yet, or shows an object's repr (<... at 0x...>)."""
    _need_site()
    found = []
    for page in _pages():
        text = _reader_text(page)
        found += [f"{page.relative_to(SITE)}: {pattern}" for pattern in MAINTAINER_NOTES
                  if re.search(pattern, text)]
    assert not found, found


def test_maintainer_note_patterns_catch_what_they_should(tmp_path):
    """The patterns find a rebuild instruction and a Generator repr in an article."""
    page = tmp_path / "p.html"
    page.write_text('<article class="bd-article"><p>Run make book-clean.</p>'
                    "<pre>&lt;torch._C.Generator at 0x7f3a2b1c9d70&gt;</pre></article>")
    text = _reader_text(page)
    assert sum(bool(re.search(p, text)) for p in MAINTAINER_NOTES) >= 3


# --- the repository URL is one setting ------------------------------------------------------

def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"].rstrip("/")


LINK_HOSTS = ("github.com", "mybinder.org", "colab.research.google.com", "gitlab.com")


def links_not_built_from(url: str, site: Path) -> list[str]:
    """Links of the site to a repository host, Binder or Colab that do not name the repository
    of ``url`` (owner/name)."""
    owner_repo = "/".join(urlsplit(url).path.strip("/").split("/")[:2])
    bad = []
    for page in site.rglob("*.html"):
        for href in re.findall(r'href="([^"]+)"', page.read_text(encoding="utf-8")):
            href = html.unescape(href)
            host = urlsplit(href).hostname or ""
            if not any(host == h or host.endswith("." + h) for h in LINK_HOSTS):
                continue
            path = unquote(urlsplit(href).path)
            if f"/{owner_repo}/" not in path + "/" and not path.rstrip("/").endswith(owner_repo):
                bad.append(f"{page.name}: {href}")
    return bad


def test_link_check_flags_a_second_repository(tmp_path):
    """A launch link to another repository is reported; links built from the URL are not."""
    url = "https://github.com/org/course"
    (tmp_path / "a.html").write_text(
        '<a href="https://github.com/org/course/issues/new?title=x">i</a>'
        '<a href="https://mybinder.org/v2/gh/org/course/launch?urlpath=lab">b</a>'
        '<a href="https://colab.research.google.com/github/other/repo/blob/launch/x.ipynb">c</a>'
        '<a href="https://example.org/">e</a>')
    assert links_not_built_from(url, tmp_path) == [
        "a.html: https://colab.research.google.com/github/other/repo/blob/launch/x.ipynb"]


def test_every_repository_and_launch_link_is_built_from_the_configured_url():
    """Every repository, issue, Binder and Colab link of the built site names the repository
    of `repository.url` in _config.yml, and the chapters have all three kinds."""
    _need_site()
    assert links_not_built_from(_repository_url(), SITE) == []
    page = (SITE / "book" / "dropout.html").read_text(encoding="utf-8")
    url = _repository_url()
    owner_repo = "/".join(urlsplit(url).path.strip("/").split("/")[:2])
    for kind in (f'href="{url}"', f"{url}/issues/new", f"mybinder.org/v2/gh/{owner_repo}/",
                 f"colab.research.google.com/github/{owner_repo}/"):
        assert kind in page, kind


def test_the_repository_url_is_written_down_once():
    """The repository URL appears in _config.yml and nowhere else in the sources (the launch
    extension, the workflow and the README read or name the setting instead)."""
    url = _repository_url()
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode == 0:   # what git tracks or would track: not build outputs
        candidates = [ROOT / line for line in listed.stdout.splitlines()]
    else:                        # not a git checkout
        candidates = [p for p in ROOT.rglob("*")
                      if not {".git", "_build", ".venv", "node_modules"} & set(p.parts)
                      and not any(part.endswith(".egg-info") for part in p.parts)]
    tracked = [p for p in candidates if p.is_file()
               and p.suffix in (".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".txt", ".sh", "")]
    holders = [p.relative_to(ROOT).as_posix() for p in tracked
               if url in p.read_text(encoding="utf-8", errors="replace")]
    assert holders == ["_config.yml"], holders
