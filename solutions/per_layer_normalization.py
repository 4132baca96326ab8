"""The lecture's normalization of every layer's input over the whole training set.

This is NOT Layer Normalization (Ba et al., 2016, which normalizes across the features of one
example). It is the full-batch precursor of batch normalization: the input of every neuron is
standardized with the mean ``C`` and the standard deviation ``S`` of that input over the
whole training set, so ``C`` and ``S`` are functions of the network's weights.

Conventions
-----------
* ``S`` is the POPULATION standard deviation, ``sqrt((1/n) * sum (z_i - C)^2)`` (the lecture
  switches from 1/(n-1) to 1/n "because many formulas simplify").
* The normalized value is ``(z - C) / S``; with learnable parameters it becomes
  ``a * (z - C) / S + b`` before the neuron adds its own bias and applies its activation.
  ``a = 1, b = 0`` is plain normalization; ``a = S, b = C`` gives back ``z`` (the identity).
* ``a, b`` may be shared by the whole network (``"network"``), one pair per layer
  (``"layer"``) or one pair per neuron (``"neuron"``).
* Weights are matrices ``W`` of shape (inputs, outputs), so a layer computes
  ``activation(normalize(h @ W) + bias)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .gradcheck import numerical_gradient

__all__ = ["layer_statistics", "normalize", "NormalizedMLP", "two_point_statistics",
           "lecture_two_unit_network", "lecture_chain_network", "TWO_POINT_X", "TWO_POINT_Y",
           "AFFINE_MODES"]

AFFINE_MODES = (None, "network", "layer", "neuron")
TWO_POINT_X = np.array([-1.0, 1.0])
TWO_POINT_Y = np.array([-1.0, 1.0])


def layer_statistics(z) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``C`` and population standard deviation ``S`` of a layer's input over the training
    set (axis 0: one row per training example, one column per neuron)."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim == 0 or z.shape[0] < 1:
        raise ValueError(f"need at least one training example, got shape {z.shape}")
    C = z.mean(axis=0)
    S = np.sqrt(((z - C) ** 2).mean(axis=0))
    return C, S


def normalize(z, C, S):
    """``(z - C) / S``; a zero ``S`` (the input is the same for every training example) is an
    error, since the normalized value would be 0/0."""
    S = np.asarray(S, dtype=np.float64)
    if np.any(S == 0):
        raise ValueError("a neuron's input has zero deviation over the training set (every "
                         "example gives the same value): (z - C) / S is undefined")
    return (np.asarray(z, dtype=np.float64) - C) / S


def two_point_statistics(A: float, B: float) -> tuple[float, float]:
    """The lecture's ``C = (A + B) / 2`` and ``S = sqrt(((A - C)^2 + (B - C)^2) / 2)``, which
    for two points is ``|A - B| / 2``."""
    C = (A + B) / 2.0
    return C, float(np.sqrt(((A - C) ** 2 + (B - C) ** 2) / 2.0))


@dataclass
class NormalizedMLP:
    """A fully connected network whose layer inputs are normalized over the training set.

    ``sizes`` lists the widths from input to output, e.g. ``[1, 2, 1]``; ``normalized`` says,
    per layer of weights, whether that layer's input ``h @ W`` is normalized; ``affine`` is
    one of ``AFFINE_MODES``; ``activation`` is used after every hidden layer and
    ``output_activation`` (None for the identity) after the last.

    Parameters travel as one flat float64 vector (see :meth:`unpack`): for each layer, ``W``
    row by row and then its bias; after all layers, the ``a`` values and then the ``b`` values
    of the affine mode (network: 1 each; layer: one per layer; neuron: one per neuron of every
    normalized layer, in order).
    """

    sizes: Sequence[int]
    normalized: Sequence[bool] | None = None
    activation: Callable[[np.ndarray], np.ndarray] = np.tanh
    output_activation: Callable[[np.ndarray], np.ndarray] | None = None
    affine: str | None = None

    def __post_init__(self):
        self.sizes = [int(s) for s in self.sizes]
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two layers of >= 1 unit, got {self.sizes}")
        n_layers = len(self.sizes) - 1
        self.normalized = [True] * n_layers if self.normalized is None else \
            [bool(v) for v in self.normalized]
        if len(self.normalized) != n_layers:
            raise ValueError(f"normalized needs {n_layers} entries (one per layer of weights), "
                             f"got {len(self.normalized)}")
        if self.affine not in AFFINE_MODES:
            raise ValueError(f"affine must be one of {AFFINE_MODES}, got {self.affine!r}")

    # -- parameters -------------------------------------------------------------------------
    def _affine_sizes(self) -> list[int]:
        """Number of (a, b) pairs owned by each normalized layer (0 for the others)."""
        counts = []
        for i, norm in enumerate(self.normalized):
            if not norm or self.affine is None:
                counts.append(0)
            elif self.affine == "neuron":
                counts.append(self.sizes[i + 1])
            else:
                counts.append(1)
        return counts

    def n_params(self) -> int:
        n = sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))
        if self.affine == "network":
            return n + 2
        return n + 2 * sum(self._affine_sizes())

    def unpack(self, w):
        """Split the flat vector into ``(weights, biases, a, b)``; ``a`` and ``b`` are lists with
        one entry per layer (a scalar or per-neuron vector; None where not normalized)."""
        w = np.asarray(w, dtype=np.float64)
        if w.shape != (self.n_params(),):
            raise ValueError(f"this network has {self.n_params()} parameters, got a vector of "
                             f"shape {w.shape}")
        weights, biases, pos = [], [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            weights.append(w[pos:pos + n_in * n_out].reshape(n_in, n_out))
            pos += n_in * n_out
            biases.append(w[pos:pos + n_out])
            pos += n_out
        n_layers = len(weights)
        a, b = [None] * n_layers, [None] * n_layers
        if self.affine == "network":
            for i in range(n_layers):
                if self.normalized[i]:
                    a[i], b[i] = w[pos], w[pos + 1]
        elif self.affine in ("layer", "neuron"):
            counts = self._affine_sizes()
            total = sum(counts)
            a_all, b_all = w[pos:pos + total], w[pos + total:pos + 2 * total]
            k = 0
            for i, c in enumerate(counts):
                if c:
                    a[i] = a_all[k:k + c] if self.affine == "neuron" else a_all[k]
                    b[i] = b_all[k:k + c] if self.affine == "neuron" else b_all[k]
                    k += c
        return weights, biases, a, b

    # -- forward ----------------------------------------------------------------------------
    def statistics(self, w, x_train):
        """``(C, S)`` of every normalized layer's input over the training set (None for layers
        that are not normalized). These depend on the weights ``w``."""
        return self._run(w, x_train, x_train, stats=None)[1]

    def forward(self, x, w, x_train=None, stats=None):
        """Network output for inputs ``x`` (shape (n,) or (n, inputs)).

        The statistics come from ``stats`` when given (frozen values) and otherwise from running
        ``x_train`` through the same network.
        """
        if stats is None and x_train is None:
            raise ValueError("give x_train (to compute C and S) or frozen stats")
        return self._run(w, x, x_train, stats)[0]

    def _as_batch(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"inputs must have shape (n, {self.sizes[0]}), got {x.shape}")
        return x

    def _run(self, w, x, x_train, stats):
        weights, biases, a, b = self.unpack(w)
        h = self._as_batch(x)
        h_train = None if stats is not None else self._as_batch(x_train)
        used = []
        last = len(weights) - 1
        for i, (W, bias) in enumerate(zip(weights, biases, strict=True)):
            z = h @ W
            z_train = None if h_train is None else h_train @ W
            if self.normalized[i]:
                C, S = layer_statistics(z_train) if stats is None else stats[i]
                used.append((C, S))
                z = normalize(z, C, S)
                z_train = None if z_train is None else normalize(z_train, C, S)
                if a[i] is not None:
                    z = a[i] * z + b[i]
                    z_train = None if z_train is None else a[i] * z_train + b[i]
            else:
                used.append(None)
            f = self.activation if i < last else self.output_activation
            h = z + bias if f is None else f(z + bias)
            if z_train is not None:
                h_train = z_train + bias if f is None else f(z_train + bias)
        out = h[:, 0] if h.shape[1] == 1 else h
        return out, used

    # -- loss and gradients -----------------------------------------------------------------
    def loss(self, w, X, Y, x_train=None, stats=None) -> float:
        """Squared-error loss ``sum_i (F(x_i) - y_i)^2``. ``x_train`` defaults to ``X``."""
        x_train = X if (x_train is None and stats is None) else x_train
        diff = self.forward(X, w, x_train, stats) - np.asarray(Y, dtype=np.float64)
        return float(np.sum(diff ** 2))

    def gradient(self, w, X, Y, x_train=None, through_statistics: bool = True) -> np.ndarray:
        """Gradient of :meth:`loss` with respect to the flat parameters (centred differences in
        float64, h = 1e-5).

        ``through_statistics=True`` differentiates C and S as the functions of the weights they
        are (the correct gradient); ``False`` freezes them at their current values, the mistake
        of treating the statistics as constants.
        """
        w = np.array(w, dtype=np.float64)
        x_train = X if x_train is None else x_train
        if through_statistics:
            return numerical_gradient(lambda v: self.loss(v, X, Y, x_train=x_train), w)
        frozen = self.statistics(w, x_train)
        return numerical_gradient(lambda v: self.loss(v, X, Y, stats=frozen), w)


def lecture_two_unit_network(activation=np.tanh, affine=None) -> NormalizedMLP:
    """The lecture's ``F_NN(x) = f(w1 x + w01) w3 + f(w2 x + w02) w4 + w03``: two hidden units,
    a linear output, and (for ``F_NNN``) only the output neuron's input normalized.

    Flat parameters: ``(w1, w2, w01, w02, w3, w4, w03)`` followed by any affine a, b.
    """
    return NormalizedMLP([1, 2, 1], normalized=[False, True], activation=activation,
                         output_activation=None, affine=affine)


def lecture_chain_network(activation=np.tanh, affine=None) -> NormalizedMLP:
    """The lecture's nested example: a chain of three neurons, every layer's input normalized,
    ``F_NNN(x) = f([(w3 f([(w2 f(x' + w01) - C1)/S1] + w02) - C2)/S2] + w03)`` with
    ``x' = (w1 x - C0)/S0``.

    The lecture simplifies ``x' = (w1 x - 0)/w1 = x``; the population deviation of
    ``w1 * x`` is ``|w1|``, so in fact ``x' = sign(w1) * x``.
    Flat parameters: ``(w1, w01, w2, w02, w3, w03)`` followed by any affine a, b.
    """
    return NormalizedMLP([1, 1, 1, 1], normalized=[True, True, True], activation=activation,
                         output_activation=activation, affine=affine)
