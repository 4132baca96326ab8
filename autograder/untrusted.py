"""Text and outputs that come from a submission, made safe to keep, show and write.

* :func:`clean` replaces unpaired surrogates (valid in JSON text, unencodable as UTF-8) by
  U+FFFD, so a notebook or message holding one can still be executed and written.
* :func:`cap` also bounds a string's length (default :data:`MAX_TEXT`) and says it was cut:
  error messages, reasons and part messages never carry megabytes of the kernel's text.
* :func:`output_from_message` builds the notebook output kept for a kernel message, with
  active content removed: the autograded notebook is opened by the instructor (formgrader
  renders it in the browser), so only plain text and raster images are kept; HTML, Markdown,
  LaTeX and SVG become their plain-text version, JavaScript and everything else is dropped,
  and output metadata is not kept.
* :func:`fenced` shows a student's Markdown as a code block (nothing in it is rendered).
* :func:`is_safe_name` says whether a folder name can serve as a student id or assignment name
  (and as a file name); :func:`display_name` shows any other name safely.
"""

from __future__ import annotations

import html.parser
import re
from typing import Any

import nbformat

MAX_TEXT = 2000
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CUT = re.compile(r"\.\.\. \[truncated: \d+ characters in all\]$")
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")
IMAGES = ("image/png", "image/jpeg", "image/gif")
AS_TEXT = ("text/html", "text/markdown", "text/latex", "image/svg+xml")
MAX_TRACEBACK_LINES = 200


def clean(text: Any) -> str:
    """``text`` as a string that can be encoded as UTF-8."""
    text = text if isinstance(text, str) else str(text)
    return _SURROGATES.sub("\ufffd", text)


def cap(text: Any, limit: int = MAX_TEXT) -> str:
    """:func:`clean` ``text``, cut to about ``limit`` characters with a note when longer (a
    string this already cut is left as it is, so the note keeps the original length)."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit or (len(text) <= limit + 60 and _CUT.search(text)):
        return clean(text)
    return clean(text[:limit]) + f"... [truncated: {len(text)} characters in all]"


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


def fenced(markdown: str) -> str:
    """``markdown`` inside a fenced code block longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", markdown)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{clean(markdown)}\n{fence}"


def is_safe_name(name: str) -> bool:
    """Letters, digits and ``._@+-``, starting with a letter or digit, at most 128 long."""
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


def display_name(name: str, limit: int = 80) -> str:
    """``name`` (a folder name, perhaps not even UTF-8) as printable text of bounded length."""
    if is_safe_name(name):
        return name
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."
