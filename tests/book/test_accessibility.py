"""book/_ext/accessibility.py: the rewrites of the theme's HTML that the axe audit asks for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location(
        "accessibility", ROOT / "book" / "_ext" / "accessibility.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEARCH = ('<button class="btn search-button-field search-button__button pst-js-only" '
          'title="Search" aria-label="Search" data-bs-toggle="tooltip">\n'
          ' <i class="fa-solid fa-magnifying-glass"></i>\n'
          ' <span class="search-button__default-text">Search</span></button>')
THEME = ('<button class="btn btn-sm nav-link pst-navbar-icon theme-switch-button pst-js-only" '
         'aria-label="Color mode" data-bs-title="Color mode">\n'
         '  <i class="theme-switch fa-solid fa-sun                fa-lg" data-mode="light" '
         'title="Light"></i>\n</button>')
SUMMARY = ('<summary aria-label="Toggle hidden content">\n'
           '<p class="collapsed admonition-title">Show code cell source</p>')
LOGO = ('<span class="btn__icon-container">\n    <img alt="Binder logo" '
        'src="../_static/images/logo_binder.svg">\n  </span>')
BIBLIOGRAPHY = ('<div role="list" class="citation-list">\n'
                '<div class="citation" id="id4" role="doc-biblioentry">')


def test_labels_that_hide_visible_text_are_removed():
    """The search button and the code-cell toggles are named by their visible text."""
    fixed = _module().fix_html(SEARCH + SUMMARY)
    assert 'aria-label="Search"' not in fixed and "Toggle hidden content" not in fixed
    assert "<summary>" in fixed and ">Search</span>" in fixed


def test_colour_mode_button_is_named_by_hidden_text_and_icons_are_hidden():
    """The colour-mode button's name moves from aria-label to visually hidden text; its icon
    and the search icon are aria-hidden."""
    fixed = _module().fix_html(THEME + SEARCH)
    assert "aria-label" not in fixed.split("search-button-field")[0]
    assert '<span class="visually-hidden">Color mode</span>' in fixed
    assert fixed.count('aria-hidden="true"') == 2


def test_launch_logos_become_decoration():
    """A logo beside its link text gets alt="" and aria-hidden."""
    fixed = _module().fix_html(LOGO)
    assert '<img alt="" aria-hidden="true" src="../_static/images/logo_binder.svg">' in fixed


def test_bibliography_entries_are_list_items():
    """The deprecated doc-biblioentry role becomes listitem inside the role=list container."""
    fixed = _module().fix_html(BIBLIOGRAPHY)
    assert 'role="listitem"' in fixed and "doc-biblioentry" not in fixed


def test_fixing_twice_changes_nothing():
    """fix_html is idempotent, so a rebuild that rewrites every page again is harmless."""
    module = _module()
    once = module.fix_html(SEARCH + THEME + SUMMARY + LOGO + BIBLIOGRAPHY)
    assert module.fix_html(once) == once


def test_fix_site_rewrites_html_files_only(tmp_path):
    """fix_site changes the HTML files that need it and reports how many."""
    (tmp_path / "a.html").write_text(SUMMARY, encoding="utf-8")
    (tmp_path / "b.html").write_text("<p>fine</p>", encoding="utf-8")
    (tmp_path / "c.js").write_text(SUMMARY, encoding="utf-8")
    assert _module().fix_site(tmp_path) == 1
    assert (tmp_path / "c.js").read_text(encoding="utf-8") == SUMMARY
