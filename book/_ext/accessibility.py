"""Fixes to the theme's HTML that an accessibility audit (axe-core, WCAG 2.1 A and AA) flags.

Jupyter Book 1.x (sphinx-book-theme on pydata-sphinx-theme, myst-nb, sphinxcontrib-bibtex)
writes a few elements whose accessible name or ARIA role is wrong (see jupyter-book issue
#2135 for the family of problems). This extension rewrites them in every HTML file once the
build has finished, so what a screen reader announces matches what a sighted reader sees:

* buttons whose ``aria-label`` hides their visible text (WCAG 2.5.3, "label in name"): the
  search button (visible "Search Ctrl+K", label "Search") and the "Show code cell source"
  toggles of myst-nb (label "Toggle hidden content") lose the ``aria-label``, so their name is
  their visible text; the colour-mode button, whose only visible content is an icon font glyph
  that axe counts as text, gets its name "Color mode" from visually hidden text instead of an
  ``aria-label``; icons inside buttons are marked ``aria-hidden`` (they are decoration);
* the logos inside the launch buttons (alt "Binder logo" beside the visible text "Binder")
  are decoration that a screen reader would read twice: they get ``alt=""`` and
  ``aria-hidden``, and the link keeps its name from its text;
* the bibliography's entries carry the deprecated role ``doc-biblioentry`` inside a
  ``role="list"`` container, which then has no list items (WCAG 4.1.2): they become
  ``role="listitem"``.

The colour contrast of links in light mode is fixed by ``book/_static/accessibility.css``.
``tests/book/test_browser.py`` runs axe-core on every page, in light and dark mode, and fails on
any WCAG 2.1 A or AA violation. :func:`fix_html` is a pure function of the page's text (tested
in ``tests/book/test_accessibility.py``); running it twice changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

# <button class="btn search-button-field ..." title="Search" aria-label="Search" ...>
_SEARCH_BUTTON = re.compile(r'(<button\b[^>]*\bsearch-button-field\b[^>]*?)\s+aria-label="[^"]*"')
# <summary aria-label="Toggle hidden content"> of myst-nb's hide-input / hide-output cells
_SUMMARY_LABEL = re.compile(r'<summary\s+aria-label="Toggle hidden content"\s*>')
# <i class="fa-..."></i> icons inside buttons: decorative
_ICON = re.compile(r'<i class="((?:theme-switch )?fa[a-z-]* [^"]*)"(?![^>]*aria-hidden)')
_BIBLIOENTRY = re.compile(r'\brole="doc-biblioentry"')
# <span class="btn__icon-container"> <img alt="Binder logo" src=...>: a logo beside the link text
_BUTTON_LOGO = re.compile(r'(<span class="btn__icon-container">\s*<img) alt="[^"]+"')
# <button class="... theme-switch-button ..." aria-label="Color mode" ...>
_THEME_BUTTON = re.compile(r'(<button\b[^>]*\btheme-switch-button\b[^>]*?)\s+aria-label="([^"]*)"'
                           r'([^>]*>)')


def fix_html(text: str) -> str:
    """``text`` (one HTML page) with the accessibility fixes of the module docstring applied."""
    text = _SEARCH_BUTTON.sub(r"\1", text)
    text = _SUMMARY_LABEL.sub("<summary>", text)
    text = _THEME_BUTTON.sub(r'\1\3<span class="visually-hidden">\2</span>', text)
    text = _ICON.sub(r'<i class="\1" aria-hidden="true"', text)
    text = _BUTTON_LOGO.sub(r'\1 alt="" aria-hidden="true"', text)
    return _BIBLIOENTRY.sub('role="listitem"', text)


def fix_site(outdir: Path) -> int:
    """Apply :func:`fix_html` to every HTML file under ``outdir``; returns the files changed."""
    changed = 0
    for path in Path(outdir).rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        fixed = fix_html(text)
        if fixed != text:
            path.write_text(fixed, encoding="utf-8")
            changed += 1
    return changed


def _build_finished(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        fix_site(Path(app.outdir))


def setup(app):
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
