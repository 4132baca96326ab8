"""``python -m autograder COMMAND ...``: the instructor's command line, one place for options.

Each command has a parser here and a module in :mod:`autograder.commands` that does the work
from a typed options object: ``release``, ``grade``, ``deadlines``, ``collect``, ``export``,
``feedback``. The limits of the ``grade`` command come from the fields of
:class:`autograder.sandbox.limits.Limits` (flag, help text, default), declared once there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .assignments import ASSIGNMENTS, DEFAULT_REGISTRY
from .build.release import DEFAULT_OUT
from .commands import collect, deadlines, export, feedback, grade, release
from .grading.selection import Selection, part_arg
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
    p.add_argument("--student", action="append", default=[], metavar="S",
                   help="regrade only this student's submissions (repeatable); every other "
                        "submission is left as it was")
    p.add_argument("--assignment", action="append", default=[], metavar="A",
                   help="regrade only this assignment's submissions (repeatable)")
    p.add_argument("--part", action="append", default=[], type=part_arg, metavar="A:PART",
                   help="rerun the notebooks of assignment A for everyone (or for --student) "
                        "and take only part PART's new verdict (repeatable)")
    p.add_argument("--roster", default=None,
                   help="roster CSV (student_id, first_name, last_name, email, ...): its "
                        "students get rows too, missing work included")
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
        registry=a.registry, roster=a.roster, selection=Selection(
            tuple(a.student), tuple(a.assignment), tuple(a.part)), scheduler=a.scheduler,
        wait_workers=a.wait_workers)))


def _course_options(p, db: bool = True) -> None:
    p.add_argument("--course", default="_build/course",
                   help="nbgrader course folder built by 'release' (default _build/course)")
    if db:
        p.add_argument("--db", default=None,
                       help="gradebook URL (default: the course's SQLite)")


def _deadlines_parser(sub) -> None:
    p = sub.add_parser("deadlines", help="install due dates, extensions and the late policy",
                       description="Check a term file (timezone, due dates, extensions, late "
                                   "policy, LMS ids) and install it into the course and its "
                                   "gradebook.")
    p.add_argument("term", help="the term file (TOML)")
    _course_options(p)
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help=argparse.SUPPRESS)
    p.set_defaults(run=lambda a: deadlines.run(deadlines.DeadlinesOptions(
        term=a.term, course=a.course, db=a.db, registry=a.registry)))


def _collect_parser(sub) -> None:
    p = sub.add_parser("collect", help="turn an LMS's bulk download into a submissions folder",
                       description="Unpack Canvas's 'Download Submissions' or Moodle's "
                                   "'Download all submissions' zip into "
                                   "SUBS/<student>/<assignment>/, with timestamp.txt.")
    p.add_argument("lms", choices=collect.LMSES)
    p.add_argument("bulk", help="the LMS's zip")
    p.add_argument("--assignment", required=True, help="the assignment the zip holds")
    p.add_argument("--out", required=True, help="the submissions folder to fill")
    p.add_argument("--roster", help="roster CSV mapping LMS users to student ids")
    p.add_argument("--times", help="canvas: submission times, Canvas's Submissions API JSON")
    p.add_argument("--worksheet", help="moodle: the assignment's grading worksheet (CSV)")
    p.add_argument("--timezone", help="moodle: the timezone of the worksheet's times")
    _course_options(p, db=False)
    p.set_defaults(run=lambda a: collect.run(collect.CollectOptions(
        lms=a.lms, bulk=a.bulk, assignment=a.assignment, out=a.out, roster=a.roster,
        times=a.times, worksheet=a.worksheet, timezone=a.timezone, course=a.course)))


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="grades from the gradebook as the LMS's import file",
                       description="Write the gradebook's grades (late penalties and hand "
                                   "changes included) as Canvas's gradebook import CSV or "
                                   "Moodle's grading worksheet.")
    p.add_argument("lms", choices=collect.LMSES)
    p.add_argument("--out", required=True, help="the file to write")
    p.add_argument("--roster", help="roster CSV (canvas: required)")
    p.add_argument("--assignment", action="append", default=[],
                   help="an assignment to export (repeatable; moodle: exactly one)")
    p.add_argument("--worksheet", help="moodle: the grading worksheet downloaded from Moodle")
    _course_options(p)
    p.set_defaults(run=lambda a: export.run(export.ExportOptions(
        lms=a.lms, out=a.out, roster=a.roster, assignments=tuple(a.assignment),
        worksheet=a.worksheet, course=a.course, db=a.db)))


def _feedback_parser(sub) -> None:
    p = sub.add_parser("feedback", help="feedback pages for nbgrader's release_feedback",
                       description="Write the grader's feedback pages (no hidden tests) where "
                                   "nbgrader's release_feedback takes them.")
    p.add_argument("--assignment", action="append", default=[], help="only this assignment")
    p.add_argument("--student", action="append", default=[], help="only this student")
    p.add_argument("--out", help="also write one page per student into this folder")
    _course_options(p)
    p.set_defaults(run=lambda a: feedback.run(feedback.FeedbackOptions(
        course=a.course, db=a.db, assignments=tuple(a.assignment), students=tuple(a.student),
        out=a.out)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m autograder",
                                description="Release and grade the course's assignments.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _release_parser(sub)
    _grade_parser(sub)
    _deadlines_parser(sub)
    _collect_parser(sub)
    _export_parser(sub)
    _feedback_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        p.print_help()
        return 2
    return args.run(args)
