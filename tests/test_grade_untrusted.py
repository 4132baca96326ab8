"""Tests for autograder.untrusted: submission text and outputs made safe to keep and show."""

import json

import nbformat

from autograder import untrusted


def test_clean_replaces_unpaired_surrogates():
    """A lone surrogate (valid JSON, unencodable UTF-8) becomes U+FFFD; pairs never occur."""
    text = json.loads('"a\\ud800b\\udfffc"')
    assert untrusted.clean(text) == "a\ufffdb\ufffdc"
    untrusted.clean(text).encode("utf-8")


def test_cap_bounds_length_and_says_so():
    """A long string is cut to the limit with a note giving its full length."""
    out = untrusted.cap("x" * 100_000, 2000)
    assert len(out) < 2100 and "truncated: 100000 characters" in out
    assert untrusted.cap(out, 2000) == out  # cutting twice keeps the original length
    assert "truncated: 2050" in untrusted.cap("y" * 2050, 2000)
    assert untrusted.cap("short") == "short"


def test_outputs_lose_active_content():
    """Only plain text and raster images are kept: HTML, JavaScript, SVG and metadata go, and
    an HTML-only output is kept as its text without scripts."""
    out = untrusted.output_from_message("display_data", {
        "data": {"text/html": "<script>alert(1)</script>", "application/javascript": "x()",
                 "text/plain": "plain", "image/png": "iVBORw0KGgo=",
                 "image/svg+xml": "<svg onload=alert(1)>"},
        "metadata": {"isolated": True}})
    assert out["data"] == {"text/plain": "plain", "image/png": "iVBORw0KGgo="}
    assert out["metadata"] == {}
    only_html = untrusted.output_from_message("execute_result", {
        "data": {"text/html": "<b>bold</b><script>alert(1)</script><img src=x onerror=y>"},
        "execution_count": 10**30})
    assert only_html["data"] == {"text/plain": "bold"} and only_html["execution_count"] is None
    assert untrusted.output_from_message("display_data", {"data": {"image/png": "<script>"}}) \
        is None
    nbformat.validate(_nb([out, only_html]))


def test_malformed_output_content_is_dropped_or_coerced():
    """Content of the wrong shape gives a valid output or none, never an exception."""
    assert untrusted.output_from_message("stream", {"text": {"a": 1}}) is None
    err = untrusted.output_from_message("error", {"ename": [1], "evalue": None,
                                                  "traceback": "no list"})
    assert err["ename"] == "[1]" and err["traceback"] == []
    assert untrusted.output_from_message("display_data", {"data": 5}) is None
    assert untrusted.output_from_message("update_display_data", {}) is None
    stream = untrusted.output_from_message("stream", {"name": "evil", "text": ["a", "b"]})
    assert stream["name"] == "stdout" and stream["text"] == "ab"
    nbformat.validate(_nb([err, stream]))


def test_fenced_markdown_shows_everything_as_code():
    """Student Markdown becomes a code block whose fence is longer than any run inside."""
    text = untrusted.fenced("<script>x</script>\n`````\n")
    assert text.startswith("``````text\n") and text.endswith("\n``````")


def test_names():
    """Safe names pass as they are; others are shown printable and short."""
    assert untrusted.is_safe_name("alice.b-1@x") and not untrusted.is_safe_name("a" * 200)
    assert not untrusted.is_safe_name("-x") and not untrusted.is_safe_name("a/b")
    odd = b"\xff\n".decode("utf-8", "surrogateescape")
    assert untrusted.display_name(odd) == "\ufffd?"
    assert len(untrusted.display_name("é" * 300)) < 100


def _nb(outputs):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=outputs)]
    return nb
