"""PyTorch as an independent oracle for the batch-normalization assignments' visible tests.

Everything here runs ``torch.nn.functional.batch_norm`` in float64 on the CPU and hands NumPy
arrays back, so your NumPy code can be compared with a library implementation. It also
computes what a few common mistakes would give, so a failing test can say which one you made.

Conventions (PyTorch's, which the course follows): statistics per channel (axis 1) over every
other axis; the batch variance used for normalizing is the biased one (divide by m); the
running variance is fed the unbiased one (divide by m - 1);
``running = (1 - momentum) * running + momentum * batch``; eps = 1e-5.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _t(a):
    return None if a is None else torch.tensor(np.asarray(a, dtype=np.float64))


def reference_batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
                         momentum=0.1, eps=1e-5):
    """``(y, new_running_mean, new_running_var)`` from PyTorch; the inputs are not changed."""
    rm, rv = _t(running_mean), _t(running_var)
    y = F.batch_norm(_t(x), rm, rv, _t(weight), _t(bias), training, momentum, eps)
    return (y.numpy(), None if rm is None else rm.numpy(), None if rv is None else rv.numpy())


def reference_backward(x, dy, weight=None, bias=None, eps=1e-5):
    """``(dx, dweight, dbias)`` of training-mode batch norm, by PyTorch's autograd."""
    xt = _t(x).requires_grad_(True)
    wt = _t(np.ones(np.shape(x)[1]) if weight is None else weight).requires_grad_(True)
    bt = _t(np.zeros(np.shape(x)[1]) if bias is None else bias).requires_grad_(True)
    y = F.batch_norm(xt, None, None, wt, bt, True, 0.0, eps)
    y.backward(_t(dy))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def _other_axes(ndim):
    return tuple(d for d in range(ndim) if d != 1)


def reference_cache(x, weight=None, eps=1e-5):
    """The fields a correct training-mode forward pass puts in the notebook's
    ``BatchNormCache``, from PyTorch, so that a backward pass can be tested on its own:
    ``BatchNormCache(**reference_cache(x, gamma))``."""
    xt = _t(x)
    ax = _other_axes(xt.dim())
    var, mean = torch.var_mean(xt, dim=ax, correction=0)
    std = torch.sqrt(var + eps)
    shape = (1, xt.shape[1]) + (1,) * (xt.dim() - 2)
    x_hat = (xt - mean.view(shape)) / std.view(shape)
    C = xt.shape[1]
    return {"x_hat": x_hat.numpy(), "mean": mean.numpy(), "var": var.numpy(),
            "std": std.numpy(), "invstd": (1 / std).numpy(),
            "weight": np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64),
            "m": xt.numel() // C, "eps": float(eps), "axes": ax, "shape": tuple(xt.shape)}


def mistaken_running_var(x, running_var, momentum=0.1):
    """What running_var becomes after one step under common mistakes, by name."""
    x = np.asarray(x, dtype=np.float64)
    ax = _other_axes(x.ndim)
    biased = x.var(axis=ax)
    unbiased = x.var(axis=ax, ddof=1)
    rv = np.asarray(running_var, dtype=np.float64)
    m = x.size // x.shape[1]
    return {
        "is your batch variance already the unbiased one? Normalize with the biased variance "
        "and feed running_var m / (m - 1) times it":
            (1 - momentum) * rv + momentum * unbiased * m / (m - 1),
        "did you feed it the biased variance? running_var takes the UNBIASED one "
        "(m / (m - 1) times the biased)": (1 - momentum) * rv + momentum * biased,
        "is the momentum applied the wrong way round? running = (1 - momentum) * running + "
        "momentum * batch": momentum * rv + (1 - momentum) * unbiased,
    }


def mistaken_forward(x, eps=1e-5, weight=None, bias=None):
    """What the output is under common mistakes, by name (gamma and beta applied per channel
    when given, or, for the reshaping mistake, per column of the reshaped rows)."""
    x = np.asarray(x, dtype=np.float64)
    ax = _other_axes(x.ndim)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    w = np.ones(x.shape[1]) if weight is None else np.asarray(weight, dtype=np.float64)
    b = np.zeros(x.shape[1]) if bias is None else np.asarray(bias, dtype=np.float64)
    mean = x.mean(axis=ax, keepdims=True)
    normalized = {
        "did you normalize with the unbiased variance? Use the biased one (divide by m)":
            (x - mean) / np.sqrt(x.var(axis=ax, ddof=1, keepdims=True) + eps),
        "did you forget eps inside the square root?":
            (x - mean) / np.sqrt(x.var(axis=ax, keepdims=True)),
        "are the statistics over the wrong axes? Per channel means over every axis but 1 "
        f"(here {ax})":
            (x - x.mean(axis=0, keepdims=True)) / np.sqrt(x.var(axis=0, keepdims=True) + eps),
    }
    out = {hint: y * w.reshape(shape) + b.reshape(shape) for hint, y in normalized.items()}
    if x.ndim > 2:
        rows = x.reshape(-1, x.shape[1])
        rows = (rows - rows.mean(axis=0)) / np.sqrt(rows.var(axis=0) + eps) * w + b
        out["did you reshape x to x.reshape(-1, C)? Its rows mix channels and positions for "
            f"{x.ndim}-D input: reduce over the axes {ax} instead (or move the channel axis "
            "last before reshaping)"] = rows.reshape(x.shape)
    return out


def explain(got, expected, mistakes, what, rtol=1e-6, atol=1e-8, x=None):
    """An assertion message: how far ``got`` is from ``expected`` and which mistake, if any,
    reproduces it. Returns None when they agree. With the input ``x``, a result wrong only in
    the channels whose mean is far larger than their spread is put down to computing the
    variance as E[x^2] - E[x]^2, which cancels there."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        return f"{what} has shape {got.shape}, expected {expected.shape}"
    if np.allclose(got, expected, rtol=rtol, atol=atol):
        return None
    i = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
    msg = f"{what} is {got[i]:.6g} at index {tuple(int(k) for k in i)}, expected " \
          f"{expected[i]:.6g}"
    for hint, value in mistakes.items():
        if np.shape(value) == got.shape and np.allclose(got, value, rtol=rtol, atol=atol):
            return f"{msg}: {hint}"
    if x is not None and np.shape(x) == got.shape and got.ndim >= 2:
        x = np.asarray(x, dtype=np.float64)
        ax = _other_axes(x.ndim)
        far = np.abs(x.mean(axis=ax)) > 1e3 * x.std(axis=ax)
        wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol).all(axis=ax)
        if far.any() and wrong.any() and not (wrong & ~far).any():
            return (f"{msg}: only the channels whose mean is much larger than their spread are "
                    "off. Did you compute the variance as E[x^2] - E[x]^2? It cancels there; "
                    "subtract the mean first, then average the squares")
    return msg
