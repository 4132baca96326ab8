"""Tests for solutions.dropout: inverted dropout, the lecture's form and its worked examples."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from solutions import dropout as d
from solutions.gradcheck import numerical_gradient, numerical_gradient_array, rel_error


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan")])
def test_p_outside_unit_interval_is_rejected(p):
    """p must be a probability, as in torch, which raises for the same values."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        d.dropout(np.ones(3), p=p)
    with pytest.raises((ValueError, RuntimeError)):
        torch.nn.functional.dropout(torch.ones(3), p=p)


def test_p_must_be_a_number():
    """A string or a bool is not a probability."""
    with pytest.raises(TypeError):
        d.dropout(np.ones(3), p="0.5")
    with pytest.raises(TypeError):
        d.dropout(np.ones(3), p=True)


def test_eval_mode_and_p_zero_are_the_identity(rng):
    """training=False and p=0 both return the input unchanged, like torch."""
    x = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(d.dropout(x, 0.7, training=False), x)
    np.testing.assert_array_equal(d.dropout(x, 0.0, rng=rng), x)
    xt = torch.tensor(x)
    np.testing.assert_array_equal(torch.nn.functional.dropout(xt, 0.7, training=False), x)


def test_p_one_drops_everything(rng):
    """p=1 gives zeros, as torch does."""
    x = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(d.dropout(x, 1.0, rng=rng), np.zeros_like(x))
    assert torch.nn.functional.dropout(torch.tensor(x), 1.0).abs().sum() == 0


@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**31))
def test_outputs_are_zero_or_scaled_input_like_torch(p, seed):
    """Every output is 0 or x/(1-p), in NumPy and in torch alike."""
    x = np.random.default_rng(seed).uniform(1, 2, size=200)
    for y in (d.dropout(x, p, rng=seed),
              torch.nn.functional.dropout(torch.tensor(x), p).numpy()):
        kept = y != 0
        np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)


def test_keep_fraction_and_expected_value(rng):
    """About 1-p of the units survive and the mean of the output matches the input's."""
    x = np.ones(200_000)
    y = d.dropout(x, 0.3, rng=rng)
    assert abs(np.mean(y != 0) - 0.7) < 0.01
    assert abs(y.mean() - 1.0) < 0.01


def test_same_seed_same_mask():
    """An integer seed makes the mask reproducible."""
    x = np.arange(50.0)
    np.testing.assert_array_equal(d.dropout(x, 0.5, rng=3), d.dropout(x, 0.5, rng=3))


def test_backward_matches_numerical_gradient(rng):
    """dropout_backward is the gradient of the forward with the same mask (rel_error < 1e-7)."""
    x = rng.normal(size=(5, 6))
    dy = rng.normal(size=(5, 6))
    _, cache = d.dropout_forward(x, 0.4, rng=np.random.default_rng(7))
    dx = d.dropout_backward(dy, cache)
    num = numerical_gradient_array(
        lambda v: d.dropout_forward(v, 0.4, rng=np.random.default_rng(7))[0], x, dy)
    assert rel_error(dx, num) < 1e-7


def test_backward_rejects_wrong_shape(rng):
    """An upstream gradient of another shape is an error, not a broadcast."""
    _, cache = d.dropout_forward(np.ones((2, 3)), 0.5, rng=rng)
    with pytest.raises(ValueError, match="shape"):
        d.dropout_backward(np.ones((3, 2)), cache)


def test_lecture_form_trains_unscaled_and_infers_with_keep_probability(rng):
    """The lecture's training output averages to (1-p) x, which its inference rule returns."""
    x = np.full(100_000, 2.0)
    y, mask = d.lecture_dropout_train(x, 0.2, rng=rng)
    assert set(np.unique(y)) == {0.0, 2.0}
    np.testing.assert_array_equal(y[mask], x[mask])
    assert abs(y.mean() - d.lecture_dropout_inference(2.0, 0.2)) < 0.02
    assert d.lecture_dropout_inference(2.0, 0.2) == pytest.approx(1.6)


def test_connected_masks_always_keep_a_path(rng):
    """Every sampled set of masks keeps at least one unit in every droppable layer."""
    for _ in range(500):
        masks = d.sample_connected_masks([3, 2, 2, 1], p=0.6, rng=rng, drop_input=True)
        assert d.has_path(masks)
        assert [m.shape for m in masks] == [(3,), (2,), (2,), (1,)]
        assert masks[-1].all()


def test_connected_masks_condition_the_distribution(rng):
    """With two hidden units and p = 0.5 each connected outcome has probability 1/3."""
    counts = {}
    n = 30_000
    for _ in range(n):
        hidden = tuple(d.sample_connected_masks([1, 2, 1], 0.5, rng=rng)[1])
        counts[hidden] = counts.get(hidden, 0) + 1
    assert set(counts) == {(True, True), (True, False), (False, True)}
    for c in counts.values():
        assert abs(c / n - 1 / 3) < 0.015


def test_input_layer_is_untouched_unless_asked(rng):
    """Without drop_input the input mask is all True."""
    for _ in range(50):
        assert d.sample_connected_masks([4, 3, 1], 0.9, rng=rng)[0].all()


def test_impossible_connectivity_is_an_error():
    """p = 1 can never leave a path: a clear error instead of an endless loop."""
    with pytest.raises(ValueError, match="no connected"):
        d.sample_connected_masks([1, 2, 1], 1.0)


def test_bad_layer_sizes_are_rejected():
    """A network needs at least input and output layers of positive width."""
    with pytest.raises(ValueError):
        d.sample_connected_masks([3], 0.5)
    with pytest.raises(ValueError):
        d.sample_connected_masks([3, 0, 1], 0.5)


def test_drop_input_features_drops_whole_columns(rng):
    """A dropped feature is zero for every example; kept features are unchanged."""
    X = rng.normal(size=(6, 8)) + 5
    Xd, keep = d.drop_input_features(X, 0.5, rng=rng)
    np.testing.assert_array_equal(Xd[:, keep], X[:, keep])
    assert np.all(Xd[:, ~keep] == 0)
    with pytest.raises(ValueError, match="matrix"):
        d.drop_input_features(np.ones(3), 0.5)


def test_lecture_first_step_drops_the_upper_unit():
    """Step 1 of the lecture: dL/dw2 = -20, dL/dw02 = -12, so w2 = 2 and w02 = 1.2."""
    w0 = np.zeros(4)
    g1 = d.sum_network_gradient(w0, keep=(False, True))
    np.testing.assert_allclose(g1, [0, 0, -20, -12])
    w1 = d.gradient_step(w0, g1, h=0.1)
    np.testing.assert_allclose(w1, [0, 0, 2, 1.2])
    g2 = d.sum_network_gradient(w1, keep=(True, False))
    np.testing.assert_allclose(g2, [-20, -12, 0, 0])
    np.testing.assert_allclose(d.gradient_step(w1, g2), [2, 1.2, 2, 1.2])


@pytest.mark.parametrize("keep", [(True, True), (True, False), (False, True)])
def test_sum_network_gradient_matches_numerical(rng, keep):
    """The analytic gradient of the lecture's network agrees with centred differences."""
    w = rng.normal(size=4)
    num = numerical_gradient(lambda v: d.sum_network_loss(v, keep), w)
    assert rel_error(d.sum_network_gradient(w, keep), num) < 1e-7


@pytest.mark.parametrize("keep", [(True, True), (False, True), (True, False)])
def test_linear_network_gradient_matches_numerical(rng, keep):
    """The input-dropout example's gradient agrees with centred differences."""
    w = rng.normal(size=3)
    num = numerical_gradient(lambda v: d.linear_network_loss(v, keep), w)
    assert rel_error(d.linear_network_gradient(w, keep), num) < 1e-7


def test_input_dropout_losses_are_the_lectures():
    """Dropping x1 gives L1 = w0^2 + (w2+w0-1)^2 + (w0-1)^2 + (w2+w0-2)^2."""
    w1, w2, w0 = 0.3, -0.7, 0.2
    L1 = w0**2 + (w2 + w0 - 1) ** 2 + (w0 - 1) ** 2 + (w2 + w0 - 2) ** 2
    assert d.linear_network_loss([w1, w2, w0], (False, True)) == pytest.approx(L1)


def test_parameter_count_is_checked():
    """The worked examples refuse parameter vectors of the wrong length."""
    with pytest.raises(ValueError, match="expected 4"):
        d.sum_network(1.0, [1, 2, 3])


MASKS4 = [(False, False), (False, True), (True, False), (True, True)]


def test_expected_minimum_of_independent_dropout_is_two_thirds_of_the_fit():
    """Averaged over the four independent masks (p = 0.5) each unit of the lecture's network
    settles at (2/3)(-x + 4): slope -2/3, intercept 8/3."""
    w = d.expected_loss_minimum(d.sum_network_gradient, MASKS4, 4)
    np.testing.assert_allclose(w, [-2 / 3, 8 / 3, -2 / 3, 8 / 3], atol=1e-12)


def test_expected_minimum_with_a_singular_jacobian_is_the_smallest_solution():
    """Dropping exactly one unit in turn leaves the two units decoupled but the full network
    redundant; the minimum is each unit alone fitting -x + 4."""
    w = d.expected_loss_minimum(d.sum_network_gradient, [(True, False), (False, True)], 4)
    np.testing.assert_allclose(w, [-1, 4, -1, 4], atol=1e-12)
    # without dropout every w1 + w2 = -1, w01 + w02 = 4 fits; least squares picks the
    # smallest, the symmetric one
    w_full = d.expected_loss_minimum(d.sum_network_gradient, [(True, True)], 4)
    np.testing.assert_allclose(w_full, [-0.5, 2, -0.5, 2], atol=1e-12)


def test_expected_minimum_of_input_dropout_leans_on_the_bias():
    """Input dropout on y = x1 + x2 with p = 0.5 settles at w1 = w2 = w0 = 2/3."""
    w = d.expected_loss_minimum(d.linear_network_gradient, MASKS4, 3)
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3], atol=1e-12)


def test_expected_minimum_zeroes_the_averaged_gradient():
    """At the result the mask-averaged gradient vanishes, checked independently."""
    w = d.expected_loss_minimum(d.sum_network_gradient, MASKS4[1:], 4)
    g = np.mean([d.sum_network_gradient(w, k) for k in MASKS4[1:]], axis=0)
    assert np.abs(g).max() < 1e-10


def test_expected_minimum_refuses_a_loss_that_is_not_quadratic():
    """A gradient that is not affine in w (here of a quartic loss) is reported, not solved."""
    with pytest.raises(ValueError, match="not quadratic"):
        d.expected_loss_minimum(lambda w, k: w**3 + w + 1.0, [None], 2)


def test_expected_minimum_needs_masks_and_parameters():
    """No masks, or no parameters, is an error."""
    with pytest.raises(ValueError):
        d.expected_loss_minimum(d.sum_network_gradient, [], 4)
    with pytest.raises(ValueError):
        d.expected_loss_minimum(d.sum_network_gradient, MASKS4, 0)
