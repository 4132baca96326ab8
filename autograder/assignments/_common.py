"""Small helpers shared by the assignment specs."""

from __future__ import annotations

import numpy as np


def f64(x) -> np.ndarray:
    """``x`` as a float64 array (records and references travel as plain numbers)."""
    return np.asarray(x, dtype=np.float64)


def random_shape(rng: np.random.Generator, ndim: int, low: int = 2, high: int = 7) -> tuple:
    """A shape with ``ndim`` axes of random sizes in [low, high]."""
    return tuple(int(s) for s in rng.integers(low, high + 1, size=ndim))


def channel_scales(rng: np.random.Generator, channels: int) -> np.ndarray:
    """Per-channel spreads from 1e-3 to 10, so that eps = 1e-5 matters for some channels and
    not for others."""
    scales = 10.0 ** rng.uniform(-3, 1, size=channels)
    scales[0] = 1e-3
    return scales


def channel_input(rng: np.random.Generator, shape: tuple, mean_spreads: float) -> np.ndarray:
    """A random input of ``shape`` (axis 1 = channels) whose channels have the spreads of
    :func:`channel_scales` and means up to about ``mean_spreads`` spreads away from 0."""
    C = shape[1]
    bshape = (1, C) + (1,) * (len(shape) - 2)
    scales = channel_scales(rng, C).reshape(bshape)
    return rng.normal(size=shape) * scales + rng.normal(size=bshape) * mean_spreads * scales
