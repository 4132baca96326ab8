"""Tests for solutions.mc_dropout: Monte Carlo dropout passes and the uncertainty measures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from solutions import mc_dropout as mc


def _net(p: float = 0.5, bn: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(6, 20)] + ([nn.BatchNorm1d(20)] if bn else []) + [
        nn.ReLU(), nn.Dropout(p), nn.Linear(20, 4)]
    return nn.Sequential(*layers)


def test_eval_mode_is_deterministic_and_mc_passes_are_not():
    """In evaluation mode two forward passes agree; Monte Carlo passes differ from each other."""
    model = _net().eval()
    x = torch.randn(5, 6)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    passes = mc.mc_dropout_passes(model, x, passes=3)
    assert not torch.equal(passes[0], passes[1])


def test_mc_passes_with_p_zero_equal_the_eval_prediction():
    """With nothing to drop every pass is the evaluation-mode output."""
    model = _net(p=0.0).eval()
    x = torch.randn(5, 6)
    with torch.no_grad():
        expected = model(x)
    passes = mc.mc_dropout_passes(model, x, passes=4)
    assert passes.shape == (4, 5, 4)
    for out in passes:
        torch.testing.assert_close(out, expected)


def test_mean_of_passes_approaches_the_weight_scaled_output_of_a_linear_model():
    """For Dropout -> Linear the expected output over masks is the eval (weight-scaled) output,
    so the mean of T passes converges to it at the rate of its standard error."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Dropout(0.3), nn.Linear(8, 3)).double()
    x = torch.randn(4, 8, dtype=torch.float64)
    passes = mc.mc_dropout_passes(model, x, passes=20_000, seed=3)
    with torch.no_grad():
        expected = model.eval()(x)
    stderr = passes.std(dim=0) / math.sqrt(len(passes))
    assert ((passes.mean(dim=0) - expected).abs() < 5 * stderr + 1e-12).all()


def test_batch_norm_keeps_its_running_statistics_during_mc_passes():
    """Only dropout is switched on: BN normalizes with running statistics, so a single input
    (batch of one) works and p = 0 reproduces the evaluation output exactly."""
    model = _net(p=0.0, bn=True)
    model.train()
    model(torch.randn(32, 6))                  # move the running statistics
    x = torch.randn(1, 6)
    with torch.no_grad():
        expected = model.eval()(x)
    torch.testing.assert_close(mc.mc_dropout_passes(model, x, passes=2)[1], expected)


def test_modes_are_restored_after_the_passes_and_after_an_error():
    """Every module's training flag is what it was before, also when the model raises."""
    model = _net()
    model.train()
    model[0].eval()
    before = [m.training for m in model.modules()]
    mc.mc_dropout_passes(model, torch.randn(3, 6), passes=2)
    assert [m.training for m in model.modules()] == before
    with pytest.raises(RuntimeError):
        mc.mc_dropout_passes(model, torch.randn(3, 5), passes=1)   # wrong input width
    assert [m.training for m in model.modules()] == before


def test_inside_mc_mode_only_dropout_trains():
    """mc_dropout_mode puts dropout modules in training mode and everything else in eval."""
    model = _net(bn=True).train()
    with mc.mc_dropout_mode(model):
        for m in model.modules():
            assert m.training == isinstance(m, nn.Dropout)


def test_same_seed_same_passes_and_global_generator_untouched():
    """A seed fixes the masks, and the caller's torch random stream is not consumed."""
    model = _net()
    x = torch.randn(3, 6)
    torch.manual_seed(7)
    expected_next = torch.rand(1)
    torch.manual_seed(7)
    a = mc.mc_dropout_passes(model, x, passes=3, seed=11)
    assert torch.equal(torch.rand(1), expected_next)
    torch.testing.assert_close(a, mc.mc_dropout_passes(model, x, passes=3, seed=11))


def test_predict_returns_distributions():
    """mc_dropout_predict gives (T, N, C) probabilities whose rows sum to one."""
    probs = mc.mc_dropout_predict(_net(), torch.randn(5, 6), passes=7)
    assert probs.shape == (7, 5, 4)
    torch.testing.assert_close(probs.sum(-1), torch.ones(7, 5))
    assert (probs >= 0).all()


def test_passes_must_be_positive():
    """Zero passes is refused."""
    with pytest.raises(ValueError, match="passes"):
        mc.mc_dropout_passes(_net(), torch.randn(2, 6), passes=0)


def test_entropy_of_uniform_and_one_hot():
    """A uniform distribution over C classes has entropy log C, a one-hot one has 0."""
    uniform = torch.full((2, 5), 0.2, dtype=torch.float64)
    one_hot = torch.eye(5, dtype=torch.float64)[:2]
    torch.testing.assert_close(mc.entropy(uniform), torch.full((2,), math.log(5),
                                                                dtype=torch.float64))
    torch.testing.assert_close(mc.entropy(one_hot), torch.zeros(2, dtype=torch.float64))


def test_mutual_information_is_zero_when_passes_agree_and_log2_for_confident_disagreement():
    """Identical passes carry no disagreement; two confident passes that disagree on two
    classes give the predictive entropy log 2 and zero expected entropy."""
    same = torch.tensor([[[0.7, 0.3]], [[0.7, 0.3]]], dtype=torch.float64)
    torch.testing.assert_close(mc.mutual_information(same), torch.zeros(1, dtype=torch.float64))
    split = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]], dtype=torch.float64)
    torch.testing.assert_close(mc.mutual_information(split),
                               torch.tensor([math.log(2)], dtype=torch.float64))
    torch.testing.assert_close(mc.expected_entropy(split), torch.zeros(1, dtype=torch.float64))


def test_mutual_information_is_non_negative_and_below_predictive_entropy(rng):
    """0 <= MI <= H[mean] for random passes (concavity of the entropy)."""
    probs = torch.softmax(torch.from_numpy(rng.normal(size=(9, 30, 6)) * 3), dim=-1)
    mi = mc.mutual_information(probs)
    assert (mi >= 0).all() and (mi <= mc.predictive_entropy(probs) + 1e-12).all()


def test_error_detection_auc_extremes_and_ties():
    """A score that ranks every wrong case above every right one has AUC 1, reversed 0, and a
    constant score 0.5."""
    wrong = np.array([True, False, True, False])
    assert mc.error_detection_auc([3, 1, 4, 0], wrong) == 1.0
    assert mc.error_detection_auc([0, 3, 1, 4], wrong) == 0.0
    assert mc.error_detection_auc([2, 2, 2, 2], wrong) == 0.5
    with pytest.raises(ValueError):
        mc.error_detection_auc([1, 2], [True, True])


def test_selective_accuracy_keeps_the_most_confident():
    """Coverage 0.5 keeps the more confident half; coverage 1 is the plain accuracy."""
    conf = [0.9, 0.1, 0.8, 0.2]
    correct = [True, False, True, True]
    np.testing.assert_allclose(mc.selective_accuracy(conf, correct, [0.5, 1.0]), [1.0, 0.75])
    with pytest.raises(ValueError):
        mc.selective_accuracy(conf, correct, [0.0])


def test_running_mean_accuracy_follows_the_average_of_the_first_passes():
    """Entry t is the accuracy of the mean of passes 1..t."""
    probs = torch.tensor([[[0.6, 0.4]], [[0.0, 1.0]], [[1.0, 0.0]]])
    y = torch.tensor([0])
    # mean of pass 1: class 0 (right); of passes 1-2: (0.3, 0.7) wrong; of 1-3: (1.6, 1.4) / 3
    np.testing.assert_allclose(mc.running_mean_accuracy(probs, y), [1.0, 0.0, 1.0])
