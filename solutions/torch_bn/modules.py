"""``BatchNorm1d`` and ``BatchNorm2d`` that run on the dispatching functional.

They ARE torch.nn's modules (subclasses of ``torch.nn.BatchNorm1d``/``BatchNorm2d``, hence of
``torch.nn.modules.batchnorm._BatchNorm``), so ``isinstance`` checks, weight-decay filters,
``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` and conv-BN fusion see them as batch norm;
parameters, buffers, ``reset_*``, ``extra_repr``, the input-rank checks and the state_dict
handling (an old state_dict without ``num_batches_tracked`` loads, as into torch.nn) are
torch's. Only ``forward`` is replaced: the reference module's forward
(:class:`solutions.torch_bn.reference._BatchNorm`), calling
:func:`solutions.torch_bn.functional.batch_norm`, so that CUDA tensors take the fused Triton
kernels in training mode. ``backend`` ("auto", "torch" or "triton") can be set per module, as
an attribute or a keyword argument.
"""

from __future__ import annotations

import torch

from . import functional, reference

__all__ = ["BatchNorm1d", "BatchNorm2d", "convert_batchnorm"]


class _Dispatching:
    """Mixin over a torch.nn batch-norm class: forward through functional.batch_norm."""

    def __init__(self, *args, backend="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if backend not in functional.BACKENDS:
            raise ValueError(f"backend must be one of {functional.BACKENDS}, got {backend!r}")
        self.backend = backend

    forward = reference._BatchNorm.forward  # momentum=None, flags and buffers as torch.nn

    def _batch_norm(self, *args):
        return functional.batch_norm(*args, backend=self.backend)

    def extra_repr(self):
        extra = "" if self.backend == "auto" else f", backend={self.backend!r}"
        return super().extra_repr() + extra


class BatchNorm1d(_Dispatching, torch.nn.BatchNorm1d):
    """Drop-in for torch.nn.BatchNorm1d: (N, C) or (N, C, L) input."""


class BatchNorm2d(_Dispatching, torch.nn.BatchNorm2d):
    """Drop-in for torch.nn.BatchNorm2d: (N, C, H, W) input."""


def convert_batchnorm(model: torch.nn.Module, backend: str = "auto") -> torch.nn.Module:
    """Replace, in place, every torch.nn.BatchNorm1d/2d in ``model`` (exactly those classes,
    not subclasses such as ours) by this package's module with the same settings, parameters
    and buffers (shared, not copied). Returns ``model``."""
    pairs = {torch.nn.BatchNorm1d: BatchNorm1d, torch.nn.BatchNorm2d: BatchNorm2d}
    for name, child in list(model.named_children()):
        ours = pairs.get(type(child))
        if ours is None:
            convert_batchnorm(child, backend)
            continue
        new = ours(child.num_features, child.eps, child.momentum, child.affine,
                   child.track_running_stats, backend=backend)
        new.weight, new.bias = child.weight, child.bias
        new.running_mean, new.running_var = child.running_mean, child.running_var
        new.num_batches_tracked = child.num_batches_tracked
        new.train(child.training)
        setattr(model, name, new)
    return model
