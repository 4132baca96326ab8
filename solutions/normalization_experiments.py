"""Training experiments of the chapters "Why batch normalization helps" and "Where batch norm
bites, and the alternatives", with PyTorch on the CPU, on the course's digits.

Every ``*_experiment`` function returns plain data (dicts of NumPy arrays and numbers) and is a
deterministic function of its arguments on a given machine: ``torch.manual_seed(seed)`` before
a model is built, a NumPy generator seeded with ``seed`` for the batch order.

Models (:func:`make_mlp`, :func:`make_convnet`):

* MLP: per hidden layer ``Linear -> [norm] -> activation`` (``placement="before"``, the
  paper's order) or ``Linear -> activation -> [norm]`` (``"after"``); output ``Linear``.
  A Linear layer directly followed by a normalization has no bias.
* Conv net for the H x W images: ``Conv3x3(1 -> c1) -> norm -> ReLU -> Conv3x3 stride 2
  (c1 -> c2) -> norm -> ReLU -> Linear``.
* ``norm``: None, ``"bn"`` (BatchNorm1d / BatchNorm2d: eps 1e-5, momentum 0.1, running
  statistics in evaluation mode), ``"ln"`` (layer norm: ``nn.LayerNorm(h)`` for the MLP,
  ``nn.GroupNorm(1, C)`` for the conv net, i.e. over (C, H, W) with per-channel affine
  parameters), ``"gn"`` (``nn.GroupNorm(groups, C)``; for the MLP the features are cut into
  groups), ``"in"`` (conv net only: ``nn.GroupNorm(C, C)``, instance norm).
* PyTorch's default initialization, or He's (``init="he"``: hidden weights from
  N(0, 2/fan_in), so a plain ReLU network keeps its signal's spread); ``init_scale`` then
  multiplies the hidden layers' weights.

Training (:func:`train`): plain SGD (no momentum, no weight decay) on the cross-entropy loss,
batches drawn by reshuffling every epoch and dropping the last incomplete batch; accuracy in
evaluation mode. Training and every ``*_experiment`` function run with one torch thread
(:func:`threads`), restoring the previous setting afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from solutions.digits import Digits
from solutions.experiments import accuracy

__all__ = ["make_mlp", "make_convnet", "train", "accuracy", "threads",
           "landscape_experiment", "lr_sweep_experiment", "batch_size_experiment",
           "placement_experiment", "mode_mistakes", "frozen_bn_experiment",
           "scale_invariant_layers", "NoisyBatchNorm1d", "scaled_step_equivalence", "summary",
           "NORMS", "STEP_FACTORS"]

#: The step sizes of the loss-landscape probe, as multiples of the training learning rate.
STEP_FACTORS = (0.5, 1.0, 2.0, 4.0)
NORMS = (None, "bn", "ln", "gn", "in")
_ACT = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


@contextmanager
def threads(n: int = 1):
    """torch uses ``n`` intra-op threads inside the block; the previous setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _one_thread(func):
    """Run ``func`` with one torch thread (:func:`threads`): for networks this small one thread
    is fastest, and idle OpenMP threads spinning on a busy machine only burn CPU time."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threads(1):
            return func(*args, **kwargs)

    return wrapper


def _norm_1d(norm: str | None, h: int, groups: int) -> nn.Module | None:
    if norm is None:
        return None
    if norm == "bn":
        return nn.BatchNorm1d(h, eps=1e-5, momentum=0.1)
    if norm == "ln":
        return nn.LayerNorm(h, eps=1e-5)
    if norm == "gn":
        return nn.GroupNorm(groups, h, eps=1e-5)
    raise ValueError(f"MLP norm must be None, 'bn', 'ln' or 'gn', got {norm!r}")


def make_mlp(n_in: int, n_out: int, hidden: Sequence[int] = (100, 100, 100),
             norm: str | None = "bn", placement: str = "before", activation: str = "relu",
             groups: int = 4, init: str = "default",
             init_scale: float = 1.0) -> nn.Sequential:
    """An MLP with a normalization per hidden layer, before or after the activation.

    Seed the global torch RNG first. ``init="default"`` keeps PyTorch's initialization
    (uniform, standard deviation 1/sqrt(3 fan_in)); ``"he"`` draws the hidden layers' weights
    from N(0, 2/fan_in) with zero biases (He et al. 2015: the spread of a ReLU network's
    signal is kept from layer to layer, so the plain network starts as well scaled as the
    normalized one). ``init_scale`` then multiplies the hidden Linear layers' weights (not the
    output layer's).
    """
    if init not in ("default", "he"):
        raise ValueError(f"init must be 'default' or 'he', got {init!r}")
    if placement not in ("before", "after"):
        raise ValueError(f"placement must be 'before' or 'after', got {placement!r}")
    if activation not in _ACT:
        raise ValueError(f"activation must be one of {sorted(_ACT)}, got {activation!r}")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layer_norm = _norm_1d(norm, h, groups)
        layers.append(nn.Linear(width, h, bias=layer_norm is None or placement == "after"))
        if layer_norm is not None and placement == "before":
            layers.append(layer_norm)
        layers.append(_ACT[activation]())
        if layer_norm is not None and placement == "after":
            layers.append(layer_norm)
        width = h
    layers.append(nn.Linear(width, n_out))
    model = nn.Sequential(*layers)
    with torch.no_grad():
        for m in list(model)[:-1]:
            if isinstance(m, nn.Linear):
                if init == "he":
                    m.weight.normal_(0.0, (2.0 / m.in_features) ** 0.5)
                    if m.bias is not None:
                        m.bias.zero_()
                m.weight.mul_(init_scale)
    return model


def _norm_2d(norm: str | None, c: int, groups: int) -> nn.Module:
    if norm is None:
        return nn.Identity()
    if norm == "bn":
        return nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    if norm == "ln":
        return nn.GroupNorm(1, c, eps=1e-5)
    if norm == "gn":
        return nn.GroupNorm(groups, c, eps=1e-5)
    if norm == "in":
        return nn.GroupNorm(c, c, eps=1e-5)
    raise ValueError(f"conv norm must be one of {NORMS}, got {norm!r}")


def make_convnet(image_shape: tuple[int, int], norm: str | None = "bn",
                 channels: tuple[int, int] = (16, 32), groups: int = 4,
                 n_out: int = 10) -> nn.Sequential:
    """``Conv3x3 -> norm -> ReLU -> Conv3x3/2 -> norm -> ReLU -> Linear`` for (N, 1, H, W)
    images. Convolutions followed by a normalization have no bias. Seed torch first."""
    h, w = image_shape
    c1, c2 = channels
    bias = norm is None
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=bias), _norm_2d(norm, c1, groups), nn.ReLU(),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=bias), _norm_2d(norm, c2, groups),
        nn.ReLU(), nn.Flatten(), nn.Linear(c2 * h2 * w2, n_out))


def _tensors(data: Digits, images: bool):
    def t(a, dtype):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))

    x_train, x_test = t(data.x_train, np.float32), t(data.x_test, np.float32)
    if images:
        x_train = x_train.view(-1, 1, *data.image_shape)
        x_test = x_test.view(-1, 1, *data.image_shape)
    return x_train, t(data.y_train, np.int64), x_test, t(data.y_test, np.int64)


def _sgd_step(params: Sequence[nn.Parameter], lr: float) -> None:
    """``p -= lr * p.grad`` for every parameter with a gradient: plain SGD, the update of
    ``torch.optim.SGD`` without momentum or weight decay (whose first construction imports
    several seconds' worth of torch modules)."""
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)


def train(model: nn.Module, data: Digits, steps: int, lr: float, batch_size: int, seed: int,
          images: bool = False, on_step: Callable | None = None,
          trainable: Sequence[nn.Parameter] | None = None) -> dict:
    """Train ``model`` with plain SGD; returns ``{"train_loss": (steps,), "test_acc",
    "train_acc"}``.

    ``on_step(step, model, x, y)`` is called before each update (gradients of the batch
    computed, not yet applied); ``trainable`` restricts the update to those parameters.
    """
    x_train, y_train, x_test, y_test = _tensors(data, images)
    n = len(x_train)
    if batch_size > n or batch_size < 1:
        raise ValueError(f"batch size {batch_size} must lie in 1..{n}")
    rng = np.random.default_rng(seed)
    params = list(model.parameters()) if trainable is None else list(trainable)
    loss_fn = nn.CrossEntropyLoss()
    per_epoch = n // batch_size
    order = rng.permutation(n)
    losses = np.empty(steps)
    model.train()
    with threads():
        for step in range(steps):
            k = step % per_epoch
            if k == 0 and step > 0:
                order = rng.permutation(n)
            idx = torch.from_numpy(order[k * batch_size:(k + 1) * batch_size])
            x, y = x_train[idx], y_train[idx]
            model.zero_grad(set_to_none=False)
            loss = loss_fn(model(x), y)
            loss.backward()
            if on_step is not None:
                on_step(step, model, x, y)
            _sgd_step(params, lr)
            losses[step] = loss.item()
        return {"train_loss": losses, "test_acc": accuracy(model, x_test, y_test),
                "train_acc": accuracy(model, x_train, y_train)}


def summary(values) -> dict:
    """Mean, min and max over seeds of a (seeds, ...) array, along axis 0."""
    v = np.asarray(values, dtype=float)
    return {"mean": v.mean(axis=0), "min": v.min(axis=0), "max": v.max(axis=0)}


# ------------------------------------------------- why BN helps: landscape and ICS probes


def scale_invariant_layers(model: nn.Sequential) -> list[nn.Linear]:
    """The Linear layers directly followed by a BatchNorm1d: the output of the BN layer does
    not change when such a layer's weight rows are multiplied by positive numbers."""
    mods = list(model)
    return [m for m, nxt in zip(mods[:-1], mods[1:], strict=True)
            if isinstance(m, nn.Linear) and isinstance(nxt, nn.BatchNorm1d)]


@contextmanager
def _frozen_bn_buffers(model: nn.Module):
    """Forward passes inside the block leave the BN running statistics as they were."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone(),
              m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        with torch.no_grad():
            for m, (mom, rm, rv, nbt) in zip(bns, saved, strict=True):
                m.momentum = mom
                m.running_mean.copy_(rm)
                m.running_var.copy_(rv)
                m.num_batches_tracked.copy_(nbt)


def _loss_and_grads(model, params, x, y):
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params)
    return loss.item(), [g.detach() for g in grads]


def _probe(model: nn.Sequential, x, y, lr: float, factors: Sequence[float]) -> dict:
    """Loss and gradient along the gradient direction, and Santurkar et al.'s internal
    covariate shift, at the current weights on the batch (x, y)."""
    params = list(model.parameters())
    originals = [p.detach().clone() for p in params]
    layers = [m for m in model if isinstance(m, nn.Linear)]
    out: dict = {}
    with _frozen_bn_buffers(model):
        loss0, g0 = _loss_and_grads(model, params, x, y)
        g0_flat = torch.cat([g.reshape(-1) for g in g0])
        losses, changes = [loss0], []
        for f in factors:
            with torch.no_grad():
                for p, w, g in zip(params, originals, g0, strict=True):
                    p.copy_(w - f * lr * g)
            loss, g = _loss_and_grads(model, params, x, y)
            losses.append(loss)
            changes.append(float(torch.linalg.vector_norm(
                torch.cat([v.reshape(-1) for v in g]) - g0_flat)))
        with torch.no_grad():
            for p, w in zip(params, originals, strict=True):
                p.copy_(w)
        # ICS (Santurkar et al. 2018, Definition 2.1): the gradient of layer i's weights before
        # and after the layers below it take their own gradient step on the same batch
        index = {id(p): k for k, p in enumerate(params)}
        ics_l2, ics_cos = [], []
        for layer in layers[1:]:
            below = [p for m in list(model)[:list(model).index(layer)]
                     for p in m.parameters()]
            with torch.no_grad():
                for p in below:
                    p.sub_(lr * g0[index[id(p)]])
            _, g_after = _loss_and_grads(model, params, x, y)
            with torch.no_grad():
                for p, w in zip(params, originals, strict=True):
                    p.copy_(w)
            before_g = g0[index[id(layer.weight)]].reshape(-1)
            after_g = g_after[index[id(layer.weight)]].reshape(-1)
            ics_l2.append(float(torch.linalg.vector_norm(after_g - before_g)
                                / torch.linalg.vector_norm(before_g)))
            ics_cos.append(float(torch.nn.functional.cosine_similarity(
                after_g, before_g, dim=0)))
    gnorm = float(torch.linalg.vector_norm(g0_flat))
    out["loss_along"] = np.array(losses)                        # (1 + F,)
    out["grad_change"] = np.array(changes)                      # (F,) ||g(w) - g(w - eta g)||
    out["grad_change_rel"] = np.array(changes) / gnorm          # (F,) relative to ||g(w)||
    out["beta"] = float(max(c / (f * lr * gnorm) for c, f in zip(changes, factors,
                                                                  strict=True)))
    out["ics_rel"] = np.array(ics_l2)
    out["ics_cos"] = np.array(ics_cos)
    return out


class NoisyBatchNorm1d(nn.BatchNorm1d):
    """Batch norm followed, in training mode, by noise that changes at every forward pass:
    each unit's output is multiplied by ``s`` and shifted by ``m`` drawn afresh per unit and per
    call, ``s ~ U(1 - scale_noise, 1 + scale_noise)``, ``m ~ U(-shift_noise, shift_noise)``
    (the same for every example of the batch). This is Santurkar et al.'s (2018) "noisy BN":
    the distribution each following layer sees moves at every step, more than without BN.
    Evaluation mode adds no noise. The noise comes from its own generator (``seed``).
    """

    def __init__(self, num_features: int, scale_noise: float = 0.5, shift_noise: float = 1.0,
                 seed: int = 0):
        super().__init__(num_features, eps=1e-5, momentum=0.1)
        self.scale_noise, self.shift_noise = scale_noise, shift_noise
        self.generator = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if not self.training:
            return y
        h = self.num_features
        s = 1 + self.scale_noise * (2 * torch.rand(h, generator=self.generator) - 1)
        m = self.shift_noise * (2 * torch.rand(h, generator=self.generator) - 1)
        return y * s + m


def _make_landscape_model(kind: str, data: Digits, hidden, activation: str, init: str,
                          seed: int, noise: tuple[float, float]) -> nn.Sequential:
    torch.manual_seed(seed)
    model = make_mlp(data.n_features, data.n_classes, hidden,
                     None if kind == "plain" else "bn", activation=activation, init=init)
    if kind == "noisy_bn":
        layers = list(model)
        for i, m in enumerate(layers):
            if isinstance(m, nn.BatchNorm1d):
                noisy = NoisyBatchNorm1d(m.num_features, *noise, seed=1000 + seed + i)
                layers[i] = noisy
        model = nn.Sequential(*layers)
    return model


class _NormRecorder:
    """Per step, for the Linear layers feeding BN: mean row norm, the largest
    |cos(w_row, grad_row)|, ||W||^2 and the ||W||^2 + lr^2 ||G||^2 that SGD produces if the
    gradient is orthogonal to W. Kept as tensors during training (no synchronization per step)
    and converted once by :meth:`result`."""

    def __init__(self, layers: Sequence[nn.Linear], lr: float):
        self.layers, self.lr = list(layers), lr
        self.records: list[torch.Tensor] = []

    @staticmethod
    def _rows(w: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        w, g = w.double(), g.double()
        ww, gg, wg = (w * w).sum(1), (g * g).sum(1), (w * g).sum(1)
        cos = (wg.abs() / torch.sqrt(ww * gg).clamp_min(1e-300)).max()
        return torch.stack([ww.sqrt().mean(), cos, ww.sum(), gg.sum()])

    def __call__(self, step, model, x, y):
        with torch.no_grad():
            self.records.append(torch.stack([self._rows(m.weight.detach(), m.weight.grad)
                                             for m in self.layers]))

    def result(self) -> dict:
        with torch.no_grad():
            final = torch.stack([self._rows(m.weight.detach(), torch.zeros_like(m.weight))
                                 for m in self.layers]).numpy()
        rec = torch.stack(self.records).numpy()                       # (steps, L, 4)
        row_norm = np.concatenate([rec[:, :, 0], final[None, :, 0]])  # (steps + 1, L)
        actual = np.concatenate([rec[1:, :, 2], final[None, :, 2]])   # ||W||^2 after each step
        predicted = rec[:, :, 2] + self.lr**2 * rec[:, :, 3]
        return {"row_norm": row_norm, "effective_lr": self.lr / row_norm**2,
                "max_abs_cos_wg": rec[:, :, 1],
                "norm_identity_error": float(np.max(np.abs(actual - predicted) / actual))}


def _shift_stats(model: nn.Sequential, x_probe: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per hidden layer, the mean and std over ``x_probe`` of each unit's activation input,
    as training sees it (training mode, noise included; running statistics untouched)."""
    acts = [m for m in model if isinstance(m, tuple(_ACT.values()))]
    captured: list[torch.Tensor] = []
    handles = [a.register_forward_hook(lambda mod, inp, out: captured.append(inp[0]))
               for a in acts]
    try:
        with _frozen_bn_buffers(model), torch.no_grad():
            model.train()
            model(x_probe)
    finally:
        for h in handles:
            h.remove()
    return (np.stack([c.mean(0).numpy() for c in captured]),
            np.stack([c.std(0).numpy() for c in captured]))


def _landscape_run(data: Digits, kind: str, seed: int, steps: int, lr: float,
                   batch_size: int, probe_every: int, hidden, factors, activation: str,
                   init: str, noise: tuple[float, float], n_probe: int) -> dict:
    model = _make_landscape_model(kind, data, hidden, activation, init, seed, noise)
    x_all, _, x_test, y_test = _tensors(data, images=False)
    x_probe = x_all[:n_probe]
    landscape = kind != "noisy_bn"      # noise would blur the probes of the loss landscape
    probes: list[dict] = []
    probe_steps: list[int] = []
    means, stds, test_curve = [], [], []
    recorder = _NormRecorder(scale_invariant_layers(model), lr) if kind == "bn" else None

    def on_step(step, model, x, y):
        if recorder is not None:
            recorder(step, model, x, y)
        if step % probe_every == 0:
            probe_steps.append(step)
            if landscape:
                probes.append(_probe(model, x, y, lr, factors))
            mu, sd = _shift_stats(model, x_probe)
            means.append(mu)
            stds.append(sd)
            test_curve.append(accuracy(model, x_test, y_test))

    result = train(model, data, steps, lr, batch_size, seed, on_step=on_step)
    out = {"train_loss": result["train_loss"], "test_acc": result["test_acc"],
           "train_acc": result["train_acc"], "probe_steps": np.array(probe_steps),
           "test_acc_curve": np.array(test_curve + [result["test_acc"]])}
    for key in (probes[0] if probes else {}):
        out[key] = np.array([p[key] for p in probes])
    mu, sd = np.array(means), np.array(stds)                  # (P, layers, units)
    # how far each unit's mean moves between consecutive probes, in units of its spread
    out["shift"] = np.mean(np.abs(np.diff(mu, axis=0)) / np.maximum(sd[:-1], 1e-12),
                           axis=(1, 2))                       # (P - 1,)
    out["last_unit_mean"] = mu[:, -1, 0]
    out["last_unit_std"] = sd[:, -1, 0]
    if recorder is not None:
        out.update(recorder.result())
    return out


@_one_thread
def landscape_experiment(data: Digits, seeds: Sequence[int], steps: int = 400,
                         lr: float = 0.1, batch_size: int = 60, probe_every: int = 40,
                         hidden: Sequence[int] = (100, 100, 100),
                         factors: Sequence[float] = STEP_FACTORS,
                         activation: str = "relu", init: str = "he",
                         noise: tuple[float, float] = (0.5, 1.0),
                         n_probe: int = 256) -> dict:
    """Train the MLP without BN (``"plain"``), with BN (``"bn"``) and with noisy BN
    (``"noisy_bn"``, :class:`NoisyBatchNorm1d` with ``noise = (scale_noise, shift_noise)``),
    from the same initialization rule with the same learning rate and batches, and probe
    every ``probe_every`` steps.

    Returns ``{kind: run}``, each run stacked over seeds (axis 0): ``train_loss`` (S, steps),
    ``test_acc`` and ``train_acc`` (S,), ``probe_steps`` (P,); ``shift`` (S, P - 1): the mean
    over hidden units of |change of the unit's mean activation input between consecutive
    probes| / its standard deviation, on the first ``n_probe`` training images in training
    mode; ``last_unit_mean`` / ``last_unit_std`` (S, P) of unit 0 of the last hidden layer;
    ``test_acc_curve`` (S, P + 1): test accuracy (evaluation mode) at every probe and at the
    end.
    Plain and BN also have the landscape probes: ``loss_along`` (S, P, 1 + F) the batch loss
    at w - f * lr * g for f in (0, *factors); ``grad_change`` (S, P, F)
    ``||g(w) - g(w - f lr g)||`` and ``grad_change_rel`` that divided by ``||g(w)||``;
    ``beta`` (S, P) the largest ``||g(w) - g(w')|| / ||w - w'||`` over the factors;
    ``ics_rel`` and ``ics_cos`` (S, P, layers - 1): Santurkar et al.'s internal covariate
    shift of Linear layers 2.. (relative change and cosine of a layer's weight gradient when
    the layers below it first take their own step on the same batch). BN also has, for the
    Linear layers feeding BN (:class:`_NormRecorder`): ``row_norm`` (S, steps + 1, L),
    ``effective_lr`` = lr / row_norm^2, ``max_abs_cos_wg`` (S, steps, L) and
    ``norm_identity_error`` (S,).
    """
    out: dict = {"factors": np.array(factors), "lr": lr}
    for kind in ("plain", "bn", "noisy_bn"):
        runs = [_landscape_run(data, kind, s, steps, lr, batch_size, probe_every, hidden,
                               factors, activation, init, noise, n_probe) for s in seeds]
        out[kind] = {k: (np.stack([r[k] for r in runs]) if k != "probe_steps"
                         else runs[0][k]) for k in runs[0]}
    return out


@_one_thread
def lr_sweep_experiment(data: Digits, seeds: Sequence[int], lrs: Sequence[float],
                        steps: int = 200, batch_size: int = 60,
                        hidden: Sequence[int] = (100, 100, 100), init: str = "he") -> dict:
    """The MLP with and without BN trained at each learning rate.

    Returns ``{"plain"|"bn": {"test_acc": (S, len(lrs)), "final_loss": (S, len(lrs))}}``
    (``final_loss``: mean training loss of the last 20 steps, NaN when it was not finite) and,
    for BN, ``row_norm`` (S, len(lrs), steps + 1): the mean row norm of the Linear layers
    feeding BN (averaged over those layers), ``norm_identity_error`` (S, len(lrs)) and
    ``max_abs_cos_wg`` (S, len(lrs)) (see :func:`landscape_experiment`); plus ``lrs``.
    """
    out: dict = {"lrs": np.array(lrs)}
    for name, norm in (("plain", None), ("bn", "bn")):
        acc = np.empty((len(seeds), len(lrs)))
        loss = np.empty_like(acc)
        rows, ident, cos = [], np.empty_like(acc), np.empty_like(acc)
        for i, seed in enumerate(seeds):
            rows_seed = []
            for j, lr in enumerate(lrs):
                torch.manual_seed(seed)
                model = make_mlp(data.n_features, data.n_classes, hidden, norm, init=init)
                rec = _NormRecorder(scale_invariant_layers(model), lr) if norm else None
                r = train(model, data, steps, lr, batch_size, seed, on_step=rec)
                tail = r["train_loss"][-20:]
                loss[i, j] = float(np.mean(tail)) if np.isfinite(tail).all() else np.nan
                acc[i, j] = r["test_acc"]
                if rec is not None:
                    res = rec.result()
                    rows_seed.append(res["row_norm"].mean(axis=1))
                    ident[i, j] = res["norm_identity_error"]
                    cos[i, j] = res["max_abs_cos_wg"].max()
            rows.append(rows_seed)
        out[name] = {"test_acc": acc, "final_loss": loss}
        if norm:
            out[name].update(row_norm=np.array(rows), norm_identity_error=ident,
                             max_abs_cos_wg=cos)
    return out


@_one_thread
def scaled_step_equivalence(data: Digits, c: float = 10.0, lr: float = 0.1, seed: int = 0,
                            hidden: Sequence[int] = (100, 100, 100), batch_size: int = 60,
                            eps: float = 1e-5) -> dict:
    """One SGD step on a BN MLP whose scale-invariant weights (the Linear layers feeding BN)
    are multiplied by ``c``, against one step on the unscaled network with learning rate
    ``lr / c**2`` for those weights (``lr`` for every other parameter). In float64.

    Returns relative differences (largest over the layers): ``output_before`` between the two
    networks' outputs on the batch before the step; ``grad_ratio``: how far the scaled
    network's weight gradient is from the unscaled one's divided by ``c``; ``weights_after``:
    how far the scaled network's weights are from ``c`` times the other's after the step;
    ``others_after``: the remaining parameters; ``output_after``: the outputs after the step.
    Batch norm's ``eps`` keeps them from being exactly zero: they are of order eps / variance
    and shrink in proportion to ``eps`` (torch refuses ``eps = 0`` in training).
    """
    import copy

    torch.manual_seed(seed)
    a = make_mlp(data.n_features, data.n_classes, hidden, "bn", init="he").double()
    for m in a.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.eps = eps
    b = copy.deepcopy(a)
    inv_a, inv_b = scale_invariant_layers(a), scale_invariant_layers(b)
    with torch.no_grad():
        for m in inv_b:
            m.weight.mul_(c)
    rng = np.random.default_rng(seed)
    idx = torch.from_numpy(rng.permutation(len(data.y_train))[:batch_size])
    x = torch.from_numpy(np.asarray(data.x_train, dtype=np.float64))[idx]
    y = torch.from_numpy(np.asarray(data.y_train, dtype=np.int64))[idx]

    def rel(u, v):
        u, v = u.detach(), v.detach()
        return float((u - v).abs().max() / v.abs().max())

    a.train()
    b.train()
    with torch.no_grad():
        out = {"output_before": rel(b(x), a(x))}
    inv_ids = {id(m.weight) for m in inv_a}
    for model in (a, b):
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
    out["grad_ratio"] = max(rel(mb.weight.grad * c, ma.weight.grad)
                            for ma, mb in zip(inv_a, inv_b, strict=True))
    _sgd_step([m.weight for m in inv_a], lr / c**2)
    _sgd_step([p for p in a.parameters() if id(p) not in inv_ids], lr)
    _sgd_step(list(b.parameters()), lr)
    out["weights_after"] = max(rel(mb.weight, c * ma.weight)
                               for ma, mb in zip(inv_a, inv_b, strict=True))
    inv_b_ids = {id(m.weight) for m in inv_b}
    out["others_after"] = max(rel(pb, pa) for pa, pb in zip(a.parameters(), b.parameters(),
                                                             strict=True)
                              if id(pb) not in inv_b_ids)
    with _frozen_bn_buffers(a), _frozen_bn_buffers(b), torch.no_grad():
        out["output_after"] = rel(b(x), a(x))
    return out


# ------------------------------------------------------- where BN bites: the alternatives


@_one_thread
def batch_size_experiment(data: Digits, seeds: Sequence[int], sizes: Sequence[int],
                          norms: Sequence[str | None] = ("bn", "ln", "gn"), steps: int = 150,
                          lr: float = 0.05, groups: int = 4, arch: str = "mlp",
                          hidden: Sequence[int] = (100, 100, 100),
                          channels: tuple[int, int] = (16, 32)) -> dict:
    """Each normalization trained with each batch size for the same number of steps and the
    same learning rate, in the MLP (``arch="mlp"``, normalization before the ReLU, PyTorch's
    default initialization) or the conv net (``"conv"``).

    Returns ``{norm: {"test_acc": (S, len(sizes)), "train_acc": (S, len(sizes))}}`` (key
    ``"none"`` for None) and ``"sizes"``.
    """
    if arch not in ("mlp", "conv"):
        raise ValueError(f"arch must be 'mlp' or 'conv', got {arch!r}")
    out: dict = {"sizes": np.array(sizes)}
    for norm in norms:
        acc = np.empty((len(seeds), len(sizes)))
        tr = np.empty_like(acc)
        for i, seed in enumerate(seeds):
            for j, m in enumerate(sizes):
                torch.manual_seed(seed)
                if arch == "mlp":
                    model = make_mlp(data.n_features, data.n_classes, hidden, norm,
                                     groups=groups)
                else:
                    model = make_convnet(data.image_shape, norm, channels, groups)
                r = train(model, data, steps, lr, m, seed, images=arch == "conv")
                acc[i, j], tr[i, j] = r["test_acc"], r["train_acc"]
        out["none" if norm is None else norm] = {"test_acc": acc, "train_acc": tr}
    return out


def _skew(v: np.ndarray) -> np.ndarray:
    c = v - v.mean(axis=0)
    return (c**3).mean(axis=0) / np.maximum((c**2).mean(axis=0), 1e-12) ** 1.5


@_one_thread
def placement_experiment(data: Digits, seeds: Sequence[int], steps: int = 500,
                         lr: float = 0.05, batch_size: int = 60,
                         hidden: Sequence[int] = (100, 100, 100),
                         activation: str = "relu", return_models: bool = False) -> dict:
    """BN before vs after the activation in the MLP (PyTorch's default initialization).

    Returns ``{"before"|"after": {"test_acc": (S,), "train_acc": (S,),
    "train_loss": (S, steps), "zero_frac": (S,), "skew": (S,)}}``: ``zero_frac`` is the
    fraction of exact zeros and ``skew`` the mean skewness (over features) of the values that
    enter the BN layers, on the test images after training (evaluation mode). ``models`` (one
    per seed) when ``return_models``.
    """
    out = {}
    for name in ("before", "after"):
        rows = {"test_acc": [], "train_acc": [], "train_loss": [], "zero_frac": [], "skew": []}
        models = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = make_mlp(data.n_features, data.n_classes, hidden, "bn", name, activation)
            r = train(model, data, steps, lr, batch_size, seed)
            for k in ("test_acc", "train_acc", "train_loss"):
                rows[k].append(r[k])
            inputs = _normalized_inputs(model, data)
            rows["zero_frac"].append(float(np.mean([np.mean(v == 0) for v in inputs])))
            rows["skew"].append(float(np.mean([_skew(v).mean() for v in inputs])))
            models.append(model)
        out[name] = {k: np.array(v) for k, v in rows.items()}
        if return_models:
            out[name]["models"] = models
    return out


def _normalized_inputs(model: nn.Sequential, data: Digits) -> list[np.ndarray]:
    """The values entering each BN layer on the test set (evaluation mode)."""
    targets = [m for m in model if isinstance(m, nn.BatchNorm1d)]
    captured: list[np.ndarray] = []
    handles = [m.register_forward_hook(
        lambda mod, inp, out: captured.append(inp[0].detach().numpy().copy()))
        for m in targets]
    try:
        _, _, x_test, _ = _tensors(data, images=False)
        was = model.training
        model.eval()
        with torch.no_grad():
            model(x_test)
        model.train(was)
    finally:
        for h in handles:
            h.remove()
    return captured


@_one_thread
def mode_mistakes(model: nn.Sequential, data: Digits, batch_size: int = 50,
                  seed: int = 0) -> dict:
    """Test accuracy of a trained BN model used correctly and in three wrong ways.

    ``eval``: evaluation mode (running statistics); ``fresh_stats``: evaluation mode with the
    running statistics reset to their initial values (mean 0, variance 1), as in a model
    evaluated before its statistics were ever updated; ``train_mixed``: training-mode BN
    (each batch normalized by its own statistics) on shuffled test batches of
    ``batch_size``; ``train_sorted``: the same on batches sorted by label (every batch one
    digit, or two); ``changed``: the fraction of test images whose predicted class differs
    between the two training-mode evaluations. The model is left as it was.
    """
    _, _, x_test, y_test = _tensors(data, images=False)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = {"eval": accuracy(model, x_test, y_test)}
    for m in bns:
        m.reset_running_stats()
    out["fresh_stats"] = accuracy(model, x_test, y_test)
    model.load_state_dict(state)

    def predict_in_batches(order):
        pred = torch.full((len(y_test),), -1, dtype=torch.int64)
        n = (len(order) // batch_size) * batch_size
        with _frozen_bn_buffers(model), torch.no_grad():
            model.train()
            for start in range(0, n, batch_size):
                idx = torch.from_numpy(order[start:start + batch_size])
                pred[idx] = model(x_test[idx]).argmax(1)
        return pred

    rng = np.random.default_rng(seed)
    n_used = (len(y_test) // batch_size) * batch_size
    mixed = rng.permutation(len(y_test))[:n_used]
    sorted_idx = np.argsort(y_test.numpy(), kind="stable")[:n_used]
    pred_mixed = predict_in_batches(mixed)
    pred_sorted = predict_in_batches(sorted_idx)
    common = torch.from_numpy(np.intersect1d(mixed, sorted_idx))
    out["train_mixed"] = float((pred_mixed[torch.from_numpy(mixed)]
                                == y_test[torch.from_numpy(mixed)]).float().mean())
    out["train_sorted"] = float((pred_sorted[torch.from_numpy(sorted_idx)]
                                 == y_test[torch.from_numpy(sorted_idx)]).float().mean())
    out["changed"] = float((pred_mixed[common] != pred_sorted[common]).float().mean())
    out["n_compared"] = len(common)
    model.load_state_dict(state)
    model.eval()
    return out


@_one_thread
def frozen_bn_experiment(model: nn.Sequential, data: Digits, steps: int = 100,
                         lr: float = 0.05, batch_size: int = 16, seed: int = 0) -> dict:
    """Fine-tune only the output layer of a trained BN MLP on a shifted task (the same digits
    with inverted intensities, 1 - x), the body's parameters with ``requires_grad=False``.

    Two ways: ``"train_mode"`` (``model.train()`` during fine-tuning, so the BN layers keep
    updating their running statistics from the new data) and ``"bn_eval"`` (the BN layers
    switched to evaluation mode, so the body is exactly frozen). For each: ``max_running_change``
    (largest change of any running mean or variance), ``body_change`` (largest change of the
    body's output on the original test images, evaluation mode), ``old_task_acc`` (the
    ORIGINAL output layer on the body after fine-tuning, original test images) and
    ``new_task_acc`` (the fine-tuned model on the inverted test images). ``before`` holds the
    original model's accuracy on both tasks. The given model is not modified.
    """
    import copy

    shifted = Digits(1.0 - data.x_train, data.y_train, 1.0 - data.x_test, data.y_test,
                     data.image_shape, data.name + " (inverted)", data.source)
    _, _, x_test, y_test = _tensors(data, images=False)
    _, _, x_test_inv, _ = _tensors(shifted, images=False)
    body_of = lambda m: nn.Sequential(*list(m)[:-1])  # noqa: E731
    with torch.no_grad():
        body0 = body_of(model).eval()(x_test).clone()
    out = {"before": {"old_task_acc": accuracy(model, x_test, y_test),
                      "new_task_acc": accuracy(model, x_test_inv, y_test)}}
    for name in ("train_mode", "bn_eval"):
        m = copy.deepcopy(model)
        head_before = copy.deepcopy(m[-1])
        for p in body_of(m).parameters():
            p.requires_grad_(False)
        running0 = [t.clone() for b in m.modules() if isinstance(b, nn.BatchNorm1d)
                    for t in (b.running_mean, b.running_var)]
        r = _finetune(m, shifted, steps, lr, batch_size, seed, bn_eval=name == "bn_eval")
        running1 = [t for b in m.modules() if isinstance(b, nn.BatchNorm1d)
                    for t in (b.running_mean, b.running_var)]
        with torch.no_grad():
            body1 = body_of(m).eval()(x_test)
        old = nn.Sequential(*list(m)[:-1], head_before)
        out[name] = {
            "max_running_change": float(max((a - b).abs().max() for a, b in
                                            zip(running0, running1, strict=True))),
            "body_change": float((body1 - body0).abs().max()),
            "old_task_acc": accuracy(old, x_test, y_test),
            "new_task_acc": r["test_acc"],
        }
    return out


def _finetune(model, data, steps, lr, batch_size, seed, bn_eval: bool) -> dict:
    head = list(model)[-1]
    if not bn_eval:
        return train(model, data, steps, lr, batch_size, seed, trainable=head.parameters())
    # the same loop with the BN layers in evaluation mode throughout
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    original_train = model.train

    def train_keeping_bn_eval(mode: bool = True):
        original_train(mode)
        for b in bns:
            b.eval()
        return model

    model.train = train_keeping_bn_eval
    try:
        return train(model, data, steps, lr, batch_size, seed, trainable=head.parameters())
    finally:
        del model.train

