"""Tests for solutions.torch_bn.functional: batch_norm with torch.nn.functional semantics and
the choice between the torch-ops reference and the Triton kernels."""

import pytest
import torch

from solutions.torch_bn import functional, reference


def test_cpu_tensors_use_the_torch_reference():
    """On the CPU, "auto" selects the torch-ops reference, whose Function builds the graph."""
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    assert functional.select_backend(x) == "torch"
    y = functional.batch_norm(x, None, None, training=True)
    assert type(y.grad_fn).__name__ == "BatchNormFunctionBackward"


def test_unknown_backend_is_a_value_error():
    """A backend other than auto, torch or triton is refused with the valid names."""
    with pytest.raises(ValueError, match="auto.*torch.*triton"):
        functional.batch_norm(torch.randn(4, 3), None, None, training=True, backend="cudnn")


def test_explicit_backend_is_honoured():
    """An explicit backend is returned as given, whatever the device."""
    x = torch.randn(2, 3)
    assert functional.select_backend(x, "triton") == "triton"
    assert functional.select_backend(x, "torch") == "torch"


@pytest.mark.parametrize("training", [True, False])
def test_torch_backend_equals_reference(training):
    """backend="torch" gives the reference's output and running statistics exactly."""
    gen = torch.Generator().manual_seed(0)
    f64 = dict(generator=gen, dtype=torch.float64)
    x = torch.randn(5, 3, 4, **f64)
    w, b = torch.randn(3, **f64), torch.randn(3, **f64)
    rm1, rv1 = torch.randn(3, **f64), torch.rand(3, **f64) + 0.5
    rm2, rv2 = rm1.clone(), rv1.clone()
    y1 = functional.batch_norm(x, rm1, rv1, w, b, training, 0.2, 1e-4, backend="torch")
    y2 = reference.batch_norm(x, rm2, rv2, w, b, training, 0.2, 1e-4)
    assert torch.equal(y1, y2) and torch.equal(rm1, rm2) and torch.equal(rv1, rv2)


def test_argument_errors_come_before_dispatch():
    """Argument errors are torch's whichever backend is asked for."""
    for backend in functional.BACKENDS:
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            functional.batch_norm(torch.randn(1, 3), None, None, training=True, backend=backend)
        with pytest.raises(ValueError, match=r"\(N, C\)"):
            functional.batch_norm(torch.randn(3), None, None, training=True, backend=backend)


def test_triton_is_importable_here():
    """Triton imports in this environment (it is a dependency on Linux)."""
    assert functional.triton_available()
