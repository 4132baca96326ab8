"""Tests for solutions.dropout_practice: the overfitting experiment, unit removal, and the
variance shift of dropout before batch normalization."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from solutions import dropout_practice as dp
from solutions import experiments as ex
from solutions.digits import Digits, load_sklearn_digits


@pytest.fixture(scope="module")
def digits():
    return load_sklearn_digits()


@pytest.fixture(scope="module")
def tiny(digits):
    """300 training and 60 test digits: enough for a few epochs."""
    d = digits
    return Digits(d.x_train[:300], d.y_train[:300], d.x_test[:60], d.y_test[:60], (8, 8),
                  "tiny digits")


TINY_PLAN = dp.OverfitPlan(settings=((0.0, 0.0), (0.0, 0.5), (0.2, 0.5)), seeds=(0, 1),
                           n_per_class=2, hidden=(16, 16), epochs=4, batch_size=5,
                           eval_every=2)


def test_small_training_set_is_class_balanced_and_seeded(digits):
    """n_per_class distinct examples of every class; the same seed draws the same ones."""
    idx = dp.small_training_set(digits.y_train, 7, seed=3)
    assert len(idx) == 70 and len(set(idx.tolist())) == 70
    assert np.bincount(digits.y_train[idx], minlength=10).tolist() == [7] * 10
    np.testing.assert_array_equal(idx, dp.small_training_set(digits.y_train, 7, seed=3))
    assert not np.array_equal(idx, dp.small_training_set(digits.y_train, 7, seed=4))


def test_small_training_set_refuses_more_than_a_class_holds():
    """Asking for more examples of a class than exist raises."""
    with pytest.raises(ValueError, match="class"):
        dp.small_training_set(np.arange(10).repeat(2), 3, seed=0)


def test_make_dropout_mlp_layer_order():
    """[Dropout(p_in)] -> (Linear -> ReLU -> Dropout(p)) per hidden layer -> Linear; no dropout
    module where p is 0."""
    kinds = [type(m) for m in dp.make_dropout_mlp(8, 3, (5, 4), 0.5, 0.2)]
    assert kinds == [nn.Dropout] + [nn.Linear, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert [type(m) for m in dp.make_dropout_mlp(8, 3, (5,), 0.0)] == [nn.Linear, nn.ReLU,
                                                                       nn.Linear]
    with pytest.raises(ValueError):
        dp.make_dropout_mlp(8, 3, (5,), 1.0)


def test_plan_validation():
    """A batch size that does not divide the training set, or p = 1, is refused."""
    with pytest.raises(ValueError, match="batches"):
        dp.OverfitPlan(n_per_class=3, batch_size=7)
    with pytest.raises(ValueError, match="dropout"):
        dp.OverfitPlan(settings=((0.0, 1.0),))
    assert dp.OVERFIT.steps == dp.OVERFIT.epochs * dp.OVERFIT.n_train // dp.OVERFIT.batch_size


def _members(n: int = 3):
    torch.manual_seed(0)
    return [dp.make_dropout_mlp(6, 4, (10, 7), 0.0) for _ in range(n)]


def test_stack_in_eval_mode_equals_its_members():
    """Without dropout the stacked network computes each member's own output, and member()
    gives it back as an ordinary network."""
    members = _members()
    stack = dp.StackedDropoutMLP(members, [0.0, 0.1, 0.2], [0.0, 0.5, 0.3]).eval()
    x = torch.randn(5, 6)
    out = stack(x)
    for m, net in enumerate(members):
        torch.testing.assert_close(out[m], net(x))
        rebuilt = stack.member(m)
        torch.testing.assert_close(rebuilt(x), net(x))
        assert not rebuilt.training
    assert [type(m) for m in stack.member(1)][:2] == [nn.Dropout, nn.Linear]


def test_stack_drops_at_each_members_rate_in_training():
    """In training mode member m zeroes about p_hidden[m] of its hidden units and scales the
    kept ones by 1/(1-p): the output of a one-hidden-layer identity-like stack shows it."""
    torch.manual_seed(0)
    members = [dp.make_dropout_mlp(1, 2000, (2000,), 0.0) for _ in range(2)]
    stack = dp.StackedDropoutMLP(members, [0.0, 0.0], [0.2, 0.6],
                                 generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        stack.weight[0].fill_(1.0)
        stack.bias[0].zero_()
        stack.weight[1].copy_(torch.eye(2000))
        stack.bias[1].zero_()
    out = stack.train()(torch.ones(1, 1))          # (2, 1, 2000): hidden units, dropped or not
    for m, p in enumerate((0.2, 0.6)):
        h = out[m, 0]
        assert abs(float((h == 0).double().mean()) - p) < 0.04
        torch.testing.assert_close(h[h != 0], torch.full_like(h[h != 0], 1 / (1 - p)))


def test_stack_refuses_members_of_different_shapes():
    """Members must share their widths."""
    torch.manual_seed(0)
    nets = [dp.make_dropout_mlp(6, 4, (10,), 0.0), dp.make_dropout_mlp(6, 4, (9,), 0.0)]
    with pytest.raises(ValueError, match="widths"):
        dp.StackedDropoutMLP(nets, [0, 0], [0, 0])


def test_overfit_experiment_shapes_and_paired_settings(tiny):
    """Curves are (settings, seeds, evaluations); the settings of one seed share their training
    images; the models are evaluation-mode networks of the plan's shape."""
    r = dp.overfit_experiment(tiny, TINY_PLAN)
    K, S = len(TINY_PLAN.settings), len(TINY_PLAN.seeds)
    assert r["epochs"].tolist() == [0, 2, 4]
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert r[key].shape == (K, S, 3) and np.isfinite(r[key]).all()
    assert r["train_idx"].shape == (S, 20)
    # at epoch 0 every setting of a seed is the same network: identical curves
    for k in range(1, K):
        np.testing.assert_allclose(r["test_loss"][k, :, 0], r["test_loss"][0, :, 0], rtol=1e-6)
    net = r["models"][2][1]
    assert [type(m) for m in net][:2] == [nn.Dropout, nn.Linear] and not net.training
    x = torch.from_numpy(tiny.x_test)
    acc = (net(x).argmax(1) == torch.from_numpy(tiny.y_test)).double().mean().item()
    assert acc == pytest.approx(r["test_acc"][2, 1, -1])


def test_overfit_without_dropout_is_plain_sgd(tiny):
    """A stacked member with p = 0 follows SGD on its own training set exactly: with one batch
    per epoch (batch = training set) it matches full-batch gradient descent from the same
    initial weights."""
    plan = dp.OverfitPlan(settings=((0.0, 0.0), (0.0, 0.5)), seeds=(1,), n_per_class=2,
                          hidden=(8,), epochs=3, batch_size=20, lr=0.1, eval_every=3)
    r = dp.overfit_experiment(tiny, plan)
    torch.manual_seed(1)
    net = dp.make_dropout_mlp(64, 10, (8,), 0.0)
    idx = torch.from_numpy(r["train_idx"][0])
    x, y = torch.from_numpy(tiny.x_train)[idx], torch.from_numpy(tiny.y_train)[idx]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    for a, b in zip(net.parameters(), r["models"][0][0].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_unit_removal_matches_a_manual_ablation():
    """Removing unit j gives the accuracy and loss of the network with that unit's output
    zeroed; a unit whose outgoing weights are zero costs nothing."""
    torch.manual_seed(0)
    net = dp.make_dropout_mlp(5, 3, (6, 4), 0.5).eval()
    with torch.no_grad():
        net[-1].weight[:, 2] = 0.0                 # unit 2 of the last hidden layer is unused
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    res = dp.unit_removal_effect(net, x, y, layer=1)
    assert res["acc_drop"][2] == 0 and res["loss_rise"][2] == pytest.approx(0, abs=1e-6)
    assert res["changed"][2] == 0
    j = 1
    with torch.no_grad():
        h = net[:5](x)                             # up to the second ReLU
        h[:, j] = 0
        out = net[5:](h)
    assert res["acc"] - res["acc_drop"][j] == pytest.approx(
        float((out.argmax(1) == y).double().mean()))
    assert res["loss"] + res["loss_rise"][j] == pytest.approx(float(F.cross_entropy(out, y)),
                                                              rel=1e-5)
    assert net[2].p == 0.5 and not any(m.training for m in net.modules())


def test_hidden_activations_refuses_a_missing_layer():
    """Asking for a hidden layer the network does not have raises."""
    net = dp.make_dropout_mlp(5, 3, (6,), 0.0)
    with pytest.raises(ValueError, match="hidden layers"):
        dp.hidden_activations(net, torch.randn(2, 5), layer=1)


def test_unit_variance_shift_formula(rng):
    """(1-p) var / (var + p mean^2) is the ratio of a unit's variance without and with inverted
    dropout, checked by sampling."""
    x = rng.normal(1.0, 2.0, size=400_000).clip(min=0)        # ReLU-like, mean > 0
    p = 0.4
    dropped = x * (rng.random(x.shape) >= p) / (1 - p)
    ratio = dp.unit_variance_shift(x.mean(), x.var(), p)
    assert ratio == pytest.approx(x.var() / dropped.var(), rel=0.01)
    assert dp.unit_variance_shift(0.3, 2.0, 0.0) == 1.0


def test_expected_dropout_batch_variance_matches_sampling(rng):
    """The formula for the batch variance of Linear(dropout(a)) agrees with the average over
    many masks (the (1 - 1/N) factor included)."""
    a = np.abs(rng.normal(size=(12, 7)))
    w = rng.normal(size=(3, 7))
    p = 0.5
    samples = [((a * (rng.random(a.shape) >= p) / (1 - p)) @ w.T).var(axis=0)
               for _ in range(40_000)]
    np.testing.assert_allclose(dp.expected_dropout_batch_variance(a, w, p),
                               np.mean(samples, axis=0), rtol=0.02)
    np.testing.assert_allclose(dp.expected_dropout_batch_variance(a, w, 0.0),
                               (a @ w.T).var(axis=0))


def _bn_model(p: float = 0.5) -> nn.Sequential:
    torch.manual_seed(0)
    model = ex.make_mlp(10, 3, (12, 12), batchnorm=True, dropout=p)
    model.train()
    with torch.no_grad():
        for _ in range(30):
            model(torch.randn(16, 10))             # running statistics as after training
    return model


def test_bn_input_variances_leaves_the_model_as_it_was():
    """Modes, running statistics and momenta are unchanged after the measurement."""
    model = _bn_model()
    before = copy.deepcopy(model.state_dict())
    modes = [m.training for m in model.modules()]
    dp.bn_input_variances(model, [torch.randn(16, 10)], torch.randn(40, 10))
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert [m.training for m in model.modules()] == modes
    assert all(bn.momentum == 0.1 for bn in model.modules() if isinstance(bn, nn.BatchNorm1d))


def test_bn_input_variances_first_layer_sees_no_dropout_and_second_matches_the_formula():
    """The first BN layer has no dropout upstream (train = train without dropout); the second,
    behind Dropout -> Linear, sees on average the variance the formula predicts."""
    model = _bn_model()
    batches = [torch.randn(16, 10) for _ in range(400)]
    first, second = dp.bn_input_variances(model, batches, torch.randn(40, 10))
    np.testing.assert_allclose(first["train"], first["train_no_dropout"], rtol=1e-5)
    assert first["predicted"] is None
    np.testing.assert_allclose(second["train"], second["predicted"], rtol=0.05)
    assert (second["train"] > second["train_no_dropout"]).all()
    np.testing.assert_array_equal(second["running"],
                                  model[5].running_var.detach().double().numpy())


def test_bn_input_variances_needs_a_bn_layer():
    """A network without batch normalization is refused."""
    with pytest.raises(ValueError, match="BatchNorm1d"):
        dp.bn_input_variances(dp.make_dropout_mlp(3, 2, (4,), 0.5), [torch.randn(4, 3)],
                              torch.randn(4, 3))


def test_recalibrate_bn_uses_dropout_free_batch_statistics():
    """The copy's running mean is the average of the batch means of its BN inputs with dropout
    off; the original model keeps its statistics; the copy is in eval mode."""
    model = _bn_model()
    original = model[1].running_mean.clone()
    x = torch.randn(48, 10)
    clone = dp.recalibrate_bn(model, x, batch_size=16)
    torch.testing.assert_close(model[1].running_mean, original)
    with torch.no_grad():
        z = model[0](x)                             # the first BN layer's input
    torch.testing.assert_close(clone[1].running_mean, z.mean(0), rtol=1e-5, atol=1e-6)
    assert not clone.training and clone[1].momentum == 0.1
    with pytest.raises(ValueError):
        dp.recalibrate_bn(model, x[:3], batch_size=16)


def test_accuracy_does_not_change_the_mode():
    """accuracy() evaluates in the model's current mode and leaves it."""
    net = dp.make_dropout_mlp(3, 2, (4,), 0.5).eval()
    x, y = torch.randn(10, 3), torch.randint(0, 2, (10,))
    assert 0.0 <= dp.accuracy(net, x, y) <= 1.0 and not net.training
