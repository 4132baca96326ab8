"""``python -m autograder COMMAND ...``: the instructor's command line, one place for options.

Each command has a parser here and a module in :mod:`autograder.commands` that does the work
from a typed options object. The limits of the ``grade`` command come from the fields of
:class:`autograder.sandbox.limits.Limits` (flag, help text, default), declared once there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .assignments import ASSIGNMENTS, DEFAULT_REGISTRY
from .build.release import DEFAULT_OUT
from .commands import grade, release
from .sandbox.limits import limit_options, limits_from


def _release_parser(sub) -> None:
    p = sub.add_parser("release", help="build student and solution notebooks",
                       description="Build the nbgrader course: source/, release/ (student "
                                   "notebooks) and solution/ notebooks for every assignment.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"course folder (default {DEFAULT_OUT})")
    p.add_argument("--assignment", action="append", choices=list(ASSIGNMENTS),
                   help="only this assignment (repeatable; default all)")
    p.set_defaults(run=lambda a: release.run(release.ReleaseOptions(
        out=a.out, assignments=tuple(a.assignment or ()))))


def _workers(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


def _grade_parser(sub) -> None:
    p = sub.add_parser("grade", help="grade a class",
                       description="Grade a class of notebook submissions in a sandbox.")
    p.add_argument("submissions", help="folder holding <student>/<assignment>/<notebook>.ipynb")
    p.add_argument("--out", default="grades.csv", help="grades CSV to write (default grades.csv)")
    p.add_argument("--workers", type=_workers, default=os.cpu_count() or 1,
                   help="parallel kernels (default: number of cores)")
    p.add_argument("--course", default="_build/course",
                   help="nbgrader course folder built by 'release' (default _build/course)")
    p.add_argument("--db", default=None, help="gradebook URL (default: the course's SQLite)")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="run student code even where no sandbox can be set up")
    p.add_argument("--fresh", action="store_true", help="ignore results of earlier runs")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on the workers of this Dask scheduler (tcp://HOST:PORT, or a "
                        "scheduler file written by 'dask scheduler --scheduler-file')")
    p.add_argument("--wait-workers", type=_seconds, default=120.0, metavar="SECONDS",
                   help="with --scheduler: how long to wait for a first worker (default 120)")
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help=argparse.SUPPRESS)
    limit_options(p)
    p.set_defaults(run=lambda a: grade.run(grade.GradeOptions(
        submissions=a.submissions, out=a.out, workers=a.workers, course=a.course, db=a.db,
        limits=limits_from(a), allow_unsandboxed=a.allow_unsandboxed, fresh=a.fresh,
        registry=a.registry, scheduler=a.scheduler, wait_workers=a.wait_workers)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder",
                                description="Release and grade the course's assignments.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _release_parser(sub)
    _grade_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        p.print_help()
        return 2
    return args.run(args)
