"""Tests for benchmarks/bench_torch_bn.py: a tiny CPU run writes complete, consistent results
(the timings themselves are not asserted)."""

import csv
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_torch_bn",
                                                  ROOT / "benchmarks" / "bench_torch_bn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_writes_complete_results(tmp_path, capsys):
    """One shape, both layouts, three passes: every (layout, pass, impl) row is present, with
    GB/s = ideal bytes / time, native's ratio 1, and Triton reported as skipped on the CPU."""
    bench = _load_bench()
    rows = bench.main(["--device", "cpu", "--quick", "--batch", "2", "--shapes", "4",
                       "--impls", "native", "reference", "triton", "--repeats", "1",
                       "--warmup", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "triton: skipped (needs CUDA)" in out
    assert len(rows) == 2 * 3 * 2
    assert {(r["layout"], r["pass"], r["impl"]) for r in rows} == {
        (lay, p, i) for lay in ("nchw", "channels_last") for p in ("fwd", "bwd", "fwdbwd")
        for i in ("native", "reference")}
    for r in rows:
        ms = float(r["ms"])
        numel = 2 * 2048 * 7 * 7
        expected = bench.BYTES_PER_ELEMENT[r["pass"]] * numel * 4 / (ms * 1e-3) / 1e9
        # ms is printed to 0.001 ms and GB/s to 0.1: allow exactly those roundings
        assert abs(float(r["GB/s"]) - expected) <= 0.05 + expected * 0.0005 / ms + 1e-9
        if r["impl"] == "native":
            assert r["x native"] == "1.00"
    lines = (tmp_path / "torch_bn_cpu.csv").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("# ")]
    assert any(ln.startswith("# device: ") for ln in header)
    assert any("measured copy bandwidth" in ln for ln in header)
    table = list(csv.DictReader([ln for ln in lines if not ln.startswith("# ")]))
    assert len(table) == len(rows)
    assert (tmp_path / "torch_bn_cpu.md").read_text().startswith("# Batch-norm benchmark (CPU)")
