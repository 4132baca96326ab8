"""Sphinx extension: drop repeated <script> entries from every HTML page.

With Sphinx 7.4, JavaScript that extensions register with an inline ``body`` (sphinx-thebe's
``const THEBE_JS_URL = ...``, sphinx-togglebutton's ``togglebuttonSelector``) reaches each page
twice. The second copy of a ``const`` declaration is a SyntaxError in the browser console, which
the book's browser test (tests/book/test_browser.py) rightly reports. This handler keeps the
first of any identical entries (same file, same attributes and body).
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", script)
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def dedupe_script_files(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", dedupe_script_files, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
