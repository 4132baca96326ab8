"""Notebook outputs built from the kernel's messages, with active content removed.

The autograded notebook is opened by the instructor (formgrader renders it in the browser), so
:func:`output_from_message` keeps only plain text and raster images: HTML, Markdown, LaTeX and
SVG become their plain-text version (:func:`html_text`), JavaScript and everything else is
dropped, and output metadata is not kept.
"""

from __future__ import annotations

import html.parser
import re
from typing import Any

import nbformat

from ..text import cap, clean

_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
IMAGES = ("image/png", "image/jpeg", "image/gif")
AS_TEXT = ("text/html", "text/markdown", "text/latex", "image/svg+xml")
MAX_TRACEBACK_LINES = 200


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(markup: str) -> str:
    """The text of an HTML fragment, without tags, scripts or styles."""
    parser = _Text()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # never fails on text, but the input is hostile
        return "[output removed by the grader]"
    return "".join(parser.parts)


def _as_text(value: Any) -> str | None:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    return clean(value) if isinstance(value, str) else None


def _data(data: Any) -> dict[str, str]:
    """The safe part of a MIME bundle."""
    if not isinstance(data, dict):
        return {}
    kept: dict[str, str] = {}
    plain = _as_text(data.get("text/plain"))
    for mime in IMAGES:
        value = data.get(mime)
        if isinstance(value, str) and _BASE64.fullmatch(value):
            kept[mime] = value
    if plain is None:
        for mime in AS_TEXT:
            text = _as_text(data.get(mime))
            if text is not None:
                plain = html_text(text) if mime in ("text/html", "image/svg+xml") else text
                break
    if plain is not None:
        kept["text/plain"] = plain
    return kept


def output_from_message(msg_type: str, content: dict) -> dict | None:
    """The notebook output to keep for an iopub message (None: nothing to keep)."""
    if msg_type == "stream":
        text = _as_text(content.get("text"))
        name = content.get("name") if content.get("name") in ("stdout", "stderr") else "stdout"
        return None if text is None else nbformat.v4.new_output("stream", name=name, text=text)
    if msg_type == "error":
        tb = content.get("traceback")
        tb = [cap(t, 20_000) for t in tb[:MAX_TRACEBACK_LINES]] if isinstance(tb, list) else []
        return nbformat.v4.new_output("error", ename=cap(content.get("ename", ""), 200),
                                      evalue=cap(content.get("evalue", "")), traceback=tb)
    if msg_type in ("display_data", "execute_result"):
        data = _data(content.get("data"))
        if not data:
            return None
        if msg_type == "display_data":
            return nbformat.v4.new_output("display_data", data=data)
        count = content.get("execution_count")
        count = count if isinstance(count, int) and 0 <= count < 2**31 else None
        return nbformat.v4.new_output("execute_result", data=data, execution_count=count)
    return None
