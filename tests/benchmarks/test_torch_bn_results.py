"""benchmarks/torch_bn_results.py: the recorded benchmark results are written and read by one
module, with the measured machine figures read back from the line that wrote them."""

from __future__ import annotations

import math

import pytest

from benchmarks import torch_bn_results as res


def _row(impl, pass_="fwdbwd", ms="2.000", x_native="1.00", check="ok", layout="nchw"):
    return {"N": "8", "C": "64", "H": "7", "W": "7", "dtype": "float32", "layout": layout,
            "pass": pass_, "impl": impl, "ms": ms, "GB/s": "1.0", "% copy": "10",
            "x native": x_native, "check": check}


HEADER = ["device: Test GPU", "date: 2026-12-01 10:00 UTC; torch 2.13.0",
          "load average at start (1, 5, 15 min): 0.1, 0.1, 0.1", "command: python x.py",
          res.machine_line(1234.56, 50000.04), "ms: per call", "GB/s: bytes counted",
          "check: y, dx"]


def test_written_results_read_back_with_their_machine_figures(tmp_path):
    """write_results then read_results gives the rows, the device, the date and the measured
    copy bandwidth and matmul rate (as rounded in the file)."""
    rows = [_row("native", check="baseline"), _row("triton", ms="1.000", x_native="2.00")]
    res.write_results(tmp_path / "torch_bn_cuda", HEADER, rows)
    record = res.read_results(tmp_path / "torch_bn_cuda.csv")
    assert record.device_type == "cuda" and record.device == "Test GPU"
    assert record.date == "2026-12-01 10:00 UTC"
    assert (record.copy_gbs, record.matmul_gflops) == (1234.6, 50000.0)
    assert [r["impl"] for r in record.rows] == ["native", "triton"]
    assert (tmp_path / "torch_bn_cuda.md").read_text().startswith("# Batch-norm benchmark (CUDA)")


def test_the_recorded_cpu_results_are_readable():
    """The committed CPU results parse, with a positive bandwidth and matmul rate and every
    column."""
    record = res.read_results(res.RESULTS / "torch_bn_cpu.csv")
    assert record.copy_gbs > 0 and record.matmul_gflops > 0
    assert record.rows and all(set(r) == set(res.COLUMNS) for r in record.rows)


def test_a_file_without_the_machine_line_is_refused(tmp_path):
    """Header lines that do not follow machine_line's template are an error, not a guess."""
    path = tmp_path / "torch_bn_cpu.csv"
    path.write_text("# device: x\n# measured copy bandwidth: fast\n" + ",".join(res.COLUMNS)
                    + "\n")
    with pytest.raises(ValueError, match="no header line"):
        res.read_results(path)


def test_recorded_lists_cpu_first_and_only_present_files(tmp_path):
    """recorded() returns what exists, the CPU results first; nothing when nothing exists."""
    assert res.recorded(tmp_path) == []
    for device in ("cuda", "cpu"):
        res.write_results(tmp_path / f"torch_bn_{device}", HEADER,
                          [_row("native", check="baseline")])
    assert [r.device_type for r in res.recorded(tmp_path)] == ["cpu", "cuda"]


def test_summary_table_has_one_row_per_shape_and_layout_and_flags_mismatches(tmp_path):
    """One row per (shape, dtype, layout); each implementation's ms with its speed-up; a
    mismatching implementation's cell says so."""
    rows = [_row("native", check="baseline"), _row("compiled", x_native="0.50"),
            _row("native", layout="channels_last", check="baseline"),
            _row("compiled", layout="channels_last", check="MISMATCH: y"),
            _row("native", pass_="fwd", check="baseline")]
    res.write_results(tmp_path / "torch_bn_cpu", HEADER, rows)
    columns, body = res.summary_table(res.read_results(tmp_path / "torch_bn_cpu.csv"))
    assert columns == ["N, C, H, W", "dtype", "layout", "native ms (x native)",
                       "compiled ms (x native)"]
    assert body[0] == ["8, 64, 7, 7", "float32", "nchw", "2.000 (1.00)", "2.000 (0.50)"]
    assert body[1][-1].endswith("MISMATCH") and len(body) == 2


def test_geometric_mean_ignores_mismatching_rows(tmp_path):
    """The mean speed-up is geometric over the rows that agreed with native."""
    rows = [_row("compiled", x_native="2.00"), _row("compiled", x_native="0.50", layout="cl"),
            _row("compiled", x_native="9.00", layout="x", check="MISMATCH: dx")]
    res.write_results(tmp_path / "torch_bn_cpu", HEADER, rows)
    means = res.geometric_mean_speedup(res.read_results(tmp_path / "torch_bn_cpu.csv"))
    assert math.isclose(means["compiled"], 1.0)
