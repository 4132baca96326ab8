"""``batch_norm`` with torch.nn.functional semantics, choosing its implementation by device.

Training mode runs one of two autograd Functions with the same closed-form backward:

* ``"torch"``: :class:`solutions.torch_bn.reference.BatchNormFunction`, plain torch ops (the
  readable reference, and the CPU path);
* ``"triton"``: :class:`solutions.torch_bn.triton_kernels.TritonBatchNormFunction`, fused
  Triton kernels.

``backend="auto"`` (the default) follows the rule of :func:`choose_backend`: Triton for CUDA
tensors of float16, bfloat16 or float32 when Triton imports, the torch ops otherwise (float64
included: on a GPU it is a dtype for checking, not for speed, and the torch ops are the exact
reference). Evaluation mode is a per-channel affine map of the running statistics, computed with
torch ops on every device. Conventions are those of :mod:`solutions.torch_bn.reference`.
"""

from __future__ import annotations

import functools
import importlib

import torch

from . import reference

__all__ = ["batch_norm", "check_arguments", "triton_available", "BACKENDS",
           "AUTO_TRITON_DTYPES", "choose_backend", "select_backend"]

BACKENDS = ("auto", "torch", "triton")
AUTO_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
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


def choose_backend(device_type: str, dtype: torch.dtype, numel: int, backend: str = "auto", *,
                   triton_importable: bool = True) -> str:
    """The training-mode implementation, "torch" or "triton", for an input described by its
    device type, dtype and number of elements (a rule on the description, so that it can be
    checked without a GPU or a large tensor).

    An explicit "torch" or "triton" is returned as given, except that an empty input always
    takes the torch ops (there is nothing to launch). "auto" gives "triton" exactly when the
    device is CUDA, Triton imports, the dtype is one of :data:`AUTO_TRITON_DTYPES` and
    ``0 < numel <= 2**31 - 1`` (the kernels use 32-bit offsets); "torch" otherwise.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if numel == 0:
        return "torch"
    if backend != "auto":
        return backend
    fits = (device_type == "cuda" and triton_importable and dtype in AUTO_TRITON_DTYPES
            and numel <= _MAX_TRITON_NUMEL)
    return "triton" if fits else "torch"


def select_backend(input: torch.Tensor, backend: str = "auto") -> str:
    """The training-mode implementation ``batch_norm`` uses for ``input``: "torch" or "triton"
    (:func:`choose_backend` applied to ``input``)."""
    if backend not in BACKENDS:  # before importing triton
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    importable = input.is_cuda and backend == "auto" and triton_available()
    return choose_backend(input.device.type, input.dtype, input.numel(), backend,
                          triton_importable=importable)


def _triton_kernels_for(input):
    """The kernels module, or the error that says why an explicit backend="triton" cannot run
    on ``input``."""
    kernels = _triton_module()
    if kernels is None:
        raise RuntimeError("backend='triton' was requested but triton cannot be imported; "
                           "install triton or use backend='torch'")
    if not input.is_cuda and not kernels.INTERPRETED:
        raise ValueError(
            f"backend='triton' needs CUDA tensors, got a tensor on {input.device}: move it to "
            "a GPU, use backend='torch' (or 'auto'), or set TRITON_INTERPRET=1 in the "
            "environment before triton is first imported to run the kernels in Triton's "
            "CPU interpreter")
    if input.numel() > _MAX_TRITON_NUMEL:
        raise ValueError(f"backend='triton' handles at most {_MAX_TRITON_NUMEL} elements (the "
                         f"kernels use 32-bit offsets), got {input.numel()}; use "
                         "backend='torch' (or 'auto')")
    return kernels


def check_arguments(input, running_mean, running_var, weight, bias, training):
    """:func:`solutions.torch_bn.reference.check_arguments` (torch's errors for the input's
    rank, the per-channel sizes, one value per channel, missing running statistics), and the
    per-channel tensors on the input's device (the kernels would read another device's memory)
    and of a floating-point dtype, RuntimeError as torch raises. Any float dtype and any
    strides are accepted: the kernels cast, and work on contiguous copies of strided ones."""
    reference.check_arguments(input, running_mean, running_var, weight, bias, training)
    for name, v in [("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)]:
        if v is None:
            continue
        if v.device != input.device:
            raise RuntimeError("Expected all tensors to be on the same device, but found at "
                               f"least two devices: input is on {input.device}, {name} on "
                               f"{v.device}")
        if not v.is_floating_point():
            raise RuntimeError(f"{name} must be a floating-point tensor, got {v.dtype}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, backend="auto"):
    """Same signature and semantics as ``torch.nn.functional.batch_norm``; ``backend`` picks the
    training-mode implementation ("auto", "torch" or "triton", see :func:`choose_backend`)."""
    check_arguments(input, running_mean, running_var, weight, bias, training)
    if not training or select_backend(input, backend) == "torch":
        return reference.batch_norm(input, running_mean, running_var, weight, bias, training,
                                    momentum, eps)
    kernels = _triton_kernels_for(input)
    return kernels.TritonBatchNormFunction.apply(input, weight, bias, running_mean, running_var,
                                                 momentum, eps)
