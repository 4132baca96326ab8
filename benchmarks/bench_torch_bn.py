"""Benchmark training-mode batch normalization: torch native against this course's versions.

Implementations compared in one run (all in training mode, float32 parameters):

* ``native``    torch.nn.functional.batch_norm (cuDNN or torch's CUDA kernels where torch picks
                them; torch's CPU kernel on the CPU) -- the baseline of the ``x native`` column;
* ``compiled``  torch.compile of the reference solutions.torch_bn.reference.batch_norm;
* ``reference`` the same reference run eagerly (torch ops + the closed-form autograd Function);
* ``triton``    the fused Triton kernels (CUDA only).

Passes: ``fwd`` (forward, inputs requiring grad), ``bwd`` (torch.autograd.grad of a retained
graph: dx, dgamma, dbeta, no accumulation) and ``fwdbwd`` (both).

Bytes: GB/s counts the IDEAL traffic of the pass, ``k * numel * itemsize`` with k = 3 for the
forward (read x twice, write y), 3 for the backward (read x and dy, write dx) and 6 for both;
per-channel vectors are ignored. (The split Triton backward actually reads x and dy twice, 5
tensors; the fused one when split == 1 too; the GB/s column is still ideal bytes over time.)
``% copy`` divides it by the device-to-device copy bandwidth measured in the same run
(``dst.copy_(src)`` on a 1 GiB buffer on CUDA, 256 MiB on the CPU; read + write counted).

Timing: CUDA events around each call (CUDA), ``time.perf_counter`` (CPU), after warm-up; the
implementations and passes of one configuration are timed round-robin, so that a slow spell of
a shared machine hits all of them alike, and the median of ``--repeats`` calls is reported.

Usage::

    python benchmarks/bench_torch_bn.py                 # CUDA: ResNet-50 BN shapes, N=32,256
    python benchmarks/bench_torch_bn.py --quick         # CPU-sized run (N=8, float32)

Results go to stdout and, with ``--out DIR`` (default benchmarks/results), to
``DIR/torch_bn_<cpu|cuda>.md`` and ``.csv`` with the device, versions, date and command.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from solutions.torch_bn import functional, reference  # noqa: E402

# (C, H, W) of the batch-norm layers of ResNet-50, one per stage (He et al., 2016).
RESNET50_BN = [(64, 112, 112), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
BYTES_PER_ELEMENT = {"fwd": 3, "bwd": 3, "fwdbwd": 6}
IMPLS = ("native", "compiled", "reference", "triton")
PASSES = ("fwd", "bwd", "fwdbwd")


def _native(x, rm, rv, w, b):
    return torch.nn.functional.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)


def _reference(x, rm, rv, w, b):
    return reference.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5)


def _triton(x, rm, rv, w, b):
    return functional.batch_norm(x, rm, rv, w, b, True, 0.1, 1e-5, backend="triton")


def make_impls(names, device):
    """name -> callable(x, running_mean, running_var, weight, bias), or a reason it is missing."""
    out = {}
    for name in names:
        if name == "native":
            out[name] = _native
        elif name == "reference":
            out[name] = _reference
        elif name == "compiled":
            # one graph per (shape, dtype, layout): raise the recompile limits, and make hitting
            # them an error in the cell rather than a silent fall-back to eager code
            for key, value in [("recompile_limit", 512), ("accumulated_recompile_limit", 4096),
                               ("fail_on_recompile_limit_hit", True)]:
                if hasattr(torch._dynamo.config, key):
                    setattr(torch._dynamo.config, key, value)
            out[name] = torch.compile(_reference, dynamic=False)
        elif name == "triton":
            if device.type != "cuda":
                out[name] = "needs CUDA"
            elif not functional.triton_available():
                out[name] = "triton does not import"
            else:
                out[name] = _triton
    return out


def timer(device):
    """A function fn -> milliseconds of one call of fn (CUDA events on CUDA)."""
    if device.type == "cuda":
        def once(fn):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
    else:
        def once(fn):
            t0 = time.perf_counter()
            fn()
            return (time.perf_counter() - t0) * 1e3
    return once


def median_ms(calls, once, warmup, repeats, device):
    """{key: median ms} for {key: fn}. After ``warmup`` calls of each, the calls are timed
    round-robin (the order rotating every repeat), so that a slow spell of a shared machine
    hits every implementation alike."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    keys = list(calls)
    samples = {k: [] for k in keys}
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            samples[k].append(once(calls[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def copy_bandwidth(device, once, repeats):
    """Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second)."""
    nbytes = 2**30 if device.type == "cuda" else 2**28
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms({"copy": lambda: dst.copy_(src)}, once, 3, repeats, device)["copy"]
    return 2 * nbytes / (ms * 1e-3) / 1e9


def matmul_flops(device, once, repeats):
    """float32 matrix-multiply rate in GFLOP/s (a measured compute roof for the roofline)."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ms = median_ms({"mm": lambda: a @ b}, once, 2, max(3, repeats // 4), device)["mm"]
    return 2 * n**3 / (ms * 1e-3) / 1e9


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical cores"


def _loadavg():
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def pass_calls(fn, x, dy, passes):
    """{pass: zero-argument callable} for one implementation, with its own parameters and
    running buffers; "bwd" differentiates a graph built once and retained."""
    C, device = x.shape[1], x.device
    w = torch.ones(C, device=device, requires_grad=True)
    b = torch.zeros(C, device=device, requires_grad=True)
    rm, rv = torch.zeros(C, device=device), torch.ones(C, device=device)
    inputs = (x, w, b)
    calls = {}
    for p in passes:
        if p == "fwd":
            calls[p] = lambda: fn(x, rm, rv, w, b)
        elif p == "bwd":
            y = fn(x, rm, rv, w, b)
            calls[p] = lambda y=y: torch.autograd.grad(y, inputs, dy, retain_graph=True)
        else:
            calls[p] = lambda: torch.autograd.grad(fn(x, rm, rv, w, b), inputs, dy)
    return calls


def bench_config(impls, shape, dtype, channels_last, device, passes, once, warmup, repeats):
    """{impl: {pass: median ms} or an error string} for one input configuration."""
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, generator=gen, device=device).to(dtype)
    dy = torch.randn(shape, generator=gen, device=device).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        dy = dy.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    results, calls = {}, {}
    for name, fn in impls.items():
        if isinstance(fn, str):
            continue
        try:   # a failing implementation is reported in its cells, the others still run
            impl_calls = pass_calls(fn, x, dy, passes)
            for f in impl_calls.values():
                f()
            calls.update({(name, p): f for p, f in impl_calls.items()})
            results[name] = {}
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}: {exc}"[:120]
    for (name, p), ms in median_ms(calls, once, warmup, repeats, device).items():
        results[name][p] = ms
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized run: N=8, float32, fewer repeats")
    parser.add_argument("--batch", type=int, nargs="+", default=None,
                        help="batch sizes (default 32 256; --quick: 8)")
    parser.add_argument("--dtypes", nargs="+", default=None,
                        choices=["float32", "bfloat16", "float16"],
                        help="default float32 bfloat16; --quick: float32")
    parser.add_argument("--layouts", nargs="+", default=["nchw", "channels_last"],
                        choices=["nchw", "channels_last"])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--passes", nargs="+", default=list(PASSES), choices=PASSES)
    parser.add_argument("--shapes", type=int, nargs="+", default=None,
                        help="indices into the ResNet-50 BN shapes (default: all 5)")
    parser.add_argument("--repeats", type=int, default=None, help="default 50; --quick: 10")
    parser.add_argument("--warmup", type=int, default=None, help="default 10; --quick: 2")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads for the CPU (default: torch's choice)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"),
                        help="directory for torch_bn_<device>.md/.csv ('' to skip)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False")
    if device.type == "cpu" and not args.quick:
        print("note: on the CPU the full ResNet-50 shapes at N=256 take very long; "
              "consider --quick", file=sys.stderr)
    batches = args.batch or ([8] if args.quick else [32, 256])
    dtypes = [getattr(torch, d) for d in (args.dtypes or (
        ["float32"] if args.quick else ["float32", "bfloat16"]))]
    repeats = args.repeats or (10 if args.quick else 50)
    warmup = args.warmup or (2 if args.quick else 10)
    shapes = [RESNET50_BN[i] for i in (args.shapes or range(len(RESNET50_BN)))]

    if args.threads:
        torch.set_num_threads(args.threads)
    once = timer(device)
    copy_gbs = copy_bandwidth(device, once, repeats)
    gflops = matmul_flops(device, once, repeats)
    impls = make_impls(args.impls, device)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = f"torch {torch.__version__}"
    if functional.triton_available():
        import triton
        versions += f", triton {triton.__version__}"
    command = " ".join(["python benchmarks/bench_torch_bn.py",
                        *(sys.argv[1:] if argv is None else argv)])
    header = [
        f"device: {device_name(device)}",
        f"date: {now}; {versions}; python {platform.python_version()}; "
        f"torch threads {torch.get_num_threads()}",
        f"load average at start (1, 5, 15 min): {_loadavg()}",
        f"command: {command}",
        f"measured copy bandwidth (read + write): {copy_gbs:.1f} GB/s; "
        f"float32 matmul: {gflops:.1f} GFLOP/s",
        f"ms: median of {repeats} calls after {warmup} warm-up calls; GB/s: ideal bytes "
        "(fwd 3, bwd 3, fwd+bwd 6 tensors of x's size) / time; x native: native ms / this ms",
    ]
    for line in header:
        print("# " + line)
    for name, value in impls.items():
        if isinstance(value, str):
            print(f"# {name}: skipped ({value})")

    rows = []
    cols = ["N", "C", "H", "W", "dtype", "layout", "pass", "impl", "ms", "GB/s", "% copy",
            "x native"]
    print(" | ".join(cols))
    for n in batches:
        for (c, h, w) in shapes:
            shape = (n, c, h, w)
            numel = math.prod(shape)
            for dtype in dtypes:
                itemsize = torch.empty((), dtype=dtype).element_size()
                for layout in args.layouts:
                    cell = bench_config(impls, shape, dtype, layout == "channels_last", device,
                                        args.passes, once, warmup, repeats)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    for p in args.passes:
                        base = cell.get("native")
                        base_ms = base[p] if isinstance(base, dict) else None
                        for name, res in cell.items():
                            row = dict(N=n, C=c, H=h, W=w, dtype=str(dtype).split(".")[1],
                                       layout=layout, **{"pass": p, "impl": name})
                            if isinstance(res, str):
                                row.update({"ms": res, "GB/s": "", "% copy": "",
                                            "x native": ""})
                            else:
                                ms = res[p]
                                gbs = BYTES_PER_ELEMENT[p] * numel * itemsize / (ms * 1e-3) / 1e9
                                row.update({"ms": f"{ms:.3f}", "GB/s": f"{gbs:.1f}",
                                            "% copy": f"{100 * gbs / copy_gbs:.0f}",
                                            "x native": f"{base_ms / ms:.2f}" if base_ms else ""})
                            rows.append(row)
                            print(" | ".join(str(row[k]) for k in cols), flush=True)

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"torch_bn_{device.type}"
        with open(stem.with_suffix(".csv"), "w", newline="") as f:
            for line in header:
                f.write("# " + line + "\n")
            writer = csv.DictWriter(f, fieldnames=cols)
            writer.writeheader()
            writer.writerows(rows)
        with open(stem.with_suffix(".md"), "w") as f:
            f.write(f"# Batch-norm benchmark ({device.type.upper()})\n\n")
            for line in header:
                f.write(f"- {line}\n")
            f.write("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
            for row in rows:
                f.write("| " + " | ".join(str(row[k]) for k in cols) + " |\n")
        print(f"# wrote {stem}.csv and {stem}.md")
    return rows


if __name__ == "__main__":
    main()
