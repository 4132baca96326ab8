"""Assignment ``torch-batchnorm``: batch normalization in PyTorch with a hand-written backward
pass: a ``torch.autograd.Function`` (closed-form backward), the functional ``batch_norm`` with
``torch.nn.functional.batch_norm``'s signature, and ``nn.Module``s with buffers
(``BatchNorm1d``/``BatchNorm2d`` built on a shared ``_BatchNorm``).

Probes run on the CPU in float64 (the grader's inputs are NumPy arrays); the visible tests in the
notebook run on CUDA where there is a GPU. The references come from
``solutions.torch_bn.reference``, imported lazily so that loading the specs does not import torch.

Each part is graded on its own:

* the forward pass is checked on its output and on what it saves for the backward pass;
* the backward pass is called with a ``ctx`` holding what a correct forward pass saves (the
  reference's mean and inverse deviation travel as numbers in the case);
* the running statistics are updated inside the forward pass, so they are judged against the
  batch statistics the student's own forward pass normalized with (read off its output): a
  wrong batch variance costs the forward part, a wrong update rule this one;
* the module runs on ``torch.nn.functional.batch_norm`` (its ``_batch_norm``), so it is graded
  on what the module itself does: buffers, momentum, counting batches, switching modes.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import channel_input, f64, input_words, labeller
from .spec import Assignment, Check, Part, allclose


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


class _Saved:
    """A stand-in for autograd's ``ctx``: keeps what ``forward`` saves and says that every
    tensor input needs a gradient."""

    needs_input_grad = (True, True, True, False, False, False, False)

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


def _reference_ctx(case) -> _Saved:
    ctx = _Saved()
    _ref().BatchNormFunction.forward(ctx, _t(case["x"]), _t(case["weight"]), _t(case["bias"]),
                                     None, None, 0.1, float(case["eps"]))
    return ctx


# -- autograd.Function --------------------------------------------------------------------------

def _forward_cases(rng):
    """(N, C), (N, C, L) and (N, C, H, W) inputs, one with eps 1e-3; each with the reference
    forward pass's saved mean and inverse deviation (``saved_mean``, ``saved_invstd``)."""
    out = []
    for ndim, eps in zip(rng.permutation([2, 3, 4]), (1e-5, 1e-5, 1e-3), strict=True):
        x = _input(rng, ndim=int(ndim))
        C = x.shape[1]
        case = {"x": x, "weight": rng.normal(size=C), "bias": rng.normal(size=C),
                "dy": rng.normal(size=x.shape), "eps": eps}
        saved = _reference_ctx(case).saved_tensors
        case["saved_mean"], case["saved_invstd"] = _np(saved[2]), _np(saved[3])
        out.append(case)
    return out


def _forward_reference(case):
    ctx = _reference_ctx(case)
    y = _ref().BatchNormFunction.apply(_t(case["x"]), _t(case["weight"]), _t(case["bias"]),
                                       None, None, 0.1, float(case["eps"]))
    return {"y": _np(y), "saved_mean": _np(ctx.saved_tensors[2]),
            "saved_invstd": _np(ctx.saved_tensors[3])}


def _describe_function(case) -> str:
    eps = float(case["eps"])
    return input_words(case["x"]) + ("" if eps == 1e-5 else f", eps={eps:g}")


FORWARD_PROBE = """
x = torch.tensor(case["x"], dtype=torch.float64, requires_grad=True)
y = BatchNormFunction.apply(x, torch.tensor(case["weight"], dtype=torch.float64),
                            torch.tensor(case["bias"], dtype=torch.float64), None, None, 0.1,
                            float(case["eps"]))
record(y=y.detach().cpu().numpy())
saved = y.grad_fn.saved_tensors
record(saved_mean=saved[2].detach().cpu().numpy(), saved_invstd=saved[3].detach().cpu().numpy())
"""


def _backward_reference(case):
    grads = _ref().BatchNormFunction.backward(_reference_ctx(case), _t(case["dy"]))
    return {"dx": _np(grads[0]), "dweight": _np(grads[1]), "dbias": _np(grads[2])}


BACKWARD_PROBE = """
import types
t = {k: torch.tensor(case[k], dtype=torch.float64)
     for k in ("x", "weight", "dy", "saved_mean", "saved_invstd")}
# what a correct forward pass saves: this part grades the backward pass on its own
ctx = types.SimpleNamespace(
    saved_tensors=(t["x"], t["weight"], t["saved_mean"], t["saved_invstd"]),
    bias_dtype=torch.float64, needs_input_grad=(True, True, True, False, False, False, False))
grads = BatchNormFunction.backward(ctx, t["dy"])
record(dx=grads[0].detach().cpu().numpy())
record(dweight=grads[1].detach().cpu().numpy(), dbias=grads[2].detach().cpu().numpy())
"""

# -- functional: running statistics -------------------------------------------------------------

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


def _describe_running(case) -> str:
    steps = int(case["steps"])
    return (f"{steps} training step{'s' * (steps > 1)} with {input_words(case['x0'], 'inputs')}"
            f", momentum={float(case['momentum']):g}")


RUNNING_PROBE = """
rm = torch.tensor(case["running_mean"], dtype=torch.float64)
rv = torch.tensor(case["running_var"], dtype=torch.float64)
for i in range(int(case["steps"])):
    y = batch_norm(torch.tensor(case[f"x{i}"], dtype=torch.float64), rm, rv, None, None, True,
                   float(case["momentum"]), 1e-5)
    record(**{f"y{i}": y.detach().cpu().numpy()})
record(running_mean=rm.cpu().numpy(), running_var=rv.cpu().numpy())
"""

VALUES = allclose(rtol=1e-6, atol=1e-9)


def own_statistics_running(case, got) -> dict | None:
    """The running statistics a correct update gives from the batch statistics the student's
    forward pass normalized with, read off its outputs ``y<i>`` (no weight, no bias):
    ``y = (x - mean) * invstd`` per channel, so ``invstd = std(y) / std(x)`` and
    ``mean = mean(x) - mean(y) / invstd``. None where the outputs do not tell."""
    rm = np.array(case["running_mean"], dtype=np.float64)
    rv = np.array(case["running_var"], dtype=np.float64)
    momentum = float(case["momentum"])
    with np.errstate(all="ignore"):
        for i in range(int(case["steps"])):
            x, y = np.asarray(case[f"x{i}"], dtype=np.float64), got.get(f"y{i}")
            if y is None or np.shape(y) != x.shape:
                return None
            dims = (0,) + tuple(range(2, x.ndim))
            invstd = y.std(axis=dims) / x.std(axis=dims)
            mean = x.mean(axis=dims) - y.mean(axis=dims) / invstd
            var = 1.0 / invstd ** 2 - 1e-5
            m = math.prod(x.shape) // x.shape[1]
            rm = (1 - momentum) * rm + momentum * mean
            rv = (1 - momentum) * rv + momentum * var * m / (m - 1)
    if not (np.isfinite(rm).all() and np.isfinite(rv).all()):
        return None
    return {"running_mean": rm, "running_var": rv}


def _running_compare(case, expected, got, label):
    """Right when the running statistics are the reference's, or what the update rule gives
    from the batch statistics the student's own forward pass used (a mistake there is the
    forward part's)."""
    problem = VALUES(case, expected, got, label)
    if problem is None:
        return None
    own = own_statistics_running(case, got)
    if own is not None and VALUES(case, {k: own[k] for k in expected}, got, label) is None:
        return None
    return problem


# -- functional: evaluation mode ----------------------------------------------------------------

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

# -- modules ------------------------------------------------------------------------------------

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


def _describe_module(case) -> str:
    momentum = float(case["momentum"])
    steps = int(case["steps"])
    return (f"BatchNorm2d({int(case['channels'])}, momentum="
            f"{'None' if momentum < 0 else format(momentum, 'g')}), {steps} training steps "
            f"with {input_words(case['x0'], 'inputs')}, then evaluation mode")


MODULE_PROBE = """
momentum = None if float(case["momentum"]) < 0 else float(case["momentum"])
bn = BatchNorm2d(int(case["channels"]), momentum=momentum).double()
# the module runs on torch's own functional: this part grades the module on its own
bn._batch_norm = torch.nn.functional.batch_norm
with torch.no_grad():
    bn.weight.copy_(torch.tensor(case["weight"], dtype=torch.float64))
    bn.bias.copy_(torch.tensor(case["bias"], dtype=torch.float64))
bn.train()
for i in range(int(case["steps"])):
    y = bn(torch.tensor(case[f"x{i}"], dtype=torch.float64))
    record(**{f"y{i}": y.detach().cpu().numpy()})
for name in ("running_mean", "running_var", "num_batches_tracked"):
    record(**{name: getattr(bn, name).detach().cpu().numpy()})
bn.eval()
record(y_eval=bn(torch.tensor(case["x_eval"], dtype=torch.float64)).detach().cpu().numpy())
"""

STEP_LABELS = {r"y(\d+)": "the output of training step {n}",
               "y_eval": "the output in evaluation mode"}

ASSIGNMENT = Assignment(
    name="torch-batchnorm", chapter="ch-gpu-batchnorm",
    summary=("A `torch.autograd.Function` with a hand-written backward pass and a `BatchNorm2d` "
             "module with buffers, checked against `torch.nn.BatchNorm2d` and "
             "`torch.autograd.gradcheck`. It runs on a GPU where there is one and on the CPU "
             "otherwise."),
    parts=(
    Part(id="function-forward", points=2, title="autograd.Function: forward",
         make_cases=_forward_cases, reference=_forward_reference, probe=FORWARD_PROBE,
         compare=VALUES, describe=_describe_function,
         checks=(Check("output y", 1, outputs=("y",)),
                 Check("mean and invstd saved for the backward pass", 1,
                       outputs=("saved_*",))),
         label=labeller({"saved_mean": "the saved mean",
                         "saved_invstd": "the saved invstd (1 / sqrt(var + eps))"})),
    Part(id="function-backward", points=2, title="autograd.Function: hand-written backward",
         make_cases=_forward_cases, reference=_backward_reference, probe=BACKWARD_PROBE,
         compare=VALUES, describe=lambda case: _describe_function(case) + " and a ctx saved by "
         "a correct forward pass",
         checks=(Check("dx", 1, outputs=("dx",)),
                 Check("dweight and dbias", 1, outputs=("dweight", "dbias")))),
    Part(id="running-stats", points=2, title="Functional batch_norm: running statistics",
         make_cases=_running_cases, reference=_running_reference, probe=RUNNING_PROBE,
         compare=VALUES, describe=_describe_running,
         checks=(Check("running mean", 1, outputs=("running_mean",), compare=_running_compare),
                 Check("running variance", 1, outputs=("running_var",),
                       compare=_running_compare)),
         label=labeller({"running_mean": "running_mean after the last step",
                         "running_var": "running_var after the last step"})),
    Part(id="eval-mode", points=1, title="Functional batch_norm: evaluation mode",
         make_cases=_eval_cases, reference=_eval_reference, probe=EVAL_PROBE, compare=VALUES,
         describe=lambda case: input_words(case["x"]) + " in evaluation mode",
         label=labeller({"y": "y in evaluation mode"})),
    Part(id="module", points=2, title="BatchNorm2d module with buffers",
         make_cases=_module_cases, reference=_module_reference, probe=MODULE_PROBE,
         compare=VALUES, describe=_describe_module,
         checks=(Check("training: outputs, buffers, batches counted", 1,
                       outputs=("y[0-9]*", "running_*", "num_batches_tracked")),
                 Check("evaluation mode", 1, outputs=("y_eval",))),
         label=labeller(STEP_LABELS)),
))
