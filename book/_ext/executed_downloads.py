"""Sphinx extension: the downloadable ``.ipynb`` of a chapter keeps its outputs.

myst-nb (1.4, execution mode ``cache``) writes ``_build/jupyter_execute/<page>.ipynb`` from the
notebook it parsed, and when the page comes from the execution cache it merges the cached outputs
into a *copy*: the file written then has no outputs at all. sphinx-book-theme copies that file to
``_sources/`` as the page's ".ipynb" download, and ``launch_notebooks`` publishes it, so after any
rebuild from the cache readers would download empty notebooks. This handler runs before the
theme's copy (priority 500 < 501) and merges the cached outputs into the written file where they
are missing.
"""

from __future__ import annotations

from pathlib import Path

import nbformat


def executed_path(app, pagename: str) -> Path:
    return Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"


def has_outputs(nb) -> bool:
    return any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def restore_outputs(path: Path, cache_path: Path) -> bool:
    """Merge the cached outputs into the notebook at ``path`` if it has none; True if done."""
    from jupyter_cache import get_cache

    nb = nbformat.read(path, as_version=4)
    if has_outputs(nb) or not cache_path.is_dir():
        return False
    try:
        _, merged = get_cache(str(cache_path)).merge_match_into_notebook(nb)
    except KeyError:          # not in the cache (a page without code, or never executed)
        return False
    if not has_outputs(merged):
        return False
    nbformat.write(merged, path)
    return True


def _on_page(app, pagename, templatename, context, doctree) -> None:
    path = executed_path(app, pagename)
    if path.is_file():
        default = Path(app.outdir).parent / ".jupyter_cache"
        restore_outputs(path, Path(app.config.nb_execution_cache_path or default))


def setup(app):
    app.connect("html-page-context", _on_page, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
