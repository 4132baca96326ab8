"""``python -m autograder collect {canvas,moodle} BULK.zip --assignment A --out SUBS``: turn an
LMS's bulk download into the grader's submissions folder.

Each student's notebook lands in ``SUBS/<student>/<A>/<notebook>.ipynb`` with nbgrader's
``timestamp.txt`` where the LMS gives the submission time; everything else in the zip is kept
aside and listed (:mod:`autograder.results.lms.bulk`). Options:

* ``--roster R``: maps LMS users to student ids (:mod:`autograder.results.lms.roster`); a file
  no roster student matches is reported as unmatched and kept aside. Without a roster, Canvas
  files take the Canvas user id as the student id and Moodle files the worksheet's email.
* ``canvas --times SUBMISSIONS.json``: the submission times, from Canvas's Submissions API
  (Canvas's zip has none; without them a file Canvas marked LATE is reported as such and gets
  no timestamp.txt).
* ``moodle --worksheet W.csv --timezone TZ``: Moodle's grading worksheet for the assignment
  (participant -> email, full name and submission time; its times are in TZ, the Moodle user's
  timezone). ``moodle`` needs a roster or a worksheet: the participant ids differ between
  assignments.

The summary counts each outcome and names every file that was not collected, and why; the
full list is ``SUBS/.collect/<A>/collect.csv``.

Exit status: 0 when every entry of the zip was placed (collected or kept aside, each listed);
1 when a file could not be written; 2 for bad arguments (a zip, roster, times file or worksheet
that cannot be read, an invalid assignment name, an unknown timezone, worksheet times without
``--timezone``).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass

from ..grading.course import course_assignment
from ..results.deadlines import DeadlineError, zone
from ..results.lms import bulk, canvas, moodle
from ..results.lms.roster import RosterError, read_roster
from ..text import is_safe_name, shown

LMSES = ("canvas", "moodle")


@dataclass(frozen=True)
class CollectOptions:
    """What the ``collect`` command was asked to do."""

    lms: str
    bulk: str
    assignment: str
    out: str
    roster: str | None = None
    times: str | None = None
    worksheet: str | None = None
    timezone: str | None = None
    course: str = "_build/course"


def _notebook_name(course: str, assignment: str) -> str:
    ca = course_assignment(os.path.abspath(course), assignment, 0.0)
    return ca.notebook_name if ca is not None else f"{assignment}.ipynb"


def _reader(options: CollectOptions, roster):
    """(parse, match) for the LMS, or ValueError saying what is wrong with the inputs."""
    if options.lms == "canvas":
        times = canvas.read_times(options.times) if options.times else None
        matcher = canvas.Matcher(roster, times)

        def parse(entry: str) -> bulk.Upload:
            return matcher.with_time(canvas.parse(entry))
        return parse, matcher
    sheet = moodle.read_worksheet(options.worksheet) if options.worksheet else None
    if sheet is None and roster is None:
        raise ValueError("moodle needs --roster or --worksheet: Moodle's participant numbers "
                         "differ between assignments, so they cannot be student ids")
    tz = zone(options.timezone) if options.timezone else None
    if sheet is not None and tz is None and any(
            (row.get(moodle.SUBMITTED) or "-").strip() not in ("", "-") for row in sheet.rows):
        raise ValueError("the worksheet's submission times carry no timezone: give --timezone "
                         "(the Moodle user's timezone, e.g. Europe/Berlin)")
    matcher = moodle.Matcher(roster, sheet, tz)
    for pid in sheet.by_participant if sheet else ():
        matcher.submitted_at(bulk.Upload("", pid))          # every time readable, or stop

    def parse_moodle(entry: str) -> bulk.Upload:
        return matcher.with_time(moodle.parse(entry))
    return parse_moodle, matcher


def report(placed: list[bulk.Placed], manifest: str, options: CollectOptions) -> str:
    counts = Counter(p.status for p in placed)
    got = [p for p in placed if p.status is bulk.Status.COLLECTED]
    timed = sum(p.upload.submitted_at is not None for p in got)
    late = sum(p.upload.late for p in got)
    lines = [f"collect {options.lms}: {len(placed)} files in {options.bulk}",
             f"  collected {len(got)} notebooks of {len({p.student for p in got})} students into "
             f"{options.out}/<student>/{options.assignment}/ ({timed} with a submission time"
             + (f", {late} marked LATE by the LMS" if late else "") + ")"]
    for status in bulk.Status:
        if status is not bulk.Status.COLLECTED and counts[status]:
            lines.append(f"  {status.value}: {counts[status]}")
    for p in placed:
        if p.status is not bulk.Status.COLLECTED or p.note:
            where = f" -> {p.path}" if p.path else ""
            lines.append(f"    {p.status.value}: {shown(p.upload.entry, 200)}{where}"
                         + (f" ({shown(p.note, 300)})" if p.note else ""))
    lines.append(f"  every file is listed in {manifest}")
    return "\n".join(lines)


def run(options: CollectOptions) -> int:
    """The ``collect`` command (see the module docstring); its exit status."""
    if not is_safe_name(options.assignment):
        print(f"collect: {shown(options.assignment, 80)!r} is not a valid assignment name",
              file=sys.stderr)
        return 2
    try:
        roster = read_roster(options.roster) if options.roster else None
        parse, match = _reader(options, roster)
    except (RosterError, DeadlineError, ValueError) as exc:
        print(f"collect: {exc}", file=sys.stderr)
        return 2
    notebook = _notebook_name(options.course, options.assignment)
    try:
        placed, manifest = bulk.collect(options.bulk, parse, match, options.out,
                                        options.assignment, notebook)
    except bulk.CollectError as exc:
        print(f"collect: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"collect: a file could not be written: {exc}", file=sys.stderr)
        return 1
    print(report(placed, manifest, options))
    aside = [p for p in placed if p.status is not bulk.Status.COLLECTED]
    if aside:
        print(f"WARNING: {len(aside)} files were not collected (unmatched, duplicate, not a "
              f"notebook or refused): see {manifest}", file=sys.stderr)
    return 0
