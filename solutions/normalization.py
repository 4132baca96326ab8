"""Normalizations other than batch norm, in NumPy: layer norm, group norm, instance norm; plus
the small computations the normalization chapters share (input scaling and gradient descent on
a quadratic, Algorithm 2's population statistics, the momentum conventions).

Conventions
-----------
* Every normalization here computes ``y = weight * (x - mean) / sqrt(var + eps) + bias`` with
  the biased (1/K) variance of the K values normalized together and ``eps = 1e-5``, as batch
  normalization does (:mod:`solutions.batchnorm`). They differ only in WHICH values are
  normalized together:

  - batch norm: per channel, over the batch and the spatial positions (axes 0, 2, 3 of an
    (N, C, H, W) input);
  - :func:`layer_norm`: per example, over its last ``len(normalized_shape)`` axes (for an
    (N, C, H, W) input and ``normalized_shape = (C, H, W)``: over all of one example's values);
    ``weight`` and ``bias`` have shape ``normalized_shape`` (one per normalized value), as in
    ``torch.nn.functional.layer_norm``;
  - :func:`group_norm`: per example and per group of ``C / G`` consecutive channels, over the
    group's channels and all spatial positions; ``weight`` and ``bias`` have one entry per
    channel, as in ``torch.nn.functional.group_norm``;
  - :func:`instance_norm`: group norm with ``G = C`` (per example and per channel, over the
    spatial positions). Group norm with ``G = 1`` normalizes the same values as layer norm over
    (C, H, W); only the shape of its affine parameters differs (per channel, not per value).

  None of them depends on the other examples of the batch, so they behave identically in
  training and at inference and keep no running statistics.
* Statistics are computed in float64 in two passes (mean, then mean of squared deviations).
  Output has the input's dtype.
* Backward passes (:func:`layer_norm_backward`, :func:`group_norm_backward`) use the closed form
  of batch norm's backward applied to each normalized set of K values:
  ``dx = invstd * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat))`` with
  ``dx_hat = dy * weight``.
* Momentum conventions for running statistics (:func:`momentum_to_pytorch`): PyTorch (and this
  course) write ``running = (1 - momentum) * running + momentum * batch``, so ``momentum`` is
  the weight of the NEW batch (default 0.1); Keras and CS231n write
  ``running = momentum * running + (1 - momentum) * batch``, the weight of the OLD value
  (Keras default 0.99, CS231n's assignment 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["NormCache", "layer_norm", "layer_norm_forward", "layer_norm_backward",
           "group_norm", "group_norm_forward", "group_norm_backward", "instance_norm",
           "normalized_sets", "least_squares_gd", "gd_steps_to_tolerance",
           "hessian_condition_number", "standardize", "population_statistics",
           "population_batch_norm", "momentum_to_pytorch", "momentum_from_pytorch",
           "running_average_half_life", "EPS"]

EPS = 1e-5
_FLOAT_TYPES = (np.float16, np.float32, np.float64)


@dataclass
class NormCache:
    """What a forward pass keeps for its backward pass.

    ``x_hat`` has shape (R, K): R sets of K values normalized together, in float64;
    ``invstd`` (R, 1) is ``1 / sqrt(var + eps)`` per set; ``shape`` the input's shape;
    ``kind`` is ``"layer"`` or ``"group"``; ``weight`` is the affine scale broadcast to the
    input's shape (ones when the forward had none); ``param_shape`` is the shape of the
    weight/bias the forward accepted; ``dtype`` the input's dtype.
    """

    x_hat: np.ndarray
    invstd: np.ndarray
    shape: tuple[int, ...]
    kind: str
    weight: np.ndarray
    param_shape: tuple[int, ...]
    dtype: np.dtype


def _check_float(x, name: str = "input") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.type not in _FLOAT_TYPES:
        raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}")
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    return x


def _check_param(v, name: str, shape: tuple[int, ...]):
    if v is None:
        return None
    v = _check_float(v, name)
    if v.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {v.shape}")
    return v.astype(np.float64)


def _normalize_rows(rows: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """x_hat and invstd of each row of a float64 (R, K) array (biased variance)."""
    mean = rows.mean(axis=1, keepdims=True)
    centred = rows - mean
    var = (centred * centred).mean(axis=1, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    return centred * invstd, invstd


def _check_eps(eps: float) -> float:
    if not float(eps) >= 0.0:
        raise ValueError(f"eps must be non-negative, got {eps}")
    return float(eps)


# ------------------------------------------------------------------------------ layer norm


def layer_norm_forward(x, normalized_shape: Sequence[int] | int, weight=None, bias=None,
                       eps: float = EPS):
    """Layer normalization (Ba et al., 2016) with the semantics of
    ``torch.nn.functional.layer_norm``; returns ``(y, cache)``.

    Each example (every index of the leading axes) is normalized over its last
    ``len(normalized_shape)`` axes, which must equal ``normalized_shape``; ``weight`` and
    ``bias`` (optional) have shape ``normalized_shape``.
    """
    x = _check_float(x)
    if isinstance(normalized_shape, int | np.integer):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != normalized_shape:
        raise ValueError(f"layer_norm: the input's last axes {x.shape} must be "
                         f"normalized_shape {normalized_shape}")
    eps = _check_eps(eps)
    weight = _check_param(weight, "weight", normalized_shape)
    bias = _check_param(bias, "bias", normalized_shape)
    K = int(np.prod(normalized_shape))
    rows = x.astype(np.float64).reshape(-1, K)
    x_hat, invstd = _normalize_rows(rows, eps)
    w = np.ones(normalized_shape) if weight is None else weight
    y = x_hat.reshape(x.shape) * w
    if bias is not None:
        y = y + bias
    cache = NormCache(x_hat=x_hat, invstd=invstd, shape=tuple(x.shape), kind="layer",
                      weight=np.broadcast_to(w, x.shape), param_shape=normalized_shape,
                      dtype=x.dtype)
    return y.astype(x.dtype, copy=False), cache


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = EPS) -> np.ndarray:
    """``torch.nn.functional.layer_norm(x, normalized_shape, weight, bias, eps)`` in NumPy."""
    return layer_norm_forward(x, normalized_shape, weight, bias, eps)[0]


def _backward_rows(dy: np.ndarray, cache: NormCache) -> np.ndarray:
    """dx for the normalized sets of ``cache``, given dy of the input's shape."""
    R, K = cache.x_hat.shape
    dx_hat = (np.asarray(dy, dtype=np.float64) * cache.weight).reshape(R, K)
    x_hat = cache.x_hat
    dx = cache.invstd * (dx_hat - dx_hat.mean(axis=1, keepdims=True)
                         - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True))
    return dx.reshape(cache.shape)


def _check_dy(dy, cache: NormCache) -> np.ndarray:
    dy = np.asarray(dy)
    if dy.shape != cache.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward input had {cache.shape}")
    return dy


def layer_norm_backward(dy, cache: NormCache):
    """Backward pass of :func:`layer_norm_forward`; returns ``(dx, dweight, dbias)``.

    ``dweight = sum(dy * x_hat)`` and ``dbias = sum(dy)`` over the leading (example) axes, with
    the shape ``normalized_shape``.
    """
    dy = _check_dy(dy, cache)
    if cache.kind != "layer":
        raise ValueError("layer_norm_backward needs a cache from layer_norm_forward")
    dx = _backward_rows(dy, cache)
    lead = len(cache.shape) - len(cache.param_shape)
    d64 = dy.astype(np.float64)
    x_hat = cache.x_hat.reshape(cache.shape)
    axes = tuple(range(lead))
    dweight = (d64 * x_hat).sum(axis=axes)
    dbias = d64.sum(axis=axes)
    return dx.astype(dy.dtype, copy=False), dweight, dbias


# ------------------------------------------------------------------------------ group norm


def group_norm_forward(x, num_groups: int, weight=None, bias=None, eps: float = EPS):
    """Group normalization (Wu & He, 2018) with the semantics of
    ``torch.nn.functional.group_norm``; returns ``(y, cache)``.

    ``x`` has shape (N, C, *spatial) with C divisible by ``num_groups``; the channels are cut
    into ``num_groups`` groups of ``C // num_groups`` consecutive channels, and each example's
    group is normalized over its channels and spatial positions. ``weight`` and ``bias``
    (optional) have shape (C,).
    """
    x = _check_float(x)
    if x.ndim < 2:
        raise ValueError(f"group_norm expects input of shape (N, C, ...), got shape {x.shape}")
    N, C = x.shape[:2]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer):
        raise TypeError(f"num_groups must be an integer, got {type(num_groups).__name__}")
    if num_groups < 1 or C % num_groups:
        raise ValueError(f"num_groups must divide the number of channels: {C} channels, "
                         f"{num_groups} groups")
    eps = _check_eps(eps)
    weight = _check_param(weight, "weight", (C,))
    bias = _check_param(bias, "bias", (C,))
    rows = x.astype(np.float64).reshape(N * num_groups, -1)
    x_hat, invstd = _normalize_rows(rows, eps)
    bshape = (1, C) + (1,) * (x.ndim - 2)
    w = np.ones(C) if weight is None else weight
    y = x_hat.reshape(x.shape) * w.reshape(bshape)
    if bias is not None:
        y = y + bias.reshape(bshape)
    cache = NormCache(x_hat=x_hat, invstd=invstd, shape=tuple(x.shape), kind="group",
                      weight=np.broadcast_to(w.reshape(bshape), x.shape), param_shape=(C,),
                      dtype=x.dtype)
    return y.astype(x.dtype, copy=False), cache


def group_norm(x, num_groups: int, weight=None, bias=None, eps: float = EPS) -> np.ndarray:
    """``torch.nn.functional.group_norm(x, num_groups, weight, bias, eps)`` in NumPy."""
    return group_norm_forward(x, num_groups, weight, bias, eps)[0]


def group_norm_backward(dy, cache: NormCache):
    """Backward pass of :func:`group_norm_forward`; returns ``(dx, dweight, dbias)``, the last
    two of shape (C,) (sums over the batch and spatial axes)."""
    dy = _check_dy(dy, cache)
    if cache.kind != "group":
        raise ValueError("group_norm_backward needs a cache from group_norm_forward")
    dx = _backward_rows(dy, cache)
    axes = (0,) + tuple(range(2, len(cache.shape)))
    d64 = dy.astype(np.float64)
    x_hat = cache.x_hat.reshape(cache.shape)
    return dx.astype(dy.dtype, copy=False), (d64 * x_hat).sum(axis=axes), d64.sum(axis=axes)


def instance_norm(x, weight=None, bias=None, eps: float = EPS) -> np.ndarray:
    """Instance normalization (Ulyanov et al., 2016): group norm with one group per channel,
    i.e. each example's channel normalized over its spatial positions. Input (N, C, *spatial)
    with at least one spatial axis."""
    x = _check_float(x)
    if x.ndim < 3:
        raise ValueError("instance_norm needs spatial axes: input (N, C, H, ...), got shape "
                         f"{x.shape}")
    return group_norm(x, x.shape[1], weight, bias, eps)


def normalized_sets(shape: tuple[int, ...], method: str, num_groups: int = 1) -> np.ndarray:
    """Which values of an (N, C, *spatial) array are normalized together: an integer array of
    ``shape`` whose entries are the index of the set each value belongs to.

    ``method``: ``"batch"`` (per channel over N and space), ``"layer"`` (per example over
    everything else), ``"instance"`` (per example and channel), ``"group"`` (per example and
    group of ``C // num_groups`` consecutive channels).
    """
    if len(shape) < 2:
        raise ValueError(f"need an (N, C, ...) shape, got {shape}")
    N, C = shape[:2]
    n_idx = np.arange(N).reshape((N, 1) + (1,) * (len(shape) - 2))
    c_idx = np.arange(C).reshape((1, C) + (1,) * (len(shape) - 2))
    if method == "batch":
        sets = c_idx + 0 * n_idx
    elif method == "layer":
        sets = n_idx + 0 * c_idx
    elif method == "instance":
        sets = n_idx * C + c_idx
    elif method == "group":
        if num_groups < 1 or C % num_groups:
            raise ValueError(f"num_groups must divide {C} channels, got {num_groups}")
        sets = n_idx * num_groups + c_idx // (C // num_groups)
    else:
        raise ValueError(f"method must be batch, layer, instance or group, got {method!r}")
    return np.broadcast_to(sets, shape).copy()


# ------------------------------------------------------- input scaling: a quadratic loss


def standardize(X) -> np.ndarray:
    """Each column shifted to mean 0 and scaled to (population) standard deviation 1."""
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    if np.any(std == 0):
        raise ValueError("a feature is constant: it cannot be standardized")
    return (X - X.mean(axis=0)) / std


def hessian_condition_number(X) -> float:
    """Condition number (largest / smallest eigenvalue) of the Hessian ``2 X^T X / n`` of the
    mean squared error ``mean((X w - y)^2)`` of a linear model."""
    X = np.asarray(X, dtype=np.float64)
    eig = np.linalg.eigvalsh(2.0 * X.T @ X / len(X))
    if eig[0] <= 0:
        raise ValueError("X^T X is singular: the condition number is infinite")
    return float(eig[-1] / eig[0])


def least_squares_gd(X, y, lr: float | None = None, steps: int = 100, w0=None) -> np.ndarray:
    """Plain gradient descent on ``L(w) = mean((X w - y)^2)``; returns the path (steps+1, D).

    ``lr=None`` takes the best fixed step size for a quadratic, ``2 / (l_max + l_min)`` with
    the Hessian's extreme eigenvalues: any larger step risks divergence along the steepest
    direction, and with it the error along the flattest one shrinks by ``(k - 1) / (k + 1)``
    per step (k the condition number).
    """
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    H = 2.0 * X.T @ X / len(X)
    if lr is None:
        eig = np.linalg.eigvalsh(H)
        lr = 2.0 / (eig[-1] + eig[0])
    w = np.zeros(X.shape[1]) if w0 is None else np.asarray(w0, dtype=np.float64).copy()
    path = [w.copy()]
    for _ in range(steps):
        w = w - lr * (2.0 * X.T @ (X @ w - y) / len(X))
        path.append(w.copy())
    return np.array(path)


def gd_steps_to_tolerance(X, y, tol: float = 1e-6, lr: float | None = None,
                          max_steps: int = 1_000_000, w0=None) -> int:
    """Steps of :func:`least_squares_gd` (same ``lr`` rule) until the loss is within ``tol`` of
    its minimum (relative to the starting excess loss); ``max_steps`` if never."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    H = 2.0 * X.T @ X / len(X)
    if lr is None:
        eig = np.linalg.eigvalsh(H)
        lr = 2.0 / (eig[-1] + eig[0])
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    loss = lambda v: float(np.mean((X @ v - y) ** 2))  # noqa: E731
    best = loss(w_star)
    w = np.zeros(X.shape[1]) if w0 is None else np.asarray(w0, dtype=np.float64).copy()
    start = loss(w) - best
    if start <= 0:
        return 0
    for step in range(1, max_steps + 1):
        w = w - lr * (2.0 * X.T @ (X @ w - y) / len(X))
        if loss(w) - best <= tol * start:
            return step
    return max_steps


# ------------------------------------------------- Algorithm 2: population statistics


def population_statistics(batches: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Ioffe & Szegedy's Algorithm 2, steps 8-10: the inference statistics of a BN layer from
    the layer's inputs on mini-batches of the training set (each (m, D), all the same m).

    ``E[x] = mean over batches of the batch means``; ``Var[x] = m / (m - 1) * mean over
    batches of the biased batch variances`` (the unbiased estimate). Returns ``(E[x],
    Var[x])``, each (D,).
    """
    batches = [np.asarray(b, dtype=np.float64) for b in batches]
    if not batches:
        raise ValueError("need at least one mini-batch")
    m = batches[0].shape[0]
    if m < 2 or any(b.shape != batches[0].shape for b in batches):
        raise ValueError("the mini-batches must all have the same shape (m, D) with m >= 2")
    means = np.stack([b.mean(axis=0) for b in batches])
    variances = np.stack([b.var(axis=0) for b in batches])
    return means.mean(axis=0), m / (m - 1) * variances.mean(axis=0)


def population_batch_norm(x, mean, var, weight=None, bias=None, eps: float = EPS):
    """Algorithm 2, step 11: the inference transform
    ``y = weight / sqrt(var + eps) * x + (bias - weight * mean / sqrt(var + eps))``, a fixed
    affine map per feature (the same as BN in evaluation mode with these statistics)."""
    x = np.asarray(x, dtype=np.float64)
    D = x.shape[1]
    weight = np.ones(D) if weight is None else np.asarray(weight, dtype=np.float64)
    bias = np.zeros(D) if bias is None else np.asarray(bias, dtype=np.float64)
    scale = weight / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
    return scale * x + (bias - scale * np.asarray(mean, dtype=np.float64))


# ------------------------------------------------------------- momentum conventions


def momentum_to_pytorch(momentum_of_old: float) -> float:
    """A Keras / CS231n momentum (the weight of the OLD running value) as PyTorch's momentum
    (the weight of the NEW batch): ``1 - momentum_of_old``."""
    if not 0.0 <= momentum_of_old <= 1.0:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum_of_old}")
    return 1.0 - momentum_of_old


def momentum_from_pytorch(momentum_of_new: float) -> float:
    """PyTorch's momentum (weight of the NEW batch) as Keras' / CS231n's: ``1 - momentum``."""
    return momentum_to_pytorch(momentum_of_new)


def running_average_half_life(momentum_of_new: float) -> float:
    """Steps after which a batch's weight in the running average has halved:
    ``log(1/2) / log(1 - momentum)`` for PyTorch's momentum (weight of the new batch)."""
    if not 0.0 < momentum_of_new < 1.0:
        raise ValueError(f"momentum must lie in (0, 1), got {momentum_of_new}")
    return float(np.log(0.5) / np.log1p(-momentum_of_new))
