"""Tests for solutions.batchnorm against torch.nn.functional.batch_norm and numerical gradients."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from solutions.batchnorm import (
    batch_norm,
    batch_norm_backward,
    batch_norm_backward_staged,
    batch_norm_forward,
    channel_axes,
)
from solutions.gradcheck import numerical_gradient_array, rel_error

SHAPES = [(6, 3), (4, 3, 5), (3, 2, 4, 5), (2, 3, 2, 3, 2)]


def _torch_reference(x, rm, rv, w, b, training, momentum=0.1, eps=1e-5):
    t = lambda a: None if a is None else torch.tensor(a)  # noqa: E731
    trm, trv = t(rm), t(rv)
    y = F.batch_norm(t(x), trm, trv, t(w), t(b), training=training, momentum=momentum, eps=eps)
    return y.numpy(), None if trm is None else trm.numpy(), None if trv is None else trv.numpy()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_several_training_steps_then_eval_match_torch(rng, shape, affine):
    """Outputs and in-place running statistics agree with torch over 3 steps and in eval."""
    C = shape[1]
    w = rng.normal(size=C) if affine else None
    b = rng.normal(size=C) if affine else None
    rm, rv = np.zeros(C), np.ones(C)
    trm, trv = rm.copy(), rv.copy()
    for _ in range(3):
        x = rng.normal(3.0, 2.0, size=shape)
        y = batch_norm(x, rm, rv, w, b, training=True)
        ty, trm, trv = _torch_reference(x, trm, trv, w, b, training=True)
        assert rel_error(y, ty) < 1e-10
        assert rel_error(rm, trm) < 1e-12 and rel_error(rv, trv) < 1e-12
    x = rng.normal(3.0, 2.0, size=shape)
    ty, _, _ = _torch_reference(x, trm, trv, w, b, training=False)
    assert rel_error(batch_norm(x, rm, rv, w, b, training=False), ty) < 1e-10


@given(
    n=st.integers(2, 5), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 3), max_size=3),
    seed=st.integers(0, 2**31), momentum=st.floats(0.0, 1.0), scale=st.floats(1e-2, 1e3),
)
def test_property_matches_torch_on_any_shape(n, c, spatial, seed, momentum, scale):
    """For random shapes, scales and momenta the output and running stats equal torch's."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, c, *spatial)) * scale + r.normal(size=(1, c) + (1,) * len(spatial))
    w, b = r.normal(size=c), r.normal(size=c)
    rm, rv = r.normal(size=c), r.uniform(0.5, 2, size=c)
    ty, trm, trv = _torch_reference(x, rm.copy(), rv.copy(), w, b, True, momentum)
    y = batch_norm(x, rm, rv, w, b, training=True, momentum=momentum)
    np.testing.assert_allclose(y, ty, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rm, trm, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rv, trv, rtol=1e-10, atol=1e-12)


@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, min_side=2, max_side=4),
                    elements=st.floats(-1e3, 1e3)))
def test_property_normalized_channels_have_mean_zero(x):
    """Without affine parameters each channel of the output has mean 0 and variance <= 1."""
    y, _ = batch_norm_forward(x)
    axes = channel_axes(x.ndim)
    assert np.all(np.abs(y.mean(axis=axes)) < 1e-6)
    assert np.all(y.var(axis=axes) <= 1 + 1e-9)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("backward", [batch_norm_backward, batch_norm_backward_staged])
def test_backward_matches_numerical_gradient(rng, shape, backward):
    """dx, dgamma, dbeta agree with centred differences in float64 (rel_error < 1e-7)."""
    C = shape[1]
    x = rng.normal(1.0, 2.0, size=shape)
    w, b = rng.normal(size=C), rng.normal(size=C)
    dy = rng.normal(size=shape)
    _, cache = batch_norm_forward(x, w, b)
    dx, dw, db = backward(dy, cache)
    assert rel_error(dx, numerical_gradient_array(lambda v: batch_norm_forward(v, w, b)[0],
                                                  x, dy)) < 1e-7
    assert rel_error(dw, numerical_gradient_array(lambda v: batch_norm_forward(x, v, b)[0],
                                                  w, dy)) < 1e-7
    assert rel_error(db, numerical_gradient_array(lambda v: batch_norm_forward(x, w, v)[0],
                                                  b, dy)) < 1e-7


@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_torch_autograd(rng, shape):
    """The closed form and the staged backward both equal torch's autograd gradients."""
    C = shape[1]
    x, dy = rng.normal(size=shape), rng.normal(size=shape)
    w, b = rng.normal(size=C), rng.normal(size=C)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    F.batch_norm(tx, None, None, tw, tb, training=True).backward(torch.tensor(dy))
    _, cache = batch_norm_forward(x, w, b)
    for backward in (batch_norm_backward, batch_norm_backward_staged):
        dx, dw, db = backward(dy, cache)
        assert rel_error(dx, tx.grad.numpy()) < 1e-9
        assert rel_error(dw, tw.grad.numpy()) < 1e-9
        assert rel_error(db, tb.grad.numpy()) < 1e-9


def test_one_value_per_channel_in_training_is_an_error():
    """N=1 for (N, C) and N*H*W=1 for conv raise ValueError in training, as torch does."""
    for shape in [(1, 3), (1, 3, 1, 1)]:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            batch_norm(np.ones(shape), None, None, training=True)
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            F.batch_norm(torch.ones(shape), None, None, training=True)


def test_one_sample_is_fine_in_eval_mode():
    """Eval mode uses the running statistics, so a single sample is normalized fine."""
    y = batch_norm(np.array([[3.0, 5.0]]), np.array([1.0, 1.0]), np.array([4.0, 16.0]))
    np.testing.assert_allclose(y, [[2 / np.sqrt(4 + 1e-5), 4 / np.sqrt(16 + 1e-5)]])


def test_constant_channel_gives_finite_output():
    """A channel with zero variance gives beta (zeros before the affine part), not NaN."""
    x = np.ones((4, 2, 3, 3))
    x[:, 1] = np.arange(4.0)[:, None, None]
    y = batch_norm(x, None, None, None, np.array([0.5, 0.0]), training=True)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[:, 0], 0.5)


def test_large_mean_float32_agrees_with_float64(rng):
    """float32 data with mean 1e4 and std 1 normalizes like float64 to 1e-3."""
    x64 = rng.normal(1e4, 1.0, size=(32, 4, 8, 8))
    x32 = x64.astype(np.float32)
    y32 = batch_norm(x32, None, None, training=True)
    y64 = batch_norm(x32.astype(np.float64), None, None, training=True)
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, y64, atol=1e-3)
    _, cache = batch_norm_forward(x32)
    dy = rng.normal(size=x32.shape).astype(np.float32)
    dx32 = batch_norm_backward(dy, cache)[0]
    _, cache64 = batch_norm_forward(x32.astype(np.float64))
    dx64 = batch_norm_backward(dy.astype(np.float64), cache64)[0]
    np.testing.assert_allclose(dx32, dx64, atol=1e-3)


def test_float16_input_keeps_its_dtype(rng):
    """float16 in gives float16 out (statistics accumulated in wider types)."""
    x = rng.normal(size=(8, 3)).astype(np.float16)
    y = batch_norm(x, None, None, training=True)
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, batch_norm(x.astype(np.float64), None, None, training=True),
                               atol=5e-3)


@pytest.mark.parametrize("bad", [np.array([1.0, np.nan]), np.array([np.inf, 1.0])])
def test_nan_or_inf_input_is_an_error(bad):
    """NaN or inf in the input raises instead of silently producing NaN statistics."""
    x = np.ones((3, 2))
    x[0] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        batch_norm(x, None, None, training=True)


def test_wrong_length_parameters_are_errors(rng):
    """gamma, beta and running statistics must have one entry per channel."""
    x = rng.normal(size=(4, 3))
    for kwargs in [dict(weight=np.ones(2)), dict(bias=np.ones(4)),
                   dict(running_mean=np.zeros(2), running_var=np.ones(3))]:
        args = dict(running_mean=np.zeros(3), running_var=np.ones(3), training=True)
        args.update(kwargs)
        with pytest.raises(ValueError, match="one entry per channel"):
            batch_norm(x, **args)


@pytest.mark.parametrize("shape", [(5,), (), (2, 2, 2, 2, 2, 2)])
def test_wrong_rank_is_an_error(shape):
    """1-D (and 6-D) inputs raise ValueError naming the accepted shapes."""
    with pytest.raises(ValueError, match=r"\(N, C\)"):
        batch_norm(np.ones(shape), None, None, training=True)


def test_eval_needs_running_statistics():
    """Eval mode without running statistics is an error, not a silent batch normalization."""
    with pytest.raises(ValueError, match="running_mean is required"):
        batch_norm(np.ones((3, 2)), None, None, training=False)


def test_integer_input_is_refused():
    """Integer arrays are refused with a message naming the dtype."""
    with pytest.raises(TypeError, match="floating-point"):
        batch_norm(np.ones((3, 2), dtype=int), None, None, training=True)


def test_momentum_direction():
    """running = (1-momentum)*running + momentum*batch; running_var gets the unbiased variance."""
    x = np.array([[1.0], [2.0], [6.0]])  # mean 3, biased var 14/3, unbiased var 7
    rm, rv = np.zeros(1), np.ones(1)
    batch_norm(x, rm, rv, training=True, momentum=0.1)
    np.testing.assert_allclose(rm, [0.3])
    np.testing.assert_allclose(rv, [0.9 + 0.7])
    with pytest.raises(ValueError, match="momentum"):
        batch_norm(x, rm, rv, training=True, momentum=1.5)


def test_backward_rejects_wrong_upstream_shape(rng):
    """dy must have the forward input's shape."""
    _, cache = batch_norm_forward(rng.normal(size=(4, 3)))
    with pytest.raises(ValueError, match="shape"):
        batch_norm_backward(np.ones((3, 4)), cache)
    with pytest.raises(ValueError, match="shape"):
        batch_norm_backward_staged(np.ones((3, 4)), cache)
