"""Text that comes from a submission (student-shaped text), made safe to keep, show and write.

* :func:`clean` replaces unpaired surrogates (valid in JSON text, unencodable as UTF-8) by
  U+FFFD, so a notebook or message holding one can still be executed and written.
* :func:`cap` also bounds a string's length (default :data:`MAX_TEXT`) and says it was cut:
  error messages, reasons and part messages never carry megabytes of the kernel's text.
* :func:`fenced` shows a student's Markdown as a code block (nothing in it is rendered).
* :func:`is_safe_name` says whether a folder name can serve as a student id or assignment name
  (and as a file name); :func:`display_name` shows any other name safely (by :func:`shown`).
* :func:`shown` is the one cleaning of student-shaped text before it reaches a file or screen
  of the instructor's (grades.csv, grades.log, the terminal, feedback pages, reports): control
  and bidirectional-formatting characters are escaped, so no text can forge a log line or
  rewrite the terminal, and the length is capped. Every writer of such text calls it (or
  :func:`display_name` / :func:`plot_label`, which call it) at the moment it writes.
* :func:`plot_label` is :func:`shown` for a matplotlib text: ``$`` is escaped so the text is
  never parsed as mathtext (plots are drawn with ``text.usetex`` off).
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 2000
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_SURROGATES = re.compile("[\ud800-\udfff]")
_CUT = re.compile(r"\.\.\. \[truncated: \d+ characters in all\]$")
# C0 and C1 controls, DEL, and the bidirectional formatting characters (Trojan Source)
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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


def fenced(markdown: str) -> str:
    """``markdown`` inside a fenced code block longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", markdown)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{clean(markdown)}\n{fence}"


def is_safe_name(name: str) -> bool:
    """Letters, digits and ``._@+-``, starting with a letter or digit, at most 128 long."""
    return isinstance(name, str) and SAFE_NAME.fullmatch(name) is not None


def display_name(name: Any, limit: int = 80) -> str:
    """``name`` (a folder or file name, perhaps not even UTF-8) as :func:`shown` text of about
    ``limit`` characters; a safe name is shown as it is."""
    if is_safe_name(name):
        return name
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return shown(name, limit)


def shown(text: Any, limit: int = MAX_TEXT) -> str:
    """``text`` safe to write into a file or onto a terminal of the instructor's: every control
    or bidirectional-formatting character becomes a visible escape (``\\x1b``, ``\\u202e``; a
    newline becomes ``\\n``), and the result is cut to ``limit`` characters with a note giving
    the full length (as :func:`cap`; text this already cut is left as it is)."""
    text = text if isinstance(text, str) else str(text)
    if len(text) <= limit + 60 and _CUT.search(text):
        head, whole = text, None
    else:  # escaping only lengthens text: no more than this much of it can be shown
        head, whole = text[:limit], len(text)
    escaped = _UNSHOWN.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"),
                           clean(head))
    if whole is None or (whole <= limit and len(escaped) <= limit):
        return escaped
    return escaped[:limit] + f"... [truncated: {whole} characters in all]"


def plot_label(text: Any, limit: int = 60) -> str:
    """``text`` as :func:`shown` text for a matplotlib label: every ``$`` escaped, so nothing
    in it is read as mathtext, and a leading ``_`` (which hides a legend entry) kept visible."""
    label = shown(text, limit).replace("$", r"\$")
    return " " + label if label.startswith("_") else label
