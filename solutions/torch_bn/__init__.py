"""Batch normalization in PyTorch: a readable reference with a hand-written backward pass,
fused Triton kernels for CUDA, and drop-in ``BatchNorm1d``/``BatchNorm2d`` modules.

Conventions (those of torch.nn.functional.batch_norm): axis 1 is the channel axis; training
mode normalizes with the biased batch variance (1/m) and eps = 1e-5, and updates the running
statistics in place, ``running = (1 - momentum) * running + momentum * batch`` (momentum 0.1)
with the UNBIASED variance fed to ``running_var`` (which starts at ones). Statistics are
accumulated in float32 (float64 for float64 input), never as E[x^2] - E[x]^2.

Modules
-------
reference       BatchNormFunction (closed-form backward), batch_norm, BatchNorm1d/2d;
                plain torch ops, imports only torch and math
triton_kernels  fused forward/backward Triton kernels and TritonBatchNormFunction
                (imported lazily: TRITON_INTERPRET is read when it is first imported)
functional      batch_norm(..., backend="auto"|"torch"|"triton"): Triton for CUDA float16/
                bfloat16/float32 tensors (choose_backend states the rule)
modules         BatchNorm1d/2d: torch.nn's modules with forward on the dispatching
                functional; convert_batchnorm(model)
"""

from .functional import batch_norm, choose_backend, select_backend, triton_available
from .modules import BatchNorm1d, BatchNorm2d, convert_batchnorm
from .reference import BatchNormFunction

__all__ = ["batch_norm", "choose_backend", "select_backend", "triton_available", "BatchNorm1d",
           "BatchNorm2d", "convert_batchnorm", "BatchNormFunction"]
