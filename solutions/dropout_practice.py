"""Dropout in practice: an overfitting experiment, co-adaptation, and dropout before batch norm.

Everything the chapter "Dropout in practice" trains and measures comes from here.

Conventions
-----------
* Dropout ``p`` is the probability of DROPPING a unit; dropout is inverted, as in PyTorch: kept
  units are scaled by 1/(1-p) in training, and the layer is the identity in evaluation mode.
* :func:`make_dropout_mlp` builds ``[Dropout(p_input)] -> (Linear -> ReLU -> Dropout(p_hidden))
  per hidden layer -> Linear``; a dropout module is left out where its p is 0. Weights use
  PyTorch's default initialization (seed torch's global generator first).
* Training (:func:`overfit_experiment`): plain SGD (no momentum, no weight decay) on the mean
  cross-entropy of each minibatch; a small, class-balanced training set per seed
  (:func:`small_training_set`); losses and accuracies measured in evaluation mode (dropout off)
  on that training set and on the full test set. All settings of one seed share the training
  set, the initial weights and the order of the minibatches, so they differ only by dropout.
* The settings' networks train side by side as one stacked network (:class:`StackedDropoutMLP`,
  batched matrix products), which on a CPU costs far less than one after another. Dropout masks
  come from one generator seeded with the plan's ``mask_seed``; the minibatch order of seed s
  from ``numpy.random.default_rng(10_000 + s)``.
* Threads: training runs with one torch thread (small networks), restoring the setting after.
* Batch normalization (:func:`bn_input_variances`, :func:`recalibrate_bn`): PyTorch's
  ``BatchNorm1d`` (eps 1e-5, biased batch variance for normalizing, running variance fed the
  unbiased one, momentum 0.1). Variances reported here are biased (1/N) over the examples.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.dropout import _DropoutNd

from solutions.digits import Digits

__all__ = ["OverfitPlan", "OVERFIT", "small_training_set", "make_dropout_mlp",
           "StackedDropoutMLP", "overfit_experiment", "single_threaded", "unit_removal_effect",
           "hidden_activations", "expected_dropout_batch_variance", "bn_input_variances",
           "recalibrate_bn", "accuracy", "unit_variance_shift"]


@dataclass(frozen=True)
class OverfitPlan:
    """The settings of the overfitting experiment.

    ``settings`` lists ``(p_input, p_hidden)`` pairs, the dropout probabilities of the input and
    of every hidden layer; ``n_per_class`` training images of each of the 10 classes are drawn
    per seed; ``eval_every`` is in epochs (one epoch = ``n_per_class * 10 / batch_size``
    steps).
    """

    settings: tuple[tuple[float, float], ...] = ((0.0, 0.0), (0.0, 0.2), (0.0, 0.5),
                                                 (0.0, 0.8), (0.2, 0.5))
    seeds: tuple[int, ...] = (0, 1, 2)
    n_per_class: int = 10
    hidden: tuple[int, ...] = (100, 100, 100)
    epochs: int = 300
    batch_size: int = 50
    lr: float = 0.125
    eval_every: int = 20
    mask_seed: int = 12345

    def __post_init__(self):
        for p_in, p_h in self.settings:
            if not (0.0 <= p_in < 1.0 and 0.0 <= p_h < 1.0):
                raise ValueError(f"dropout probabilities must be in [0, 1), got {(p_in, p_h)}")
        n = 10 * self.n_per_class
        if self.n_per_class < 1 or self.batch_size < 1 or n % self.batch_size:
            raise ValueError(f"the {n} training images must split into whole batches of "
                             f"{self.batch_size}")
        if self.epochs < 1 or self.eval_every < 1 or self.lr <= 0 or not self.seeds:
            raise ValueError("epochs, eval_every >= 1, lr > 0 and at least one seed needed")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must list positive widths, got {self.hidden}")

    @property
    def n_train(self) -> int:
        """Training images per seed."""
        return 10 * self.n_per_class

    @property
    def steps(self) -> int:
        """SGD steps per network."""
        return self.epochs * self.n_train // self.batch_size


OVERFIT = OverfitPlan()


@contextmanager
def single_threaded() -> Iterator[None]:
    """Within the block torch uses one intra-op thread; the previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def small_training_set(y: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """Indices of ``n_per_class`` examples of each class 0..9 of ``y``, drawn without
    replacement by ``numpy.random.default_rng(seed)``, sorted by class then draw order."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    picks = []
    for c in range(10):
        members = np.flatnonzero(y == c)
        if len(members) < n_per_class:
            raise ValueError(f"class {c} has {len(members)} examples, {n_per_class} requested")
        picks.append(rng.choice(members, size=n_per_class, replace=False))
    return np.concatenate(picks)


def make_dropout_mlp(n_in: int, n_out: int, hidden: Sequence[int], p_hidden: float,
                     p_input: float = 0.0) -> nn.Sequential:
    """``[Dropout(p_input)] -> (Linear -> ReLU -> [Dropout(p_hidden)]) x len(hidden) -> Linear``.

    Dropout modules are left out where p is 0. PyTorch's default initialization (global RNG).
    """
    for p in (p_hidden, p_input):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p (the probability of dropping) must be in [0, 1), got {p}")
    layers: list[nn.Module] = [nn.Dropout(p_input)] if p_input else []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if p_hidden:
            layers.append(nn.Dropout(p_hidden))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


class StackedDropoutMLP(nn.Module):
    """M MLPs of :func:`make_dropout_mlp`'s shape evaluated at once: (M, N, in) -> (M, N, out).

    Member m has its own weights and its own dropout probabilities ``p_input[m]`` and
    ``p_hidden[m]``. In training mode every member draws independent inverted-dropout masks from
    ``generator``; in evaluation mode there is no dropout. :meth:`member` returns member m as an
    ordinary ``nn.Sequential`` with ``nn.Dropout`` modules.
    """

    def __init__(self, members: Sequence[nn.Sequential], p_input: Sequence[float],
                 p_hidden: Sequence[float], generator: torch.Generator | None = None):
        super().__init__()
        if not (len(members) == len(p_input) == len(p_hidden)) or not members:
            raise ValueError("one p_input and one p_hidden per member, and at least one member")
        layers = [_linears(m) for m in members]
        self.widths = [layers[0][0].in_features] + [lin.out_features for lin in layers[0]]
        for ls in layers:
            if [ls[0].in_features] + [lin.out_features for lin in ls] != self.widths:
                raise ValueError("all members must have the same layer widths")
        self.weight = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[k].weight.detach().t() for ls in layers]).clone())
             for k in range(len(self.widths) - 1)])
        self.bias = nn.ParameterList(
            [nn.Parameter(torch.stack([ls[k].bias.detach()[None] for ls in layers]).clone())
             for k in range(len(self.widths) - 1)])
        self.register_buffer("p_input", torch.tensor(p_input, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("p_hidden",
                             torch.tensor(p_hidden, dtype=torch.float32).view(-1, 1, 1))
        self.generator = generator
        self._drops_input = any(p > 0 for p in p_input)
        self._drops_hidden = any(p > 0 for p in p_hidden)

    def _drop(self, h: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        keep = torch.rand(h.shape, generator=self.generator) >= p
        return h * keep / (1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(len(self.p_input), *x.shape) if x.dim() == 2 else x
        if self.training and self._drops_input:
            h = self._drop(h, self.p_input)
        weights, biases = list(self.weight), list(self.bias)
        last = len(weights) - 1
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = torch.baddbmm(b, h, w)
            if k < last:
                h = torch.relu(h)
                if self.training and self._drops_hidden:
                    h = self._drop(h, self.p_hidden)
        return h

    def member(self, m: int) -> nn.Sequential:
        """Member ``m`` as a :func:`make_dropout_mlp` network (a copy, in evaluation mode)."""
        model = make_dropout_mlp(self.widths[0], self.widths[-1], self.widths[1:-1],
                                 float(self.p_hidden[m]), float(self.p_input[m]))
        with torch.no_grad():
            for lin, w, b in zip(_linears(model), self.weight, self.bias, strict=True):
                lin.weight.copy_(w[m].t())
                lin.bias.copy_(b[m, 0])
        return model.eval()


def _member_metrics(logits: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy and accuracy of each member: logits (M, N, C), y (M, N) or (N,)."""
    y = y.expand(logits.shape[:2])
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)
    acc = (logits.argmax(dim=2) == y).double().mean(dim=1)
    return loss.numpy().astype(float), acc.numpy()


def overfit_experiment(data: Digits, plan: OverfitPlan = OVERFIT) -> dict:
    """Train every (setting, seed) network of ``plan`` on its small training set; return curves.

    Keys: ``epochs`` (E,) the evaluation epochs 0, eval_every, ..., epochs; ``train_loss``,
    ``test_loss``, ``train_acc``, ``test_acc`` (K, S, E) for K settings and S seeds, measured in
    evaluation mode; ``models`` a K x S list of lists of trained networks (evaluation mode);
    ``train_idx`` (S, n_train) the training images of each seed (indices into
    ``data.x_train``); ``settings``, ``seeds``; ``seconds`` the wall time.
    """
    start = time.perf_counter()
    K, S = len(plan.settings), len(plan.seeds)
    x_all, y_all = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test)
    train_idx = np.stack([small_training_set(data.y_train, plan.n_per_class, s)
                          for s in plan.seeds])
    members, p_in, p_hid, member_seed = [], [], [], []
    for pi, ph in plan.settings:
        for j, s in enumerate(plan.seeds):
            torch.manual_seed(s)            # the same initial weights for every setting
            members.append(make_dropout_mlp(data.n_features, data.n_classes, plan.hidden, ph,
                                            pi))
            p_in.append(pi)
            p_hid.append(ph)
            member_seed.append(j)
    gen = torch.Generator().manual_seed(plan.mask_seed)
    stack = StackedDropoutMLP(members, p_in, p_hid, generator=gen)
    sel = torch.from_numpy(train_idx[member_seed])                  # (M, n)
    x_tr, y_tr = x_all[sel], y_all[sel]                             # (M, n, D), (M, n)
    orders = [np.random.default_rng(10_000 + s) for s in plan.seeds]
    n, bs = plan.n_train, plan.batch_size
    curves = {key: [] for key in ("train_loss", "test_loss", "train_acc", "test_acc")}
    eval_epochs = list(range(0, plan.epochs + 1, plan.eval_every))
    if eval_epochs[-1] != plan.epochs:
        eval_epochs.append(plan.epochs)
    opt = torch.optim.SGD(stack.parameters(), lr=plan.lr)
    M = len(members)

    def evaluate():
        stack.eval()
        with torch.no_grad():
            for part, (x, y) in (("train", (x_tr, y_tr)), ("test", (x_test, y_test))):
                loss, acc = _member_metrics(stack(x), y)
                curves[f"{part}_loss"].append(loss)
                curves[f"{part}_acc"].append(acc)
        stack.train()

    with single_threaded():
        for epoch in range(plan.epochs + 1):
            if epoch in eval_epochs:
                evaluate()
            if epoch == plan.epochs:
                break
            perm = torch.from_numpy(np.stack([r.permutation(n) for r in orders])[member_seed])
            for b in range(n // bs):
                idx = perm[:, b * bs:(b + 1) * bs]
                xb = torch.gather(x_tr, 1, idx[..., None].expand(-1, -1, x_tr.shape[2]))
                yb = torch.gather(y_tr, 1, idx)
                logits = stack(xb)
                # sum over members of each member's mean loss: each gets its own gradient
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       yb.reshape(-1)) * M
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    out = {key: np.stack(v, axis=-1).reshape(K, S, -1) for key, v in curves.items()}
    out.update(epochs=np.array(eval_epochs), settings=plan.settings, seeds=plan.seeds,
               train_idx=train_idx,
               models=[[stack.member(k * S + j) for j in range(S)] for k in range(K)],
               seconds=time.perf_counter() - start)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` on (x, y) in its current mode, without gradients."""
    with torch.no_grad():
        return float((model(x).argmax(dim=-1) == y).double().mean())


@contextmanager
def _evaluation_mode(model: nn.Module) -> Iterator[None]:
    """Within the block every module of ``model`` is in evaluation mode; on exit each module's
    own mode is restored (``Module.train(flag)`` would overwrite mixed modes)."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def hidden_activations(model: nn.Sequential, x: torch.Tensor, layer: int) -> tuple[
        torch.Tensor, nn.Sequential]:
    """Output of hidden layer ``layer``'s ReLU (evaluation mode) and the rest of the network.

    Returns ``(a, rest)``: ``a`` (N, H) and ``rest`` the modules after that ReLU (the same
    module objects), so that ``rest(a)`` in evaluation mode is the network's output.
    """
    relus = [i for i, m in enumerate(model) if isinstance(m, nn.ReLU)]
    if not 0 <= layer < len(relus):
        raise ValueError(f"the network has {len(relus)} hidden layers, layer {layer} requested")
    cut = relus[layer] + 1
    with _evaluation_mode(model), torch.no_grad():
        a = model[:cut](x)
    return a, model[cut:]


def unit_removal_effect(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor,
                        layer: int) -> dict:
    """What removing one hidden unit at a time costs a trained network (evaluation mode).

    For each unit j of hidden layer ``layer``, its output is set to 0 (no rescaling of the
    others) and the network re-evaluated on (x, y). Returns ``{"acc": full accuracy,
    "loss": full mean cross-entropy, "acc_drop": (H,) accuracy lost, "loss_rise": (H,) loss
    gained, "changed": (H,) fraction of inputs whose predicted class changes}``. Every module's
    mode is left as it was.
    """
    a, rest = hidden_activations(model, x, layer)
    H = a.shape[1]
    ablated = a[None].repeat(H, 1, 1)                               # (H, N, H)
    ablated[torch.arange(H), :, torch.arange(H)] = 0.0              # copy j without unit j
    with _evaluation_mode(model), torch.no_grad():
        full = rest(a)
        out = rest(ablated.reshape(-1, H)).reshape(H, len(x), -1)
    loss_full = float(F.cross_entropy(full, y))
    loss_j = F.cross_entropy(out.transpose(1, 2), y.expand(H, -1), reduction="none").mean(dim=1)
    pred_full, pred_j = full.argmax(dim=1), out.argmax(dim=2)
    acc_full = float((pred_full == y).double().mean())
    return {"acc": acc_full, "loss": loss_full,
            "acc_drop": acc_full - (pred_j == y).double().mean(dim=1).numpy(),
            "loss_rise": loss_j.numpy().astype(float) - loss_full,
            "changed": (pred_j != pred_full).double().mean(dim=1).numpy()}


# ------------------------------------------------------------------ dropout before batch norm


def unit_variance_shift(mean: float, var: float, p: float) -> float:
    """Variance at inference / variance in training of one unit after inverted dropout.

    A unit with mean ``mean`` and variance ``var`` passed through inverted dropout has, in
    training, variance ``(var + p * mean**2) / (1 - p)``; at inference (dropout off) ``var``.
    The ratio is ``(1 - p) var / (var + p mean**2)`` (1 for p = 0).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    return (1.0 - p) * var / (var + p * mean**2)


def expected_dropout_batch_variance(a, weight, p: float) -> np.ndarray:
    """Expected (over the masks) biased batch variance of ``z = dropout(a) @ weight.T``.

    ``a`` (N, D) is the batch entering inverted dropout (probability ``p``), ``weight`` (F, D)
    the Linear layer after it. With independent masks for every example and unit,

        E[Var_n z_f] = Var_n (a w_f) + (1 - 1/N) * p / (1 - p) * sum_i w_fi^2 * mean_n a_ni^2,

    where Var_n is the biased variance over the N examples. The first term is the variance
    without dropout (as at inference); the second is what dropout adds in training.
    """
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    w = torch.as_tensor(np.asarray(weight), dtype=torch.float64)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p must be in [0, 1), got {p}")
    n = a.shape[0]
    base = (a @ w.T).var(dim=0, unbiased=False)
    extra = (1.0 - 1.0 / n) * p / (1.0 - p) * ((w**2) @ (a**2).mean(dim=0))
    return (base + extra).numpy()


def _bn_layers(model: nn.Module) -> list[nn.BatchNorm1d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]


@contextmanager
def _frozen_modes(model: nn.Module) -> Iterator[None]:
    """Restore every module's mode and every BN layer's buffers and momentum on exit."""
    modes = [(m, m.training) for m in model.modules()]
    saved = [(bn, bn.momentum, {k: v.clone() for k, v in bn.named_buffers()})
             for bn in _bn_layers(model)]
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, momentum, buffers in saved:
                bn.momentum = momentum
                for k, v in buffers.items():
                    getattr(bn, k).copy_(v)
        for m, mode in modes:
            m.training = mode


def _bn_inputs(model: nn.Sequential, x: torch.Tensor, *, dropout: bool, batch_stats: bool
               ) -> tuple[list[torch.Tensor], list[np.ndarray | None]]:
    """One forward pass of ``x`` in the given modes: the input of every BN layer, and (with
    dropout on) for each BN layer that follows ``Dropout -> Linear`` the expected batch variance
    of its input over that dropout's masks (:func:`expected_dropout_batch_variance` of the
    dropout's input in this very pass), else None."""
    modules = list(model)
    bn_at = [i for i, m in enumerate(modules) if isinstance(m, nn.BatchNorm1d)]
    inputs: dict[int, torch.Tensor] = {}
    hooks = [modules[i].register_forward_hook(
        lambda m, inp, out, i=i: inputs.__setitem__(i, inp[0].detach()))
        for i in range(len(modules))]
    try:
        with _frozen_modes(model), torch.no_grad():
            model.eval()
            for m in model.modules():
                if isinstance(m, _DropoutNd) and dropout:
                    m.train()
                if isinstance(m, nn.BatchNorm1d) and batch_stats:
                    m.train()
                    m.momentum = 0.0
            model(x)
    finally:
        for h in hooks:
            h.remove()
    predicted: list[np.ndarray | None] = []
    for i in bn_at:
        if (dropout and i >= 2 and isinstance(modules[i - 1], nn.Linear)
                and isinstance(modules[i - 2], _DropoutNd) and modules[i - 1].bias is None):
            predicted.append(expected_dropout_batch_variance(
                inputs[i - 2].numpy(), modules[i - 1].weight.detach().numpy(), modules[i - 2].p))
        else:
            predicted.append(None)
    return [inputs[i] for i in bn_at], predicted


def bn_input_variances(model: nn.Sequential, x_batches: Sequence[torch.Tensor],
                       x_inference: torch.Tensor, seed: int = 0) -> list[dict]:
    """What each BN layer of ``model`` sees in training and at inference, per feature.

    ``model`` is an ``nn.Sequential`` such as :func:`solutions.experiments.make_mlp` builds. For
    every BN layer (in order) a dict of (F,) arrays:

    * ``train``: the biased variance of the layer's input over a training batch, as training
      computes it (dropout on, every BN layer normalizing by its batch), averaged over
      ``x_batches``;
    * ``predicted``: for a BN layer right after ``Dropout -> Linear`` (no bias), the average
      over the same passes of :func:`expected_dropout_batch_variance`, the value ``train``
      should approach (the expectation over the last dropout's masks); None for other layers;
    * ``train_no_dropout``: the same batches with dropout off (BN still on batch statistics);
    * ``inference``: the variance of the input over ``x_inference`` in evaluation mode (dropout
      off, running statistics), what the layer meets at prediction time;
    * ``running``: the layer's running variance, which it divides by at inference.

    Leaves the model's modes and BN buffers as they were. Masks come from a forked generator
    seeded with ``seed``.
    """
    n_bn = len(_bn_layers(model))
    if n_bn == 0:
        raise ValueError("the model has no BatchNorm1d layer")
    train: list[list] = [[] for _ in range(n_bn)]
    predicted: list[list] = [[] for _ in range(n_bn)]
    off: list[list] = [[] for _ in range(n_bn)]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for xb in x_batches:
            zs, preds = _bn_inputs(model, xb, dropout=True, batch_stats=True)
            for k, (z, pred) in enumerate(zip(zs, preds, strict=True)):
                train[k].append(z.double().var(dim=0, unbiased=False).numpy())
                predicted[k].append(pred)
            zs, _ = _bn_inputs(model, xb, dropout=False, batch_stats=True)
            for k, z in enumerate(zs):
                off[k].append(z.double().var(dim=0, unbiased=False).numpy())
    inference, _ = _bn_inputs(model, x_inference, dropout=False, batch_stats=False)
    return [{"train": np.mean(train[k], axis=0),
             "predicted": None if predicted[k][0] is None else np.mean(predicted[k], axis=0),
             "train_no_dropout": np.mean(off[k], axis=0),
             "inference": inference[k].double().var(dim=0, unbiased=False).numpy(),
             "running": bn.running_var.detach().double().numpy()}
            for k, bn in enumerate(_bn_layers(model))]


def recalibrate_bn(model: nn.Module, x: torch.Tensor, batch_size: int = 60) -> nn.Module:
    """A copy of ``model`` whose BN running statistics are recomputed with dropout off.

    The copy's BN layers forget their running mean and variance and average, with equal
    weights (PyTorch's ``momentum=None``), the statistics of consecutive batches of
    ``batch_size`` examples of ``x`` (a remainder smaller than a batch is left out) passed with
    dropout off, as at inference. Weights are unchanged; the copy is returned in evaluation mode
    with each BN layer's original momentum. ``model`` itself is not modified.
    """
    clone = copy.deepcopy(model)
    bns = _bn_layers(clone)
    momenta = [bn.momentum for bn in bns]
    clone.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    n = (len(x) // batch_size) * batch_size
    if n == 0:
        raise ValueError(f"batch size {batch_size} exceeds the {len(x)} examples")
    with torch.no_grad():
        for start in range(0, n, batch_size):
            clone(x[start:start + batch_size])
    for bn, momentum in zip(bns, momenta, strict=True):
        bn.momentum = momentum
    return clone.eval()
