"""Assignment ``per-layer-normalization``: the lecture's normalization of every layer's input
over the WHOLE training set (the full-batch precursor of batch normalization; not Layer
Normalization, which normalizes across the features of one example).

Graded: the statistics C (mean) and S (population standard deviation, 1/n) of a layer's input;
the lecture's two-point formulas; the normalized network F_NNN (forward pass of
``NormalizedMLP``, with and without the learnable a, b); its gradient through the statistics
versus with the statistics frozen.

Each part is graded on its own: ``normalize`` is checked with the reference's C and S (numbers
in the case); the network parts run with the reference's ``layer_statistics`` and ``normalize``
standing in for the notebook's (their source, from ``solutions/``, is part of the hidden block,
which students never see), and the gradient part with the reference's forward pass ``_run``
bound to the network, so a mistake in C and S costs the first part only and a mistake in the
forward pass the F_NNN part only.
"""

from __future__ import annotations

import inspect
import textwrap

import numpy as np

from solutions import per_layer_normalization as ref

from ._common import f64, labeller
from .spec import Assignment, Check, Part, allclose


def _stats_cases(rng):
    """Inputs of a layer, and inputs to normalize with the reference's C and S of them."""
    out = []
    for n, k in [(5, 3), (2, 1), (9, 4)]:
        z = rng.normal(size=(n, k)) * rng.uniform(0.1, 5, size=k) + rng.normal(size=k) * 3
        C, S = ref.layer_statistics(z)
        out.append({"z": z, "z2": rng.normal(size=(4, k)), "ref_C": f64(C), "ref_S": f64(S)})
    return out


def _stats_reference(case):
    C, S = ref.layer_statistics(case["z"])
    return {"C": f64(C), "S": f64(S),
            "normalized": f64(ref.normalize(case["z2"], case["ref_C"], case["ref_S"]))}


STATS_PROBE = """
C, S = layer_statistics(case["z"])
record(C=np.asarray(C, dtype=float), S=np.asarray(S, dtype=float))
record(normalized=np.asarray(normalize(case["z2"], case["ref_C"], case["ref_S"]), dtype=float))
"""


def _two_point_cases(rng):
    pairs = rng.normal(size=(4, 2)) * 3
    pairs[0] = sorted(pairs[0], reverse=True)  # one case with A > B, one with A < B
    pairs[1] = sorted(pairs[1])
    return [{"A": float(a), "B": float(b)} for a, b in pairs]


def _two_point_reference(case):
    C, S = ref.two_point_statistics(float(case["A"]), float(case["B"]))
    return {"C": f64(C), "S": f64(S)}


TWO_POINT_PROBE = """
C, S = two_point_statistics(float(case["A"]), float(case["B"]))
record(C=float(C), S=float(S))
"""

def _source(obj) -> str:
    return textwrap.dedent(inspect.getsource(obj)).strip("\n")


# The reference's statistics and normalization stand in for the notebook's while a network part
# runs (``global`` makes the defs replace the notebook's functions; ``finally`` restores them).
_REFERENCE_STATISTICS = f"""
global layer_statistics, normalize
own_statistics = (layer_statistics, normalize)
{_source(ref.layer_statistics)}
{_source(ref.normalize)}
"""
_RESTORE = """
finally:
    layer_statistics, normalize = own_statistics
"""


def _isolated(body: str) -> str:
    """``body`` run with the reference's statistics standing in for the notebook's."""
    indented = textwrap.indent(body.strip("\n"), "    ")
    return _REFERENCE_STATISTICS + "try:\n" + indented + _RESTORE


# Networks the F_NNN and gradient parts use: 0 = the lecture's two-unit network, 1 = the
# lecture's chain of three neurons, 2 = a general NormalizedMLP.
_NET_PROBE = """
kind = int(case["kind"])
affine = AFFINE_MODES[int(case["affine"])]
if kind == 0:
    net = lecture_two_unit_network(np.tanh, affine=affine)
elif kind == 1:
    net = lecture_chain_network(np.tanh, affine=affine)
else:
    net = NormalizedMLP([int(s) for s in case["sizes"]],
                        normalized=[bool(v) for v in case["normalized"]],
                        activation=np.tanh, output_activation=None, affine=affine)
"""


def _net(case):
    kind, affine = int(case["kind"]), ref.AFFINE_MODES[int(case["affine"])]
    if kind == 0:
        return ref.lecture_two_unit_network(np.tanh, affine=affine)
    if kind == 1:
        return ref.lecture_chain_network(np.tanh, affine=affine)
    return ref.NormalizedMLP([int(s) for s in case["sizes"]],
                             normalized=[bool(v) for v in case["normalized"]],
                             activation=np.tanh, output_activation=None, affine=affine)


def _net_cases(rng, n_cases_per_kind=(2, 2, 4)):
    out = []
    for kind, count in enumerate(n_cases_per_kind):
        for j in range(count):
            # every affine mode appears: kind 0 gets (None, network), kind 1 (network, layer),
            # kind 2 (layer, neuron, None, network) with the default counts
            case = {"kind": kind, "affine": (j + kind) % len(ref.AFFINE_MODES)}
            if kind == 2:
                sizes = [int(rng.integers(1, 3))] + [int(rng.integers(1, 4))
                                                      for _ in range(int(rng.integers(1, 3)))]
                sizes.append(int(rng.integers(1, 3)))
                case["sizes"] = np.array(sizes)
                case["normalized"] = rng.random(len(sizes) - 1) < 0.7
            net = _net(case)
            n_in, n_train = net.sizes[0], int(rng.integers(3, 7))
            case["w"] = rng.normal(size=net.n_params())
            case["x_train"] = rng.normal(size=(n_train, n_in))
            case["x"] = rng.normal(size=(int(rng.integers(2, 5)), n_in))
            case["Y"] = rng.normal(size=(n_train,) if net.sizes[-1] == 1 else
                                   (n_train, net.sizes[-1]))
            out.append(case)
    return out


def _fnnn_reference(case):
    net = _net(case)
    out = {"out": f64(net.forward(case["x"], case["w"], x_train=case["x_train"]))}
    for i, st in enumerate(net.statistics(case["w"], case["x_train"])):
        if st is not None:
            out[f"C{i}"], out[f"S{i}"] = f64(st[0]), f64(st[1])
    return out


FNNN_PROBE = _isolated(_NET_PROBE + """
record(out=np.asarray(net.forward(case["x"], case["w"], x_train=case["x_train"]), dtype=float))
for i, st in enumerate(net.statistics(case["w"], case["x_train"])):
    if st is not None:
        record(**{f"C{i}": np.asarray(st[0], dtype=float), f"S{i}": np.asarray(st[1], dtype=float)})
""")


def _gradient_reference(case):
    net = _net(case)
    return {f"grad_{mode}": f64(net.gradient(case["w"], case["x_train"], case["Y"],
                                             through_statistics=mode == "through"))
            for mode in ("through", "frozen")}


GRADIENT_PROBE = _isolated(_NET_PROBE + f"""
import types
# the reference's forward pass: this part grades the gradient on its own
{textwrap.indent(_source(ref.NormalizedMLP._run), "")}
net._run = types.MethodType(_run, net)
for mode in ("through", "frozen"):
    g = net.gradient(case["w"], case["x_train"], case["Y"], through_statistics=mode == "through")
    record(**{{f"grad_{{mode}}": np.asarray(g, dtype=float)}})
""")


def _describe_net(case) -> str:
    kind, affine = int(case["kind"]), ref.AFFINE_MODES[int(case["affine"])]
    name = ("the lecture's two-unit network", "the lecture's chain network",
            "a NormalizedMLP with sizes " + str([int(v) for v in np.ravel(case.get("sizes", []))])
            )[kind]
    return (f"{name}, affine={affine!r}, {len(case['x_train'])} training inputs")

ASSIGNMENT = Assignment(
    name="per-layer-normalization", chapter="ch-per-layer",
    summary=("The lecture's normalization of every layer's input over the whole training set "
             "(the precursor of batch normalization, not Layer Normalization): $C$ and $S$, the "
             "normalized network $F_{NNN}$, and its gradient with and without differentiating "
             "through the statistics."),
    parts=(
    Part(id="layer-statistics", points=2, title="C and S of a layer's input; normalizing",
         make_cases=_stats_cases, reference=_stats_reference, probe=STATS_PROBE,
         compare=allclose(rtol=1e-9, atol=1e-12),
         describe=lambda case: f"a layer input z of shape {case['z'].shape}",
         checks=(Check("C and S", 1, outputs=("C", "S")),
                 Check("normalize", 1, outputs=("normalized",))),
         label=labeller({"normalized": "normalize(z, C, S)"})),
    Part(id="two-point", points=1, title="The lecture's two-point statistics",
         make_cases=_two_point_cases, reference=_two_point_reference, probe=TWO_POINT_PROBE,
         compare=allclose(rtol=1e-9, atol=1e-12),
         describe=lambda case: "A > B" if float(case["A"]) > float(case["B"]) else "A <= B"),
    Part(id="fnnn", points=3, title="The normalized network F_NNN",
         make_cases=_net_cases, reference=_fnnn_reference, probe=FNNN_PROBE,
         compare=allclose(rtol=1e-8, atol=1e-10), describe=_describe_net,
         checks=(Check("statistics C and S of the normalized layers", 1,
                       outputs=("C*", "S*")),
                 Check("network output", 2, outputs=("out",))),
         label=labeller({r"C(\d+)": "C of layer {n}", r"S(\d+)": "S of layer {n}",
                         "out": "the network's output"})),
    Part(id="gradient", points=3, title="Gradient through the statistics vs. frozen",
         make_cases=lambda rng: _net_cases(rng, (1, 1, 2)), reference=_gradient_reference,
         probe=GRADIENT_PROBE, compare=allclose(rtol=1e-5, atol=1e-7), describe=_describe_net,
         checks=(Check("through the statistics", 1.5, outputs=("grad_through",)),
                 Check("with frozen statistics", 1.5, outputs=("grad_frozen",))),
         label=labeller({"grad_through": "the gradient through the statistics",
                         "grad_frozen": "the gradient with frozen statistics"})),
))
