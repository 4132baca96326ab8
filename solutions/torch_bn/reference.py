"""Batch normalization in PyTorch with a hand-written backward pass (the readable reference).

Conventions (those of ``torch.nn.functional.batch_norm``): axis 1 is the channel axis and the
statistics of each channel are taken over every other axis, ``m = N * (product of the spatial
sizes)`` values. Training mode normalizes with the biased batch variance (1/m), ``eps = 1e-5``,
and updates the running statistics in place as
``running = (1 - momentum) * running + momentum * batch`` (momentum 0.1), the running variance
being fed the unbiased variance ``m / (m - 1) * var``. Evaluation mode normalizes with the
running statistics. Statistics are accumulated in float32 (float64 for float64 input) in two
passes (mean, then the mean of squared deviations), never as E[x^2] - E[x]^2. The output has
the input's dtype and memory format.
"""

import math

import torch


def _per_channel(v, ndim):
    """Reshape a (C,) vector so that it broadcasts against an (N, C, *) tensor."""
    return v.view(1, -1, *([1] * (ndim - 2)))


def _values_per_channel(x):
    """m: the number of values each channel's statistics are taken over."""
    return math.prod(x.shape[:1] + x.shape[2:])


def _compute_dtype(x):
    """float64 stays float64; float32, float16 and bfloat16 are computed in float32."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _scale_shift(y, weight, bias):
    """y * gamma + beta per channel (either may be None), in y's dtype."""
    if weight is not None:
        y = y * _per_channel(weight.to(y.dtype), y.dim())
    if bias is not None:
        y = y + _per_channel(bias.to(y.dtype), y.dim())
    return y


class BatchNormFunction(torch.autograd.Function):
    """Training-mode batch normalization with the closed-form backward pass."""

    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, momentum, eps):
        x = input.to(_compute_dtype(input))
        dims = [0] + list(range(2, x.dim()))
        m = _values_per_channel(x)
        mean = x.mean(dim=dims)                                     # pass 1
        var = (x - _per_channel(mean, x.dim())).square().mean(dim=dims)  # pass 2, biased
        invstd = torch.rsqrt(var + eps)
        y = _scale_shift((x - _per_channel(mean, x.dim())) * _per_channel(invstd, x.dim()),
                         weight, bias)
        if running_mean is not None and m > 0:  # an empty batch leaves them alone, as in torch
            running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
        if running_var is not None and m > 0:
            unbiased = var * (m / (m - 1))
            running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)
        ctx.save_for_backward(input, weight, mean, invstd)
        ctx.bias_dtype = None if bias is None else bias.dtype
        return y.to(input.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        input, weight, mean, invstd = ctx.saved_tensors
        x = input.to(mean.dtype)
        dy = grad_output.to(mean.dtype)
        dims = [0] + list(range(2, x.dim()))
        m = _values_per_channel(x)
        x_hat = (x - _per_channel(mean, x.dim())) * _per_channel(invstd, x.dim())
        sum_dy = dy.sum(dim=dims)
        sum_dy_xhat = (dy * x_hat).sum(dim=dims)
        scale = invstd if weight is None else weight.to(x.dtype) * invstd
        dx = _per_channel(scale / m, x.dim()) * (
            m * dy - _per_channel(sum_dy, x.dim()) - x_hat * _per_channel(sum_dy_xhat, x.dim()))
        dweight = sum_dy_xhat.to(weight.dtype) if ctx.needs_input_grad[1] else None
        dbias = sum_dy.to(ctx.bias_dtype) if ctx.needs_input_grad[2] else None
        return dx.to(input.dtype), dweight, dbias, None, None, None, None


def check_arguments(input, running_mean, running_var, weight, bias, training):
    """Raise the errors torch.nn.functional.batch_norm raises for these arguments."""
    if input.dim() < 2:
        raise ValueError("batch_norm expects input of shape (N, C) or (N, C, *), e.g. (N, C, L) "
                         f"or (N, C, H, W); got a {input.dim()}-D tensor of shape "
                         f"{tuple(input.shape)}")
    for name, v in [("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)]:
        if v is not None and v.numel() != input.shape[1]:
            raise RuntimeError(f"{name} should contain {input.shape[1]} elements not {v.numel()}")
    if training and _values_per_channel(input) == 1:
        raise ValueError("Expected more than 1 value per channel when training, "
                         f"got input size {input.size()}")
    if not training and (running_mean is None or running_var is None):
        raise RuntimeError("running_mean and running_var must be defined in evaluation mode")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Same signature and semantics as ``torch.nn.functional.batch_norm``."""
    check_arguments(input, running_mean, running_var, weight, bias, training)
    if training:
        return BatchNormFunction.apply(input, weight, bias, running_mean, running_var,
                                       momentum, eps)
    # Evaluation: a fixed affine map per channel; autograd through these plain ops is exact.
    x, n = input.to(_compute_dtype(input)), input.dim()
    y = (x - _per_channel(running_mean.to(x.dtype), n)) * _per_channel(
        torch.rsqrt(running_var.to(x.dtype) + eps), n)
    return _scale_shift(y, weight, bias).to(input.dtype)


class _BatchNorm(torch.nn.Module):
    """Drop-in replacement for torch.nn's batch norm modules (same parameters and buffers)."""

    _version = 2  # torch.nn's state_dict version: num_batches_tracked exists
    _batch_norm = staticmethod(batch_norm)  # the functional that forward calls

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None):
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.register_parameter("weight", torch.nn.Parameter(torch.ones(num_features, **kw))
                                if affine else None)
        self.register_parameter("bias", torch.nn.Parameter(torch.zeros(num_features, **kw))
                                if affine else None)
        tracked = track_running_stats
        self.register_buffer("running_mean", torch.zeros(num_features, **kw) if tracked else None)
        self.register_buffer("running_var", torch.ones(num_features, **kw) if tracked else None)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long,
                             device=device) if tracked else None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            torch.nn.init.ones_(self.weight)
            torch.nn.init.zeros_(self.bias)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")

    def forward(self, input):
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average over all batches seen
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        pass_buffers = not self.training or self.track_running_stats  # else never updated
        return self._batch_norm(input, self.running_mean if pass_buffers else None,
                                self.running_var if pass_buffers else None, self.weight,
                                self.bias, use_batch_stats, factor, self.eps)


class BatchNorm1d(_BatchNorm):
    """Batch normalization over (N, C) or (N, C, L) input, per feature / channel."""

    def _check_input_dim(self, input):
        if input.dim() not in (2, 3):
            raise ValueError(f"expected 2D or 3D input of shape (N, C) or (N, C, L) "
                             f"(got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization over (N, C, H, W) input, per channel over N * H * W values."""

    def _check_input_dim(self, input):
        if input.dim() != 4:
            raise ValueError(f"expected 4D input of shape (N, C, H, W) (got {input.dim()}D input)")

