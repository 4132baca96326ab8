"""Benchmark training-mode batch normalization: torch native against this course's versions.

Implementations compared in one run (all in training mode, float32 parameters):

* ``native``    torch.nn.functional.batch_norm (cuDNN or torch's CUDA kernels where torch picks
                them; torch's CPU kernel on the CPU) -- the baseline of the ``x native`` column;
* ``compiled``  torch.compile of the reference solutions.torch_bn.reference.batch_norm;
* ``reference`` the same reference run eagerly (torch ops + the closed-form autograd Function);
* ``triton``    the fused Triton kernels (CUDA only).

Passes: ``fwd`` (forward, inputs requiring grad), ``bwd`` (torch.autograd.grad of a retained
graph: dx, dgamma, dbeta, no accumulation) and ``fwdbwd`` (both).

Correctness: before anything is timed, every implementation runs forward and backward once on
each configuration (shape, dtype, layout) with random gamma and beta, and its y, dx, dgamma,
dbeta and running statistics are compared with native's: ``max|impl - native| / max|native|``
must stay within ``TOLERANCE[dtype]``. A failure is printed as a ``!! MISMATCH`` line and marks
the implementation's rows in the ``check`` column (the script then exits with status 1); their
timings are still reported.

Bytes: GB/s counts the traffic of a reduce-then-map implementation, ``k * numel * itemsize``
(per-channel vectors ignored): forward k = 3 (read x twice: statistics, then y; write y),
backward k = 5 (read x and dy twice: the two sums, then dx; write dx: any backward that needs
both sums before it can write dx moves at least this without help from caches), fwd+bwd 8.
``% copy`` divides it by the device-to-device copy bandwidth measured in the same run
(``dst.copy_(src)`` on a 1 GiB buffer on CUDA, 256 MiB on the CPU; read + write counted).

Timing. CUDA: one sample is ``--calls`` back-to-back calls between one pair of CUDA events,
divided by the number of calls, so that the host's launch overhead counts only where the host
cannot keep ahead of the GPU (as in training); before each sample a buffer of twice the L2
size is written (an L2 flush), and the calls cycle through enough copies of the inputs (at
least twice the L2 size in all, at most ``MAX_COPIES``) that no call finds its input in L2.
CPU: ``time.perf_counter`` around ``--calls`` calls (default 1), no cache flush. After warm-up
the implementations and passes of one configuration are timed round-robin, so that a slow
spell of a shared machine hits all of them alike, and the median of ``--repeats`` samples is
reported.

Usage::

    python benchmarks/bench_torch_bn.py                 # CUDA: ResNet-50 BN shapes, N=32,256
    python benchmarks/bench_torch_bn.py --quick         # CPU-sized run (N=8, float32)

Results go to stdout and, with ``--out DIR`` (default benchmarks/results), to
``DIR/torch_bn_<cpu|cuda>.md`` and ``.csv`` with the device, versions, date and command.
"""

from __future__ import annotations

import argparse
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

from benchmarks.torch_bn_results import COLUMNS, machine_line, write_results  # noqa: E402
from solutions.torch_bn import functional, reference  # noqa: E402

# (C, H, W) of the batch-norm layers of ResNet-50, one per stage (He et al., 2016).
RESNET50_BN = [(64, 112, 112), (256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
# tensors of x's size moved by a reduce-then-map implementation (see the module docstring)
BYTES_PER_ELEMENT = {"fwd": 3, "bwd": 5, "fwdbwd": 8}
BYTES_COUNTED = ("fwd 3 (read x twice, write y), bwd 5 (read x and dy twice, write dx), "
                 "fwd+bwd 8 tensors of x's size")
MAX_COPIES = 256  # of the inputs, for the L2 (only tiny batches would need more)
# max|impl - native| / max|native| allowed for y, dx, dgamma, dbeta and the running statistics
TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 3e-2, torch.float16: 1e-2}
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
            # the bwd pass differentiates one retained graph again and again, which a backward
            # compiled with donated buffers refuses (the correctness check compiles it first)
            if hasattr(torch._functorch.config, "donated_buffer"):
                torch._functorch.config.donated_buffer = False
            out[name] = torch.compile(_reference, dynamic=False)
        elif name == "triton":
            if device.type != "cuda":
                out[name] = "needs CUDA"
            elif not functional.triton_available():
                out[name] = "triton does not import"
            else:
                out[name] = _triton
    return out


def l2_bytes(device):
    """The GPU's L2 cache size in bytes (64 MiB where torch does not report it)."""
    props = torch.cuda.get_device_properties(device)
    return int(getattr(props, "L2_cache_size", 0) or 64 * 2**20)


class Timer:
    """``timer(fns) -> ms per call``: ``calls`` calls cycling through ``fns``. CUDA: back to back
    between one pair of events, after an L2 flush (writing a buffer of twice the L2 size, not
    timed). CPU: time.perf_counter around the calls."""

    def __init__(self, device, calls):
        self.device, self.calls = device, calls
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.l2 = l2_bytes(device)
            self.flush_buffer = torch.empty(2 * self.l2 // 4, dtype=torch.int32, device=device)

    def __call__(self, fns):
        if not self.cuda:
            t0 = time.perf_counter()
            for i in range(self.calls):
                fns[i % len(fns)]()
            return (time.perf_counter() - t0) * 1e3 / self.calls
        self.flush_buffer.fill_(1)
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for i in range(self.calls):
            fns[i % len(fns)]()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / self.calls


def median_ms(calls, timer, warmup, repeats, device):
    """{key: median ms per call} for {key: [fn, ...]} (fns cycling through input copies). After
    ``warmup`` calls of each fn, the samples are taken round-robin (the order rotating every
    repeat), so that a slow spell of a shared machine hits every implementation alike."""
    for fns in calls.values():
        for _ in range(warmup):
            for fn in fns:
                fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    keys = list(calls)
    samples = {k: [] for k in keys}
    for r in range(repeats):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            samples[k].append(timer(calls[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def copy_bandwidth(device, timer, repeats):
    """Device-to-device copy bandwidth in GB/s (bytes read + bytes written per second)."""
    nbytes = 2**30 if device.type == "cuda" else 2**28
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = median_ms({"copy": [lambda: dst.copy_(src)]}, timer, 3, repeats, device)["copy"]
    return 2 * nbytes / (ms * 1e-3) / 1e9


def matmul_flops(device, timer, repeats):
    """float32 matrix-multiply rate in GFLOP/s (a measured compute roof for the roofline)."""
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    ms = median_ms({"mm": [lambda: a @ b]}, timer, 2, max(3, repeats // 4), device)["mm"]
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


def make_inputs(shape, dtype, channels_last, device, copies):
    """``copies`` independent (x, dy) pairs (x requiring grad), seeded, in the layout asked."""
    gen = torch.Generator(device=device).manual_seed(0)
    pairs = []
    for _ in range(copies):
        x = torch.randn(shape, generator=gen, device=device).to(dtype)
        dy = torch.randn(shape, generator=gen, device=device).to(dtype)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            dy = dy.contiguous(memory_format=torch.channels_last)
        pairs.append((x.requires_grad_(True), dy))
    return pairs


def _relative_error(got, want):
    got, want = got.double(), want.double()
    return (got - want).abs().max().item() / max(want.abs().max().item(), 1e-30)


def check(fn, native, x, dy, tol):
    """Compare fn's y, dx, dgamma, dbeta and running statistics after one forward and backward
    with native's (random gamma and beta). Returns "ok" or "MISMATCH: <what> <error> > <tol>"."""
    C, device = x.shape[1], x.device
    gen = torch.Generator(device=device).manual_seed(1)
    w0 = 1 + 0.5 * torch.randn(C, generator=gen, device=device)
    b0 = torch.randn(C, generator=gen, device=device)
    results = []
    for f in (native, fn):
        w, b = w0.clone().requires_grad_(), b0.clone().requires_grad_()
        rm, rv = torch.zeros(C, device=device), torch.ones(C, device=device)
        y = f(x, rm, rv, w, b)
        results.append((y, *torch.autograd.grad(y, (x, w, b), dy), rm, rv))
    names = ("y", "dx", "dgamma", "dbeta", "running_mean", "running_var")
    bad = [f"{n} {err:.1e}" for n, want, got in zip(names, *results, strict=True)
           if not (err := _relative_error(got, want)) <= tol]
    return "ok" if not bad else f"MISMATCH: {', '.join(bad)} > {tol:g}"


def pass_calls(fn, pairs, passes):
    """{pass: [zero-argument callable per input copy]} for one implementation, with its own
    parameters and running buffers; "bwd" differentiates graphs built once and retained."""
    C, device = pairs[0][0].shape[1], pairs[0][0].device
    w = torch.ones(C, device=device, requires_grad=True)
    b = torch.zeros(C, device=device, requires_grad=True)
    rm, rv = torch.zeros(C, device=device), torch.ones(C, device=device)
    calls = {p: [] for p in passes}
    for x, dy in pairs:
        inputs = (x, w, b)
        for p in passes:
            if p == "fwd":
                calls[p].append(lambda x=x: fn(x, rm, rv, w, b))
            elif p == "bwd":
                y = fn(x, rm, rv, w, b)
                calls[p].append(lambda y=y, inputs=inputs, dy=dy:
                                torch.autograd.grad(y, inputs, dy, retain_graph=True))
            else:
                calls[p].append(lambda x=x, inputs=inputs, dy=dy:
                                torch.autograd.grad(fn(x, rm, rv, w, b), inputs, dy))
    return calls


def bench_config(impls, shape, dtype, channels_last, device, passes, timer, warmup, repeats,
                 copies):
    """({impl: {pass: median ms} or an error string}, {impl: check}) for one configuration."""
    pairs = make_inputs(shape, dtype, channels_last, device, copies)
    results, checks, calls = {}, {}, {}
    for name, fn in impls.items():
        if isinstance(fn, str):
            continue
        try:   # a failing implementation is reported in its cells, the others still run
            checks[name] = ("baseline" if name == "native" else
                            check(fn, impls["native"], *pairs[0], TOLERANCE[dtype]))
            impl_calls = pass_calls(fn, pairs, passes)
            for fns in impl_calls.values():
                fns[0]()
            calls.update({(name, p): fns for p, fns in impl_calls.items()})
            results[name] = {}
        except Exception as exc:
            results[name] = f"error: {type(exc).__name__}: {exc}"[:120]
            checks[name] = "error"
    for (name, p), ms in median_ms(calls, timer, warmup, repeats, device).items():
        results[name][p] = ms
    return results, checks


def input_copies(device, numel, itemsize):
    """How many (x, dy) copies the timed calls cycle through: together at least twice the L2
    size on CUDA (at most MAX_COPIES), so that no call finds its input in L2; one on the CPU."""
    if device.type != "cuda":
        return 1
    return min(MAX_COPIES, max(1, math.ceil(2 * l2_bytes(device) / (2 * numel * itemsize))))


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
    parser.add_argument("--calls", type=int, default=None,
                        help="calls per timed sample (default 20 on CUDA, 1 on the CPU)")
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
    calls = args.calls or (20 if device.type == "cuda" else 1)
    shapes = [RESNET50_BN[i] for i in (args.shapes or range(len(RESNET50_BN)))]

    if args.threads:
        torch.set_num_threads(args.threads)
    timer = Timer(device, calls)
    copy_gbs = copy_bandwidth(device, timer, repeats)
    gflops = matmul_flops(device, timer, repeats)
    impls = make_impls(["native"] + [i for i in args.impls if i != "native"], device)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = f"torch {torch.__version__}"
    if functional.triton_available():
        import triton
        versions += f", triton {triton.__version__}"
    command = " ".join(["python benchmarks/bench_torch_bn.py",
                        *(sys.argv[1:] if argv is None else argv)])
    if device.type == "cuda":
        timing = (f"ms: per call, median of {repeats} samples after {warmup} warm-up calls; a "
                  f"sample is {calls} back-to-back calls between one CUDA-event pair (host "
                  "launch overhead counts only where the host cannot keep ahead of the GPU), "
                  f"after writing {2 * timer.l2 / 2**20:.0f} MiB to flush the "
                  f"{timer.l2 / 2**20:.0f} MiB L2, the calls cycling through input copies of "
                  "at least twice the L2 size")
    else:
        timing = (f"ms: per call, median of {repeats} samples of {calls} call(s) after {warmup} "
                  "warm-up calls, time.perf_counter, no cache flush")
    header = [
        f"device: {device_name(device)}",
        f"date: {now}; {versions}; python {platform.python_version()}; "
        f"torch threads {torch.get_num_threads()}",
        f"load average at start (1, 5, 15 min): {_loadavg()}",
        f"command: {command}",
        machine_line(copy_gbs, gflops),
        timing,
        f"GB/s: bytes counted / time, bytes counted: {BYTES_COUNTED}; % copy: GB/s / measured "
        "copy bandwidth; x native: native ms / this ms",
        "check: y, dx, dgamma, dbeta, running stats against native before timing, "
        "max|diff| / max|native| within "
        + ", ".join(f"{str(d).split('.')[1]} {t:g}" for d, t in TOLERANCE.items()),
    ]
    for line in header:
        print("# " + line)
    for name, value in impls.items():
        if isinstance(value, str):
            print(f"# {name}: skipped ({value})")

    rows = []
    cols = COLUMNS
    print(" | ".join(cols))
    for n in batches:
        for (c, h, w) in shapes:
            shape = (n, c, h, w)
            numel = math.prod(shape)
            for dtype in dtypes:
                itemsize = torch.empty((), dtype=dtype).element_size()
                for layout in args.layouts:
                    cell, checks = bench_config(
                        impls, shape, dtype, layout == "channels_last", device, args.passes,
                        timer, warmup, repeats, input_copies(device, numel, itemsize))
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    for name, verdict in checks.items():
                        if verdict.startswith("MISMATCH"):
                            print(f"!! {name}, {shape} {str(dtype).split('.')[1]} {layout}: "
                                  f"{verdict}", flush=True)
                    for p in args.passes:
                        base = cell.get("native")
                        base_ms = base[p] if isinstance(base, dict) else None
                        for name, res in cell.items():
                            if name == "native" and "native" not in args.impls:
                                continue
                            row = dict(N=n, C=c, H=h, W=w, dtype=str(dtype).split(".")[1],
                                       layout=layout, **{"pass": p, "impl": name},
                                       check=checks.get(name, ""))
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

    mismatches = sum(1 for r in rows if r["check"].startswith("MISMATCH"))
    if mismatches:
        print(f"!! {mismatches} rows MISMATCH native: their timings are of wrong results",
              flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        stem = out / f"torch_bn_{device.type}"
        write_results(stem, header, rows)
        print(f"# wrote {stem}.csv and {stem}.md")
    return rows


if __name__ == "__main__":
    sys.exit(1 if any(r["check"].startswith("MISMATCH") for r in main()) else 0)
