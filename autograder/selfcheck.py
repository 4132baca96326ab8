"""The students' self-check: ``check.py`` beside every release notebook.

Run it before handing in, in a terminal in the notebook's folder::

    python check.py dropout.ipynb

or from the notebook's last cell (``check_this_notebook()``). It reports what the grader would
meet:

* **the file**: the name the grader looks for (``dropout.ipynb``, not ``Copy of dropout.ipynb``),
  a notebook the grader can read;
* **the cells**, compared with the release notebook (whose cell ids and checksums this file
  carries, as nbgrader's ``validate`` does): answer, test and given cells missing, duplicated,
  moved or changed into another kind, and test or given cells whose text was edited. The grader
  matches cells by id and rebuilds the notebook from the release's order and text, keeping
  only the first of two cells with one id, so each of these means that what is graded is not
  what you ran;
* **a run from the top in a fresh kernel**, cell by cell with the grader's time limit per cell:
  for each graded part whether its visible tests pass (or are not implemented yet), and every
  error in another cell. A test that passed in your session but fails here depended on the
  order you ran the cells in.

It never runs or contains the hidden tests: passing here is necessary, not sufficient, and it
says so. Exit status: 0 when nothing was found, 1 when there is a problem (any of the above),
2 when the notebook cannot be found or the arguments are wrong.

It runs the notebook with ``nbclient`` (part of every Jupyter installation, Colab included)
when it can, and otherwise runs the code cells in a plain Python process. It needs nothing but
the standard library besides, so it works wherever the notebook does, without the course's
repository.

In the course repository this module is also where the grader takes its cell matching from
(:func:`match_cells`, used by ``autograder.grading.reconstruct``), so the self-check and the
grader cannot disagree about which cell is which. The release writes ``check.py`` as this
module's source with :data:`RELEASE` filled in (``autograder.build.checkfile``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

RELEASE = None  # replaced in check.py by the release notebook's description (see checkfile)

# environment variables that say a notebook is being graded, or checked by this file: the
# notebook's self-check cell does nothing then
GRADING_MARKERS = ("AUTOGRADER_CASES", "NBGRADER_EXECUTION", "SELFCHECK_RUNNING")
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


# -- cells: what the grader and this check share -----------------------------------------------

def grade_id(cell) -> str | None:
    """The nbgrader ``grade_id`` of a cell (any JSON value accepted; None when it has none)."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
    return gid if isinstance(gid, str) else None


def source_text(cell) -> str | None:
    """A cell's source as one string (nbformat allows a list of lines), None if it is neither."""
    src = cell.get("source") if isinstance(cell, dict) else None
    if isinstance(src, list) and all(isinstance(s, str) for s in src):
        return "".join(src)
    return src if isinstance(src, str) else None


def usable_cells(nb) -> list[dict]:
    """The cells of a notebook (any JSON) that count: code, Markdown and raw cells with text."""
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    return [c for c in (cells if isinstance(cells, list) else [])
            if isinstance(c, dict) and c.get("cell_type") in ("code", "markdown", "raw")
            and source_text(c) is not None]


MATCHED, DUPLICATE, ADDED = "matched", "duplicate", "added"


def match_cells(reference: list, student: list) -> list[tuple[str, int | None]]:
    """For each of the student's cells, in order: ``(MATCHED, i)`` when it stands for the
    reference notebook's cell ``i`` (same nbgrader ``grade_id``, or, for a cell without one,
    the same cell ``id``, and the same cell type), ``(DUPLICATE, i)`` for a later cell claiming
    a cell already matched (only the first counts), ``(ADDED, None)`` for a cell of its own."""
    by_gid = {grade_id(c): i for i, c in enumerate(reference) if grade_id(c) is not None}
    by_id = {c.get("id"): i for i, c in enumerate(reference) if c.get("id")}
    taken: set[int] = set()
    out: list[tuple[str, int | None]] = []
    for cell in student:
        gid = grade_id(cell)
        cid = cell.get("id") if isinstance(cell.get("id"), str) else None
        index = by_gid.get(gid) if gid in by_gid else (
            by_id.get(cid) if gid is None and cid in by_id else None)
        if index is not None and index in taken:
            out.append((DUPLICATE, index))
        elif index is not None and reference[index].get("cell_type") == cell.get("cell_type"):
            taken.add(index)
            out.append((MATCHED, index))
        else:
            out.append((ADDED, None))
    return out


def digest(source: str) -> str:
    """A checksum of a cell's text that ignores trailing spaces and blank lines at the end."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:20]


# -- the notebook as a file --------------------------------------------------------------------

class Report:
    """What the check found, printed as it goes."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.problems = 0

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def problem(self, text: str) -> None:
        self.problems += 1
        self.say(f"  PROBLEM  {text}")

    def ok(self, text: str) -> None:
        self.say(f"  ok       {text}")


def read_notebook(path: str, release: dict, report: Report):
    """The notebook as JSON, or None (with a problem) when the grader could not read it."""
    size = os.path.getsize(path)
    if size > release["limits"]["notebook_bytes"]:
        report.problem(f"the file has {size / 2**20:.1f} MiB; the grader reads notebooks up to "
                       f"{release['limits']['notebook_bytes'] / 2**20:.0f} MiB (clear large "
                       "outputs: Edit > Clear All Outputs, then save)")
        return None
    try:
        with open(path, encoding="utf-8-sig") as f:
            nb = json.load(f)
    except (UnicodeDecodeError, ValueError) as exc:
        report.problem(f"the file is not a notebook the grader can read ({exc})")
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        report.problem("the file is not a Jupyter notebook (no list of cells)")
        return None
    return nb


def check_name(path: str, release: dict, report: Report, colab: bool) -> None:
    expected = release["notebook"]
    if colab:
        report.say(f"  note     in Colab the check reads the notebook you have open; hand it in "
                   f"as {expected} (File > Download > Download .ipynb, renamed if need be)")
        return
    name = os.path.basename(path)
    if name == expected:
        report.ok(f"the file is named {expected}")
    else:
        report.problem(f"the file is named {name!r}; the grader looks for {expected} and "
                       f"ignores a notebook of any other name: rename it")


def _where(release: dict, index: int) -> str:
    cell = release["cells"][index]
    return f"{cell['label']} (cell {index + 1} of the release notebook, id {cell['key']!r})"


def check_cells(nb: dict, release: dict, report: Report) -> bool:
    """Compare the notebook's cells with the release's; False when it is not this
    assignment's notebook at all."""
    reference = [{"cell_type": c["type"], "id": c["key"],
                  "metadata": {"nbgrader": {"grade_id": c["key"]}} if c["graded_id"] else {}}
                 for c in release["cells"]]
    student = usable_cells(nb)
    matches = match_cells(reference, student)
    matched = {i: j for j, (kind, i) in enumerate(matches) if kind == MATCHED}
    answers = [i for i, c in enumerate(release["cells"]) if c["role"] == "answer"]
    if not any(i in matched for i in answers):
        report.problem(f"none of the answer cells of {release['assignment']} is in this "
                       f"notebook: is it the notebook of another assignment?")
        return False
    before = report.problems
    for kind, i in matches:
        if kind == DUPLICATE:
            report.problem(f"{_where(release, i)} appears more than once; the grader takes the "
                           "first one only: delete the other copies (put work you want graded "
                           "in the first)")
    for i, cell in enumerate(release["cells"]):
        if cell["type"] != "code":
            continue
        if i not in matched and cell["role"] == "free":  # e.g. the imports: put back, harmless
            report.say(f"  note     {_where(release, i)} is not in your notebook; the grader "
                       "runs the release's version of it")
        elif i not in matched:
            what = ("the grader will run the release's stub there, which earns nothing"
                    if cell["role"] == "answer" else "the grader will run the release's cell")
            report.problem(f"{_where(release, i)} is missing or no longer a code cell: {what}. "
                           "Restore it from a fresh copy of the notebook")
        elif cell["role"] == "locked" and digest(source_text(student[matched[i]])) != \
                cell["digest"]:
            report.problem(f"{_where(release, i)} was edited; the grader runs the original, so "
                           "your changes there do not count: restore it")
    order = sorted((j, i) for i, j in matched.items() if release["cells"][i]["type"] == "code")
    last = -1
    for _, i in order:
        if i < last:
            report.problem(f"{_where(release, i)} was moved: it comes after "
                           f"{release['cells'][last]['label']} in your notebook but before it "
                           "in the release, and the grader runs the release's order: move it "
                           "back")
        last = max(last, i)
    if report.problems == before:
        report.ok("every answer, test and given cell is there once, in order, tests and given "
                  "code unchanged")
    return True


# -- running the notebook ----------------------------------------------------------------------

def _first_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= 300 else text[:300] + "..."


def _outcome(cell) -> tuple[str, str]:
    """("ok" | "error" | "not run", what the error was) from a cell's outputs."""
    errors = [o for o in cell.get("outputs", []) if isinstance(o, dict)
              and o.get("output_type") == "error"]
    if errors:
        e = errors[0]
        return "error", f"{e.get('ename', 'Error')}: {_first_line(e.get('evalue', ''))}"
    if cell.get("execution_count") is None:
        return "not run", ""
    return "ok", ""


def run_with_nbclient(nb: dict, folder: str, timeout: float,
                      kernel: str) -> tuple[dict, str]:
    """Run every code cell in a fresh ``kernel``; (cell index -> (outcome, error), note)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    cells = []
    for c in usable_cells(nb):
        meta = c.get("metadata") if isinstance(c.get("metadata"), dict) else {}
        cell = {"cell_type": c["cell_type"], "source": source_text(c), "metadata": meta}
        if c["cell_type"] == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    node = nbformat.from_dict({"cells": cells, "metadata": {}, "nbformat": 4,
                               "nbformat_minor": 5})
    client = NotebookClient(node, timeout=timeout, kernel_name=kernel, allow_errors=True,
                            resources={"metadata": {"path": folder}})
    results: dict[int, tuple[str, str]] = {}
    stopped = ""
    with client.setup_kernel(stderr=subprocess.DEVNULL):
        for index, cell in enumerate(node.cells):
            if cell.cell_type != "code":
                continue
            if stopped:
                results[index] = ("not run", stopped)
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                stopped = f"an earlier cell took longer than {timeout:g} s"
                results[index] = ("error", f"did not finish within {timeout:g} s, the "
                                           "grader's limit per cell")
                continue
            except DeadKernelError:
                stopped = "the kernel died in an earlier cell"
                results[index] = ("error", "the kernel died while this cell ran (out of "
                                           "memory, or the code ended the process)")
                continue
            results[index] = _outcome(cell)
    return results, f"in a fresh {kernel} kernel"


_CELL_RUNNER = r"""
import json, signal, sys, traceback
cells, timeout, out = json.load(open(sys.argv[1])), float(sys.argv[2]), sys.argv[3]
try:
    from IPython.core.inputtransformer2 import TransformerManager
    transform = TransformerManager().transform_cell
except Exception:
    transform = lambda s: s
def alarm(*_):
    raise TimeoutError(f"did not finish within {timeout:g} s, the grader's limit per cell")
timed = hasattr(signal, "SIGALRM")  # not on Windows: there only the whole run is timed
if timed:
    signal.signal(signal.SIGALRM, alarm)
ns = {"__name__": "__main__"}
results = {}
for index, src in cells:
    if timed:
        signal.alarm(max(1, int(timeout)))
    try:
        exec(compile(transform(src), f"<cell {index + 1}>", "exec"), ns)
        results[index] = ["ok", ""]
    except BaseException as exc:
        results[index] = ["error", f"{type(exc).__name__}: {exc}"]
    finally:
        if timed:
            signal.alarm(0)
    json.dump(results, open(out, "w"))
"""


def run_plain(nb: dict, folder: str, timeout: float) -> tuple[dict, str]:
    """Run the code cells in order in a new Python process (when nbclient is not installed)."""
    code = [(i, source_text(c)) for i, c in enumerate(usable_cells(nb))
            if c.get("cell_type") == "code" and source_text(c).strip()]
    with tempfile.TemporaryDirectory() as tmp:
        cells_file, out = os.path.join(tmp, "cells.json"), os.path.join(tmp, "out.json")
        with open(cells_file, "w") as f:
            json.dump(code, f)
        runner = os.path.join(tmp, "runner.py")
        with open(runner, "w") as f:
            f.write(_CELL_RUNNER)
        env = dict(os.environ, MPLBACKEND="Agg")
        try:
            subprocess.run([sys.executable, runner, cells_file, str(timeout), out], cwd=folder,
                           env=env, timeout=timeout * (len(code) + 1), capture_output=True)
        except subprocess.TimeoutExpired:
            pass
        done = {}
        if os.path.exists(out):
            with open(out) as f:
                done = {int(k): tuple(v) for k, v in json.load(f).items()}
    results = {i: done.get(i, ("not run", "the process stopped in an earlier cell"))
               for i, _ in code}
    return results, "in a new Python process (nbclient is not installed)"


def run_notebook(nb: dict, folder: str, timeout: float) -> tuple[dict, str]:
    """Run the notebook's code cells in order; ({index in :func:`usable_cells`: (outcome,
    error)}, how it ran)."""
    try:
        import nbclient  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        return run_plain(nb, folder, timeout)
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    spec = meta.get("kernelspec") if isinstance(meta.get("kernelspec"), dict) else {}
    why = ""
    for kernel in dict.fromkeys([spec.get("name") or "python3", "python3"]):
        try:
            return run_with_nbclient(nb, folder, timeout, str(kernel))
        except Exception as exc:  # the kernel could not be started (not installed, no answer)
            why = f"{type(exc).__name__}: {_first_line(exc)}"
    results, how = run_plain(nb, folder, timeout)
    return results, f"{how[:how.index(' (')]} (no Jupyter kernel started: {why})"


def check_run(nb: dict, folder: str, release: dict, report: Report) -> None:
    """Run the notebook from the top and report each part's visible tests and other errors."""
    timeout = float(release["limits"]["cell_timeout"])
    report.say(f"Running the notebook from the top, as the grader does (at most {timeout:g} s "
               "per cell) ...")
    os.environ["SELFCHECK_RUNNING"] = "1"  # the notebook's own self-check cell stays quiet
    try:
        results, how = run_notebook(nb, folder, timeout)
    finally:
        os.environ.pop("SELFCHECK_RUNNING", None)
    report.say(f"  (ran {how})")
    cells = usable_cells(nb)  # as run_notebook numbers them
    tests = {c["key"]: c for c in release["cells"] if c["role"] == "locked" and c.get("part")}
    labels = {c["key"]: c["label"] for c in release["cells"]}
    seen_parts = set()
    for index, cell in enumerate(cells):
        if index not in results:
            continue
        outcome, error = results[index]
        key = grade_id(cell) or (cell.get("id") if isinstance(cell.get("id"), str) else None)
        saved, _ = _outcome(cell)
        where = f"cell {index + 1} ({labels[key]})" if key in labels else \
            f"cell {index + 1} (a cell of yours)"
        if key in tests and key not in seen_parts:
            seen_parts.add(key)
            part = tests[key]["part"]
            name = f"{part['title']} ({part['points']:g} point{'s' * (part['points'] != 1)})"
            if outcome == "ok":
                report.ok(f"{name}: visible tests pass")
            elif error.startswith("NotImplementedError"):
                report.problem(f"{name}: not implemented yet")
            else:
                hint = (" It passed in your session, so it depends on the order you ran the "
                        "cells in: something it needs is defined in a later cell, or in a "
                        "cell you changed or deleted since.") if saved == "ok" else ""
                state = "did not run" if outcome == "not run" else "visible tests fail"
                report.problem(f"{name}: {state}: {error}.{hint}")
        elif outcome == "error":
            hint = " (it ran without error in your session)" if saved == "ok" else ""
            report.problem(f"{where} raises {error} when the notebook runs from the top{hint}")
    for key, cell in tests.items():
        if key not in seen_parts:
            report.problem(f"{cell['part']['title']}: its test cell did not run")


# -- entry points ------------------------------------------------------------------------------

def check(path: str, release: dict, run: bool = True, colab: bool = False, out=None) -> int:
    """Check the notebook at ``path``; the exit status (:data:`EXIT_OK` or :data:`EXIT_PROBLEM`)."""
    report = Report(out)
    report.say(f"Self-check of {os.path.basename(path)} for the assignment "
               f"{release['assignment']}")
    check_name(path, release, report, colab)
    nb = read_notebook(path, release, report)
    if nb is not None and check_cells(nb, release, report) and run:
        check_run(nb, os.path.dirname(os.path.abspath(path)), release, report)
    report.say()
    if report.problems:
        report.say(f"{report.problems} problem{'s' * (report.problems > 1)} found: fix "
                   f"{'them' if report.problems > 1 else 'it'} before you hand in "
                   f"{release['notebook']}.")
        return EXIT_PROBLEM
    report.say(f"No problems found: the grader will run {release['notebook']} as you just did. "
               "It also runs hidden tests on inputs you have not seen, so passing here is "
               "necessary, not sufficient: make your code right for any input, not just the "
               "visible examples.")
    return EXIT_OK


def main(argv: list[str] | None = None, release: dict | None = None) -> int:
    release = release or RELEASE
    folder = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(
        prog="python check.py", description=f"Check {release['notebook']} before you hand it "
        "in: its file name and cells against the release, and a run from the top in a fresh "
        "kernel with every visible test. Exit status 0: no problem; 1: problems; 2: usage.")
    parser.add_argument("notebook", nargs="?", default=os.path.join(folder, release["notebook"]),
                        help=f"the notebook to check (default: {release['notebook']} beside "
                             "this file)")
    parser.add_argument("--no-run", action="store_true", help="check the file and its cells "
                        "only, without running the notebook")
    parser.add_argument("--colab", action="store_true", help=argparse.SUPPRESS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    if not os.path.isfile(args.notebook):
        others = sorted(f for f in os.listdir(os.path.dirname(os.path.abspath(args.notebook))
                                              or ".") if f.endswith(".ipynb"))
        print(f"check.py: no notebook {args.notebook}" + (
            f"; notebooks here: {', '.join(others)} (the grader looks for "
            f"{release['notebook']})" if others else ""), file=sys.stderr)
        return EXIT_USAGE
    return check(args.notebook, release, run=not args.no_run, colab=args.colab)


def _notebook_path(release: dict) -> str:
    """The notebook this kernel belongs to: VS Code's ``__vsc_ipynb_file__``, Jupyter's
    ``JPY_SESSION_NAME``, else the assignment's notebook in the current folder."""
    main_module = sys.modules.get("__main__")
    vsc = getattr(main_module, "__vsc_ipynb_file__", None)
    if isinstance(vsc, str) and os.path.isfile(vsc):
        return vsc
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb") and os.path.isfile(os.path.basename(session)):
        return os.path.abspath(os.path.basename(session))
    return os.path.abspath(release["notebook"])


def check_this_notebook(release: dict | None = None) -> None:
    """The notebook's last cell: check the notebook as last saved, in a separate process (so
    that it runs in a fresh kernel), and print the report. Does nothing while the notebook is
    being graded or checked."""
    release = release or RELEASE
    if any(os.environ.get(k) for k in GRADING_MARKERS):
        print("(the self-check runs in your copy of the notebook only)")
        return
    script = os.path.abspath(__file__)
    extra: list[str] = []
    if "google.colab" in sys.modules:  # the notebook lives in Drive, not in this folder
        from google.colab import _message  # type: ignore[import-not-found]
        nb = _message.blocking_request("get_ipynb", timeout_sec=120)["ipynb"]
        path = os.path.abspath(f".selfcheck-{release['notebook']}")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(nb, f)
        extra = ["--colab"]
    else:
        path = _notebook_path(release)
        if os.path.isfile(path):
            stamp = time.strftime("%H:%M:%S", time.localtime(os.path.getmtime(path)))
            print(f"Checking {os.path.basename(path)} as saved at {stamp}: save the notebook "
                  "first if you changed it since.")
    proc = subprocess.run([sys.executable, script, path, *extra], capture_output=True,
                          text=True, env=dict(os.environ, SELFCHECK_RUNNING=""))
    print(proc.stdout + proc.stderr, end="")


if __name__ == "__main__":
    sys.exit(main())
