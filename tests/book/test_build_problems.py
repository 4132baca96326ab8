"""book/_ext/build_problems.py: what a failed book build prints last."""

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "book", "_ext", "build_problems.py")
_spec = importlib.util.spec_from_file_location("build_problems", SCRIPT)
bp = importlib.util.module_from_spec(_spec)
sys.modules["build_problems"] = bp        # dataclasses look their module up there
_spec.loader.exec_module(bp)

LOG = """\
\x1b[01mreading sources... \x1b[39;49;00m[ 50%] \x1b[35mbook/experiments\x1b[39;49;00m
[IPKernelApp] WARNING | Kernel is running over TCP without encryption.
/c/book/experiments.md: WARNING: Executing notebook failed: CellExecutionError [mystnb.exec]
/c/book/experiments.md: WARNING: Notebook exception traceback saved in: /c/reports/x.err.log
/c/book/experiments.md:806: WARNING: glue target not found: 'exp6_ratio_small' [mystnb.glue]
/c/book/experiments.md:806: WARNING: glue target not found: 'exp6_ratio_small' [mystnb.glue]
/c/book/intro.md:3: ERROR: Unknown directive type "bogus".
a line that says WARNING without a colon after it
\x1b[01mbuild finished with problems, 4 warnings.\x1b[39;49;00m
"""


def test_problem_lines_are_the_warnings_once_each_without_colour_or_kernel_noise():
    lines = bp.problem_lines(LOG)
    assert lines == [
        "/c/book/experiments.md: WARNING: Executing notebook failed: CellExecutionError "
        "[mystnb.exec]",
        "/c/book/experiments.md: WARNING: Notebook exception traceback saved in: "
        "/c/reports/x.err.log",
        "/c/book/experiments.md:806: WARNING: glue target not found: 'exp6_ratio_small' "
        "[mystnb.glue]",
        '/c/book/intro.md:3: ERROR: Unknown directive type "bogus".',
    ]


def _report(tmp_path, chapter, text):
    path = tmp_path / "reports" / "book" / f"{chapter}.err.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_failed_chapters_give_the_end_of_each_traceback(tmp_path):
    body = "\n".join(f"line {i}" for i in range(100))
    _report(tmp_path, "experiments", body + "\nAssertionError: ratio 0.98\n")
    _report(tmp_path, "dropout", "Traceback\n\x1b[31mValueError\x1b[0m: bad\n")
    found = bp.failed_chapters(str(tmp_path / "reports"))
    assert [f.report for f in found] == [os.path.join("book", "dropout.err.log"),
                                         os.path.join("book", "experiments.err.log")]
    assert found[0].tail == ["Traceback", "ValueError: bad"]
    assert len(found[1].tail) == bp.TRACEBACK_LINES
    assert found[1].tail[-1] == "AssertionError: ratio 0.98"
    assert found[1].tail[0] == f"line {101 - bp.TRACEBACK_LINES}"


def test_summary_ends_with_the_tracebacks_where_a_log_tail_keeps_them(tmp_path):
    _report(tmp_path, "experiments", "Traceback\nAssertionError: f6.slower\n")
    text = bp.summary(LOG, str(tmp_path / "reports"))
    assert text.index("glue target not found") < text.index("AssertionError: f6.slower")
    assert text.splitlines()[-1].endswith(os.path.join("book", "experiments.err.log"))
    assert "A chapter did not execute: " + os.path.join("book", "experiments.err.log") in text
    assert "4 distinct warning and error lines" in text


def test_summary_says_when_it_found_nothing(tmp_path):
    text = bp.summary("build finished with problems, 1 warning.\n", str(tmp_path / "none"))
    assert "No chapter failed to execute and the log names no warning" in text


def test_script_prints_the_summary_and_exits_0_even_without_a_log(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "missing.log"),
                           str(tmp_path / "reports")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "could not be read" in done.stdout and "Why the book build failed" in done.stdout
    bad = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage:" in bad.stderr
