"""Small helpers shared by the assignment specs."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from .spec import shape_text


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


def input_words(x, what: str = "input") -> str:
    """``a (5, 3, 4, 4) float64 input`` (``(5, 3) float64 inputs`` for a plural ``what``): the
    kind of an array, never its values."""
    x = np.asarray(x)
    article = "" if what.endswith("s") else "a "
    return f"{article}{shape_text(x.shape)} {x.dtype} {what}"


def labeller(table: dict[str, str]) -> Callable[[str], str]:
    """A :attr:`~autograder.assignments.spec.Part.label` from ``{regex: words}``: the first
    pattern that matches a recorded output's whole name gives its words, in which ``{n}`` is
    the number the pattern's group captured, counted from 1 (``y0`` -> step 1); other names
    stay as they are."""
    compiled = [(re.compile(pattern), words) for pattern, words in table.items()]

    def label(name: str) -> str:
        for pattern, words in compiled:
            match = pattern.fullmatch(name)
            if match:
                n = int(match.group(1)) + 1 if match.groups() else 0
                return words.format(n=n)
        return name

    return label
