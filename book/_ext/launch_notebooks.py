"""Launch buttons that open a real notebook, and the notebooks they open.

The chapters are MyST Markdown files. sphinx-book-theme points its launch buttons at the source
file on the repository's branch: Binder can open a ``.md`` only with jupytext installed, and
Colab cannot open one at all. This module fixes both ends.

* As a Sphinx extension (``local_extensions`` in ``_config.yml``), it rewrites each page's
  Binder and Colab links to ``<page>.ipynb`` on the branch named by the config value
  ``launch_branch`` (default ``launch``).
* As a script, ``python book/_ext/launch_notebooks.py --out _build/launch``, it writes that
  branch's content after ``make book``: every chapter as an ``.ipynb`` (the executed notebook
  of the build, so a reader sees the outputs before running anything; the Markdown source
  where the build has not run), each preceded by a set-up cell, plus ``requirements.txt``
  and ``postBuild`` for Binder. The publishing workflow pushes the folder to the ``launch`` branch.

The repository is named once, by ``repository.url`` in ``_config.yml``: the extension reads it
from the theme options Jupyter Book fills from that setting, the script from ``_config.yml``
itself; neither keeps a copy.

The set-up cell installs what a chapter imports and a bare Colab or Binder image lacks: the
course's reference library (``launch_library``, a pip requirement, by default the repository
itself) and ``myst-nb`` (for ``glue``). A course that keeps ``solutions/`` private cannot give
readers a runnable chapter; the cell then says so plainly, and the executed outputs remain.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BRANCH = "launch"
SETUP_TAG = "launch-setup"
# What a launched chapter needs beyond the library; Colab has all of it but myst-nb.
BINDER_REQUIREMENTS = """\
--extra-index-url https://download.pytorch.org/whl/cpu
numpy>=2.0
torch=={torch}
matplotlib>=3.8
scikit-learn>=1.4
sympy
myst-nb
jupytext
"""
# Binder runs postBuild after the requirements: the library without its instructor-side
# dependencies (nbgrader, jupyter-book), which a reader does not need.
BINDER_POST_BUILD = """\
#!/bin/bash
pip install --no-deps {library} \\
  || echo "could not install the reference library; the notebooks keep their outputs"
"""

SETUP_CELL = '''\
# Set-up for Colab and Binder (not part of the chapter): install what the chapter imports.
import importlib.util
import subprocess
import sys

LIBRARY = {library!r}  # the course's reference library, solutions/
_needed = {{  # module: (pip arguments, what to say when the install fails)
    "solutions": (["--no-deps", LIBRARY],
                  "This chapter imports the course's reference library solutions/. If your "
                  "course keeps it private, read the outputs below (they come from the "
                  "published build) or ask your instructor for access."),
    "myst_nb": (["myst-nb"], "The chapter's glue() calls need myst-nb."),
}}
for _module, (_args, _why) in _needed.items():
    if importlib.util.find_spec(_module) is None:
        _done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *_args])
        if _done.returncode != 0:
            print(f"Could not install {{_args[-1]}}. {{_why}}")
importlib.invalidate_caches()
'''


# --- the Sphinx extension -------------------------------------------------------------------

def _repo_parts(url: str) -> tuple[str, str] | None:
    if "github.com/" not in url:
        return None
    parts = url.rstrip("/").split("github.com/")[-1].split("/")
    return (parts[0], parts[1].removesuffix(".git")) if len(parts) >= 2 else None


def launch_urls(repository_url: str, branch: str, pagename: str, binderhub_url: str,
                colab_url: str, interface: str = "lab/tree") -> dict[str, str]:
    """The Binder and Colab URLs of page ``pagename``'s notebook on ``branch``."""
    parts = _repo_parts(repository_url)
    if parts is None:
        return {}
    org, repo = parts
    path = f"{pagename}.ipynb"
    urls = {}
    if binderhub_url:
        urls["Binder"] = (f"{binderhub_url.rstrip('/')}/v2/gh/{org}/{repo}/{branch}"
                          f"?urlpath={interface}/{path}")
    if colab_url:
        urls["Colab"] = f"{colab_url.rstrip('/')}/github/{org}/{repo}/blob/{branch}/{path}"
    return urls


def _front_matter(text: str) -> dict:
    """The YAML front matter of a MyST page ({} when it has none or it does not parse)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---", 4)
    try:
        data = yaml.safe_load(text[4:end]) if end > 0 else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def is_chapter(source: Path) -> bool:
    """A page gets a launch notebook when it is a notebook (a MyST file with a kernelspec)
    that runs on the course's library (it imports ``solutions``), unless its front matter says
    ``launch_buttons: false`` (the assignments page computes its table with the library but has
    nothing to try out)."""
    if source.suffix != ".md" or not source.is_file():
        return False
    text = source.read_text(encoding="utf-8")
    meta = _front_matter(text)
    return ("kernelspec" in meta and "from solutions" in text
            and meta.get("launch_buttons", True) is not False)


def _rewrite_launch_buttons(app, pagename, templatename, context, doctree) -> None:
    groups = context.get("header_buttons", [])
    if not is_chapter(Path(app.env.doc2path(pagename))):
        # nothing to launch (the assignments page, the bibliography): no launch buttons
        groups[:] = [g for g in groups if g.get("label") != "launch-buttons"]
        return
    theme = app.config.html_theme_options or {}
    launch = theme.get("launch_buttons") or {}
    interface = {"classic": "tree"}.get(launch.get("notebook_interface"), "lab/tree")
    urls = launch_urls(theme.get("repository_url", ""), app.config.launch_branch, pagename,
                       launch.get("binderhub_url", ""), launch.get("colab_url", ""), interface)
    for group in groups:
        if group.get("label") != "launch-buttons":
            continue
        for button in group.get("buttons", []):
            if button.get("text") in urls:
                button["url"] = urls[button["text"]]


def setup(app):
    app.add_config_value("launch_branch", DEFAULT_BRANCH, "html")
    app.add_config_value("launch_library", "", "html")   # read by the script, see default_library
    # after sphinx-book-theme's add_launch_buttons (priority 501), before the page is rendered
    app.connect("html-page-context", _rewrite_launch_buttons, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# --- the launch branch's content --------------------------------------------------------------

def _toc_files(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["file"]] if "file" in node else []
        return own + [f for v in node.values() for f in _toc_files(v)]
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    return []


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml``, its root first, as ``book/<name>``."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"], *_toc_files(toc.get("parts", []))]


def chapter_pages(root: Path = ROOT) -> list[str]:
    """The table of contents' pages that get a launch notebook (see :func:`is_chapter`)."""
    return [page for page in toc_pages(root) if is_chapter(root / f"{page}.md")]


def _setup_cell(library: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "outputs": [], "id": SETUP_TAG,
            "metadata": {"tags": [SETUP_TAG]}, "source": SETUP_CELL.format(library=library)}


def launch_notebook(page: str, library: str, root: Path = ROOT) -> dict:
    """Page ``page`` as a notebook (executed if the build ran) with the set-up cell first.

    The executed notebook is plain nbformat-4 JSON, read as such (jupytext and nbformat take
    seconds to import and are only needed where the build has not run)."""
    executed = root / "_build" / "jupyter_execute" / f"{page}.ipynb"
    if executed.is_file():
        nb = json.loads(executed.read_text(encoding="utf-8"))
    else:
        import jupytext
        import nbformat

        nb = json.loads(nbformat.writes(jupytext.read(root / f"{page}.md")))
    nb["cells"] = [c for c in nb["cells"] if SETUP_TAG not in c.get("metadata", {}).get("tags", [])]
    nb["cells"].insert(0, _setup_cell(library))
    return nb


def default_library(root: Path = ROOT) -> str:
    """``launch_library`` from _config.yml, else the repository as a pip requirement."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    configured = ((config.get("sphinx") or {}).get("config") or {}).get("launch_library")
    if configured:
        return str(configured)
    repo = config["repository"]
    return f"git+{repo['url'].rstrip('/')}@{repo.get('branch', 'main')}"


def _pinned_torch(root: Path) -> str:
    for line in (root / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip().lower().startswith("torch=="):
            return line.split("==", 1)[1].strip()
    raise ValueError("constraints.txt pins no torch version")


def write_launch_tree(out: Path, root: Path = ROOT, library: str | None = None) -> list[Path]:
    """Write the launch branch's files under ``out``; returns the notebooks written."""
    library = library or default_library(root)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in chapter_pages(root):
        target = out / f"{page}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(launch_notebook(page, library, root), indent=1) + "\n",
                          encoding="utf-8")
        written.append(target)
    (out / "requirements.txt").write_text(
        BINDER_REQUIREMENTS.format(torch=_pinned_torch(root)), encoding="utf-8")
    post_build = out / "postBuild"
    post_build.write_text(BINDER_POST_BUILD.format(library=shlex.quote(library)),
                          encoding="utf-8")
    post_build.chmod(0o755)
    (out / "README.md").write_text(
        "# Launchable chapters\n\nGenerated by `book/_ext/launch_notebooks.py` from the "
        "book's sources; do not edit. The book's launch buttons (Binder, Colab) open these "
        "notebooks.\n", encoding="utf-8")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Write the notebooks the launch buttons open.")
    ap.add_argument("--out", type=Path, default=ROOT / "_build" / "launch")
    ap.add_argument("--library", help="pip requirement of the reference library "
                    "(default: launch_library in _config.yml, else the repository)")
    args = ap.parse_args(argv)
    written = write_launch_tree(args.out, library=args.library)
    print(f"wrote {len(written)} notebooks, requirements.txt and postBuild under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
