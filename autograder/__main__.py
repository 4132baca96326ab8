"""``python -m autograder release|grade ...``: the instructor's command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = ("usage: python -m autograder {release,grade} ...\n"
             "  release [--out DIR]                              build student and solution "
             "notebooks\n"
             "  grade SUBMISSIONS --out grades.csv [--workers N]  grade a class\n"
             "Run 'python -m autograder COMMAND --help' for a command's options.")
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "release":
        from .release import main as run
    elif command == "grade":
        from .grade import main as run
    else:
        print(f"unknown command {command!r}\n{usage}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
