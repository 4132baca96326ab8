"""Assignment ``batchnorm``: batch normalization of (N, D) inputs in NumPy: forward in training
and evaluation mode with running statistics, the backward pass staged and in closed form, and
the numerical gradient that checks them.

Conventions graded: eps = 1e-5; normalize with the biased batch variance; running statistics as
PyTorch, ``running = (1 - momentum) * running + momentum * batch``, updated in place, the
running variance fed the unbiased batch variance.

Each part is graded on its own. The forward pass is checked on its output and on the cache it
fills. The backward passes get a cache filled by the reference forward pass: its fields travel
as numbers in the case and the probe builds the notebook's ``BatchNormCache`` from them
(:func:`cache_probe`). The running statistics are graded with ``batch_norm_forward`` standing in
for the reference forward pass on the case's inputs (its outputs drawn into the case the same
way), so a wrong forward pass costs the forward part only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from solutions import batchnorm as ref
from solutions import gradcheck

from ._common import channel_input, f64, input_words, labeller
from .spec import Assignment, Check, Part, allclose

# the cache's fields, by how they travel: arrays, then the int m, the float eps, and the tuples
# axes and shape (the forward part checks the numbers, not the bookkeeping tuples)
_FIELDS = [f.name for f in dataclasses.fields(ref.BatchNormCache)]
_SCALARS = {"m": "int", "eps": "float"}
_TUPLES = ("axes", "shape")
# the statistics first, so that a message names the first thing that went wrong
_FIRST = ("mean", "var", "std", "invstd")
CHECKED_FIELDS = tuple([f for f in _FIRST if f in _FIELDS]
                       + [f for f in _FIELDS if f not in _TUPLES and f not in _FIRST])


def cache_case(cache, prefix: str) -> dict:
    """A forward pass's cache as case data: one plain number or array per field."""
    out = {}
    for name in _FIELDS:
        value = getattr(cache, name)
        if name in _TUPLES:
            out[prefix + name] = np.array(value, dtype=np.int64)
        elif name in _SCALARS:
            out[prefix + name] = int(value) if _SCALARS[name] == "int" else float(value)
        else:
            out[prefix + name] = f64(value)
    return out


def cache_probe(prefix_expr: str) -> str:
    """Probe source for a ``BatchNormCache`` built in the kernel from the fields that
    :func:`cache_case` put in the case under the prefix ``prefix_expr`` evaluates to."""
    args = []
    for name in _FIELDS:
        key = f"case[{prefix_expr} + {name!r}]"
        if name in _TUPLES:
            args.append(f"{name}=tuple(int(v) for v in np.ravel({key}))")
        elif name in _SCALARS:
            args.append(f"{name}={_SCALARS[name]}({key})")
        else:
            args.append(f"{name}=np.array({key}, dtype=float)")
    return "BatchNormCache(" + ", ".join(args) + ")"


def _affine_words(case) -> str:
    return "weight and bias given" if bool(case.get("affine", True)) else \
        "weight and bias None"


def _fc_input(rng, channels=None):
    """An (N, D) input whose features have spreads from 1e-3 to 10 and large means."""
    n = int(rng.integers(3, 9))
    d = int(rng.integers(2, 7)) if channels is None else channels
    return channel_input(rng, (n, d), mean_spreads=3)


# -- forward ------------------------------------------------------------------------------------

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
    y, cache = ref.batch_norm_forward(case["x"], case["weight"] if affine else None,
                                      case["bias"] if affine else None, float(case["eps"]))
    out = {"y": f64(y)}
    out.update({f"cache_{k}": v for k, v in cache_case(cache, "").items()
                if k in CHECKED_FIELDS})
    return out


def describe_forward(case) -> str:
    eps = float(case["eps"])
    return (f"{input_words(case['x'])}, {_affine_words(case)}"
            + ("" if eps == 1e-5 else f", eps={eps:g}"))


FORWARD_PROBE = f"""
affine = bool(case["affine"])
y, cache = batch_norm_forward(case["x"], case["weight"] if affine else None,
                              case["bias"] if affine else None, float(case["eps"]))
record(y=np.asarray(y, dtype=float))
record(**{{"cache_" + name: np.asarray(getattr(cache, name), dtype=float)
          for name in {CHECKED_FIELDS!r}}})
"""

FORWARD_CHECKS = (Check("output y", 1, outputs=("y",)),
                  Check("the cache's batch statistics", 1, outputs=("cache_*",)))


def forward_label(name: str) -> str:
    return f"cache.{name[6:]}" if name.startswith("cache_") else name


# -- running statistics -------------------------------------------------------------------------

def running_cases(make_input):
    """Several training steps in a row with one momentum, from given running statistics; each
    step's input comes with the reference forward pass's output and cache (``ref<i>_``)."""
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
            for i in range(steps):
                y, cache = ref.batch_norm_forward(case[f"x{i}"], case["weight"], case["bias"],
                                                  1e-5)
                case[f"ref{i}_y"] = f64(y)
                case.update(cache_case(cache, f"ref{i}_"))
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


def describe_running(case) -> str:
    steps = int(case["steps"])
    return (f"{steps} training step{'s' * (steps > 1)} with {input_words(case['x0'], 'inputs')}"
            f", momentum={float(case['momentum']):g}")


RUNNING_PROBE = f"""
global batch_norm_forward
own_forward = batch_norm_forward

def same(a, b):
    return a is not None and np.shape(a) == np.shape(b) and np.array_equal(a, b)

def reference_forward(x, weight=None, bias=None, eps=1e-5):
    # the reference forward pass for this case's inputs (numbers drawn by the grader), so that
    # batch_norm is graded on its own; any other call goes to the notebook's own
    for i in range(int(case["steps"])):
        if same(x, case[f"x{{i}}"]) and same(weight, case["weight"]) and \\
                same(bias, case["bias"]) and float(eps) == 1e-5:
            prefix = f"ref{{i}}_"
            return np.array(case[prefix + "y"]), {cache_probe("prefix")}
    return own_forward(x, weight, bias, eps)

rm = np.array(case["running_mean"], dtype=float)
rv = np.array(case["running_var"], dtype=float)
batch_norm_forward = reference_forward
try:
    for i in range(int(case["steps"])):
        y = batch_norm(case[f"x{{i}}"], rm, rv, case["weight"], case["bias"], training=True,
                       momentum=float(case["momentum"]), eps=1e-5)
        record(**{{f"y{{i}}": np.asarray(y, dtype=float)}})
finally:
    batch_norm_forward = own_forward
record(running_mean=np.asarray(rm, dtype=float), running_var=np.asarray(rv, dtype=float))
"""

RUNNING_CHECKS = (Check("output and running mean", 1, outputs=("y*", "running_mean")),
                  Check("running variance", 1, outputs=("running_var",)))
RUNNING_LABELS = labeller({r"y(\d+)": "y of training step {n}",
                           "running_mean": "running_mean after the last step",
                           "running_var": "running_var after the last step"})


# -- evaluation mode ----------------------------------------------------------------------------

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


def describe_eval(case) -> str:
    return f"{input_words(case['x'])} in evaluation mode, {_affine_words(case)}"


EVAL_PROBE = """
affine = bool(case["affine"])
rm = np.array(case["running_mean"], dtype=float)
rv = np.array(case["running_var"], dtype=float)
y = batch_norm(case["x"], rm, rv, case["weight"] if affine else None,
               case["bias"] if affine else None, training=False, eps=1e-5)
record(y=np.asarray(y, dtype=float), running_mean=rm, running_var=rv)
"""
EVAL_LABELS = labeller({"y": "y in evaluation mode",
                        "running_mean": "running_mean (evaluation mode must not change it)",
                        "running_var": "running_var (evaluation mode must not change it)"})


# -- numerical gradient -------------------------------------------------------------------------

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


def _describe_numgrad(case) -> str:
    return f"{input_words(case['x'], 'x')}, h={float(case['h']):g}"


NUMGRAD_PROBE = """
x = np.array(case["x"], dtype=np.float64)
A = np.array(case["A"], dtype=np.float64)
g = numerical_gradient_array(lambda v: np.tanh(v @ A) + (v ** 2).sum(), x,
                             np.array(case["df"], dtype=np.float64), float(case["h"]))
record(grad=np.asarray(g, dtype=float), x_after=x)
"""


# -- backward -----------------------------------------------------------------------------------

def backward_cases(make_input):
    """Inputs, an upstream gradient and the reference forward pass's cache (``cache_``)."""
    def cases(rng):
        out = []
        for _ in range(3):
            x = make_input(rng)
            C = x.shape[1]
            case = {"x": x, "dy": rng.normal(size=x.shape), "weight": rng.normal(size=C),
                    "bias": rng.normal(size=C)}
            _, cache = ref.batch_norm_forward(x, case["weight"], case["bias"], 1e-5)
            case.update(cache_case(cache, "cache_"))
            out.append(case)
        return out
    return cases


def backward_reference(staged: bool):
    def reference(case):
        _, cache = ref.batch_norm_forward(case["x"], case["weight"], case["bias"], 1e-5)
        fn = ref.batch_norm_backward_staged if staged else ref.batch_norm_backward
        dx, dw, db = fn(case["dy"], cache)
        return {"dx": f64(dx), "dweight": f64(dw), "dbias": f64(db)}
    return reference


def describe_backward(case) -> str:
    return f"{input_words(case['x'])} with a cache from a correct forward pass"


def backward_probe(function: str) -> str:
    return f"""
cache = {cache_probe('"cache_"')}
dx, dweight, dbias = {function}(case["dy"], cache)
record(dx=np.asarray(dx, dtype=float), dweight=np.asarray(dweight, dtype=float),
       dbias=np.asarray(dbias, dtype=float))
"""


BACKWARD_CHECKS = (Check("dx", 1, outputs=("dx",)),
                   Check("dweight and dbias", 1, outputs=("dweight", "dbias")))

VALUES = allclose(rtol=1e-6, atol=1e-9)

ASSIGNMENT = Assignment(
    name="batchnorm", chapter="ch-minibatch",
    summary=("Batch normalization for $(N, D)$ input in training and evaluation mode with "
             "running statistics, a numerical gradient, and the backward pass twice: node by "
             "node, then in closed form."),
    parts=(
    Part(id="forward", points=2, title="Training-mode forward pass",
         make_cases=forward_cases(_fc_input), reference=forward_reference, probe=FORWARD_PROBE,
         compare=VALUES, checks=FORWARD_CHECKS, describe=describe_forward, label=forward_label),
    Part(id="running-stats", points=2, title="Running statistics in training mode",
         make_cases=running_cases(_fc_input), reference=running_reference,
         probe=RUNNING_PROBE, compare=VALUES, checks=RUNNING_CHECKS,
         describe=describe_running, label=RUNNING_LABELS),
    Part(id="eval-mode", points=1, title="Evaluation mode", make_cases=eval_cases(_fc_input),
         reference=eval_reference, probe=EVAL_PROBE, compare=VALUES, describe=describe_eval,
         label=EVAL_LABELS),
    Part(id="numerical-gradient", points=1, title="Numerical gradient by centred differences",
         make_cases=_numgrad_cases, reference=_numgrad_reference, probe=NUMGRAD_PROBE,
         compare=allclose(rtol=1e-6, atol=1e-8), describe=_describe_numgrad,
         label=labeller({"x_after": "x after the call (restore every entry you perturb)",
                         "grad": "the gradient"})),
    Part(id="backward-staged", points=2, title="Backward pass, node by node",
         make_cases=backward_cases(_fc_input), reference=backward_reference(True),
         probe=backward_probe("batch_norm_backward_staged"), compare=VALUES,
         checks=BACKWARD_CHECKS, describe=describe_backward),
    Part(id="backward-closed", points=2, title="Backward pass in closed form",
         make_cases=backward_cases(_fc_input), reference=backward_reference(False),
         probe=backward_probe("batch_norm_backward"), compare=VALUES,
         checks=BACKWARD_CHECKS, describe=describe_backward),
))
