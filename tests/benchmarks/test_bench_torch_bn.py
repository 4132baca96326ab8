"""Tests for benchmarks/bench_torch_bn.py: a tiny CPU run writes complete, consistent results,
a wrong implementation is caught by the correctness check, and the timing helpers call what
they say (the timings themselves are never asserted)."""

import csv
import importlib.util
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_torch_bn",
                                                  ROOT / "benchmarks" / "bench_torch_bn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_cpu_run_writes_complete_results(tmp_path, capsys):
    """One shape, both layouts, three passes: every (layout, pass, impl) row is present, with
    GB/s = counted bytes / time (fwd 3, bwd 5, fwd+bwd 8 tensors), native's ratio 1, every
    check passed, and Triton reported as skipped on the CPU."""
    bench = _load_bench()
    rows = bench.main(["--device", "cpu", "--quick", "--batch", "2", "--shapes", "4",
                       "--impls", "native", "reference", "triton", "--repeats", "1",
                       "--warmup", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "triton: skipped (needs CUDA)" in out and "!!" not in out
    assert bench.BYTES_PER_ELEMENT == {"fwd": 3, "bwd": 5, "fwdbwd": 8}
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
            assert r["x native"] == "1.00" and r["check"] == "baseline"
        else:
            assert r["check"] == "ok"
    lines = (tmp_path / "torch_bn_cpu.csv").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("# ")]
    assert any(ln.startswith("# device: ") for ln in header)
    assert any("measured copy bandwidth" in ln for ln in header)
    assert any("bytes counted: fwd 3 (read x twice, write y), bwd 5 (read x and dy twice, "
               "write dx)" in ln for ln in header)
    assert any(ln.startswith("# check: ") for ln in header)
    table = list(csv.DictReader([ln for ln in lines if not ln.startswith("# ")]))
    assert len(table) == len(rows)
    assert (tmp_path / "torch_bn_cpu.md").read_text().startswith("# Batch-norm benchmark (CPU)")


def test_a_wrong_implementation_is_flagged(tmp_path, capsys, monkeypatch):
    """An implementation whose output is 1% off is reported with a "!! ... MISMATCH" line, its
    rows are marked in the check column (bold in the Markdown table), native's are not."""
    bench = _load_bench()

    def wrong(x, rm, rv, w, b):
        return torch.nn.functional.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5) * 1.01

    monkeypatch.setattr(bench, "_reference", wrong)
    rows = bench.main(["--device", "cpu", "--quick", "--batch", "2", "--shapes", "4",
                       "--layouts", "nchw", "--impls", "native", "reference", "--passes", "fwd",
                       "--repeats", "1", "--warmup", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "!! reference, (2, 2048, 7, 7) float32 nchw: MISMATCH: y" in out
    by_impl = {r["impl"]: r["check"] for r in rows}
    assert by_impl["native"] == "baseline" and by_impl["reference"].startswith("MISMATCH: y")
    assert "**MISMATCH: y" in (tmp_path / "torch_bn_cpu.md").read_text()


def test_timer_cycles_through_the_input_copies():
    """On the CPU a sample is --calls calls that cycle through the given callables."""
    bench = _load_bench()
    seen = []
    ms = bench.Timer(torch.device("cpu"), 5)([lambda: seen.append(0), lambda: seen.append(1)])
    assert seen == [0, 1, 0, 1, 0] and ms >= 0


def test_input_copies_exceed_twice_the_l2(monkeypatch):
    """On CUDA the timed calls cycle through enough (x, dy) copies to hold twice the L2 size
    (a 50 MiB L2 here), one copy when a single pair is larger, at most MAX_COPIES; one copy
    on the CPU."""
    bench = _load_bench()
    monkeypatch.setattr(bench, "l2_bytes", lambda device: 50 * 2**20)
    cuda = types.SimpleNamespace(type="cuda")
    assert bench.input_copies(cuda, 10, 4) == bench.MAX_COPIES
    for numel, itemsize in [(32 * 2048 * 7 * 7, 4), (32 * 2048 * 7 * 7, 2), (1 * 2048 * 49, 4)]:
        copies = bench.input_copies(cuda, numel, itemsize)
        assert copies * 2 * numel * itemsize >= 2 * 50 * 2**20
        assert (copies - 1) * 2 * numel * itemsize < 2 * 50 * 2**20
    assert bench.input_copies(cuda, 256 * 64 * 112 * 112, 4) == 1
    assert bench.input_copies(torch.device("cpu"), 10, 4) == 1


def test_compiled_implementation_survives_check_and_every_pass():
    """torch.compile of the reference passes the correctness check and then runs every pass,
    the retained-graph backward included, on each input copy (twice)."""
    bench = _load_bench()
    cpu = torch.device("cpu")
    impls = bench.make_impls(["native", "compiled"], cpu)
    pairs = bench.make_inputs((2, 8, 3, 3), torch.float32, True, cpu, 2)
    assert bench.check(impls["compiled"], impls["native"], *pairs[0], 1e-3) == "ok"
    for fns in bench.pass_calls(impls["compiled"], pairs, bench.PASSES).values():
        for fn in fns + fns:
            fn()
