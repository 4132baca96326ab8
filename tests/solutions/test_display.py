"""solutions.display: tables render as accessible HTML tables, the figure style varies more
than colour."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from solutions.display import Table, accessible_style


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_table_renders_a_captioned_html_table_with_column_headers():
    """The HTML has <caption>, one <th scope=col> per column and one <tr> per row."""
    t = Table(["model", "error"], [["plain", "3.1 %"], ["BN", "2.0 %"]], "Test error")
    p = _Tags()
    p.feed(t._repr_html_())
    names = [tag for tag, _ in p.tags]
    assert names.count("caption") == 1
    assert [a.get("scope") for tag, a in p.tags if tag == "th"] == ["col", "col"]
    assert names.count("tr") == 3
    assert "Test error" in p.text


def test_table_escapes_cells_and_marks_row_headers():
    """Cell text is escaped; with row_headers the first cell of a row is <th scope=row>."""
    t = Table(["a", "b"], [["<x>", 1]], "c", row_headers=True)
    html = t._repr_html_()
    assert "&lt;x&gt;" in html and "<x>" not in html
    assert '<th scope="row">&lt;x&gt;</th>' in html


def test_table_text_form_aligns_columns():
    """repr() is the caption, the header, a rule and the rows."""
    lines = repr(Table(["name", "v"], [["long name", "1"]], "cap")).splitlines()
    assert lines[0] == "cap" and lines[2].startswith("name")
    assert lines[3].startswith("-" * len("long name"))


@pytest.mark.parametrize("columns, rows, caption", [
    (["a", "b"], [["1"]], "c"),
    (["a"], [["1"]], "  "),
])
def test_table_refuses_ragged_rows_and_empty_captions(columns, rows, caption):
    with pytest.raises(ValueError):
        Table(columns, rows, caption)


def test_style_cycles_colour_line_style_and_marker_together():
    """Every curve of the cycle differs from every other in colour, dash and marker."""
    cycle = list(accessible_style()["axes.prop_cycle"])
    for key in ("color", "linestyle", "marker"):
        values = [repr(c[key]) for c in cycle]
        assert len(set(values)) == len(values)
