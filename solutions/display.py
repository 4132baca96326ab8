"""Presentation helpers the chapters share: result tables and a figure style every reader can use.

* :class:`Table` is a result table that renders as a real HTML ``<table>`` with a
  ``<caption>`` and header cells (``scope="col"``), so screen readers announce rows and
  columns; its plain-text form (``repr``) is an aligned text table for consoles and launched
  notebooks. Numbers are formatted by the caller (the table shows strings as given) so that the
  text of a chapter and its table show the same digits.
* :func:`accessible_style` is a Matplotlib style whose lines differ in colour (the Okabe-Ito
  palette, distinguishable with the common colour-vision deficiencies), line style and marker,
  so every curve stays distinguishable in greyscale. Use it as
  ``with plt.style.context(accessible_style()):``.

Like every module of ``solutions/``, this one imports nothing from ``book/``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Okabe & Ito (2008), "Color Universal Design": black first, then the seven colours.
OKABE_ITO = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00",
             "#CC79A7")
# The yellow is too light on white for lines; the cycle skips it.
LINE_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#E69F00", "#56B4E9")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True)
class Table:
    """A table of results: ``columns`` (header texts), ``rows`` (one sequence of cells per row,
    each as long as ``columns``) and a ``caption`` that says what the table shows.

    ``row_headers=True`` marks the first cell of each row as a header cell (``<th scope="row">``).
    Cells are shown as text (``str(cell)``) and HTML-escaped; format numbers before passing them.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str
    row_headers: bool = False

    def __post_init__(self):
        if not self.caption.strip():
            raise ValueError("a table needs a caption that says what it shows")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"row {i} has {len(row)} cells, the table {len(self.columns)} "
                                 "columns")

    def _repr_html_(self) -> str:
        e = html.escape
        head = "".join(f'<th scope="col">{e(_cell(c))}</th>' for c in self.columns)
        body = []
        for row in self.rows:
            cells = []
            for j, value in enumerate(row):
                text = e(_cell(value))
                cells.append(f'<th scope="row">{text}</th>' if self.row_headers and j == 0
                             else f"<td>{text}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        return (f'<table class="table result-table"><caption>{e(self.caption)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")

    def __repr__(self) -> str:
        texts = [[_cell(c) for c in self.columns]] + [[_cell(v) for v in r] for r in self.rows]
        widths = [max(len(t[j]) for t in texts) for j in range(len(self.columns))]
        lines = [self.caption, ""]
        for i, t in enumerate(texts):
            lines.append("  ".join(s.ljust(w) for s, w in zip(t, widths, strict=True)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def accessible_style() -> dict[str, Any]:
    """Matplotlib rc settings: a property cycle of colour, line style and marker together (each
    curve differs in all three), opaque white figures and readable font sizes."""
    from cycler import cycler

    n = len(LINE_COLOURS)
    return {
        "axes.prop_cycle": (cycler(color=LINE_COLOURS) + cycler(linestyle=LINE_STYLES[:n])
                            + cycler(marker=MARKERS[:n])),
        "lines.markersize": 4,
        "lines.linewidth": 1.6,
        "figure.facecolor": "white",
        "axes.facecolor": "white",
        "savefig.facecolor": "white",
        "font.size": 10,
        "legend.frameon": True,
    }
