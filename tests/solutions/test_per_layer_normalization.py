"""Tests for solutions.per_layer_normalization (the lecture's full-training-set normalization)."""

import numpy as np
import pytest

from solutions import per_layer_normalization as pln
from solutions.batchnorm import batch_norm_forward
from solutions.gradcheck import rel_error


def test_statistics_use_the_population_deviation():
    """S divides by n, not n-1: the points -1 and 1 have C = 0 and S = 1."""
    C, S = pln.layer_statistics(np.array([-1.0, 1.0]))
    assert C == 0.0 and S == 1.0
    C, S = pln.layer_statistics(np.array([[1.0, 0.0], [2.0, 0.0], [6.0, 3.0]]))
    np.testing.assert_allclose(C, [3.0, 1.0])
    np.testing.assert_allclose(S, [np.sqrt(14 / 3), np.sqrt(2.0)])


def test_two_point_statistics_agree_with_the_general_formula(rng):
    """The lecture's C = (A+B)/2 and S = |A-B|/2 are the population statistics of {A, B}."""
    A, B = rng.normal(size=2)
    C, S = pln.two_point_statistics(A, B)
    assert (C, S) == pytest.approx(tuple(pln.layer_statistics(np.array([A, B]))))
    assert S == pytest.approx(abs(A - B) / 2)


def test_zero_deviation_is_an_error():
    """A neuron whose input is the same for every example cannot be normalized."""
    with pytest.raises(ValueError, match="zero deviation"):
        pln.normalize(np.ones(3), *pln.layer_statistics(np.ones(3)))


def test_two_unit_network_matches_the_lectures_formula(rng):
    """F_NNN(x) = (f(w1 x + w01) w3 + f(w2 x + w02) w4 - C)/S + w03, C and S over x = -1, 1."""
    f = np.tanh
    w1, w2, w01, w02, w3, w4, w03 = rng.normal(size=7)
    w = np.array([w1, w2, w01, w02, w3, w4, w03])
    net = pln.lecture_two_unit_network(f)
    inner = lambda x: f(w1 * x + w01) * w3 + f(w2 * x + w02) * w4  # noqa: E731
    A, B = inner(-1.0), inner(1.0)
    C, S = pln.two_point_statistics(A, B)
    x = np.array([-1.0, 0.3, 1.0])
    np.testing.assert_allclose(net.forward(x, w, pln.TWO_POINT_X), (inner(x) - C) / S + w03)


def test_two_training_points_normalize_to_plus_minus_one(rng):
    """With two training points the normalized output is w03 +- 1 whatever the weights."""
    net = pln.lecture_two_unit_network()
    for _ in range(20):
        w = rng.normal(size=7)
        out = net.forward(pln.TWO_POINT_X, w, pln.TWO_POINT_X)
        np.testing.assert_allclose(np.sort(out - w[-1]), [-1.0, 1.0])


def test_gradient_through_two_point_statistics_vanishes_for_hidden_weights(rng):
    """Differentiating through C and S, the loss does not depend on the hidden weights at all
    (two points always normalize to +-1), while frozen statistics suggest it does."""
    net = pln.lecture_two_unit_network()
    w = rng.normal(size=7)
    through = net.gradient(w, pln.TWO_POINT_X, pln.TWO_POINT_Y)
    frozen = net.gradient(w, pln.TWO_POINT_X, pln.TWO_POINT_Y, through_statistics=False)
    assert np.all(np.abs(through[:6]) < 1e-6)
    assert np.max(np.abs(frozen[:6])) > 1e-3
    assert through[6] == pytest.approx(frozen[6], abs=1e-6)


def test_chain_network_first_normalization_is_sign_of_w1_times_x(rng):
    """(w1 x - C0)/S0 over x = -1, 1 is sign(w1) x, not x as the lecture writes."""
    net = pln.lecture_chain_network()
    w = rng.normal(size=6)
    (C0, S0), _, _ = net.statistics(w, pln.TWO_POINT_X)
    assert C0 == pytest.approx(0.0) and S0 == pytest.approx(abs(w[0]))
    w_flipped = w.copy()
    w_flipped[0] = -w[0]
    x = np.array([-1.0, 0.5, 1.0])
    np.testing.assert_allclose(net.forward(x, w_flipped, pln.TWO_POINT_X),
                               net.forward(-x, w, pln.TWO_POINT_X))


def test_full_batch_normalization_of_a_linear_layer_is_batch_norm_with_eps_zero(rng):
    """Per-layer normalization of one layer over the training set equals BN on the full batch."""
    X = rng.normal(size=(10, 3))
    net = pln.NormalizedMLP([3, 4], normalized=[True], output_activation=None)
    w = rng.normal(size=net.n_params())
    W, bias, _, _ = net.unpack(w)
    y_bn, _ = batch_norm_forward(X @ W[0], bias=bias[0], eps=0.0)
    np.testing.assert_allclose(net.forward(X, w, X), y_bn, rtol=1e-12)


def _affine_slices(net, w, a_value, b_value):
    """Set every a to a_value and every b to b_value (values may be per-neuron lists)."""
    w = w.copy()
    n_plain = net.n_params() - (2 if net.affine == "network"
                                else 2 * sum(net._affine_sizes()))
    k = (net.n_params() - n_plain) // 2
    w[n_plain:n_plain + k] = a_value
    w[n_plain + k:] = b_value
    return w


@pytest.mark.parametrize("mode", ["network", "layer", "neuron"])
def test_a_one_b_zero_is_plain_normalization(rng, mode):
    """a = 1, b = 0 gives back the network without learnable parameters."""
    X = rng.normal(size=(7, 2))
    plain = pln.NormalizedMLP([2, 3, 3, 1])
    learn = pln.NormalizedMLP([2, 3, 3, 1], affine=mode)
    w = rng.normal(size=plain.n_params())
    w_learn = _affine_slices(learn, np.concatenate([w, np.zeros(learn.n_params() - w.size)]),
                             1.0, 0.0)
    np.testing.assert_allclose(learn.forward(X, w_learn, X), plain.forward(X, w, X))


def test_a_equal_S_b_equal_C_is_the_identity(rng):
    """Per neuron, a = S and b = C undo the normalization: the unnormalized network comes back."""
    X = rng.normal(size=(9, 2))
    sizes = [2, 3, 2]
    learn = pln.NormalizedMLP(sizes, affine="neuron")
    raw = pln.NormalizedMLP(sizes, normalized=[False, False])
    w = rng.normal(size=raw.n_params())
    (W1, W2), (b1, _), _, _ = raw.unpack(w)
    z1 = X @ W1
    z2 = np.tanh(z1 + b1) @ W2  # the inputs the normalization sees once layer 1 is undone
    stats = [pln.layer_statistics(z1), pln.layer_statistics(z2)]
    a = np.concatenate([S for _, S in stats])
    b = np.concatenate([C for C, _ in stats])
    w_id = np.concatenate([w, np.zeros(learn.n_params() - w.size)])
    w_id[raw.n_params():raw.n_params() + a.size] = a
    w_id[raw.n_params() + a.size:] = b
    np.testing.assert_allclose(learn.forward(X, w_id, X), raw.forward(X, w, X), rtol=1e-10)


def test_gradient_through_statistics_differs_from_frozen_on_larger_sets(rng):
    """With more than two points both gradients are nonzero and they differ."""
    X = np.linspace(-1, 1, 6)
    Y = np.sin(2 * X)
    net = pln.lecture_chain_network()
    w = rng.normal(size=6)
    through = net.gradient(w, X, Y)
    frozen = net.gradient(w, X, Y, through_statistics=False)
    assert rel_error(through, frozen) > 1e-3


def test_parameter_vector_and_modes_are_checked():
    """Wrong lengths, unknown affine modes and mismatched flags are clear errors."""
    net = pln.lecture_chain_network()
    with pytest.raises(ValueError, match="6 parameters"):
        net.forward(np.zeros(2), np.zeros(5), pln.TWO_POINT_X)
    with pytest.raises(ValueError, match="affine"):
        pln.NormalizedMLP([1, 1], affine="batch")
    with pytest.raises(ValueError, match="one per layer"):
        pln.NormalizedMLP([1, 2, 1], normalized=[True])
    with pytest.raises(ValueError, match="x_train"):
        net.forward(np.zeros(2), np.zeros(6))
    with pytest.raises(ValueError, match="inputs must have shape"):
        net.forward(np.zeros((2, 3)), np.zeros(6), pln.TWO_POINT_X)
