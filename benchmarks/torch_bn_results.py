"""The recorded results of ``benchmarks/bench_torch_bn.py``: written and read here, and only here.

A run records two files per device type, ``torch_bn_<cpu|cuda>.csv`` and ``.md``, in
``benchmarks/results/``. The CSV starts with header lines ``# <key>: <value>`` that say where
and how it was measured (:data:`HEADER_KEYS`, in that order), followed by the table with the
columns :data:`COLUMNS`, one row per (shape, dtype, layout, pass, implementation). The Markdown
file repeats the header as a list and the rows as a table, with mismatching rows in bold.

The measured machine figures (copy bandwidth and float32 matmul rate) are one header line,
written by :func:`machine_line` and parsed back by :func:`read_results` with the same template,
so the reader never splits prose. :func:`recorded` lists the results present, CPU first, and
:func:`summary_table` is the compact table the book's GPU appendix shows.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = ("N", "C", "H", "W", "dtype", "layout", "pass", "impl", "ms", "GB/s", "% copy",
           "x native", "check")
#: The header lines, in order: "<key>: <value>" each.
HEADER_KEYS = ("device", "date", "load average at start (1, 5, 15 min)", "command",
               "measured copy bandwidth (read + write)", "ms", "GB/s", "check")
_MACHINE_TEMPLATE = ("measured copy bandwidth (read + write): {copy_gbs:.1f} GB/s; "
                     "float32 matmul: {gflops:.1f} GFLOP/s")
_MACHINE = re.compile(r"measured copy bandwidth \(read \+ write\): (?P<copy_gbs>[0-9.]+) GB/s; "
                      r"float32 matmul: (?P<gflops>[0-9.]+) GFLOP/s$")
_NUMBER = r"[0-9.]+"


def machine_line(copy_gbs: float, gflops: float) -> str:
    """The header line that records the measured copy bandwidth and float32 matmul rate."""
    return _MACHINE_TEMPLATE.format(copy_gbs=copy_gbs, gflops=gflops)


@dataclass(frozen=True)
class BenchmarkRecord:
    """One recorded results file: ``device_type`` ("cpu" or "cuda", from the file name),
    ``header`` (the ``# `` lines without the marker), ``rows`` (dicts keyed by
    :data:`COLUMNS`, values as strings), and the header's ``device`` name, ``date``, and the
    measured ``copy_gbs`` (GB/s, read + write) and ``matmul_gflops``."""

    path: Path
    device_type: str
    header: tuple[str, ...]
    rows: tuple[dict, ...]
    device: str
    date: str
    copy_gbs: float
    matmul_gflops: float

    def field(self, key: str) -> str:
        """The value of header line ``key: value``."""
        for line in self.header:
            if line.startswith(key + ": "):
                return line[len(key) + 2:]
        raise KeyError(f"{self.path.name} has no header line {key!r}")


def write_results(stem: Path, header: Sequence[str], rows: Iterable[dict]) -> None:
    """Write ``stem``.csv and ``stem``.md (``stem`` like results/torch_bn_cpu)."""
    rows = list(rows)
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        for line in header:
            f.write("# " + line + "\n")
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    device_type = stem.name.rsplit("_", 1)[-1]
    with open(stem.with_suffix(".md"), "w") as f:
        f.write(f"# Batch-norm benchmark ({device_type.upper()})\n\n")
        for line in header:
            f.write(f"- {line}\n")
        f.write("\n| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n")
        for row in rows:
            cells = [str(row[k]) for k in COLUMNS]
            if str(row["check"]).startswith("MISMATCH"):
                cells[-1] = f"**{cells[-1]}**"
            f.write("| " + " | ".join(cells) + " |\n")


def read_results(path: Path) -> BenchmarkRecord:
    """Read a results CSV written by :func:`write_results`."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    header = tuple(line[2:] for line in lines if line.startswith("# "))
    rows = tuple(csv.DictReader([line for line in lines if not line.startswith("# ")]))
    machine = next((m for line in header if (m := _MACHINE.match(line))), None)
    if machine is None:
        raise ValueError(f"{path}: no header line of the form {_MACHINE_TEMPLATE!r}")
    if rows and tuple(rows[0]) != COLUMNS:
        raise ValueError(f"{path}: columns {tuple(rows[0])}, expected {COLUMNS}")
    record = BenchmarkRecord(path, path.stem.rsplit("_", 1)[-1], header, rows, "", "",
                             float(machine["copy_gbs"]), float(machine["gflops"]))
    return BenchmarkRecord(path, record.device_type, header, rows, record.field("device"),
                           record.field("date").split(";")[0], record.copy_gbs,
                           record.matmul_gflops)


def recorded(results: Path = RESULTS) -> list[BenchmarkRecord]:
    """Every ``torch_bn_*.csv`` under ``results``, read; CPU first, then the others by name."""
    paths = sorted(Path(results).glob("torch_bn_*.csv"),
                   key=lambda p: (p.stem != "torch_bn_cpu", p.name))
    return [read_results(p) for p in paths]


def _shape_key(row: dict) -> tuple:
    return (row["N"], row["C"], row["H"], row["W"], row["dtype"], row["layout"])


def summary_table(record: BenchmarkRecord, pass_: str = "fwdbwd"
                  ) -> tuple[list[str], list[list[str]]]:
    """(columns, rows): one row per shape, dtype and layout, and per implementation its time
    in ms with its speed relative to native in parentheses, for pass ``pass_``; a cell of an
    implementation that disagreed with native says MISMATCH, one that did not run its reason."""
    rows = [r for r in record.rows if r["pass"] == pass_]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    columns = ["N, C, H, W", "dtype", "layout"] + [f"{i} ms (x native)" for i in impls]
    by_key = {(_shape_key(r), r["impl"]): r for r in rows}
    body = []
    for key in dict.fromkeys(_shape_key(r) for r in rows):
        cells = [", ".join(key[:4]), key[4], key[5]]
        for impl in impls:
            r = by_key.get((key, impl))
            if r is None:
                cells.append("")
                continue
            cell = r["ms"] if not r["x native"] else f"{r['ms']} ({r['x native']})"
            if r["check"].startswith("MISMATCH"):
                cell += " MISMATCH"
            cells.append(cell)
        body.append(cells)
    return columns, body


def geometric_mean_speedup(record: BenchmarkRecord, pass_: str = "fwdbwd") -> dict[str, float]:
    """Per implementation, the geometric mean of its ``x native`` over the rows of ``pass_``
    that have one (implementations that agreed with native only)."""
    ratios: dict[str, list[float]] = {}
    for r in record.rows:
        if r["pass"] == pass_ and re.fullmatch(_NUMBER, r["x native"] or "") \
                and not r["check"].startswith("MISMATCH"):
            ratios.setdefault(r["impl"], []).append(float(r["x native"]))
    return {k: math.exp(sum(map(math.log, v)) / len(v)) for k, v in ratios.items()}
