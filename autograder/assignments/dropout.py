"""Assignment ``dropout``: inverted dropout, the lecture's dropout, connected masks, the lecture's
two gradient steps, input-feature dropout.

Conventions the parts grade: ``p`` is the probability of DROPPING a unit; masks are drawn as
``rng.random(shape) >= p`` (True = kept) from the generator the caller passes; inverted dropout
scales kept units by ``1/(1-p)``; the lecture's form does not scale in training and multiplies
by the keep probability ``1-p`` at inference.
"""

from __future__ import annotations

import numpy as np

from solutions import dropout as ref

from ._common import f64, input_words, labeller, random_shape
from .spec import Assignment, Check, Part, allclose


def _seed(rng) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _drawn(case) -> bool:
    """A training-mode case with 0 < p < 1: the only kind that draws a mask."""
    return bool(case["training"]) and 0.0 < float(case["p"]) < 1.0


# -- inverted dropout -----------------------------------------------------------------------

def _inverted_cases(rng):
    cases = []
    for p, training in [(0.5, True), (0.2, True), (0.8, True), (0.0, True), (1.0, True),
                        (0.35, False)]:
        shape = random_shape(rng, int(rng.integers(1, 4)))
        cases.append({"x": rng.normal(size=shape), "dy": rng.normal(size=shape), "p": p,
                      "training": training, "seed": _seed(rng)})
    return cases


def _inverted_reference(case):
    p, training, seed = float(case["p"]), bool(case["training"]), int(case["seed"])
    y, cache = ref.dropout_forward(case["x"], p, training, np.random.default_rng(seed))
    dx = ref.dropout_backward(case["dy"], cache)
    y2 = ref.dropout(case["x"], p, training, np.random.default_rng(seed))
    return {"y": f64(y), "dx": f64(dx), "y_dropout": f64(y2)}


INVERTED_PROBE = """
p, training, seed = float(case["p"]), bool(case["training"]), int(case["seed"])
y, cache = dropout_forward(case["x"], p, training, np.random.default_rng(seed))
dx = dropout_backward(case["dy"], cache)
y2 = dropout(case["x"], p, training, np.random.default_rng(seed))
record(y=np.asarray(y, dtype=float), dx=np.asarray(dx, dtype=float),
       y_dropout=np.asarray(y2, dtype=float))
"""


def _describe_inverted(case) -> str:
    mode = "training mode" if bool(case["training"]) else "evaluation mode"
    return f"{input_words(case['x'], 'x')}, p={float(case['p']):g}, {mode}"

# -- the lecture's dropout ------------------------------------------------------------------

def _lecture_cases(rng):
    return [{"x": rng.normal(size=random_shape(rng, 2)), "p": p, "seed": _seed(rng)}
            for p in (0.5, 0.25, 0.7)]


def _lecture_reference(case):
    p, seed = float(case["p"]), int(case["seed"])
    y, mask = ref.lecture_dropout_train(case["x"], p, np.random.default_rng(seed))
    return {"y": f64(y), "mask": f64(mask), "inference": f64(ref.lecture_dropout_inference(
        case["x"], p))}


LECTURE_PROBE = """
p, seed = float(case["p"]), int(case["seed"])
y, mask = lecture_dropout_train(case["x"], p, np.random.default_rng(seed))
record(y=np.asarray(y, dtype=float), mask=np.asarray(mask, dtype=float),
       inference=np.asarray(lecture_dropout_inference(case["x"], p), dtype=float))
"""

# -- connected masks ------------------------------------------------------------------------

def _masks_cases(rng):
    cases = []
    # ([2, 1, 1, 1], 0.8): a first draw is connected with probability 0.04 only, so code that
    # does not redraw fails here whatever the seed
    for sizes, p, drop_input in [([1, 2, 1], 0.5, False), ([3, 2, 2, 1], 0.6, True),
                                 ([2, 1, 1, 1], 0.8, False), ([4, 5, 3], 0.3, True)]:
        case = {"sizes": np.array(sizes), "p": p, "drop_input": drop_input, "seed": _seed(rng)}
        # has_path on a few hand-made mask sets: one layer emptied, or none
        width = int(rng.integers(2, 5))
        masks = [rng.random(width) < 0.8 for _ in range(3)]
        for m in masks:
            m[int(rng.integers(width))] = True
        if rng.random() < 0.5:
            masks[int(rng.integers(3))][:] = False
        for i, m in enumerate(masks):
            case[f"hp{i}"] = m
        cases.append(case)
    return cases


def _hp_masks(case):
    return [np.asarray(case[k], dtype=bool) for k in sorted(k for k in case if k.startswith("hp"))]


def _masks_reference(case):
    masks = ref.sample_connected_masks([int(s) for s in case["sizes"]], float(case["p"]),
                                       np.random.default_rng(int(case["seed"])),
                                       bool(case["drop_input"]))
    out = {f"mask{i}": f64(m) for i, m in enumerate(masks)}
    out["path"] = f64(ref.has_path(_hp_masks(case)))
    return out


MASKS_PROBE = """
masks = sample_connected_masks([int(s) for s in case["sizes"]], float(case["p"]),
                               np.random.default_rng(int(case["seed"])), bool(case["drop_input"]))
record(**{f"mask{i}": np.asarray(m, dtype=float) for i, m in enumerate(masks)})
hp = [np.asarray(case[k], dtype=bool) for k in sorted(k for k in case if k.startswith("hp"))]
record(path=float(has_path(hp)))
"""

# -- the lecture's two gradient steps -------------------------------------------------------

def _steps_cases(rng):
    cases = []
    for keep in [(True, True), (False, True), (True, False), (False, False)]:
        n = int(rng.integers(2, 6))
        cases.append({"w": rng.normal(size=4), "keep": np.array(keep), "x": rng.normal(size=n),
                      "y": rng.normal(size=n), "h": float(rng.uniform(0.01, 0.3))})
    return cases


def _steps_reference(case):
    keep = tuple(bool(k) for k in case["keep"])
    g = ref.sum_network_gradient(case["w"], keep, case["x"], case["y"])
    return {"F": f64(ref.sum_network(case["x"], case["w"], keep)),
            "loss": f64(ref.sum_network_loss(case["w"], keep, case["x"], case["y"])),
            "grad": f64(g), "w_next": f64(ref.gradient_step(case["w"], g, float(case["h"])))}


STEPS_PROBE = """
keep = tuple(bool(k) for k in case["keep"])
g = sum_network_gradient(case["w"], keep, case["x"], case["y"])
record(F=np.asarray(sum_network(case["x"], case["w"], keep), dtype=float),
       loss=float(sum_network_loss(case["w"], keep, case["x"], case["y"])),
       grad=np.asarray(g, dtype=float),
       w_next=np.asarray(gradient_step(case["w"], g, float(case["h"])), dtype=float))
"""

# -- input-feature dropout ------------------------------------------------------------------

def _input_cases(rng):
    cases = []
    for p in (0.5, 0.3, 0.8):
        n, d = int(rng.integers(3, 7)), int(rng.integers(2, 6))
        keep = rng.random(2) >= 0.5
        cases.append({"X": rng.normal(size=(n, d)), "p": p, "seed": _seed(rng),
                      "w": rng.normal(size=3), "keep": keep, "X2": rng.normal(size=(n, 2)),
                      "Y2": rng.normal(size=n)})
    return cases


def _input_reference(case):
    Xd, keep = ref.drop_input_features(case["X"], float(case["p"]),
                                       np.random.default_rng(int(case["seed"])))
    k2 = tuple(bool(k) for k in case["keep"])
    return {"X_dropped": f64(Xd), "keep": f64(keep),
            "loss": f64(ref.linear_network_loss(case["w"], k2, case["X2"], case["Y2"])),
            "grad": f64(ref.linear_network_gradient(case["w"], k2, case["X2"], case["Y2"]))}


INPUT_PROBE = """
rng = np.random.default_rng(int(case["seed"]))
Xd, keep = drop_input_features(case["X"], float(case["p"]), rng)
k2 = tuple(bool(k) for k in case["keep"])
record(X_dropped=np.asarray(Xd, dtype=float), keep=np.asarray(keep, dtype=float),
       loss=float(linear_network_loss(case["w"], k2, case["X2"], case["Y2"])),
       grad=np.asarray(linear_network_gradient(case["w"], k2, case["X2"], case["Y2"]),
                       dtype=float))
"""

def _describe_masks(case) -> str:
    sizes = [int(v) for v in case["sizes"]]
    return (f"layer sizes {sizes}, p={float(case['p']):g}, "
            f"drop_input={bool(case['drop_input'])}")


ASSIGNMENT = Assignment(
    name="dropout", chapter="ch-dropout",
    summary=("Inverted dropout forward and backward, the lecture's form with its corrected "
             "inference rule, masks drawn with the connectivity rule, the lecture's two gradient"
             " steps, and dropout of input features."),
    parts=(
    Part(id="inverted-dropout", points=3, title="Inverted dropout: forward and backward",
         make_cases=_inverted_cases, reference=_inverted_reference, probe=INVERTED_PROBE,
         compare=allclose(rtol=1e-10, atol=1e-12), describe=_describe_inverted,
         checks=(Check("training mode", 1, outputs=("y", "y_dropout"), when=_drawn),
                 Check("backward", 1, outputs=("dx",)),
                 Check("p = 0, p = 1 and evaluation mode", 1, outputs=("y", "y_dropout"),
                       when=lambda case: not _drawn(case))),
         label=labeller({"y": "y of dropout_forward", "y_dropout": "the output of dropout",
                         "dx": "dx of dropout_backward"})),
    Part(id="lecture-dropout", points=1, title="The lecture's dropout and inference rule",
         make_cases=_lecture_cases, reference=_lecture_reference, probe=LECTURE_PROBE,
         compare=allclose(rtol=1e-10, atol=1e-12),
         describe=lambda case: f"{input_words(case['x'], 'x')}, p={float(case['p']):g}",
         label=labeller({"y": "y of lecture_dropout_train", "mask": "its mask",
                         "inference": "the output of lecture_dropout_inference"})),
    Part(id="connected-masks", points=2, title="Masks with the connectivity rule",
         make_cases=_masks_cases, reference=_masks_reference, probe=MASKS_PROBE,
         compare=allclose(rtol=0, atol=0), describe=_describe_masks,
         checks=(Check("masks", 1, outputs=("mask*",)),
                 Check("has_path", 1, outputs=("path",))),
         label=labeller({r"mask(\d+)": "the mask of layer {n}",
                         "path": "has_path on masks with one layer emptied or none"})),
    Part(id="two-steps", points=2, title="The lecture's two gradient steps",
         make_cases=_steps_cases, reference=_steps_reference, probe=STEPS_PROBE,
         compare=allclose(rtol=1e-9, atol=1e-10),
         describe=lambda case: (f"keep={tuple(bool(k) for k in case['keep'])}, "
                                f"{len(case['x'])} training points"),
         checks=(Check("output and loss", 1, outputs=("F", "loss")),
                 Check("gradient and step", 1, outputs=("grad", "w_next"))),
         label=labeller({"F": "sum_network's output", "loss": "sum_network_loss",
                         "grad": "sum_network_gradient", "w_next": "gradient_step's result"})),
    Part(id="input-dropout", points=2, title="Dropout on the input features",
         make_cases=_input_cases, reference=_input_reference, probe=INPUT_PROBE,
         compare=allclose(rtol=1e-9, atol=1e-10),
         describe=lambda case: (f"{input_words(case['X'], 'X')}, p={float(case['p']):g}, "
                                f"keep_inputs={tuple(bool(k) for k in case['keep'])}"),
         checks=(Check("dropped features", 1, outputs=("X_dropped", "keep")),
                 Check("loss and gradient", 1, outputs=("loss", "grad"))),
         label=labeller({"X_dropped": "X with its dropped features",
                         "keep": "the keep flags", "loss": "linear_network_loss",
                         "grad": "linear_network_gradient"})),
))
