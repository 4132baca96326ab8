"""Assignment ``batchnorm``: batch normalization of (N, D) inputs in NumPy: forward in training
and evaluation mode with running statistics, the backward pass staged and in closed form, and
the numerical gradient that checks them.

Conventions graded: eps = 1e-5; normalize with the biased batch variance; running statistics as
PyTorch, ``running = (1 - momentum) * running + momentum * batch``, updated in place, the
running variance fed the unbiased batch variance.
"""

from __future__ import annotations

import numpy as np

from solutions import batchnorm as ref
from solutions import gradcheck

from ._common import channel_input, f64
from .spec import Assignment, Part, allclose_check


def _fc_input(rng, channels=None):
    """An (N, D) input whose features have spreads from 1e-3 to 10 and large means."""
    n = int(rng.integers(3, 9))
    d = int(rng.integers(2, 7)) if channels is None else channels
    return channel_input(rng, (n, d), mean_spreads=3)


def forward_cases(make_input):
    """Cases for the forward part: inputs from ``make_input(rng, channels=None)``, with and
    without gamma/beta, eps 1e-5 and one other value."""
    def cases(rng):
        out = []
        for affine, eps in [(True, 1e-5), (False, 1e-5), (True, 1e-3)]:
            x = make_input(rng)
            C = x.shape[1]
            out.append({"x": x, "weight": rng.normal(size=C), "bias": rng.normal(size=C),
                        "affine": affine, "eps": eps})
        return out
    return cases


def forward_reference(case):
    affine = bool(case["affine"])
    y, _ = ref.batch_norm_forward(case["x"], case["weight"] if affine else None,
                                  case["bias"] if affine else None, float(case["eps"]))
    return {"y": f64(y)}


FORWARD_PROBE = """
affine = bool(case["affine"])
y, cache = batch_norm_forward(case["x"], case["weight"] if affine else None,
                              case["bias"] if affine else None, float(case["eps"]))
record(y=np.asarray(y, dtype=float))
"""


def running_cases(make_input):
    """Several training steps in a row with one momentum, from given running statistics."""
    def cases(rng):
        out = []
        for momentum, steps in [(0.1, 3), (0.3, 2), (0.05, 1)]:
            x0 = make_input(rng)
            C = x0.shape[1]
            case = {"steps": steps, "momentum": momentum, "weight": rng.normal(size=C),
                    "bias": rng.normal(size=C), "running_mean": rng.normal(size=C),
                    "running_var": rng.uniform(0.5, 2.0, size=C), "x0": x0}
            for i in range(1, steps):
                case[f"x{i}"] = make_input(rng, channels=C)
            out.append(case)
        return out
    return cases


def running_reference(case):
    rm, rv = f64(case["running_mean"]).copy(), f64(case["running_var"]).copy()
    out = {}
    for i in range(int(case["steps"])):
        out[f"y{i}"] = f64(ref.batch_norm(case[f"x{i}"], rm, rv, case["weight"], case["bias"],
                                          training=True, momentum=float(case["momentum"]),
                                          eps=1e-5))
    out["running_mean"], out["running_var"] = rm, rv
    return out


RUNNING_PROBE = """
rm = np.array(case["running_mean"], dtype=float)
rv = np.array(case["running_var"], dtype=float)
for i in range(int(case["steps"])):
    y = batch_norm(case[f"x{i}"], rm, rv, case["weight"], case["bias"], training=True,
                   momentum=float(case["momentum"]), eps=1e-5)
    record(**{f"y{i}": np.asarray(y, dtype=float)})
record(running_mean=np.asarray(rm, dtype=float), running_var=np.asarray(rv, dtype=float))
"""


def eval_cases(make_input):
    def cases(rng):
        out = []
        for affine in (True, False, True):
            x = make_input(rng)
            C = x.shape[1]
            rv = rng.uniform(0.5, 2.0, size=C)
            rv[0] = 1e-4  # eps matters here
            out.append({"x": x, "running_mean": rng.normal(size=C), "running_var": rv,
                        "weight": rng.normal(size=C), "bias": rng.normal(size=C),
                        "affine": affine})
        return out
    return cases


def eval_reference(case):
    affine = bool(case["affine"])
    rm, rv = f64(case["running_mean"]).copy(), f64(case["running_var"]).copy()
    y = ref.batch_norm(case["x"], rm, rv, case["weight"] if affine else None,
                       case["bias"] if affine else None, training=False, eps=1e-5)
    return {"y": f64(y), "running_mean": rm, "running_var": rv}


EVAL_PROBE = """
affine = bool(case["affine"])
rm = np.array(case["running_mean"], dtype=float)
rv = np.array(case["running_var"], dtype=float)
y = batch_norm(case["x"], rm, rv, case["weight"] if affine else None,
               case["bias"] if affine else None, training=False, eps=1e-5)
record(y=np.asarray(y, dtype=float), running_mean=rm, running_var=rv)
"""


def _numgrad_cases(rng):
    out = []
    for shape in [(3, 4), (5, 2), (2, 3, 2)]:
        k = int(rng.integers(2, 5))
        out.append({"x": rng.normal(size=shape), "A": rng.normal(size=(shape[-1], k)),
                    "df": rng.normal(size=shape[:-1] + (k,)), "h": float(
                        rng.choice([1e-5, 1e-4]))})
    return out


def _numgrad_f(A):
    return lambda v: np.tanh(v @ A) + (v ** 2).sum()


def _numgrad_reference(case):
    x = f64(case["x"]).copy()
    g = gradcheck.numerical_gradient_array(_numgrad_f(case["A"]), x, f64(case["df"]),
                                           float(case["h"]))
    return {"grad": f64(g), "x_after": f64(case["x"])}


NUMGRAD_PROBE = """
x = np.array(case["x"], dtype=np.float64)
A = np.array(case["A"], dtype=np.float64)
g = numerical_gradient_array(lambda v: np.tanh(v @ A) + (v ** 2).sum(), x,
                             np.array(case["df"], dtype=np.float64), float(case["h"]))
record(grad=np.asarray(g, dtype=float), x_after=x)
"""


def backward_cases(make_input):
    def cases(rng):
        out = []
        for _ in range(3):
            x = make_input(rng)
            C = x.shape[1]
            out.append({"x": x, "dy": rng.normal(size=x.shape), "weight": rng.normal(size=C),
                        "bias": rng.normal(size=C)})
        return out
    return cases


def backward_reference(staged: bool):
    def reference(case):
        _, cache = ref.batch_norm_forward(case["x"], case["weight"], case["bias"], 1e-5)
        fn = ref.batch_norm_backward_staged if staged else ref.batch_norm_backward
        dx, dw, db = fn(case["dy"], cache)
        return {"dx": f64(dx), "dweight": f64(dw), "dbias": f64(db)}
    return reference


def backward_probe(function: str) -> str:
    return f"""
y, cache = batch_norm_forward(case["x"], case["weight"], case["bias"], 1e-5)
dx, dweight, dbias = {function}(case["dy"], cache)
record(dx=np.asarray(dx, dtype=float), dweight=np.asarray(dweight, dtype=float),
       dbias=np.asarray(dbias, dtype=float))
"""


VALUES = allclose_check(rtol=1e-6, atol=1e-9)

ASSIGNMENT = Assignment(
    name="batchnorm", chapter="ch-minibatch",
    summary=("Batch normalization for $(N, D)$ input in training and evaluation mode with "
             "running statistics, a numerical gradient, and the backward pass twice: node by "
             "node, then in closed form."),
    parts=(
    Part(id="forward", points=2, title="Training-mode forward pass",
         make_cases=forward_cases(_fc_input), reference=forward_reference, probe=FORWARD_PROBE,
         check=VALUES),
    Part(id="running-stats", points=2, title="Running statistics in training mode",
         make_cases=running_cases(_fc_input), reference=running_reference,
         probe=RUNNING_PROBE, check=VALUES),
    Part(id="eval-mode", points=1, title="Evaluation mode", make_cases=eval_cases(_fc_input),
         reference=eval_reference, probe=EVAL_PROBE, check=VALUES),
    Part(id="numerical-gradient", points=1, title="Numerical gradient by centred differences",
         make_cases=_numgrad_cases, reference=_numgrad_reference, probe=NUMGRAD_PROBE,
         check=allclose_check(rtol=1e-6, atol=1e-8)),
    Part(id="backward-staged", points=2, title="Backward pass, node by node",
         make_cases=backward_cases(_fc_input), reference=backward_reference(True),
         probe=backward_probe("batch_norm_backward_staged"), check=VALUES),
    Part(id="backward-closed", points=2, title="Backward pass in closed form",
         make_cases=backward_cases(_fc_input), reference=backward_reference(False),
         probe=backward_probe("batch_norm_backward"), check=VALUES),
))
