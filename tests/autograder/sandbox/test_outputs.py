"""Outputs kept from the kernel's messages lose their active content
(autograder.sandbox.outputs)."""

import nbformat

from autograder.sandbox.outputs import output_from_message


def _nb(outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=outputs)]
    return nb


def test_outputs_lose_active_content():
    """Only plain text and raster images are kept: HTML, JavaScript, SVG and metadata go, and
    an HTML-only output is kept as its text without scripts."""
    out = output_from_message("display_data", {
        "data": {"text/html": "<script>alert(1)</script>", "application/javascript": "x()",
                 "text/plain": "plain", "image/png": "iVBORw0KGgo=",
                 "image/svg+xml": "<svg onload=alert(1)>"},
        "metadata": {"isolated": True}})
    assert out["data"] == {"text/plain": "plain", "image/png": "iVBORw0KGgo="}
    assert out["metadata"] == {}
    only_html = output_from_message("execute_result", {
        "data": {"text/html": "<b>bold</b><script>alert(1)</script><img src=x onerror=y>"},
        "execution_count": 10**30})
    assert only_html["data"] == {"text/plain": "bold"} and only_html["execution_count"] is None
    assert output_from_message("display_data", {"data": {"image/png": "<script>"}}) \
        is None
    nbformat.validate(_nb([out, only_html]))


def test_malformed_output_content_is_dropped_or_coerced():
    """Content of the wrong shape gives a valid output or none, never an exception."""
    assert output_from_message("stream", {"text": {"a": 1}}) is None
    err = output_from_message("error", {"ename": [1], "evalue": None,
                                                  "traceback": "no list"})
    assert err["ename"] == "[1]" and err["traceback"] == []
    assert output_from_message("display_data", {"data": 5}) is None
    assert output_from_message("update_display_data", {}) is None
    stream = output_from_message("stream", {"name": "evil", "text": ["a", "b"]})
    assert stream["name"] == "stdout" and stream["text"] == "ab"
    nbformat.validate(_nb([err, stream]))
