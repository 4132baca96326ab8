"""Tests for solutions.normalization: layer, group and instance norm against torch, gradient
checks, and the helpers of the normalization chapters."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions.batchnorm import batch_norm
from solutions.gradcheck import numerical_gradient_array, rel_error
from solutions.normalization import (
    gd_steps_to_tolerance,
    group_norm,
    group_norm_backward,
    group_norm_forward,
    hessian_condition_number,
    instance_norm,
    layer_norm,
    layer_norm_backward,
    layer_norm_forward,
    least_squares_gd,
    momentum_from_pytorch,
    momentum_to_pytorch,
    normalized_sets,
    population_batch_norm,
    population_statistics,
    running_average_half_life,
    standardize,
)

LN_CASES = [((5, 7), (7,)), ((4, 3, 5), (5,)), ((3, 2, 4, 5), (2, 4, 5)), ((2, 3, 4, 2), (4, 2))]
GN_CASES = [((4, 6), 3), ((3, 6, 5), 2), ((2, 8, 3, 4), 4), ((2, 4, 3, 3), 1), ((2, 4, 3, 3), 4)]


def _t(a):
    return None if a is None else torch.tensor(a)


@pytest.mark.parametrize("shape, normalized_shape", LN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch(rng, shape, normalized_shape, affine):
    """layer_norm equals torch.nn.functional.layer_norm for several shapes, with and without
    weight and bias."""
    x = rng.normal(2.0, 3.0, size=shape)
    w = rng.normal(size=normalized_shape) if affine else None
    b = rng.normal(size=normalized_shape) if affine else None
    expected = F.layer_norm(_t(x), normalized_shape, _t(w), _t(b), eps=1e-5).numpy()
    assert rel_error(layer_norm(x, normalized_shape, w, b), expected) < 1e-10


@pytest.mark.parametrize("shape, groups", GN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(rng, shape, groups, affine):
    """group_norm equals torch.nn.functional.group_norm for several shapes and group counts."""
    x = rng.normal(-1.0, 2.0, size=shape)
    C = shape[1]
    w = rng.normal(size=C) if affine else None
    b = rng.normal(size=C) if affine else None
    expected = F.group_norm(_t(x), groups, _t(w), _t(b), eps=1e-5).numpy()
    assert rel_error(group_norm(x, groups, w, b), expected) < 1e-10


def test_instance_norm_matches_torch(rng):
    """instance_norm equals torch.nn.functional.instance_norm (per example and channel)."""
    x = rng.normal(size=(3, 4, 5, 2))
    w, b = rng.normal(size=4), rng.normal(size=4)
    expected = F.instance_norm(_t(x), weight=_t(w), bias=_t(b), eps=1e-5).numpy()
    assert rel_error(instance_norm(x, w, b), expected) < 1e-10


def test_group_norm_with_one_group_is_layer_norm_over_chw(rng):
    """Without affine parameters, group norm with G = 1 normalizes the same values as layer
    norm over (C, H, W)."""
    x = rng.normal(size=(3, 4, 5, 6))
    assert rel_error(group_norm(x, 1), layer_norm(x, (4, 5, 6))) < 1e-12


def test_group_norm_with_c_groups_is_instance_norm(rng):
    """Group norm with G = C is instance norm."""
    x = rng.normal(size=(2, 3, 4, 4))
    assert rel_error(group_norm(x, 3), instance_norm(x)) < 1e-12


def test_output_of_one_example_does_not_depend_on_the_batch(rng):
    """Layer and group norm normalize each example alone: the output for example 0 is the
    same in any batch, and for a batch of one."""
    x = rng.normal(size=(4, 4, 3, 3))
    other = x.copy()
    other[1:] = rng.normal(5.0, 9.0, size=(3, 4, 3, 3))
    for f in (lambda v: layer_norm(v, (4, 3, 3)), lambda v: group_norm(v, 2)):
        assert np.allclose(f(x)[0], f(other)[0])
        assert np.allclose(f(x[:1])[0], f(x)[0])


def test_layer_norm_backward_passes_gradient_checks(rng):
    """dx, dweight and dbias of layer norm agree with centred differences to < 1e-7."""
    x = rng.normal(size=(3, 2, 4))
    w, b = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    dy = rng.normal(size=x.shape)
    _, cache = layer_norm_forward(x, (2, 4), w, b)
    dx, dw, db = layer_norm_backward(dy, cache)
    assert rel_error(dx, numerical_gradient_array(
        lambda v: layer_norm(v, (2, 4), w, b), x, dy)) < 1e-7
    assert rel_error(dw, numerical_gradient_array(
        lambda v: layer_norm(x, (2, 4), v, b), w, dy)) < 1e-7
    assert rel_error(db, numerical_gradient_array(
        lambda v: layer_norm(x, (2, 4), w, v), b, dy)) < 1e-7


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_norm_backward_passes_gradient_checks(rng, groups):
    """dx, dweight and dbias of group norm agree with centred differences to < 1e-7."""
    x = rng.normal(size=(2, 4, 3, 2))
    w, b = rng.normal(size=4), rng.normal(size=4)
    dy = rng.normal(size=x.shape)
    _, cache = group_norm_forward(x, groups, w, b)
    dx, dw, db = group_norm_backward(dy, cache)
    assert rel_error(dx, numerical_gradient_array(
        lambda v: group_norm(v, groups, w, b), x, dy)) < 1e-7
    assert rel_error(dw, numerical_gradient_array(
        lambda v: group_norm(x, groups, v, b), w, dy)) < 1e-7
    assert rel_error(db, numerical_gradient_array(
        lambda v: group_norm(x, groups, w, v), b, dy)) < 1e-7


def test_backward_matches_torch_autograd(rng):
    """The group norm backward equals torch autograd's gradients."""
    x = rng.normal(size=(3, 6, 2, 2))
    w, b, dy = rng.normal(size=6), rng.normal(size=6), rng.normal(size=(3, 6, 2, 2))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    F.group_norm(tx, 3, tw, tb).backward(torch.tensor(dy))
    dx, dw, db = group_norm_backward(dy, group_norm_forward(x, 3, w, b)[1])
    assert rel_error(dx, tx.grad.numpy()) < 1e-9
    assert rel_error(dw, tw.grad.numpy()) < 1e-9 and rel_error(db, tb.grad.numpy()) < 1e-9


def test_float32_input_gives_float32_output(rng):
    """The output keeps the input's dtype."""
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    assert group_norm(x, 2).dtype == np.float32
    assert layer_norm(x, (3,)).dtype == np.float32


def test_invalid_arguments_are_refused(rng):
    """Groups that do not divide C, a wrong normalized_shape, wrong parameter shapes, integer
    input and a backward with the wrong cache raise."""
    x = rng.normal(size=(2, 6, 3))
    with pytest.raises(ValueError, match="divide"):
        group_norm(x, 4)
    with pytest.raises(ValueError, match="normalized_shape"):
        layer_norm(x, (6,))
    with pytest.raises(ValueError, match="shape"):
        group_norm(x, 3, weight=np.ones(3))
    with pytest.raises(TypeError):
        layer_norm(np.ones((2, 3), dtype=int), (3,))
    _, cache = layer_norm_forward(x, (3,))
    with pytest.raises(ValueError, match="group_norm_forward"):
        group_norm_backward(np.ones_like(x), cache)
    with pytest.raises(ValueError, match="instance_norm needs spatial"):
        instance_norm(np.ones((2, 3)))


def test_normalized_sets_name_the_averaged_axes():
    """normalized_sets labels each value of (N, C, H, W) with its normalization set: C sets of
    N*H*W values for batch norm, N of C*H*W for layer norm, N*C of H*W for instance norm and
    N*G of (C/G)*H*W for group norm."""
    shape = (2, 4, 3, 3)
    for method, groups, n_sets, size in [("batch", 1, 4, 18), ("layer", 1, 2, 36),
                                         ("instance", 1, 8, 9), ("group", 2, 4, 18)]:
        sets = normalized_sets(shape, method, groups)
        counts = np.bincount(sets.ravel())
        assert len(counts) == n_sets and (counts == size).all(), method
    x = np.random.default_rng(0).normal(size=shape)
    sets = normalized_sets(shape, "group", 2)
    y = group_norm(x, 2)
    for s in range(4):
        assert abs(y[sets == s].mean()) < 1e-12
    with pytest.raises(ValueError, match="method"):
        normalized_sets(shape, "weight")


def test_least_squares_gd_converges_and_condition_number_is_the_eigenvalue_ratio(rng):
    """Gradient descent with the best fixed step reaches the least-squares solution, and the
    condition number is the ratio of the Hessian's extreme eigenvalues (for independent
    features: the ratio of their mean squares)."""
    X = rng.normal(size=(2000, 2)) * [1.0, 10.0]
    y = X @ np.array([2.0, -0.3])
    assert hessian_condition_number(X) == pytest.approx(100, rel=0.1)
    assert hessian_condition_number(standardize(X)) == pytest.approx(1, rel=0.1)
    path = least_squares_gd(standardize(X), y - y.mean(), steps=50)
    w_star = np.linalg.lstsq(standardize(X), y - y.mean(), rcond=None)[0]
    assert np.allclose(path[-1], w_star, atol=1e-8)


def test_gd_steps_grow_with_the_condition_number(rng):
    """Unequal feature scales make gradient descent need many more steps."""
    X = rng.normal(size=(500, 2))
    y = X @ np.array([1.0, 1.0]) + 0.1 * rng.normal(size=500)
    fast = gd_steps_to_tolerance(X, y)
    slow = gd_steps_to_tolerance(X * [1.0, 20.0], y)
    assert slow > 50 * fast


def test_standardize_refuses_a_constant_feature():
    """A constant column has no scale to divide by."""
    with pytest.raises(ValueError, match="constant"):
        standardize(np.array([[1.0, 2.0], [1.0, 3.0]]))


def test_population_statistics_are_algorithm_2(rng):
    """E[x] is the mean of the batch means and Var[x] is m/(m-1) times the mean of the biased
    batch variances; with them the inference transform equals BN in evaluation mode."""
    batches = [rng.normal(3.0, 2.0, size=(8, 3)) for _ in range(5)]
    mean, var = population_statistics(batches)
    assert np.allclose(mean, np.mean([b.mean(0) for b in batches], axis=0))
    assert np.allclose(var, 8 / 7 * np.mean([b.var(0) for b in batches], axis=0))
    x = rng.normal(size=(4, 3))
    w, b = rng.normal(size=3), rng.normal(size=3)
    assert np.allclose(population_batch_norm(x, mean, var, w, b),
                       batch_norm(x, mean.copy(), var.copy(), w, b, training=False))
    with pytest.raises(ValueError):
        population_statistics([np.ones((1, 3))])


def test_momentum_conventions_convert_both_ways():
    """Keras' 0.99 is PyTorch's 0.01, CS231n's 0.9 is PyTorch's 0.1, and the two conventions
    give the same running average."""
    assert momentum_to_pytorch(0.99) == pytest.approx(0.01)
    assert momentum_from_pytorch(0.1) == pytest.approx(0.9)
    rng = np.random.default_rng(1)
    run_t, run_k = np.zeros(2), np.zeros(2)
    for _ in range(10):
        batch = rng.normal(size=(5, 2))
        batch_norm(batch, run_t, np.ones(2), training=True, momentum=momentum_to_pytorch(0.9))
        run_k = 0.9 * run_k + (1 - 0.9) * batch.mean(0)
    assert np.allclose(run_t, run_k)
    with pytest.raises(ValueError):
        momentum_to_pytorch(1.5)


def test_half_life_of_the_running_average():
    """With PyTorch's momentum 0.1 a batch's weight halves after log(0.5)/log(0.9) = 6.58
    steps; with 0.01 after 69 steps."""
    assert running_average_half_life(0.1) == pytest.approx(6.579, abs=1e-3)
    assert running_average_half_life(0.01) == pytest.approx(68.97, abs=1e-2)
    assert 0.9 ** running_average_half_life(0.1) == pytest.approx(0.5)
