"""Monte Carlo dropout: predictive uncertainty from dropout kept on at test time.

Gal & Ghahramani (2016) read a network trained with dropout as an approximate Bayesian model:
each dropout mask is a draw of the weights from an approximate posterior, so averaging the
predictions of T stochastic forward passes estimates the predictive distribution, and how much
the passes disagree measures the model's uncertainty.

Conventions
-----------
* Dropout ``p`` is the probability of DROPPING a unit; PyTorch's dropout modules are inverted
  (kept units scaled by 1/(1-p) in training mode, identity in evaluation mode).
* A Monte Carlo pass runs the model in evaluation mode EXCEPT its dropout modules, which are put
  in training mode (:func:`mc_dropout_mode`). Batch normalization therefore uses its running
  statistics, as at any other prediction; only the masks are random. The model's modes are
  restored afterwards.
* Passes are stacked along a new first axis: ``(T, N, C)`` for T passes over N inputs with C
  outputs. Probabilities are the softmax of the outputs over the last axis.
* Entropies are in nats (natural logarithm), with 0 log 0 = 0.
* Randomness: :func:`mc_dropout_passes` seeds a forked copy of torch's global generator, so the
  same ``seed`` gives the same passes and the caller's random stream is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

__all__ = ["dropout_modules", "mc_dropout_mode", "mc_dropout_passes", "mc_dropout_predict",
           "predictive_mean", "entropy", "predictive_entropy", "expected_entropy",
           "mutual_information", "error_detection_auc", "selective_accuracy",
           "running_mean_accuracy"]


def dropout_modules(model: nn.Module) -> list[nn.Module]:
    """Every dropout module of ``model`` (``nn.Dropout``, ``Dropout1d/2d/3d``, alpha dropout)."""
    return [m for m in model.modules() if isinstance(m, _DropoutNd)]


@contextmanager
def mc_dropout_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Within the block, ``model`` is in evaluation mode except its dropout modules.

    Batch normalization and every other module behave as at prediction time; dropout draws a
    fresh mask at every call. On exit every module's ``training`` flag is what it was before,
    also when the block raises.
    """
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in dropout_modules(model):
            m.train()
        yield model
    finally:
        for m, mode in saved:
            m.training = mode


def mc_dropout_passes(model: nn.Module, x: torch.Tensor, passes: int = 100, seed: int = 0,
                      transform: Callable[[torch.Tensor], torch.Tensor] | None = None
                      ) -> torch.Tensor:
    """``passes`` stochastic forward passes of ``x`` with dropout on: a (T, N, ...) tensor.

    ``transform`` (e.g. a softmax) is applied to each pass's output. Runs under
    ``torch.no_grad()`` in :func:`mc_dropout_mode`; the masks come from a forked generator seeded
    with ``seed``, so the global torch random state is the same before and after the call.
    """
    if passes < 1:
        raise ValueError(f"passes must be at least 1, got {passes}")
    outputs = []
    with torch.random.fork_rng(devices=[]), mc_dropout_mode(model), torch.no_grad():
        torch.manual_seed(seed)
        for _ in range(passes):
            out = model(x)
            outputs.append(transform(out) if transform is not None else out)
    return torch.stack(outputs)


def mc_dropout_predict(model: nn.Module, x: torch.Tensor, passes: int = 100,
                       seed: int = 0) -> torch.Tensor:
    """Class probabilities of ``passes`` Monte Carlo dropout passes: (T, N, C), rows sum to 1."""
    return mc_dropout_passes(model, x, passes, seed, transform=lambda z: torch.softmax(z, -1))


def predictive_mean(probs: torch.Tensor) -> torch.Tensor:
    """The Monte Carlo estimate of the predictive distribution: the mean over passes (axis 0)."""
    return probs.mean(dim=0)


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy ``-sum_c p_c log p_c`` over the last axis, in nats, with 0 log 0 = 0."""
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the mean prediction, H[mean_t p_t]: total uncertainty, (N,) from (T, N, C)."""
    return entropy(predictive_mean(probs))


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Mean over passes of each pass's entropy, mean_t H[p_t]: (N,) from (T, N, C)."""
    return entropy(probs).mean(dim=0)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """H[mean_t p_t] - mean_t H[p_t]: how much the passes disagree (N,), zero when they agree.

    Non-negative because entropy is concave (Jensen's inequality); rounding below zero is
    clipped to 0.
    """
    return (predictive_entropy(probs) - expected_entropy(probs)).clamp_min(0.0)


def error_detection_auc(score, wrong) -> float:
    """Area under the ROC curve of ``score`` as a detector of the ``wrong`` predictions.

    The probability that a randomly chosen wrong prediction has a higher score (e.g. a higher
    entropy) than a randomly chosen right one, ties counting one half (the Mann-Whitney
    statistic). 1 is a perfect detector, 0.5 a useless one. Needs at least one of each.
    """
    score = np.asarray(score, dtype=float).ravel()
    wrong = np.asarray(wrong, dtype=bool).ravel()
    if score.shape != wrong.shape:
        raise ValueError(f"score has {score.size} entries, wrong {wrong.size}")
    n_wrong, n_right = int(wrong.sum()), int((~wrong).sum())
    if n_wrong == 0 or n_right == 0:
        raise ValueError("the AUC needs at least one wrong and one right prediction")
    diff = score[wrong][:, None] - score[~wrong][None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / (n_wrong * n_right))


def selective_accuracy(confidence, correct, coverages: Sequence[float]) -> np.ndarray:
    """Accuracy on the most confident fraction of the inputs, for each coverage in (0, 1].

    The inputs are sorted by ``confidence`` (highest first; ties keep their order) and the first
    ``ceil(coverage * N)`` are kept.
    """
    confidence = np.asarray(confidence, dtype=float).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    order = np.argsort(-confidence, kind="stable")
    out = []
    for c in coverages:
        if not 0.0 < c <= 1.0:
            raise ValueError(f"coverage must be in (0, 1], got {c}")
        k = int(np.ceil(c * len(order)))
        out.append(correct[order[:k]].mean())
    return np.array(out)


def running_mean_accuracy(probs: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Accuracy of the average of the first t passes, for t = 1 .. T: a (T,) array."""
    cumulative = probs.cumsum(dim=0)
    return (cumulative.argmax(dim=-1) == y).double().mean(dim=-1).numpy()
