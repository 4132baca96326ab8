"""Assignment ``torch-batchnorm``: batch normalization in PyTorch with a hand-written backward
pass: a ``torch.autograd.Function`` (closed-form backward), the functional ``batch_norm`` with
``torch.nn.functional.batch_norm``'s signature, and ``nn.Module``s with buffers
(``BatchNorm1d``/``BatchNorm2d`` built on a shared ``_BatchNorm``).

Probes run on the CPU in float64 (the grader's inputs are NumPy arrays); the visible tests in the
notebook run on CUDA where there is a GPU. The references come from
``solutions.torch_bn.reference``, imported lazily so that loading the specs does not import torch.
"""

from __future__ import annotations

import numpy as np

from ._common import channel_input, f64
from .spec import Assignment, Part, allclose_check


def _ref():
    from solutions.torch_bn import reference
    return reference


def _t(a):
    import torch
    return torch.tensor(np.asarray(a, dtype=np.float64))


def _np(t):
    return None if t is None else f64(t.detach().cpu().numpy())


def _input(rng, channels=None, ndim=None):
    ndim = int(rng.choice([2, 3, 4, 4])) if ndim is None else ndim
    C = int(rng.integers(2, 5)) if channels is None else channels
    spatial = tuple(int(s) for s in rng.integers(2, 4, size=ndim - 2))
    return channel_input(rng, (int(rng.integers(2, 5)), C) + spatial, mean_spreads=2)


def _forward_cases(rng):
    out = []
    for eps in (1e-5, 1e-5, 1e-3):
        x = _input(rng)
        C = x.shape[1]
        out.append({"x": x, "weight": rng.normal(size=C), "bias": rng.normal(size=C),
                    "dy": rng.normal(size=x.shape), "eps": eps})
    return out


def _forward_reference(case):
    y = _ref().BatchNormFunction.apply(_t(case["x"]), _t(case["weight"]), _t(case["bias"]),
                                       None, None, 0.1, float(case["eps"]))
    return {"y": _np(y)}


FORWARD_PROBE = """
x = torch.tensor(case["x"], dtype=torch.float64)
y = BatchNormFunction.apply(x, torch.tensor(case["weight"], dtype=torch.float64),
                            torch.tensor(case["bias"], dtype=torch.float64), None, None, 0.1,
                            float(case["eps"]))
record(y=y.detach().cpu().numpy())
"""


def _backward_reference(case):
    x, w, b = (_t(case[k]).requires_grad_(True) for k in ("x", "weight", "bias"))
    y = _ref().BatchNormFunction.apply(x, w, b, None, None, 0.1, float(case["eps"]))
    y.backward(_t(case["dy"]))
    return {"dx": _np(x.grad), "dweight": _np(w.grad), "dbias": _np(b.grad)}


BACKWARD_PROBE = """
x, w, b = (torch.tensor(case[k], dtype=torch.float64, requires_grad=True)
           for k in ("x", "weight", "bias"))
y = BatchNormFunction.apply(x, w, b, None, None, 0.1, float(case["eps"]))
y.backward(torch.tensor(case["dy"], dtype=torch.float64))
record(dx=x.grad.detach().cpu().numpy(), dweight=w.grad.detach().cpu().numpy(),
       dbias=b.grad.detach().cpu().numpy())
"""


def _running_cases(rng):
    out = []
    for momentum, steps in [(0.1, 3), (0.4, 2), (0.02, 1)]:
        x0 = _input(rng)
        C = x0.shape[1]
        case = {"steps": steps, "momentum": momentum, "x0": x0,
                "running_mean": rng.normal(size=C), "running_var": rng.uniform(0.5, 2, size=C)}
        for i in range(1, steps):
            case[f"x{i}"] = _input(rng, channels=C, ndim=x0.ndim)
        out.append(case)
    return out


def _running_reference(case):
    rm, rv = _t(case["running_mean"]), _t(case["running_var"])
    for i in range(int(case["steps"])):
        _ref().batch_norm(_t(case[f"x{i}"]), rm, rv, None, None, True, float(case["momentum"]),
                          1e-5)
    return {"running_mean": _np(rm), "running_var": _np(rv)}


RUNNING_PROBE = """
rm = torch.tensor(case["running_mean"], dtype=torch.float64)
rv = torch.tensor(case["running_var"], dtype=torch.float64)
for i in range(int(case["steps"])):
    batch_norm(torch.tensor(case[f"x{i}"], dtype=torch.float64), rm, rv, None, None, True,
               float(case["momentum"]), 1e-5)
record(running_mean=rm.cpu().numpy(), running_var=rv.cpu().numpy())
"""


def _eval_cases(rng):
    out = []
    for _ in range(3):
        x = _input(rng)
        C = x.shape[1]
        rv = rng.uniform(0.5, 2, size=C)
        rv[0] = 1e-4
        out.append({"x": x, "running_mean": rng.normal(size=C), "running_var": rv,
                    "weight": rng.normal(size=C), "bias": rng.normal(size=C)})
    return out


def _eval_reference(case):
    y = _ref().batch_norm(_t(case["x"]), _t(case["running_mean"]), _t(case["running_var"]),
                          _t(case["weight"]), _t(case["bias"]), False, 0.1, 1e-5)
    return {"y": _np(y)}


EVAL_PROBE = """
t = {k: torch.tensor(case[k], dtype=torch.float64)
     for k in ("x", "running_mean", "running_var", "weight", "bias")}
y = batch_norm(t["x"], t["running_mean"], t["running_var"], t["weight"], t["bias"], False, 0.1,
               1e-5)
record(y=y.detach().cpu().numpy())
"""


def _module_cases(rng):
    out = []
    for momentum, steps in [(0.1, 2), (0.3, 3), (-1.0, 2)]:  # -1: momentum=None (cumulative)
        C = int(rng.integers(2, 5))
        case = {"channels": C, "momentum": momentum, "steps": steps,
                "weight": rng.normal(size=C), "bias": rng.normal(size=C),
                "x_eval": _input(rng, channels=C, ndim=4)}
        for i in range(steps):
            case[f"x{i}"] = _input(rng, channels=C, ndim=4)
        out.append(case)
    return out


def _run_module(cls, case):
    import torch
    momentum = None if float(case["momentum"]) < 0 else float(case["momentum"])
    bn = cls(int(case["channels"]), momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(_t(case["weight"]))
        bn.bias.copy_(_t(case["bias"]))
    out = {}
    bn.train()
    for i in range(int(case["steps"])):
        out[f"y{i}"] = _np(bn(_t(case[f"x{i}"])))
    bn.eval()
    out["y_eval"] = _np(bn(_t(case["x_eval"])))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        out[name] = _np(getattr(bn, name))
    return out


def _module_reference(case):
    return _run_module(_ref().BatchNorm2d, case)


MODULE_PROBE = """
momentum = None if float(case["momentum"]) < 0 else float(case["momentum"])
bn = BatchNorm2d(int(case["channels"]), momentum=momentum).double()
with torch.no_grad():
    bn.weight.copy_(torch.tensor(case["weight"], dtype=torch.float64))
    bn.bias.copy_(torch.tensor(case["bias"], dtype=torch.float64))
bn.train()
for i in range(int(case["steps"])):
    y = bn(torch.tensor(case[f"x{i}"], dtype=torch.float64))
    record(**{f"y{i}": y.detach().cpu().numpy()})
bn.eval()
record(y_eval=bn(torch.tensor(case["x_eval"], dtype=torch.float64)).detach().cpu().numpy())
for name in ("running_mean", "running_var", "num_batches_tracked"):
    record(**{name: getattr(bn, name).detach().cpu().numpy()})
"""

VALUES = allclose_check(rtol=1e-6, atol=1e-9)

ASSIGNMENT = Assignment(
    name="torch-batchnorm", chapter="ch-gpu-batchnorm",
    summary=("A `torch.autograd.Function` with a hand-written backward pass and a `BatchNorm2d` "
             "module with buffers, checked against `torch.nn.BatchNorm2d` and "
             "`torch.autograd.gradcheck`. It runs on a GPU where there is one and on the CPU "
             "otherwise."),
    parts=(
    Part(id="function-forward", points=2, title="autograd.Function: forward",
         make_cases=_forward_cases, reference=_forward_reference, probe=FORWARD_PROBE,
         check=VALUES),
    Part(id="function-backward", points=2, title="autograd.Function: hand-written backward",
         make_cases=_forward_cases, reference=_backward_reference, probe=BACKWARD_PROBE,
         check=VALUES),
    Part(id="running-stats", points=2, title="Functional batch_norm: running statistics",
         make_cases=_running_cases, reference=_running_reference, probe=RUNNING_PROBE,
         check=VALUES),
    Part(id="eval-mode", points=1, title="Functional batch_norm: evaluation mode",
         make_cases=_eval_cases, reference=_eval_reference, probe=EVAL_PROBE, check=VALUES),
    Part(id="module", points=2, title="BatchNorm2d module with buffers",
         make_cases=_module_cases, reference=_module_reference, probe=MODULE_PROBE,
         check=VALUES),
))
