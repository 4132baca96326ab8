"""Dropout, as libraries implement it and as the lecture describes it.

Conventions
-----------
* ``p`` is the probability of DROPPING a unit (zeroing it), as in the lecture and in
  ``torch.nn.functional.dropout``. The keep probability is ``1 - p``.
* Inverted dropout (what libraries do): during training each unit is kept with probability
  ``1 - p`` and the kept units are scaled by ``1 / (1 - p)``, so the expected output equals the
  input; at inference the layer is the identity.
* The lecture's form: during training kept units are not scaled; at inference every unit's
  output is multiplied by the KEEP probability ``1 - p`` (the lecture says "by p", which is the
  same number only when p = 0.5).
* Randomness comes from a ``numpy.random.Generator``; pass ``rng`` for reproducible masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "dropout", "dropout_forward", "dropout_backward", "DropoutCache",
    "lecture_dropout_train", "lecture_dropout_inference",
    "has_path", "sample_connected_masks", "drop_input_features",
    "SUM_NET_X", "SUM_NET_Y", "sum_network", "sum_network_loss", "sum_network_gradient",
    "gradient_step", "INPUT_DROPOUT_X", "INPUT_DROPOUT_Y", "linear_network_loss",
    "linear_network_gradient", "expected_loss_minimum",
]


def _check_p(p) -> float:
    """Return ``p`` as a float after checking that it is a probability in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"dropout probability p must be a number, got {type(p).__name__}")
    p = float(p)
    if not 0.0 <= p <= 1.0:  # also rejects NaN
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def _rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, "
                        f"got {type(rng).__name__}")
    return rng


@dataclass
class DropoutCache:
    """What the backward pass needs: the 0/1 keep mask and the scale applied to kept units."""

    mask: np.ndarray
    scale: float


def dropout_forward(x, p: float = 0.5, training: bool = True, rng=None):
    """Inverted dropout forward pass; returns ``(y, cache)``.

    In training each element is kept with probability ``1 - p`` and scaled by ``1 / (1 - p)``;
    ``p = 1`` drops everything (the output is all zeros). In eval mode (``training=False``) and
    for ``p = 0`` the output equals the input.
    """
    p = _check_p(p)
    x = np.asarray(x)
    if not training or p == 0.0:
        return x.copy(), DropoutCache(mask=np.ones(x.shape, dtype=bool), scale=1.0)
    if p == 1.0:
        return np.zeros_like(x), DropoutCache(mask=np.zeros(x.shape, dtype=bool), scale=0.0)
    mask = _rng(rng).random(x.shape) >= p
    scale = 1.0 / (1.0 - p)
    y = np.where(mask, x * scale, 0).astype(x.dtype, copy=False)
    return y, DropoutCache(mask=mask, scale=scale)


def dropout(x, p: float = 0.5, training: bool = True, rng=None):
    """Inverted dropout with the semantics of ``torch.nn.functional.dropout``.

    ``p`` is the probability of dropping an element; kept elements are scaled by
    ``1 / (1 - p)`` in training; ``training=False`` returns the input unchanged.
    """
    return dropout_forward(x, p, training, rng)[0]


def dropout_backward(dy, cache: DropoutCache):
    """Gradient of inverted dropout: the upstream gradient flows through kept units only,
    scaled by the same ``1 / (1 - p)`` as the forward pass."""
    dy = np.asarray(dy)
    if dy.shape != cache.mask.shape:
        raise ValueError(f"dy has shape {dy.shape}, the forward input had {cache.mask.shape}")
    return np.where(cache.mask, dy * cache.scale, 0).astype(dy.dtype, copy=False)


def lecture_dropout_train(x, p: float = 0.5, rng=None):
    """The lecture's training-time dropout: zero each unit with probability ``p``, no scaling.

    Returns ``(y, mask)`` where ``mask`` is True for kept units.
    """
    p = _check_p(p)
    x = np.asarray(x)
    mask = _rng(rng).random(x.shape) >= p
    return np.where(mask, x, 0).astype(x.dtype, copy=False), mask


def lecture_dropout_inference(x, p: float = 0.5):
    """The lecture's inference rule, corrected: multiply each output by the KEEP probability
    ``1 - p`` (the expected value of the training-time mask). The lecture writes "by p",
    which agrees only at p = 0.5."""
    p = _check_p(p)
    return np.asarray(x) * (1.0 - p)


def has_path(masks) -> bool:
    """True when a fully connected network with these keep-masks still links input to output.

    ``masks`` holds one boolean array per layer that dropout acts on (input layer and/or
    hidden layers). In a fully connected network a path survives exactly when every such
    layer keeps at least one unit.
    """
    return all(bool(np.any(m)) for m in masks)


def sample_connected_masks(layer_sizes, p: float = 0.5, rng=None, drop_input: bool = False,
                           max_draws: int = 10_000):
    """Draw dropout keep-masks for a small fully connected network, with the lecture's rule:
    if no path from input to output survives, draw the whole set of masks again.

    ``layer_sizes`` lists the widths from input to output, e.g. ``[1, 2, 1]``. Hidden layers are
    always subject to dropout, the input layer only with ``drop_input=True``; the output layer
    never is. Returns a list with one boolean mask (True = kept) per layer from input to output
    (layers not subject to dropout get all-True masks).

    Conditioning on connectivity changes the distribution: with two hidden units and p = 0.5
    the three connected outcomes {both, upper only, lower only} each have probability 1/3.
    """
    p = _check_p(p)
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"layer_sizes must list at least an input and an output layer, each "
                         f"with at least one unit; got {list(layer_sizes)}")
    if p == 1.0 and (len(sizes) > 2 or drop_input):
        raise ValueError("p = 1 drops every unit: no connected network can ever be drawn")
    rng = _rng(rng)
    droppable = [drop_input] + [True] * (len(sizes) - 2) + [False]
    for _ in range(max_draws):
        masks = [rng.random(n) >= p if d else np.ones(n, dtype=bool)
                 for n, d in zip(sizes, droppable, strict=True)]
        if has_path(masks):
            return masks
    raise RuntimeError(f"no connected mask found in {max_draws} draws (p = {p} is too large)")


def drop_input_features(X, p: float = 0.5, rng=None):
    """Dropout of input features for one full-batch step, as in the lecture's table example:
    each feature (column) is dropped for the whole step with probability ``p``.

    Returns ``(X_dropped, keep)`` where ``keep`` is a boolean vector with one entry per feature.
    No rescaling (the lecture's form; scale by 1/(1-p) for inverted dropout).
    """
    p = _check_p(p)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a (samples, features) matrix, got shape {X.shape}")
    keep = _rng(rng).random(X.shape[1]) >= p
    return X * keep[None, :], keep


# --- the lecture's worked example: two linear hidden units summed ------------------------
#
# F(x) = k1 (w1 x + w01) + k2 (w2 x + w02), with keep flags k1 (upper unit), k2 (lower unit);
# parameters are ordered w = (w1, w01, w2, w02); loss L = sum_i (F(x_i) - y_i)^2.

SUM_NET_X = np.array([1.0, 2.0, 3.0])
SUM_NET_Y = np.array([3.0, 2.0, 1.0])


def _as_params(w, n: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"expected {n} parameters, got shape {w.shape}")
    return w


def sum_network(x, w, keep=(True, True)):
    """Output of the lecture's network ``(w1 x + w01) + (w2 x + w02)`` with units dropped where
    ``keep`` is False. ``w = (w1, w01, w2, w02)``; ``keep = (upper, lower)``."""
    w1, w01, w2, w02 = _as_params(w, 4)
    k1, k2 = (float(bool(k)) for k in keep)
    x = np.asarray(x, dtype=np.float64)
    return k1 * (w1 * x + w01) + k2 * (w2 * x + w02)


def sum_network_loss(w, keep=(True, True), x=SUM_NET_X, y=SUM_NET_Y) -> float:
    """Squared-error loss ``sum (F(x_i) - y_i)^2`` of the (thinned) network."""
    return float(np.sum((sum_network(x, w, keep) - np.asarray(y, dtype=np.float64)) ** 2))


def sum_network_gradient(w, keep=(True, True), x=SUM_NET_X, y=SUM_NET_Y) -> np.ndarray:
    """Gradient ``(dL/dw1, dL/dw01, dL/dw2, dL/dw02)``; a dropped unit's weights get zero."""
    x = np.asarray(x, dtype=np.float64)
    r = 2.0 * (sum_network(x, w, keep) - np.asarray(y, dtype=np.float64))
    k1, k2 = (float(bool(k)) for k in keep)
    return np.array([k1 * np.sum(r * x), k1 * np.sum(r), k2 * np.sum(r * x), k2 * np.sum(r)])


def gradient_step(w, grad, h: float = 0.1) -> np.ndarray:
    """One gradient-descent step ``w - h * grad``."""
    return np.asarray(w, dtype=np.float64) - h * np.asarray(grad, dtype=np.float64)


# --- the lecture's input-dropout example: F(x1, x2) = w1 x1 + w2 x2 + w0 ------------------

INPUT_DROPOUT_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
INPUT_DROPOUT_Y = np.array([0.0, 1.0, 1.0, 2.0])


def linear_network_loss(w, keep_inputs=(True, True), X=INPUT_DROPOUT_X, Y=INPUT_DROPOUT_Y):
    """Loss of ``F = w1 x1 + w2 x2 + w0`` with dropped inputs set to 0; ``w = (w1, w2, w0)``."""
    w = _as_params(w, 3)
    keep = np.asarray(keep_inputs, dtype=np.float64)
    F = np.asarray(X, dtype=np.float64) @ (w[:2] * keep) + w[2]
    return float(np.sum((F - np.asarray(Y, dtype=np.float64)) ** 2))


def linear_network_gradient(w, keep_inputs=(True, True), X=INPUT_DROPOUT_X, Y=INPUT_DROPOUT_Y):
    """Gradient ``(dL/dw1, dL/dw2, dL/dw0)`` of :func:`linear_network_loss`."""
    w = _as_params(w, 3)
    keep = np.asarray(keep_inputs, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    r = 2.0 * (X @ (w[:2] * keep) + w[2] - np.asarray(Y, dtype=np.float64))
    return np.concatenate([(X.T @ r) * keep, [np.sum(r)]])


# --- where dropout training converges: the minimum of the loss averaged over the masks ----

def expected_loss_minimum(gradient, masks, n_params: int, tol: float = 1e-9) -> np.ndarray:
    """The parameters where the gradient of the loss, averaged over ``masks``, vanishes.

    Gradient descent with a freshly drawn mask at every step is stochastic gradient descent on
    the loss averaged over the masks, so this is where dropout training settles. ``masks`` are
    equally likely (list a mask twice to weight it double); ``gradient(w, mask)`` is the
    gradient of the thinned network's loss at ``w`` (e.g. :func:`sum_network_gradient` or
    :func:`linear_network_gradient`).

    For the lecture's examples (linear units, squared error) the averaged gradient is affine,
    ``g(w) = J w + g(0)``: average the gradient, build the Jacobian ``J`` column by column from
    the unit vectors, and solve ``J w = -g(0)``. Where ``J`` is singular (redundant units, a
    line of minima) the least-squares solution of smallest norm is returned. Raises
    ``ValueError`` when the averaged gradient at the result is not zero (to ``tol``, relative
    to ``g(0)``): the loss was not quadratic, or it has no minimum.
    """
    masks = list(masks)
    if not masks:
        raise ValueError("expected at least one mask")
    if n_params < 1:
        raise ValueError(f"n_params must be at least 1, got {n_params}")

    def averaged(w):
        return np.mean([np.asarray(gradient(w, k), dtype=np.float64) for k in masks], axis=0)

    g0 = averaged(np.zeros(n_params))
    jac = np.column_stack([averaged(e) - g0 for e in np.eye(n_params)])
    w_star = np.linalg.lstsq(jac, -g0, rcond=None)[0]
    residual = np.abs(averaged(w_star)).max()
    if residual > tol * max(1.0, np.abs(g0).max()):
        raise ValueError(f"the averaged gradient does not vanish at the solution (largest "
                         f"component {residual:.2e}): the loss is not quadratic in w or "
                         "has no minimum")
    return w_star
