"""``batch_norm`` with torch.nn.functional semantics, choosing its implementation by device.

Training mode runs one of two autograd Functions with the same closed-form backward:

* ``"torch"``: :class:`solutions.torch_bn.reference.BatchNormFunction`, plain torch ops (the
  readable reference, and the CPU path);
* ``"triton"``: :class:`solutions.torch_bn.triton_kernels.TritonBatchNormFunction`, fused
  Triton kernels.

``backend="auto"`` (the default) picks Triton for CUDA tensors of a supported dtype when Triton
imports, and the torch ops otherwise. Evaluation mode is a per-channel affine map of the running
statistics, computed with torch ops on every device. Conventions are those of
:mod:`solutions.torch_bn.reference`.
"""

from __future__ import annotations

import functools
import importlib

import torch

from . import reference

__all__ = ["batch_norm", "triton_available", "BACKENDS", "select_backend"]

BACKENDS = ("auto", "torch", "triton")
_MAX_TRITON_NUMEL = 2**31 - 1  # the kernels index with 32-bit offsets


@functools.cache
def _triton_module():
    """The kernels module, imported on first use (after TRITON_INTERPRET is read), or None."""
    try:
        return importlib.import_module("solutions.torch_bn.triton_kernels")
    except ImportError:
        return None


def triton_available() -> bool:
    """Whether the Triton kernels can be imported in this process."""
    return _triton_module() is not None


def select_backend(input: torch.Tensor, backend: str = "auto") -> str:
    """The training-mode implementation ``batch_norm`` uses for ``input``: "torch" or "triton"."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    kernels = _triton_module()
    if (input.is_cuda and kernels is not None and input.dtype in kernels.SUPPORTED_DTYPES
            and 0 < input.numel() <= _MAX_TRITON_NUMEL):
        return "triton"
    return "torch"


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, backend="auto"):
    """Same signature and semantics as ``torch.nn.functional.batch_norm``; ``backend`` picks the
    training-mode implementation ("auto", "torch" or "triton", see :func:`select_backend`)."""
    reference.check_arguments(input, running_mean, running_var, weight, bias, training)
    if not training or select_backend(input, backend) == "torch":
        return reference.batch_norm(input, running_mean, running_var, weight, bias, training,
                                    momentum, eps)
    kernels = _triton_module()
    if kernels is None:
        raise RuntimeError("backend='triton' was requested but triton cannot be imported")
    return kernels.TritonBatchNormFunction.apply(input, weight, bias, running_mean, running_var,
                                                 momentum, eps)
