"""Batch normalization in NumPy, with the semantics of ``torch.nn.functional.batch_norm``.

Conventions
-----------
* Input shapes: (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W). Axis 1 is the channel
  (feature) axis; statistics are taken per channel over every other axis, i.e. over
  ``m = N * L`` (or ``N * H * W``, ``N * D * H * W``) values. ``weight`` (gamma) and ``bias``
  (beta) have one entry per channel.
* Normalization uses the biased batch variance ``(1/m) * sum (x - mean)^2`` and
  ``eps = 1e-5``: ``y = gamma * (x - mean) / sqrt(var + eps) + beta``.
* Running statistics follow PyTorch: ``running = (1 - momentum) * running + momentum * batch``
  with ``momentum = 0.1``; the running variance is fed the UNBIASED batch variance
  ``m / (m - 1) * var``. They are updated in place, in training mode only. A fresh
  ``running_var`` starts at ones, ``running_mean`` at zeros.
* Statistics are computed in two passes (mean, then the mean of squared deviations), with
  float64 accumulation, never as ``E[x^2] - E[x]^2``, which cancels catastrophically when
  the mean is large compared with the spread.
* Output has the input's dtype.

Backward passes (training mode, batch statistics): :func:`batch_norm_backward_staged` walks the
computation graph node by node; :func:`batch_norm_backward` is the closed form
``dx = gamma * invstd / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["batch_norm", "batch_norm_forward", "batch_norm_backward",
           "batch_norm_backward_staged", "BatchNormCache", "channel_axes"]

_FLOAT_TYPES = (np.float16, np.float32, np.float64)


def channel_axes(ndim: int) -> tuple[int, ...]:
    """The axes statistics are reduced over: every axis but the channel axis 1."""
    return (0,) + tuple(range(2, ndim))


_NOT_FINITE = "batch_norm input contains NaN or infinity; the statistics of its channels " \
    "would be NaN"


def _check_input(x, check_finite: bool = True) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim not in (2, 3, 4, 5):
        raise ValueError(
            f"batch_norm expects input of shape (N, C), (N, C, L), (N, C, H, W) or "
            f"(N, C, D, H, W); got a {x.ndim}-D array of shape {x.shape}")
    if x.dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"batch_norm expects a floating-point array, got dtype {x.dtype}")
    if x.shape[1] == 0 or x.size == 0:
        raise ValueError(f"batch_norm got an empty input of shape {x.shape}")
    if check_finite and not np.isfinite(x).all():
        raise ValueError(_NOT_FINITE)
    return x


def _check_vector(v, name: str, channels: int, required: bool = False):
    if v is None:
        if required:
            raise ValueError(f"{name} is required here but is None")
        return None
    if not isinstance(v, np.ndarray):
        v = np.asarray(v)
    if v.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), one entry per channel of an "
                         f"input with {channels} channels; got shape {v.shape}")
    if v.dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"{name} must be a floating-point array, got dtype {v.dtype}")
    return v


def _broadcast_shape(ndim: int, channels: int) -> tuple[int, ...]:
    return (1, channels) + (1,) * (ndim - 2)


@dataclass
class BatchNormCache:
    """Intermediate values of a training-mode forward pass, kept for the backward passes.

    ``mean`` and ``var`` (biased) are the float64 batch statistics, ``std = sqrt(var + eps)``,
    ``invstd = 1 / std``; ``x_hat = (x - mean) * invstd`` has the input's shape and the compute
    dtype (float64 for float64 input, float32 otherwise); ``weight`` is gamma (ones when the
    forward had none); ``m`` is the number of values per channel.
    """

    x_hat: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    std: np.ndarray
    invstd: np.ndarray
    weight: np.ndarray
    m: int
    eps: float
    axes: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def xc(self) -> np.ndarray:
        """The centred input ``x - mean`` (recomputed as ``x_hat * std``)."""
        bshape = _broadcast_shape(len(self.shape), self.shape[1])
        return self.x_hat * self.std.astype(self.x_hat.dtype).reshape(bshape)


def _compute_dtype(dtype) -> np.dtype:
    """float64 stays float64; float16 and float32 are computed in float32."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _per_channel(v: np.ndarray, dtype) -> np.ndarray:
    """A per-channel vector shaped (C, 1) to broadcast over arrays viewed as (N, C, L)."""
    return np.asarray(v).astype(dtype)[:, None]


def batch_norm_forward(x, weight=None, bias=None, eps: float = 1e-5):
    """Training-mode forward pass with batch statistics; returns ``(y, cache)``.

    The input is viewed as (N, C, L) (L = 1 for fully connected input, H*W for images), so the
    statistics of channel c are taken over the ``m = N * L`` values ``x[:, c, :]``:

    1. ``mean = sum(x) / m`` (accumulated in float64);
    2. ``x_hat = x - mean``, then ``var = sum(x_hat**2) / m`` (two passes: no cancellation);
    3. ``x_hat *= 1 / sqrt(var + eps)``;
    4. ``y = weight * x_hat + bias``.
    """
    x = _check_input(x, check_finite=False)  # checked on the channel sums below, for free
    N, C = x.shape[:2]
    weight = _check_vector(weight, "weight", C)
    bias = _check_vector(bias, "bias", C)
    m = x.size // C
    if m < 2:
        raise ValueError(f"Expected more than 1 value per channel when training, got input "
                         f"size {tuple(x.shape)}")
    cdt = _compute_dtype(x.dtype)
    x3 = x.reshape(N, C, -1).astype(cdt, copy=False)
    mean = x3.sum(axis=(0, 2), dtype=np.float64) / m
    if not np.isfinite(mean).all():  # a NaN or inf anywhere in a channel reaches its sum
        raise ValueError(_NOT_FINITE)
    x_hat = np.subtract(x3, _per_channel(mean, cdt))
    var = np.vecdot(x_hat, x_hat).sum(axis=0, dtype=np.float64) / m
    std = np.sqrt(var + eps)
    invstd = 1.0 / std
    x_hat *= _per_channel(invstd, cdt)
    if weight is not None:
        y = np.multiply(x_hat, _per_channel(weight, cdt))
    else:
        y = x_hat.copy()
    if bias is not None:
        y += _per_channel(bias, cdt)
    w = np.ones(C, dtype=np.float64) if weight is None else weight.astype(np.float64)
    cache = BatchNormCache(x_hat=x_hat.reshape(x.shape), mean=mean, var=var, std=std,
                           invstd=invstd, weight=w, m=m, eps=float(eps),
                           axes=channel_axes(x.ndim), shape=tuple(x.shape))
    return y.reshape(x.shape).astype(x.dtype, copy=False), cache


def batch_norm(x, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5):
    """Batch normalization with the signature and semantics of
    ``torch.nn.functional.batch_norm``.

    Training mode normalizes with the batch mean and biased variance and, where
    ``running_mean``/``running_var`` are given, updates them IN PLACE:
    ``running_mean = (1 - momentum) * running_mean + momentum * mean`` and
    ``running_var = (1 - momentum) * running_var + momentum * var * m / (m - 1)``.
    Eval mode (``training=False``) normalizes with the running statistics, which must be given.
    """
    x = _check_input(x, check_finite=not training)  # training: batch_norm_forward checks
    C = x.shape[1]
    running_mean = _check_vector(running_mean, "running_mean", C, required=not training)
    running_var = _check_vector(running_var, "running_var", C, required=not training)
    weight = _check_vector(weight, "weight", C)
    bias = _check_vector(bias, "bias", C)
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.floating)):
        raise TypeError(f"momentum must be a number, got {type(momentum).__name__}")
    if not 0.0 <= float(momentum) <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    if not float(eps) >= 0.0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    if training:
        y, cache = batch_norm_forward(x, weight, bias, eps)
        if running_mean is not None:
            running_mean *= 1.0 - momentum
            running_mean += (momentum * cache.mean).astype(running_mean.dtype)
        if running_var is not None:
            unbiased = cache.var * cache.m / (cache.m - 1)
            running_var *= 1.0 - momentum
            running_var += (momentum * unbiased).astype(running_var.dtype)
        return y
    bshape = _broadcast_shape(x.ndim, C)
    cdt = _compute_dtype(x.dtype)
    invstd = (1.0 / np.sqrt(running_var.astype(np.float64) + eps)).astype(cdt)
    scale = invstd if weight is None else invstd * weight.astype(cdt)
    shift = -running_mean.astype(cdt) * scale
    if bias is not None:
        shift = shift + bias.astype(cdt)
    y = x.astype(cdt, copy=False) * scale.reshape(bshape) + shift.reshape(bshape)
    return y.astype(x.dtype, copy=False)


def _check_dy(dy, cache: BatchNormCache) -> np.ndarray:
    dy = np.asarray(dy)
    if dy.shape != cache.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward input had {cache.shape}")
    return dy


def batch_norm_backward(dy, cache: BatchNormCache):
    """Closed-form backward pass; returns ``(dx, dweight, dbias)``.

    With ``x_hat = (x - mean) * invstd`` and sums over the ``m`` values of each channel:
    ``dbias = sum(dy)``, ``dweight = sum(dy * x_hat)`` and
    ``dx = weight * invstd / m * (m * dy - sum(dy) - x_hat * sum(dy * x_hat))``,
    computed as ``weight * invstd * (dy - mean(dy) - x_hat * mean(dy * x_hat))``.
    The mean and variance depend on x: the two subtracted terms are their contribution.
    """
    dy = _check_dy(dy, cache)
    N, C = cache.shape[:2]
    cdt = cache.x_hat.dtype
    dy3 = dy.reshape(N, C, -1).astype(cdt, copy=False)
    x_hat = cache.x_hat.reshape(N, C, -1)
    dbias = dy3.sum(axis=(0, 2), dtype=np.float64)
    dweight = np.vecdot(dy3, x_hat).sum(axis=0, dtype=np.float64)
    # dx = weight * invstd * (dy - [mean(dy) + x_hat * mean(dy * x_hat)]), built in one buffer
    dx = np.multiply(x_hat, _per_channel(dweight / cache.m, cdt))
    dx += _per_channel(dbias / cache.m, cdt)
    np.subtract(dy3, dx, out=dx)
    dx *= _per_channel(cache.weight * cache.invstd, cdt)
    return dx.reshape(cache.shape).astype(dy.dtype, copy=False), dweight, dbias


def batch_norm_backward_staged(dy, cache: BatchNormCache):
    """Backward pass node by node through the forward graph; returns ``(dx, dweight, dbias)``.

    Forward graph: ``mean = sum(x)/m``; ``xc = x - mean``; ``var = sum(xc**2)/m``;
    ``std = sqrt(var + eps)``; ``invstd = 1/std``; ``x_hat = xc * invstd``;
    ``y = weight * x_hat + bias``. Each line below reverses one of these.
    """
    out_dtype = _check_dy(dy, cache).dtype
    dy = np.asarray(dy, dtype=np.float64)
    ax, m = cache.axes, cache.m
    bshape = _broadcast_shape(len(cache.shape), cache.shape[1])
    xc = cache.xc.astype(np.float64)
    x_hat = cache.x_hat.astype(np.float64)
    std, invstd = cache.std.reshape(bshape), cache.invstd.reshape(bshape)
    # y = weight * x_hat + bias
    dbias = dy.sum(axis=ax)
    dweight = (dy * x_hat).sum(axis=ax)
    dx_hat = dy * cache.weight.reshape(bshape)
    # x_hat = xc * invstd  (xc feeds both x_hat and var)
    dinvstd = (dx_hat * xc).sum(axis=ax, keepdims=True)
    dxc = dx_hat * invstd
    # invstd = 1 / std
    dstd = -dinvstd / std**2
    # std = sqrt(var + eps)
    dvar = dstd * 0.5 / std
    # var = sum(xc**2) / m
    dxc = dxc + 2.0 * xc * dvar / m
    # xc = x - mean
    dmean = -dxc.sum(axis=ax, keepdims=True)
    dx = dxc
    # mean = sum(x) / m
    dx = dx + dmean / m
    return dx.astype(out_dtype, copy=False), dweight, dbias
