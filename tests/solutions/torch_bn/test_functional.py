"""Tests for solutions.torch_bn.functional: batch_norm with torch.nn.functional semantics and
the choice between the torch-ops reference and the Triton kernels."""

import os
import platform

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


@pytest.mark.parametrize("device,dtype,numel,importable,expected", [
    ("cuda", torch.float32, 10, True, "triton"),
    ("cuda", torch.bfloat16, 10, True, "triton"),
    ("cuda", torch.float16, 10, True, "triton"),
    ("cuda", torch.float64, 10, True, "torch"),      # float64 takes the exact torch ops
    ("cuda", torch.float32, 10, False, "torch"),     # triton does not import
    ("cpu", torch.float32, 10, True, "torch"),
    ("meta", torch.float32, 10, True, "torch"),
    ("cuda", torch.float32, 0, True, "torch"),       # empty: nothing to launch
    ("cuda", torch.float32, 2**31 - 1, True, "triton"),
    ("cuda", torch.float32, 2**31, True, "torch"),   # past the kernels' 32-bit offsets
    ("cuda", torch.bfloat16, 3 * 2**31, True, "torch"),
])
def test_auto_selection_rule(device, dtype, numel, importable, expected):
    """"auto" picks Triton exactly for CUDA, an importable Triton, float16/bfloat16/float32
    and 0 < numel <= 2**31 - 1 (checked on descriptions: no GPU, no large tensor)."""
    assert functional.choose_backend(device, dtype, numel, triton_importable=importable) \
        == expected


def test_explicit_backends_and_empty_input():
    """An explicit backend is kept whatever the device, dtype or size, except that an empty
    input always takes the torch ops."""
    for backend in ("torch", "triton"):
        assert functional.choose_backend("cuda", torch.float64, 2**40, backend) == backend
        assert functional.choose_backend("cpu", torch.float32, 5, backend) == backend
        assert functional.choose_backend("cuda", torch.float32, 0, backend) == "torch"
    with pytest.raises(ValueError, match="backend must be one of"):
        functional.choose_backend("cuda", torch.float32, 5, "cudnn")


def test_empty_batch_with_explicit_triton_runs_the_torch_ops():
    """An empty batch with backend="triton" returns an empty output, running stats unchanged."""
    rm, rv = torch.zeros(3), torch.ones(3)
    y = functional.batch_norm(torch.randn(0, 3), rm, rv, training=True, backend="triton")
    assert y.shape == (0, 3) and rm.eq(0).all() and rv.eq(1).all()


@pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") == "1",
                    reason="TRITON_INTERPRET=1 here: CPU tensors are valid for the kernels")
def test_explicit_triton_on_cpu_names_the_fix():
    """backend="triton" on CPU tensors, without the interpreter, raises a ValueError that names
    the ways out instead of an error from inside Triton."""
    pytest.importorskip("triton", reason="triton is not installed")
    with pytest.raises(ValueError, match=r"needs CUDA tensors.*backend='torch'.*TRITON_INTERPRET"):
        functional.batch_norm(torch.randn(4, 3), None, None, training=True, backend="triton")


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


@pytest.mark.skipif(platform.system() != "Linux",
                    reason="pyproject.toml installs triton only on Linux")
@pytest.mark.parametrize("name", ["running_mean", "running_var", "weight", "bias"])
def test_per_channel_tensor_on_another_device_is_refused(name):
    """A per-channel tensor on another device than the input is a RuntimeError naming both
    devices, for every backend, before anything runs (meta stands in for a second device)."""
    args = dict(running_mean=torch.zeros(3), running_var=torch.ones(3), weight=torch.ones(3),
                bias=torch.zeros(3))
    args[name] = args[name].to("meta")
    for backend in functional.BACKENDS:
        with pytest.raises(RuntimeError, match=f"same device.*cpu, {name} on meta"):
            functional.batch_norm(torch.randn(4, 3), training=True, backend=backend, **args)


def test_integer_per_channel_tensor_is_refused():
    """An integer running buffer is refused (its update would be truncated), for every backend."""
    for backend in functional.BACKENDS:
        with pytest.raises(RuntimeError, match="running_mean must be a floating-point tensor"):
            functional.batch_norm(torch.randn(4, 3), torch.zeros(3, dtype=torch.long),
                                  torch.ones(3), training=True, backend=backend)


def test_triton_is_importable_here():
    """Triton imports in this environment (it is a dependency on Linux)."""
    assert functional.triton_available()
