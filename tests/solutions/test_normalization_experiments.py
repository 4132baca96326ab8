"""Tests for solutions.normalization_experiments, on tiny configurations (a few steps, small
networks, a subset of the digits) so that they run in seconds."""

import numpy as np
import pytest
import torch
from torch import nn

from solutions import normalization_experiments as nx
from solutions.digits import Digits, load_digits_data


@pytest.fixture(scope="module")
def small():
    """200 training and 100 test images of the default digits."""
    d = load_digits_data(None)
    return Digits(d.x_train[:200], d.y_train[:200], d.x_test[:100], d.y_test[:100],
                  d.image_shape, "small digits", "custom")


def test_make_mlp_places_the_normalization_before_or_after_the_activation():
    """'before' gives Linear(no bias) -> BN -> ReLU, 'after' Linear(bias) -> ReLU -> BN."""
    before = nx.make_mlp(4, 3, (5,), "bn", "before")
    after = nx.make_mlp(4, 3, (5,), "bn", "after")
    assert [type(m) for m in before] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert [type(m) for m in after] == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Linear]
    assert before[0].bias is None and after[0].bias is not None
    assert isinstance(nx.make_mlp(4, 3, (4,), "gn", groups=2)[1], nn.GroupNorm)
    assert isinstance(nx.make_mlp(4, 3, (4,), "ln")[1], nn.LayerNorm)
    with pytest.raises(ValueError, match="placement"):
        nx.make_mlp(4, 3, (5,), "bn", "middle")


def test_he_initialization_and_init_scale():
    """init='he' draws hidden weights with std sqrt(2 / fan_in); init_scale multiplies them and
    leaves the output layer alone."""
    torch.manual_seed(0)
    m = nx.make_mlp(400, 3, (300,), None, init="he")
    assert m[0].weight.std().item() == pytest.approx((2 / 400) ** 0.5, rel=0.05)
    torch.manual_seed(0)
    a = nx.make_mlp(10, 3, (6,), "bn", init="he")
    torch.manual_seed(0)
    b = nx.make_mlp(10, 3, (6,), "bn", init="he", init_scale=3.0)
    assert torch.allclose(b[0].weight, 3 * a[0].weight)
    assert torch.allclose(b[-1].weight, a[-1].weight)


@pytest.mark.parametrize("norm", [None, "bn", "ln", "gn", "in"])
def test_convnet_outputs_ten_logits_for_each_normalization(norm):
    """The conv net maps (N, 1, 8, 8) images to (N, 10) with every normalization."""
    torch.manual_seed(0)
    net = nx.make_convnet((8, 8), norm)
    assert net(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError):
        nx.make_convnet((8, 8), "weight")


def test_training_is_deterministic_and_can_be_restricted(small):
    """The same seed gives the same losses; ``trainable`` leaves the other parameters alone."""
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = nx.make_mlp(64, 10, (16,), "bn")
        runs.append(nx.train(model, small, steps=5, lr=0.1, batch_size=20, seed=1))
    assert np.array_equal(runs[0]["train_loss"], runs[1]["train_loss"])
    torch.manual_seed(1)
    model = nx.make_mlp(64, 10, (16,), "bn")
    w0 = model[0].weight.detach().clone()
    nx.train(model, small, steps=3, lr=0.1, batch_size=20, seed=1,
             trainable=model[-1].parameters())
    assert torch.equal(model[0].weight, w0)


def test_scale_invariant_layers_are_the_linear_layers_feeding_bn():
    """Only Linear layers directly followed by BatchNorm1d are listed."""
    m = nx.make_mlp(4, 3, (5, 6), "bn")
    assert nx.scale_invariant_layers(m) == [m[0], m[3]]
    assert nx.scale_invariant_layers(nx.make_mlp(4, 3, (5,), None)) == []


def test_noisy_batchnorm_adds_noise_in_training_only():
    """NoisyBatchNorm1d equals BatchNorm1d in evaluation mode and differs from call to call in
    training mode."""
    noisy = nx.NoisyBatchNorm1d(4, seed=0)
    plain = nn.BatchNorm1d(4)
    x = torch.randn(8, 4)
    noisy.train()
    assert not torch.allclose(noisy(x), noisy(x))
    noisy.eval()
    plain.load_state_dict(noisy.state_dict())
    plain.eval()
    assert torch.allclose(noisy(x), plain(x))


def test_landscape_experiment_shapes_and_identities(small):
    """The landscape probes have the documented shapes; beta is the largest gradient change per
    distance moved; in the BN run the weight gradients are orthogonal to the weights and the
    squared norm grows as ||W||^2 + lr^2 ||G||^2."""
    out = nx.landscape_experiment(small, (0, 1), steps=6, lr=0.1, batch_size=20,
                                  probe_every=3, hidden=(8, 8), n_probe=32)
    for kind in ("plain", "bn", "noisy_bn"):
        assert out[kind]["test_acc"].shape == (2,)
        assert out[kind]["shift"].shape == (2, 1)
        assert out[kind]["test_acc_curve"].shape == (2, 3)
    bn = out["bn"]
    assert bn["loss_along"].shape == (2, 2, 1 + len(nx.STEP_FACTORS))
    assert bn["ics_rel"].shape == (2, 2, 2)
    ratio = bn["grad_change_rel"] / (out["factors"] * out["lr"])
    assert np.allclose(bn["beta"], ratio.max(axis=-1), rtol=1e-6)
    assert bn["max_abs_cos_wg"].max() < 1e-2
    assert bn["norm_identity_error"].max() < 1e-5
    assert bn["row_norm"].shape == (2, 7, 2)
    assert "beta" not in out["noisy_bn"]


def test_lr_sweep_reports_every_rate(small):
    """The sweep returns one accuracy per seed and learning rate, and the BN weight norms."""
    out = nx.lr_sweep_experiment(small, (0,), (0.1, 1.0), steps=4, hidden=(8,))
    assert out["plain"]["test_acc"].shape == (1, 2)
    assert out["bn"]["row_norm"].shape == (1, 2, 5)
    assert (np.diff(out["bn"]["row_norm"], axis=-1) >= -1e-6).all()


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_batch_size_experiment_shapes(small, arch):
    """One accuracy per seed and batch size for each normalization, in both architectures."""
    out = nx.batch_size_experiment(small, (0,), (2, 8), norms=("bn", "gn"), steps=3,
                                   arch=arch, hidden=(8,), channels=(4, 8))
    assert out["bn"]["test_acc"].shape == (1, 2) and out["gn"]["train_acc"].shape == (1, 2)
    with pytest.raises(ValueError, match="arch"):
        nx.batch_size_experiment(small, (0,), (2,), arch="rnn")


def test_placement_experiment_measures_the_inputs_of_bn(small):
    """Before the ReLU no input of BN is exactly zero; after it many are."""
    out = nx.placement_experiment(small, (0,), steps=5, hidden=(16,), return_models=True)
    assert out["before"]["zero_frac"][0] == 0
    assert out["after"]["zero_frac"][0] > 0.2
    assert len(out["before"]["models"]) == 1


def test_mode_mistakes_leave_the_model_as_it_was(small):
    """mode_mistakes reports the evaluation-mode accuracy and restores the model's state."""
    torch.manual_seed(0)
    model = nx.make_mlp(64, 10, (16,), "bn")
    nx.train(model, small, steps=20, lr=0.1, batch_size=20, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = nx.mode_mistakes(model, small, batch_size=20)
    _, _, x_test, y_test = nx._tensors(small, images=False)
    assert out["eval"] == pytest.approx(nx.accuracy(model, x_test, y_test))
    assert out["n_compared"] == 100
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_frozen_bn_experiment_keeps_the_body_only_in_eval_mode(small):
    """With the BN layers in evaluation mode the body does not change; in training mode the
    running statistics move. The model passed in is not modified."""
    torch.manual_seed(0)
    model = nx.make_mlp(64, 10, (16,), "bn")
    nx.train(model, small, steps=20, lr=0.1, batch_size=20, seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = nx.frozen_bn_experiment(model, small, steps=5, batch_size=10)
    assert out["bn_eval"]["body_change"] == 0 and out["bn_eval"]["max_running_change"] == 0
    assert out["train_mode"]["max_running_change"] > 0
    assert out["bn_eval"]["old_task_acc"] == out["before"]["old_task_acc"]
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_scaled_step_equivalence_shrinks_with_eps(small):
    """Scaling the BN-fed weights by c and the learning rate by 1/c^2 gives the same step, up to
    differences proportional to eps."""
    a = nx.scaled_step_equivalence(small, c=10.0, hidden=(8, 8), batch_size=20)
    b = nx.scaled_step_equivalence(small, c=10.0, hidden=(8, 8), batch_size=20, eps=1e-9)
    assert max(a.values()) < 1e-2
    assert max(b.values()) < 1e-3 * max(a.values())
