"""Reading a handed-in notebook defensively (autograder.grading.notebook)."""

import json
import os

import nbformat

from autograder.grading.notebook import read_student_notebook
from tests.support import toy


def _write(tmp_path, data: bytes, name: str = "nb.ipynb"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    """A notebook saved with a UTF-8 BOM reads like one without."""
    text = nbformat.writes(toy.solution_notebook()).encode()
    nb, why = read_student_notebook(_write(tmp_path, b"\xef\xbb\xbf" + text))
    assert why == "" and len(nb["cells"]) == len(toy.solution_notebook().cells)


def test_huge_integers_and_surrogates_do_not_stop_reading(tmp_path):
    """An integer of 5000 digits (beyond Python's limit for int()) and an unpaired surrogate
    are read; the notebook is graded."""
    nb = json.loads(nbformat.writes(toy.solution_notebook()))
    nb["metadata"]["x"] = 1
    nb["cells"][2]["source"] = "# \ud800\n"
    text = json.dumps(nb).replace('"x": 1', '"x": ' + "9" * 5000)
    data, why = read_student_notebook(_write(tmp_path, text.encode()))
    assert why == "" and data["metadata"]["x"] is None
    assert data["cells"][2]["source"] == "# \ud800\n"


def test_unreadable_notebooks_give_reasons(tmp_path):
    """A FIFO, a deep nesting, bad UTF-8 and a non-object each give a reason, never raise."""
    fifo = tmp_path / "fifo.ipynb"
    os.mkfifo(fifo)
    for path, why in ((str(fifo), "not a regular file"),
                      (_write(tmp_path, b"[" * 100_000, "a"), "not valid JSON"),
                      (_write(tmp_path, b"\xff\xfe{}", "b"), "UTF-8"),
                      (_write(tmp_path, b"[1]", "c"), "not a JSON object"),
                      (_write(tmp_path, b"  \n", "d"), "empty")):
        data, reason = read_student_notebook(path)
        assert data is None and why in reason, (path, reason)
