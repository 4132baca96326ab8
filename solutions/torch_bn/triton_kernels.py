"""Fused Triton kernels for training-mode batch normalization (forward and backward).

Same conventions as :mod:`solutions.torch_bn.reference` (biased variance for normalization,
unbiased variance into ``running_var``, PyTorch's momentum direction, eps = 1e-5 by default).

Data layout
-----------
Every input is seen as a 3-D strided array ``(A, C, B)`` whose channel axis is C and whose
statistics are reduced over A and B, without copying:

* NCHW-contiguous ``(N, C, *S)``: ``A = N``, ``B = prod(S)`` (stride 1), channel stride ``B``;
* channels_last ``(N, H, W, C)`` in memory, and ``(N, C)`` matrices: ``A = N * prod(S)``,
  ``B = 1``, channel stride 1.

Any other layout (a transposed or sliced view, an expanded tensor) is first copied to
NCHW-contiguous. A program owns ``BLOCK_C`` channels and a slice of their values:
``a_per_split`` rows of A times ``b_per_split`` columns of B (the launch grid is
``(channel blocks, split_a, split_b)``; B is cut only in NCHW, where a small batch of large
images leaves too few rows to cut). It walks its slice in tiles ``[BLOCK_A, BLOCK_B, BLOCK_C]``
(``BLOCK_C = 1`` for NCHW, ``BLOCK_B = 1`` for channels_last, so the contiguous axis is the
tile's vector axis).

Kernels
-------
Forward: each program reduces its slice to a partial (count, mean, M2): Welford's update in
every lane of the tile, then one merge of the lanes with Chan's rule (never E[x^2] - E[x]^2),
on values shifted by the channel's first element so that a large common offset does not eat
the float32 mantissa. With one slice per channel block (enough channels to fill the GPU)
the same program finalizes the statistics, updates the running buffers and normalizes its
channels (one launch, x read twice). Otherwise a finalize kernel merges the partials of each
channel (Chan again) and a third kernel applies ``y = x * scale + shift``.

Backward: each program reduces ``sum(dy)`` and ``sum(dy * (x - mean))`` over its slice
(per-lane accumulators, summed once at the end); the finalize step gives dgamma, dbeta and the
per-channel coefficients of ``dx = k1 * dy + k2 * (x - mean) + k3``, the closed form
``gamma * invstd / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))`` rearranged; the last
kernel (or the same program, when there is one slice per channel block) writes dx.

Accumulation is in float32 for float16/bfloat16/float32 input and float64 for float64 input.
The float scalars (``momentum``, ``eps``, the count ``m``) are declared ``tl.float64`` kernel
arguments and rounded in the kernel to the accumulation type: without the declaration a
compiled kernel receives a Python float as float32, while ``TRITON_INTERPRET=1`` keeps it in
float64, so the interpreter would show float64 results more precise than a GPU gives.
(``functional.batch_norm``'s "auto" sends float64 to the torch ops anyway; this keeps an
explicit ``backend="triton"`` exact too.)
Block sizes come from a fixed heuristic (:func:`launch_config`), never ``@triton.autotune``,
so that the kernels also run under ``TRITON_INTERPRET=1`` on the CPU, where the tests run them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

__all__ = ["LaunchConfig", "launch_config", "layout_of", "forward", "backward",
           "TritonBatchNormFunction", "SUPPORTED_DTYPES", "INTERPRETED"]

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ----------------------------------------------------------------------------- device helpers

@triton.jit
def _slice(A, B, a_per_split, b_per_split, SPLIT_B: tl.constexpr):
    """This program's slice: rows [a_start, a_stop) of A, columns [b_start, b_stop) of B, and
    its index among the slices of its channel block (grid axes 1 and 2 cut A and B). Without
    SPLIT_B the slice spans all of B, known at compile time to start at 0 (which keeps the
    loads of a channels-last tile aligned, hence vectorized)."""
    a_start = tl.program_id(1) * a_per_split
    a_stop = tl.minimum(A, a_start + a_per_split)
    if SPLIT_B:
        b_start = tl.program_id(2) * b_per_split
        b_stop = tl.minimum(B, b_start + b_per_split)
    else:
        b_start = 0
        b_stop = B
    return a_start, a_stop, b_start, b_stop, tl.program_id(1) * tl.num_programs(2) + \
        tl.program_id(2)


@triton.jit
def _tile(a0, a_stop, b0, b_stop, c0, C, sA, sB, sC,
          BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr):
    """Offsets and mask of the tile whose corner is (a0, b0, c0)."""
    a = a0 + tl.arange(0, BLOCK_A)
    b = b0 + tl.arange(0, BLOCK_B)
    c = c0 + tl.arange(0, BLOCK_C)
    offs = a[:, None, None] * sA + b[None, :, None] * sB + c[None, None, :] * sC
    mask = (a[:, None, None] < a_stop) & (b[None, :, None] < b_stop) & (c[None, None, :] < C)
    return offs, mask


@triton.jit
def _sum_ab(t):
    """Reduce a [BLOCK_A, BLOCK_B, BLOCK_C] tile to [BLOCK_C]."""
    return tl.sum(tl.sum(t, axis=0), axis=0)


@triton.jit
def _chan_merge(n_a, mean_a, m2_a, n_b, mean_b, m2_b):
    """Chan et al.: merge (count, mean, M2) of two disjoint sets of values."""
    n = n_a + n_b
    n_safe = tl.where(n > 0, n, 1.0)
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n_safe)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / n_safe)
    return n, mean, m2


@triton.jit
def _channel_shift(x_ptr, c, cmask, sC, ACC: tl.constexpr):
    """K[c] = x[a=0, b=0, c]: every program shifts channel c's values by the same K[c]."""
    return tl.load(x_ptr + c * sC, mask=cmask, other=0.0).to(ACC)


@triton.jit
def _slice_stats(x_ptr, k, a_start, a_stop, b_start, b_stop, c0, C, sA, sB, sC,
                 ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
                 BLOCK_C: tl.constexpr):
    """(count, mean, M2) per channel of the shifted values x - k over the slice: every lane of
    the tile keeps its own mean and M2 with Welford's update (no block-wide reduction inside
    the loop), and the lanes are merged once at the end with Chan's rule. The shift keeps the
    means small, so a large common offset (mean 1e4, spread 1) costs no precision.

    A lane's count needs no accumulator: the a-tiles before the current one were full along A,
    and lane row i / column j hold a value in na[i] of the a-tiles / nb[j] of the b-tiles."""
    na = (a_stop - a_start - tl.arange(0, BLOCK_A) + BLOCK_A - 1) // BLOCK_A
    nb = (b_stop - b_start - tl.arange(0, BLOCK_B) + BLOCK_B - 1) // BLOCK_B
    nb = nb[None, :, None]
    mean = tl.zeros([BLOCK_A, BLOCK_B, BLOCK_C], ACC)
    m2 = tl.zeros([BLOCK_A, BLOCK_B, BLOCK_C], ACC)
    for a0 in range(a_start, a_stop, BLOCK_A):
        for b0 in range(b_start, b_stop, BLOCK_B):
            offs, mask = _tile(a0, a_stop, b0, b_stop, c0, C, sA, sB, sC, BLOCK_A, BLOCK_B,
                               BLOCK_C)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC) - k[None, None, :]
            # this lane's count, this value included (only meaningful where mask holds)
            n = ((a0 - a_start) // BLOCK_A) * nb + (b0 - b_start) // BLOCK_B + 1
            delta = tl.where(mask, x - mean, 0.0)   # 0 in masked lanes: nothing changes
            mean += delta / n.to(ACC)
            m2 += delta * (x - mean)
    count = (na[:, None, None] * nb).to(ACC) + tl.zeros([BLOCK_A, BLOCK_B, BLOCK_C], ACC)
    count, mean, m2 = tl.reduce((count, mean, m2), 0, _chan_merge)   # over A
    return tl.reduce((count, mean, m2), 0, _chan_merge)              # over B


@triton.jit
def _finalize_forward(c, cmask, count, mean, m2, w_ptr, b_ptr, rmean_ptr, rvar_ptr,
                      mean_ptr, invstd_ptr, momentum, eps, HAS_WEIGHT: tl.constexpr,
                      HAS_BIAS: tl.constexpr, HAS_RMEAN: tl.constexpr, HAS_RVAR: tl.constexpr,
                      ACC: tl.constexpr):
    """Store mean and invstd, update the running buffers; return the per-channel scale, shift.
    momentum and eps arrive as float64 and are rounded once to ACC."""
    momentum = tl.full([], momentum, ACC)
    eps = tl.full([], eps, ACC)
    var = m2 / tl.maximum(count, 1.0)  # count >= 2 on real channels; the max guards padding
    if ACC == tl.float64:
        invstd = 1.0 / tl.sqrt(var + eps)
    else:
        invstd = 1.0 / tl.sqrt_rn(var + eps)  # IEEE-rounded, not the approximate sqrt
    tl.store(mean_ptr + c, mean, mask=cmask)
    tl.store(invstd_ptr + c, invstd, mask=cmask)
    if HAS_RMEAN:
        rm = tl.load(rmean_ptr + c, mask=cmask, other=0.0).to(ACC)
        rm = (1.0 - momentum) * rm + momentum * mean
        tl.store(rmean_ptr + c, rm.to(rmean_ptr.dtype.element_ty), mask=cmask)
    if HAS_RVAR:
        rv = tl.load(rvar_ptr + c, mask=cmask, other=0.0).to(ACC)
        rv = (1.0 - momentum) * rv + momentum * (m2 / tl.maximum(count - 1.0, 1.0))
        tl.store(rvar_ptr + c, rv.to(rvar_ptr.dtype.element_ty), mask=cmask)
    scale = invstd
    if HAS_WEIGHT:
        scale = scale * tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
    shift = -mean * scale
    if HAS_BIAS:
        shift = shift + tl.load(b_ptr + c, mask=cmask, other=0.0).to(ACC)
    return scale, shift


@triton.jit
def _apply_affine(x_ptr, y_ptr, scale, shift, a_start, a_stop, b_start, b_stop, c0, C, sA, sB,
                  sC, ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    """y = x * scale[c] + shift[c] over the slice."""
    for a0 in range(a_start, a_stop, BLOCK_A):
        for b0 in range(b_start, b_stop, BLOCK_B):
            offs, mask = _tile(a0, a_stop, b0, b_stop, c0, C, sA, sB, sC, BLOCK_A, BLOCK_B,
                               BLOCK_C)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            y = x * scale[None, None, :] + shift[None, None, :]
            tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _finalize_backward(c, cmask, m, sum_dy, sum_dy_xmu, invstd, w_ptr, dw_ptr, db_ptr,
                       HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr):
    """Store dgamma, dbeta; return k1, k2, k3 of dx = k1 * dy + k2 * (x - mean) + k3."""
    m = tl.full([], m, ACC)  # float64 argument (exact for any count), rounded once to ACC
    sum_dy_xhat = sum_dy_xmu * invstd
    k1 = invstd
    if HAS_WEIGHT:
        k1 = k1 * tl.load(w_ptr + c, mask=cmask, other=0.0).to(ACC)
        tl.store(dw_ptr + c, sum_dy_xhat, mask=cmask)
    if HAS_BIAS:
        tl.store(db_ptr + c, sum_dy, mask=cmask)
    k2 = -k1 * invstd * sum_dy_xhat / m
    k3 = -k1 * sum_dy / m
    return k1, k2, k3


@triton.jit
def _apply_dx(x_ptr, dy_ptr, dx_ptr, mean, k1, k2, k3, a_start, a_stop, b_start, b_stop, c0, C,
              sA, sB, sC, ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
              BLOCK_C: tl.constexpr):
    """dx = k1[c] * dy + k2[c] * (x - mean[c]) + k3[c] over the slice."""
    for a0 in range(a_start, a_stop, BLOCK_A):
        for b0 in range(b_start, b_stop, BLOCK_B):
            offs, mask = _tile(a0, a_stop, b0, b_stop, c0, C, sA, sB, sC, BLOCK_A, BLOCK_B,
                               BLOCK_C)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            dx = (k1[None, None, :] * dy + k2[None, None, :] * (x - mean[None, None, :])
                  + k3[None, None, :])
            tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------------------- kernels

@triton.jit
def _forward_reduce_kernel(
        x_ptr, y_ptr, w_ptr, b_ptr, rmean_ptr, rvar_ptr, mean_ptr, invstd_ptr,
        pn_ptr, pmean_ptr, pm2_ptr, A, B, C, sA, sB, sC, a_per_split, b_per_split,
        momentum: tl.float64, eps: tl.float64,
        HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RMEAN: tl.constexpr,
        HAS_RVAR: tl.constexpr, FUSED: tl.constexpr, SPLIT_B: tl.constexpr, ACC: tl.constexpr,
        BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_C: tl.constexpr):
    c0 = tl.program_id(0) * BLOCK_C
    a_start, a_stop, b_start, b_stop, s = _slice(A, B, a_per_split, b_per_split, SPLIT_B)
    c = c0 + tl.arange(0, BLOCK_C)
    cmask = c < C
    k = _channel_shift(x_ptr, c, cmask, sC, ACC)
    count, mean, m2 = _slice_stats(x_ptr, k, a_start, a_stop, b_start, b_stop, c0, C, sA, sB,
                                   sC, ACC, BLOCK_A, BLOCK_B, BLOCK_C)
    if FUSED:
        mean = mean + k
        scale, shift = _finalize_forward(c, cmask, count, mean, m2, w_ptr, b_ptr, rmean_ptr,
                                         rvar_ptr, mean_ptr, invstd_ptr, momentum, eps,
                                         HAS_WEIGHT, HAS_BIAS, HAS_RMEAN, HAS_RVAR, ACC)
        _apply_affine(x_ptr, y_ptr, scale, shift, a_start, a_stop, b_start, b_stop, c0, C, sA,
                      sB, sC, ACC, BLOCK_A, BLOCK_B, BLOCK_C)
    else:
        tl.store(pn_ptr + s * C + c, count, mask=cmask)
        tl.store(pmean_ptr + s * C + c, mean, mask=cmask)
        tl.store(pm2_ptr + s * C + c, m2, mask=cmask)


@triton.jit
def _forward_finalize_kernel(
        pn_ptr, pmean_ptr, pm2_ptr, split, C, x_ptr, sC, w_ptr, b_ptr, rmean_ptr, rvar_ptr,
        mean_ptr, invstd_ptr, scale_ptr, shift_ptr, momentum: tl.float64, eps: tl.float64,
        HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RMEAN: tl.constexpr,
        HAS_RVAR: tl.constexpr, ACC: tl.constexpr, BLOCK: tl.constexpr):
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cmask = c < C
    count = tl.zeros([BLOCK], ACC)
    mean = tl.zeros([BLOCK], ACC)
    m2 = tl.zeros([BLOCK], ACC)
    for s in range(0, split):
        n_b = tl.load(pn_ptr + s * C + c, mask=cmask, other=0.0)
        mean_b = tl.load(pmean_ptr + s * C + c, mask=cmask, other=0.0)
        m2_b = tl.load(pm2_ptr + s * C + c, mask=cmask, other=0.0)
        count, mean, m2 = _chan_merge(count, mean, m2, n_b, mean_b, m2_b)
    mean = mean + _channel_shift(x_ptr, c, cmask, sC, ACC)
    scale, shift = _finalize_forward(c, cmask, count, mean, m2, w_ptr, b_ptr, rmean_ptr,
                                     rvar_ptr, mean_ptr, invstd_ptr, momentum, eps,
                                     HAS_WEIGHT, HAS_BIAS, HAS_RMEAN, HAS_RVAR, ACC)
    tl.store(scale_ptr + c, scale, mask=cmask)
    tl.store(shift_ptr + c, shift, mask=cmask)


@triton.jit
def _forward_apply_kernel(
        x_ptr, y_ptr, scale_ptr, shift_ptr, A, B, C, sA, sB, sC, a_per_split, b_per_split,
        SPLIT_B: tl.constexpr, ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
        BLOCK_C: tl.constexpr):
    c0 = tl.program_id(0) * BLOCK_C
    a_start, a_stop, b_start, b_stop, _ = _slice(A, B, a_per_split, b_per_split, SPLIT_B)
    c = c0 + tl.arange(0, BLOCK_C)
    cmask = c < C
    scale = tl.load(scale_ptr + c, mask=cmask, other=0.0)
    shift = tl.load(shift_ptr + c, mask=cmask, other=0.0)
    _apply_affine(x_ptr, y_ptr, scale, shift, a_start, a_stop, b_start, b_stop, c0, C, sA, sB,
                  sC, ACC, BLOCK_A, BLOCK_B, BLOCK_C)


@triton.jit
def _backward_reduce_kernel(
        x_ptr, dy_ptr, dx_ptr, mean_ptr, invstd_ptr, w_ptr, dw_ptr, db_ptr, psdy_ptr,
        psdyx_ptr, A, B, C, sA, sB, sC, a_per_split, b_per_split, m: tl.float64,
        HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, FUSED: tl.constexpr,
        SPLIT_B: tl.constexpr, ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
        BLOCK_C: tl.constexpr):
    c0 = tl.program_id(0) * BLOCK_C
    a_start, a_stop, b_start, b_stop, s = _slice(A, B, a_per_split, b_per_split, SPLIT_B)
    c = c0 + tl.arange(0, BLOCK_C)
    cmask = c < C
    mean = tl.load(mean_ptr + c, mask=cmask, other=0.0)
    acc_dy = tl.zeros([BLOCK_A, BLOCK_B, BLOCK_C], ACC)
    acc_dyx = tl.zeros([BLOCK_A, BLOCK_B, BLOCK_C], ACC)
    for a0 in range(a_start, a_stop, BLOCK_A):
        for b0 in range(b_start, b_stop, BLOCK_B):
            offs, mask = _tile(a0, a_stop, b0, b_stop, c0, C, sA, sB, sC, BLOCK_A, BLOCK_B,
                               BLOCK_C)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(ACC)
            dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(ACC)
            acc_dy += dy
            acc_dyx += dy * (x - mean[None, None, :])
    sum_dy = _sum_ab(acc_dy)
    sum_dyx = _sum_ab(acc_dyx)
    if FUSED:
        invstd = tl.load(invstd_ptr + c, mask=cmask, other=0.0)
        k1, k2, k3 = _finalize_backward(c, cmask, m, sum_dy, sum_dyx, invstd, w_ptr, dw_ptr,
                                        db_ptr, HAS_WEIGHT, HAS_BIAS, ACC)
        _apply_dx(x_ptr, dy_ptr, dx_ptr, mean, k1, k2, k3, a_start, a_stop, b_start, b_stop, c0,
                  C, sA, sB, sC, ACC, BLOCK_A, BLOCK_B, BLOCK_C)
    else:
        tl.store(psdy_ptr + s * C + c, sum_dy, mask=cmask)
        tl.store(psdyx_ptr + s * C + c, sum_dyx, mask=cmask)


@triton.jit
def _backward_finalize_kernel(
        psdy_ptr, psdyx_ptr, split, C, m: tl.float64, invstd_ptr, w_ptr, dw_ptr, db_ptr,
        k_ptr,
        HAS_WEIGHT: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr,
        BLOCK: tl.constexpr):
    c = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cmask = c < C
    sum_dy = tl.zeros([BLOCK], ACC)
    sum_dyx = tl.zeros([BLOCK], ACC)
    for s in range(0, split):
        sum_dy += tl.load(psdy_ptr + s * C + c, mask=cmask, other=0.0)
        sum_dyx += tl.load(psdyx_ptr + s * C + c, mask=cmask, other=0.0)
    invstd = tl.load(invstd_ptr + c, mask=cmask, other=0.0)
    k1, k2, k3 = _finalize_backward(c, cmask, m, sum_dy, sum_dyx, invstd, w_ptr, dw_ptr, db_ptr,
                                    HAS_WEIGHT, HAS_BIAS, ACC)
    tl.store(k_ptr + c, k1, mask=cmask)
    tl.store(k_ptr + C + c, k2, mask=cmask)
    tl.store(k_ptr + 2 * C + c, k3, mask=cmask)


@triton.jit
def _backward_dx_kernel(
        x_ptr, dy_ptr, dx_ptr, mean_ptr, k_ptr, A, B, C, sA, sB, sC, a_per_split, b_per_split,
        SPLIT_B: tl.constexpr, ACC: tl.constexpr, BLOCK_A: tl.constexpr, BLOCK_B: tl.constexpr,
        BLOCK_C: tl.constexpr):
    c0 = tl.program_id(0) * BLOCK_C
    a_start, a_stop, b_start, b_stop, _ = _slice(A, B, a_per_split, b_per_split, SPLIT_B)
    c = c0 + tl.arange(0, BLOCK_C)
    cmask = c < C
    mean = tl.load(mean_ptr + c, mask=cmask, other=0.0)
    k1 = tl.load(k_ptr + c, mask=cmask, other=0.0)
    k2 = tl.load(k_ptr + C + c, mask=cmask, other=0.0)
    k3 = tl.load(k_ptr + 2 * C + c, mask=cmask, other=0.0)
    _apply_dx(x_ptr, dy_ptr, dx_ptr, mean, k1, k2, k3, a_start, a_stop, b_start, b_stop, c0, C,
              sA, sB, sC, ACC, BLOCK_A, BLOCK_B, BLOCK_C)


# ----------------------------------------------------------------------------- host side

INTERPRETED = not isinstance(_forward_reduce_kernel, triton.runtime.JITFunction)
"""True when TRITON_INTERPRET=1 was set as this module was imported: the kernels then run in
Triton's CPU interpreter (and accept CPU tensors); otherwise they compile for CUDA."""


@dataclass(frozen=True)
class LaunchConfig:
    """Tile sizes (powers of two) and how many slices each channel block's values are cut
    into along A (``split_a``) and along B (``split_b``); one program per slice."""

    block_a: int
    block_b: int
    block_c: int
    split_a: int
    split_b: int = 1
    num_warps: int = 4

    def __post_init__(self):
        for name in ("block_a", "block_b", "block_c"):
            v = getattr(self, name)
            if v < 1 or v & (v - 1):
                raise ValueError(f"{name} must be a power of two, got {v}")
        for name in ("split_a", "split_b"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class _Layout:
    """The (A, C, B) view of a tensor: sizes and element strides (of A, B, C, in that order)."""

    A: int
    C: int
    B: int
    strides: tuple[int, int, int]
    memory_format: torch.memory_format


def layout_of(x: torch.Tensor) -> _Layout | None:
    """The (A, C, B) view of x without copying, or None when x needs a copy first."""
    N, C = x.shape[0], x.shape[1]
    S = math.prod(x.shape[2:])
    if x.is_contiguous():
        return _Layout(N, C, S, (C * S, 1, S), torch.contiguous_format)
    cl = {4: torch.channels_last, 5: torch.channels_last_3d}.get(x.dim())
    if cl is not None and x.is_contiguous(memory_format=cl):
        return _Layout(N * S, C, 1, (C, 1, 1), cl)
    return None


def _pow2_at_most(n: int, cap: int) -> int:
    return min(cap, triton.next_power_of_2(max(1, n)))


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _target_programs(device: torch.device) -> int:
    """About four programs per SM on CUDA; 4 on other devices (the interpreter)."""
    if device.type == "cuda":
        return 4 * _sm_count(device.index if device.index is not None else 0)
    return 4


def _device_guard(x: torch.Tensor):
    """Launch on x's GPU (Triton launches on the current device)."""
    return torch.cuda.device(x.device) if x.is_cuda else contextlib.nullcontext()


def launch_config(lay: _Layout, device: torch.device, tile: int = 4096,
                  target_programs: int | None = None) -> LaunchConfig:
    """Heuristic launch configuration: tiles of about ``tile`` elements (at most 1024 along B,
    64 along C), and enough slices that about ``target_programs`` programs (default: 4 per SM
    of ``device``) are in flight. Slices are cut along A first (whole rows per program) and
    then along B, so that a small batch with a large H * W (A = N small) still fills the GPU."""
    if lay.B > 1:   # NCHW: one channel per program, vectors along the spatial axis
        block_c, block_b = 1, _pow2_at_most(lay.B, min(1024, tile))
    else:           # channels last / (N, C): vectors along the channel axis
        block_c, block_b = _pow2_at_most(lay.C, min(64, tile)), 1
    block_a = _pow2_at_most(lay.A, max(1, tile // (block_b * block_c)))
    target = target_programs or _target_programs(device)
    slices = max(1, triton.cdiv(target, triton.cdiv(lay.C, block_c)))  # per channel block
    split_a = min(triton.cdiv(lay.A, block_a), slices)
    split_b = min(triton.cdiv(lay.B, block_b), max(1, slices // split_a))
    warps = 8 if block_a * block_b * block_c >= 2048 else 4
    return LaunchConfig(block_a, block_b, block_c, split_a, split_b, warps)


@dataclass(frozen=True)
class _Grid:
    """Rows (of A) and columns (of B) per slice, and the number of slices along each; every
    slice is non-empty. ``shape``: the launch grid (channel blocks, slices of A, slices of B)."""

    a_per: int
    split_a: int
    b_per: int
    split_b: int
    shape: tuple[int, int, int]

    @property
    def slices(self) -> int:
        return self.split_a * self.split_b


def _grid(lay: _Layout, cfg: LaunchConfig) -> _Grid:
    a_per = triton.cdiv(triton.cdiv(lay.A, cfg.block_a), cfg.split_a) * cfg.block_a
    b_per = triton.cdiv(triton.cdiv(lay.B, cfg.block_b), cfg.split_b) * cfg.block_b
    split_a, split_b = triton.cdiv(lay.A, a_per), triton.cdiv(lay.B, b_per)
    return _Grid(a_per, split_a, b_per, split_b,
                 (triton.cdiv(lay.C, cfg.block_c), split_a, split_b))


def _acc(dtype: torch.dtype):
    return (tl.float64, torch.float64) if dtype == torch.float64 else (tl.float32, torch.float32)


def _prepare(x: torch.Tensor) -> tuple[torch.Tensor, _Layout]:
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"Triton batch norm supports {SUPPORTED_DTYPES}, got {x.dtype}")
    lay = layout_of(x)
    if lay is None:
        x = x.contiguous()
        lay = layout_of(x)
    return x, lay


def _like(t: torch.Tensor, lay: _Layout) -> torch.Tensor:
    """t in the memory format of the layout (so that lay.strides address it)."""
    return t.contiguous(memory_format=lay.memory_format)


def _placeholder(device, dtype):
    """A one-element tensor for pointer arguments a kernel never touches (its HAS_* flag is
    off). Never an alias of a real argument: the interpreter copies every tensor argument to
    host memory and back, and the copy-back of an alias would undo the kernel's stores."""
    return torch.empty(1, dtype=dtype, device=device)


def _per_channel(t):
    """t as a contiguous 1-D tensor: a view of t when t is contiguous, else a copy (the
    kernels address per-channel tensors as c = 0 .. C-1 with stride 1)."""
    return None if t is None else t.contiguous().view(-1)


def _copy_back(buffer, used):
    """Make an in-place update of a running buffer land in the caller's tensor when the kernel
    updated a contiguous copy of it."""
    if buffer is not None and used.data_ptr() != buffer.data_ptr():
        buffer.copy_(used.view(buffer.shape))


def forward(x, weight, bias, running_mean, running_var, momentum, eps, config=None):
    """Training-mode forward. Returns (y, x_used, mean, invstd); x_used is x itself unless a
    copy to NCHW-contiguous was needed. Updates the running buffers in place (strided ones
    too: the kernel updates a contiguous copy, copied back)."""
    buffers = running_mean, running_var
    weight, bias, running_mean, running_var = map(_per_channel, (weight, bias, *buffers))
    y, x, mean, invstd = _forward(x, weight, bias, running_mean, running_var, momentum, eps,
                                  config)
    _copy_back(buffers[0], running_mean)
    _copy_back(buffers[1], running_var)
    return y, x, mean, invstd


def _forward(x, weight, bias, running_mean, running_var, momentum, eps, config):
    x, lay = _prepare(x)
    acc_tl, acc_torch = _acc(x.dtype)
    cfg = config or launch_config(lay, x.device)
    g = _grid(lay, cfg)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=lay.memory_format)
    mean = torch.empty(lay.C, dtype=acc_torch, device=x.device)
    invstd = torch.empty_like(mean)
    dummy = _placeholder(x.device, acc_torch)
    flags = dict(HAS_WEIGHT=weight is not None, HAS_BIAS=bias is not None,
                 HAS_RMEAN=running_mean is not None, HAS_RVAR=running_var is not None)
    w, b = (weight if weight is not None else dummy), (bias if bias is not None else dummy)
    rm = running_mean if running_mean is not None else dummy
    rv = running_var if running_var is not None else dummy
    blocks = dict(BLOCK_A=cfg.block_a, BLOCK_B=cfg.block_b, BLOCK_C=cfg.block_c,
                  SPLIT_B=g.split_b > 1)
    fused = g.slices == 1
    if fused:
        parts = (dummy, dummy, dummy)
    else:
        parts = tuple(torch.empty(g.slices, lay.C, dtype=acc_torch, device=x.device)
                      for _ in range(3))
    sizes = (lay.A, lay.B, lay.C, *lay.strides, g.a_per, g.b_per)
    _forward_reduce_kernel[g.shape](
        x, y, w, b, rm, rv, mean, invstd, *parts, *sizes, float(momentum), float(eps),
        FUSED=fused, ACC=acc_tl, num_warps=cfg.num_warps, **flags, **blocks)
    if not fused:
        scale, shift = torch.empty_like(mean), torch.empty_like(mean)
        fin_block = _pow2_at_most(lay.C, 256)
        _forward_finalize_kernel[(triton.cdiv(lay.C, fin_block),)](
            *parts, g.slices, lay.C, x, lay.strides[2], w, b, rm, rv, mean, invstd, scale,
            shift, float(momentum), float(eps), ACC=acc_tl, BLOCK=fin_block, **flags)
        _forward_apply_kernel[g.shape](
            x, y, scale, shift, *sizes, ACC=acc_tl, num_warps=cfg.num_warps, **blocks)
    return y, x, mean, invstd


def backward(dy, x, weight, has_bias, mean, invstd, config=None):
    """Closed-form backward for the forward above. Returns (dx, dweight, dbias) in float32
    (float64 for float64 input) for dweight/dbias, dx in x's dtype and layout."""
    weight = _per_channel(weight)
    lay = layout_of(x)
    dy = _like(dy.to(x.dtype), lay)
    acc_tl, acc_torch = _acc(x.dtype)
    cfg = config or launch_config(lay, x.device)
    g = _grid(lay, cfg)
    m = lay.A * lay.B
    dx = torch.empty(x.shape, dtype=x.dtype, device=x.device,
                     memory_format=lay.memory_format)
    dw = torch.empty(lay.C, dtype=acc_torch, device=x.device) if weight is not None else None
    db = torch.empty(lay.C, dtype=acc_torch, device=x.device) if has_bias else None
    dummy = _placeholder(x.device, acc_torch)
    flags = dict(HAS_WEIGHT=weight is not None, HAS_BIAS=has_bias)
    w = weight if weight is not None else dummy
    dw_, db_ = (dw if dw is not None else dummy), (db if db is not None else dummy)
    blocks = dict(BLOCK_A=cfg.block_a, BLOCK_B=cfg.block_b, BLOCK_C=cfg.block_c,
                  SPLIT_B=g.split_b > 1)
    fused = g.slices == 1
    parts = (dummy, dummy) if fused else tuple(
        torch.empty(g.slices, lay.C, dtype=acc_torch, device=x.device) for _ in range(2))
    sizes = (lay.A, lay.B, lay.C, *lay.strides, g.a_per, g.b_per)
    _backward_reduce_kernel[g.shape](
        x, dy, dx, mean, invstd, w, dw_, db_, *parts, *sizes, float(m), FUSED=fused,
        ACC=acc_tl, num_warps=cfg.num_warps, **flags, **blocks)
    if not fused:
        k = torch.empty(3, lay.C, dtype=acc_torch, device=x.device)
        fin_block = _pow2_at_most(lay.C, 256)
        _backward_finalize_kernel[(triton.cdiv(lay.C, fin_block),)](
            *parts, g.slices, lay.C, float(m), invstd, w, dw_, db_, k, ACC=acc_tl,
            BLOCK=fin_block, **flags)
        _backward_dx_kernel[g.shape](
            x, dy, dx, mean, k, *sizes, ACC=acc_tl, num_warps=cfg.num_warps, **blocks)
    return dx, dw, db


class TritonBatchNormFunction(torch.autograd.Function):
    """Training-mode batch normalization on the fused Triton kernels (same arguments as
    :class:`solutions.torch_bn.reference.BatchNormFunction`)."""

    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, momentum, eps):
        with _device_guard(input):
            y, x_used, mean, invstd = forward(input, weight, bias, running_mean, running_var,
                                              momentum, eps)
        ctx.save_for_backward(x_used, weight, mean, invstd)
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.bias_shape = None if bias is None else bias.shape
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        x, weight, mean, invstd = ctx.saved_tensors
        with _device_guard(x):
            dx, dw, db = backward(grad_output, x, weight, ctx.bias_dtype is not None, mean,
                                  invstd)
        dweight = dw.to(weight.dtype).view(weight.shape) if ctx.needs_input_grad[1] else None
        dbias = db.to(ctx.bias_dtype).view(ctx.bias_shape) if ctx.needs_input_grad[2] else None
        return (dx if ctx.needs_input_grad[0] else None), dweight, dbias, None, None, None, None
