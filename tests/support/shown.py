"""Checks that text written for the instructor holds nothing a student's text could use to
forge a line or rewrite a terminal (see autograder.text.shown)."""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, bidi formatting characters
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def forbidden(text: str) -> list[str]:
    """The forbidden characters in ``text`` (as escapes), in order."""
    return [m.group().encode("unicode_escape").decode() for m in FORBIDDEN.finditer(text)]
