"""The Python the student's kernel runs: where it lives (read-only roots to bind into the
sandbox) and the bootstrap that starts the IPython kernel with ``-I -S`` (no PYTHONPATH, no
user site, no ``.pth`` processing; site-packages added without editable-install hooks, so
``import solutions`` and ``import autograder`` fail inside the kernel even without bubblewrap).
Its first line writes :data:`START_MARK` and the monotonic clock to the kernel's log, so the
grader can tell the sandbox's start-up from the kernel's (the clock is the host's: bubblewrap
makes no time namespace)."""

from __future__ import annotations

import os
import sys
import sysconfig

START_MARK = "autograder: kernel python started at "


def python_paths() -> tuple[str, str, list[str]]:
    """(interpreter, site-packages, read-only roots the interpreter needs)."""
    exe = os.path.realpath(sys.executable)
    python = os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    if not os.path.exists(python):
        python = exe
    purelib = sysconfig.get_paths()["purelib"]
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             os.path.realpath(sys.exec_prefix), os.path.realpath(sys.base_exec_prefix),
             os.path.dirname(os.path.dirname(exe))}
    roots.add(os.path.realpath(purelib))
    # sys.prefix of a venv holds bin/python as a link into the base installation
    return python, os.path.realpath(purelib), sorted(roots)


def bootstrap(purelib: str) -> str:
    """Python source run with ``-I -S`` that adds site-packages (without editable hooks) and
    starts the IPython kernel."""
    return (
        "import os, site, sys, time\n"
        f"sys.stderr.write({START_MARK!r} + repr(time.monotonic()) + '\\n')\n"
        "sys.stderr.flush()\n"
        f"sp = {purelib!r}\n"
        "sys.path.append(sp)\n"
        "known = set(sys.path)\n"
        "for f in sorted(os.listdir(sp)):\n"
        "    if f.endswith('.pth') and not f.startswith('__editable__'):\n"
        "        site.addpackage(sp, f, known)\n"
        "sys.path.insert(0, '')\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n"
    )
