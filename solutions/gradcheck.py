"""Numerical gradients by centred differences, and the relative error used to compare them.

Conventions (the course's, after CS231n):

* ``rel_error(a, b) = max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)``: the largest element-wise
  relative difference. A correct backward pass checked in float64 gives less than 1e-7.
* Gradients are centred differences ``(f(x + h) - f(x - h)) / (2 h)`` with ``h = 1e-5``,
  evaluated in float64; the input array is perturbed in place and always restored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEFAULT_STEP = 1e-5


def rel_error(a, b) -> float:
    """Largest element-wise relative error ``|a - b| / max(1e-8, |a| + |b|)`` of two arrays.

    Raises ValueError when the shapes differ (a broadcast would hide a wrong answer).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def _check_float64(x: np.ndarray, name: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(x).__name__}")
    if x.dtype != np.float64:
        raise TypeError(
            f"{name} has dtype {x.dtype}; numerical gradients need float64 "
            "(centred differences with h = 1e-5 are meaningless in float32)"
        )


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                       h: float = DEFAULT_STEP) -> np.ndarray:
    """Gradient of the scalar function ``f`` at ``x`` by centred differences.

    ``f`` is called with ``x`` itself, perturbed in place one element at a time; ``x`` is
    restored before returning. Returns an array of ``x``'s shape.
    """
    _check_float64(x, "x")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = float(f(x))
        x[i] = old - h
        f_minus = float(f(x))
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
        it.iternext()
    return grad


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                             df: np.ndarray, h: float = DEFAULT_STEP) -> np.ndarray:
    """Gradient of ``sum(f(x) * df)`` with respect to ``x``: the vector-Jacobian product that a
    backward pass computes when the upstream gradient is ``df``.
    """
    _check_float64(x, "x")
    df = np.asarray(df, dtype=np.float64)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[i] = old - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[i] = old
        if pos.shape != df.shape:
            raise ValueError(f"f(x) has shape {pos.shape} but df has shape {df.shape}")
        grad[i] = np.sum((pos - neg) * df) / (2 * h)
        it.iternext()
    return grad
