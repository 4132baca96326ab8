"""Structural mutations of a handed-in notebook, as students make them: cells cut, moved,
edited, duplicated or turned into text, a file saved under another name, a notebook that passed
only because of the order its cells were run in. Used to show that the self-check
(``check.py``) and the grader agree on them (tests/autograder/test_selfcheck.py,
tests/autograder/commands/test_grade_selfcheck.py).

Every mutation takes the ``dropout`` solution notebook (JSON, as nbformat writes it) and returns
``(notebook, file name)``.
"""

from __future__ import annotations

import copy
import functools
import json

import nbformat

from autograder.assignments import ASSIGNMENTS
from autograder.build.assemble import assemble, solution_notebook

NAME = "dropout"


@functools.cache
def assembled():
    return assemble(ASSIGNMENTS[NAME])


def solution() -> dict:
    """The dropout solution notebook (a fresh copy)."""
    return copy.deepcopy(nbformat.from_dict(solution_notebook(assembled())))


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb["cells"]) if _gid(c) == grade_id)


def _code(source: str, **extra) -> dict:
    return dict(nbformat.v4.new_code_cell(source), **extra)


def untouched(nb):
    return nb, f"{NAME}.ipynb"


def added_cells(nb):
    """Notes and a scratch cell of the student's own: nothing the grader minds."""
    i = _index(nb, f"{NAME}-solution-1")
    nb["cells"][i + 1:i + 1] = [nbformat.v4.new_markdown_cell("My notes on dropout."),
                                _code("print('trying dropout_forward')")]
    return nb, f"{NAME}.ipynb"


def renamed(nb):
    return nb, f"Copy of {NAME}.ipynb"


def answer_cut(nb):
    del nb["cells"][_index(nb, f"{NAME}-solution-1")]
    return nb, f"{NAME}.ipynb"


def test_cut(nb):
    del nb["cells"][_index(nb, "lecture-dropout")]
    return nb, f"{NAME}.ipynb"


def given_edited(nb):
    cell = nb["cells"][_index(nb, f"{NAME}-given-1")]
    cell["source"] += "\n# my note"
    return nb, f"{NAME}.ipynb"


def test_edited(nb):
    nb["cells"][_index(nb, "connected-masks")]["source"] = "print('skipped')"
    return nb, f"{NAME}.ipynb"


def answer_moved(nb):
    """The lecture's dropout moved below its test cell."""
    cell = nb["cells"].pop(_index(nb, f"{NAME}-solution-2"))
    i = _index(nb, "lecture-dropout")
    nb["cells"].insert(i + 1, cell)
    return nb, f"{NAME}.ipynb"


def answer_duplicated_stale(nb):
    """An old copy of the first answer cell (still the stub) above the working one: the
    student's run uses the second definitions, the grader the first cell."""
    i = _index(nb, f"{NAME}-solution-1")
    stale = copy.deepcopy(nb["cells"][i])
    stale["source"] = ("def dropout_forward(x, p=0.5, training=True, rng=None):\n"
                       "    raise NotImplementedError()\n")
    nb["cells"].insert(i, stale)
    return nb, f"{NAME}.ipynb"


def answer_retyped(nb):
    nb["cells"][_index(nb, f"{NAME}-solution-2")]["cell_type"] = "markdown"
    for key in ("outputs", "execution_count"):
        nb["cells"][_index(nb, f"{NAME}-solution-2")].pop(key, None)
    return nb, f"{NAME}.ipynb"


def out_of_order(nb):
    """The lecture's inference rule calls a helper defined in a cell at the very end, which
    the student happened to run first: its test passed in their session (saved outputs) but
    fails when the notebook runs from the top."""
    cell = nb["cells"][_index(nb, f"{NAME}-solution-2")]
    assert cell["source"].count("* (1.0 - p)") == 1
    cell["source"] = cell["source"].replace("* (1.0 - p)", "* _keep_probability(p)")
    test = nb["cells"][_index(nb, "lecture-dropout")]
    test["execution_count"] = 7
    test["outputs"] = [nbformat.v4.new_output(
        "stream", name="stdout", text="the lecture's dropout: all visible tests passed\n")]
    nb["cells"].append(_code("def _keep_probability(p):\n    return 1.0 - p"))
    return nb, f"{NAME}.ipynb"


MUTATIONS = {f.__name__.replace("_", "-"): f for f in (
    untouched, added_cells, renamed, answer_cut, test_cut, given_edited, test_edited,
    answer_moved, answer_duplicated_stale, answer_retyped, out_of_order)}

# what the self-check says about each (a piece of its report), and whether the grader takes
# points for it (the rest it repairs: a restored cell, the release's order)
HARMLESS = {"untouched", "added-cells"}
SAYS = {
    "renamed": "the grader looks for dropout.ipynb",
    "answer-cut": "is missing or no longer a code cell: the grader will run the release's stub",
    "test-cut": "the test cell of 'The lecture's dropout and inference rule'",
    "given-edited": "was edited; the grader runs the original",
    "test-edited": "was edited; the grader runs the original",
    "answer-moved": "was moved",
    "answer-duplicated-stale": "appears more than once; the grader takes the first one only",
    "answer-retyped": "is missing or no longer a code cell",
    "out-of-order": "It passed in your session, so it depends on the order you ran the cells",
}
COSTS_POINTS = {"renamed", "answer-cut", "answer-duplicated-stale", "answer-retyped",
                "out-of-order"}


def mutated(name: str) -> tuple[dict, str]:
    return MUTATIONS[name](solution())


def write(folder, name: str) -> str:
    """The helper files and mutation ``name`` of the solution notebook in ``folder`` (as a
    student's unpacked zip); returns the notebook's path."""
    import os
    os.makedirs(folder, exist_ok=True)
    for filename, text in assembled().files.items():
        with open(os.path.join(folder, filename), "w") as f:
            f.write(text)
    nb, filename = mutated(name)
    path = os.path.join(folder, filename)
    with open(path, "w") as f:  # as saved, duplicate cell ids and all
        json.dump(nb, f, indent=1)
    return path
