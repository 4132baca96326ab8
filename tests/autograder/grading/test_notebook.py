"""Reading a handed-in notebook defensively (autograder.grading.notebook)."""

import json
import os

import nbformat

from autograder.grading.notebook import graded_text, read_student_notebook
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


def test_the_grader_reads_a_bounded_number_of_cells_and_values(tmp_path):
    """More than MAX_CELLS cells, or more JSON values than MAX_NOTEBOOK_VALUES (here 600,000
    one-character Markdown cells in 31 MB), give a reason instead of a long rebuild."""
    from autograder.grading.notebook import MAX_CELLS
    from tests.support.hostile import many_cells
    nb = toy.solution_notebook()
    data, why = read_student_notebook(_write(tmp_path, many_cells(nb, MAX_CELLS).encode()))
    assert data is None and f"more than the {MAX_CELLS:,}" in why
    data, why = read_student_notebook(_write(tmp_path, many_cells(nb).encode(), "b"))
    assert data is None and "more than 1,000,000 JSON values" in why


def test_the_graded_copy_is_bounded_in_size():
    """A graded copy over the limit is kept without its outputs, or not at all, with a
    note; one within it is written whole."""
    nb = toy.solution_notebook()
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="x" * 100_000)]
    text, note = graded_text(nbformat.from_dict(nb), 10**6)
    assert note == "" and "x" * 100_000 in text
    text, note = graded_text(nbformat.from_dict(nb), 50_000)
    assert "without its outputs" in note and "x" * 1000 not in text
    text, note = graded_text(nbformat.from_dict(nb), 100)
    assert text is None and "not kept" in note
