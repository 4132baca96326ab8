"""``python -m autograder release [--out DIR] [--assignment NAME]``: build the nbgrader course
(:func:`autograder.build.release.build_course`) and the download archives, and say where they
are."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..assignments import ASSIGNMENTS
from ..build.release import DEFAULT_OUT, ReleaseError, build_course, write_downloads


@dataclass(frozen=True)
class ReleaseOptions:
    out: Path = DEFAULT_OUT
    assignments: tuple[str, ...] = ()   # empty: every assignment


def run(options: ReleaseOptions) -> int:
    names = list(options.assignments) or None
    try:
        out = build_course(options.out, names)
    except ReleaseError as e:
        print(f"release: {e}", file=sys.stderr)
        return 1
    write_downloads(out, names)
    for name in names or ASSIGNMENTS:
        print(f"{name}: {out / 'release' / name}  (solutions: {out / 'solution' / name})")
    return 0
