"""Forward + backward of the NumPy reference batch norm against torch's CPU batch_norm.

Baseline: ``torch.nn.functional.batch_norm`` (training mode) and its autograd backward on the
CPU, same shape, same dtype, same thread count as NumPy gets. Prints the median time of each
and the ratio NumPy / torch (lower is better; the issue's target is <= 1.5).

    python benchmarks/bench_numpy_bn.py [--shape 32 64 56 56] [--repeats 15]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from solutions.batchnorm import batch_norm_backward, batch_norm_forward


def _median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", type=int, nargs="+", default=[32, 64, 56, 56])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    shape = tuple(args.shape)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    dy = rng.standard_normal(shape, dtype=np.float32)
    C = shape[1]
    w = np.ones(C, np.float32)
    b = np.zeros(C, np.float32)

    def numpy_step():
        _, cache = batch_norm_forward(x, w, b)
        batch_norm_backward(dy, cache)

    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    tdy = torch.from_numpy(dy)

    def torch_step():
        tx.grad = tw.grad = tb.grad = None
        F.batch_norm(tx, None, None, tw, tb, training=True).backward(tdy)

    t_np = _median_seconds(numpy_step, args.repeats)
    t_torch = _median_seconds(torch_step, args.repeats)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # NumPy's ufuncs run on one core: the like-for-like baseline
    t_torch1 = _median_seconds(torch_step, args.repeats)
    torch.set_num_threads(threads)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    print(f"shape {shape} float32, forward + backward, median of {args.repeats}")
    print(f"  numpy reference      : {t_np * 1e3:8.2f} ms")
    print(f"  torch CPU ({threads} threads): {t_torch * 1e3:8.2f} ms")
    print(f"  torch CPU (1 thread) : {t_torch1 * 1e3:8.2f} ms")
    print(f"  ratio numpy/torch ({threads} threads): {t_np / t_torch:.2f}x")
    print(f"  ratio numpy/torch (1 thread) : {t_np / t_torch1:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
