"""JSON from a submission or a student's kernel, parsed within a bound on what parsing builds.

A JSON text costs its reader far more than its bytes: ``[],`` is 3 bytes and becomes a list of
56 bytes plus a pointer, so a 60 MB text of empty lists or objects parses into more than 1 GB.
:func:`loads` counts, before parsing, an upper bound of the values the text holds (every value
but the first follows a ``[``, ``{``, ``,`` or ``:`` outside a string; strings are found by one
regular expression once the escapes are taken out, so the count runs at C speed) and refuses a
text of more than ``max_values`` values with :class:`TooManyValues`. What parsing then builds
is at most about ``max_values`` objects plus the characters of the strings (at most 4 bytes
each).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

_STRING = re.compile(rb'"[^"]*"')


class TooManyValues(ValueError):
    """A JSON text that holds more values than its reader accepts."""


def count_values(data: bytes, chunk: int = 2**18) -> int:
    """An upper bound of the number of values (keys included) in the JSON text ``data``."""
    # escapes pair up from the left, as bytes.replace scans: without them no quote is escaped
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    found, inside = 1, False
    for start in range(0, len(plain), chunk):  # piece by piece: re.sub keeps every piece
        part = plain[start:start + chunk]
        quotes = part.count(b'"')
        part = (b'"' if inside else b"") + part + (b'"' if inside ^ (quotes % 2 == 1) else b"")
        inside ^= quotes % 2 == 1
        skeleton = _STRING.sub(b'""', part)
        found += sum(skeleton.count(c) for c in (b",", b":", b"[", b"{"))
    return found


def loads(data: bytes, max_values: int, *, encoding: str = "utf-8",
          parse_int: Callable[[str], Any] | None = None) -> Any:
    """``json.loads(data.decode(encoding))`` when ``data`` holds at most ``max_values`` values,
    else :class:`TooManyValues`; ``UnicodeDecodeError`` for bytes that are not ``encoding``,
    ``ValueError`` (or ``RecursionError``) for text that is not JSON."""
    found = count_values(data)
    if found > max_values:
        raise TooManyValues(f"it holds more than {max_values:,} JSON values (about {found:,})")
    return json.loads(data.decode(encoding), parse_int=parse_int)
