"""Say, at the end of a failed book build, why it failed.

``make book`` runs ``jupyter-book build -W --keep-going`` with its output copied to a log.
When the build fails, Sphinx's last lines only count the warnings ("build finished with
problems, 36 warnings"), and the causes lie hundreds of lines above, among progress lines; a CI
system that keeps only the tail of the output shows none of them. This script, run by ``make
book`` after a failed build, prints last what a reader of that tail needs, the most telling last:

1. every warning and error line of the build log, once each, in order (a missing glue key after
   a failed chapter, a broken reference, ...);
2. for every chapter whose execution failed, the end of the traceback myst-nb saved under
   ``_build/html/reports/`` (the cell and the exception: an assertion on a number that drifted
   names the number), and a line naming those chapters.

Usage: ``python book/_ext/build_problems.py BUILD_LOG REPORTS_DIR``. The standard library
only; it exits 0 (the failed build's own exit status is what ``make`` returns).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass

# Sphinx's "path:line: WARNING: text" and "WARNING: text" (and ERROR, CRITICAL); not the kernel
# loggers' "[IPKernelApp] WARNING | ..." lines, which are noise of every build.
PROBLEM = re.compile(r"(?:^|\s)(WARNING|ERROR|CRITICAL|SEVERE):\s")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TRACEBACK_LINES = 40
MAX_PROBLEM_LINES = 200


@dataclass(frozen=True)
class FailedChapter:
    """A chapter whose notebook did not execute: its report file and the report's last lines."""

    report: str
    tail: list[str]


def problem_lines(log_text: str) -> list[str]:
    """The build log's warning and error lines, colour codes removed, each once, in order."""
    seen: dict[str, None] = {}
    for raw in log_text.splitlines():
        line = ANSI.sub("", raw).strip()
        if PROBLEM.search(line) and "[IPKernelApp]" not in line:
            seen.setdefault(line, None)
    return list(seen)


def failed_chapters(reports_dir: str, lines: int = TRACEBACK_LINES) -> list[FailedChapter]:
    """The execution reports myst-nb wrote (one ``<chapter>.err.log`` per failed notebook)."""
    if not os.path.isdir(reports_dir):
        return []
    found = []
    for root, _, files in os.walk(reports_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = ANSI.sub("", fh.read())
            found.append(FailedChapter(os.path.relpath(path, reports_dir),
                                       text.rstrip().splitlines()[-lines:]))
    return sorted(found, key=lambda f: f.report)


def summary(log_text: str, reports_dir: str) -> str:
    """The text printed after a failed build: the warning lines, then the failed chapters'
    tracebacks, then one line naming those chapters (a log's tail keeps the end)."""
    out = ["", "=" * 79, "Why the book build failed", "=" * 79]
    problems = problem_lines(log_text)
    if problems:
        out.append(f"\nThe build's {len(problems)} distinct warning and error lines"
                   + (f" (the first {MAX_PROBLEM_LINES})" if len(problems) > MAX_PROBLEM_LINES
                      else "") + ":")
        out.extend("    " + line for line in problems[:MAX_PROBLEM_LINES])
    chapters = failed_chapters(reports_dir)
    for chapter in chapters:
        out.append(f"\nA chapter did not execute: {chapter.report} (last lines of its "
                   f"traceback; the whole report is under {reports_dir}/)")
        out.extend("    " + line for line in chapter.tail)
    if chapters:
        out.append("\nChapters that did not execute (a missing glue key in them follows from "
                   "that): " + ", ".join(c.report for c in chapters))
    elif not problems:
        out.append("\nNo chapter failed to execute and the log names no warning: the cause is "
                   "in the build's output above.")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python book/_ext/build_problems.py BUILD_LOG REPORTS_DIR", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8", errors="replace") as fh:
            log_text = fh.read()
    except OSError as exc:
        log_text = ""
        print(f"(the build log {argv[1]} could not be read: {exc})")
    print(summary(log_text, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
