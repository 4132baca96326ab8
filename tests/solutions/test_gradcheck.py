"""Tests for solutions.gradcheck."""

import numpy as np
import pytest

from solutions.gradcheck import numerical_gradient, numerical_gradient_array, rel_error


def test_rel_error_is_zero_for_equal_arrays():
    """Identical arrays have relative error 0."""
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a.copy()) == 0.0


def test_rel_error_is_the_largest_elementwise_ratio():
    """rel_error is max |a-b| / max(1e-8, |a|+|b|) taken element by element."""
    a = np.array([1.0, 100.0])
    b = np.array([1.1, 100.0])
    assert rel_error(a, b) == pytest.approx(0.1 / 2.1)


def test_rel_error_rejects_different_shapes():
    """A shape mismatch raises instead of broadcasting."""
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(3), np.zeros((3, 1)))


def test_numerical_gradient_of_exp(rng):
    """The centred difference of sum(exp(x)) is exp(x) to 1e-7."""
    x = rng.normal(size=(3, 4))
    grad = numerical_gradient(lambda v: np.sum(np.exp(v)), x)
    assert rel_error(grad, np.exp(x)) < 1e-7


def test_numerical_gradient_restores_its_input(rng):
    """The input array is the same after the check as before."""
    x = rng.normal(size=5)
    before = x.copy()
    numerical_gradient(lambda v: float(np.sum(np.sin(v))), x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_array_is_a_vector_jacobian_product(rng):
    """For f(x) = A x the gradient of sum(f(x) * df) is A^T df."""
    A = rng.normal(size=(4, 3))
    x = rng.normal(size=3)
    df = rng.normal(size=4)
    grad = numerical_gradient_array(lambda v: A @ v, x, df)
    assert rel_error(grad, A.T @ df) < 1e-8


def test_numerical_gradient_refuses_float32():
    """float32 inputs are refused with a message naming float64."""
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(np.sum, np.zeros(3, dtype=np.float32))
