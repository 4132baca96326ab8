"""Assignment ``conv-batchnorm``: batch normalization of convolutional feature maps
(N, C, H, W) in NumPy: statistics per channel over the N * H * W values of each map, gamma and
beta per channel; forward with running statistics, evaluation mode, closed-form backward.

The parts reuse the probes, checks and isolation of :mod:`.batchnorm` (the backward pass and
the running statistics get the reference forward pass's cache as numbers) on inputs of rank 3
to 5 (mostly 4), whose channels have spreads from 1e-3 to 10.
"""

from __future__ import annotations

import numpy as np

from solutions import batchnorm as ref

from . import batchnorm as fc
from ._common import channel_input, f64
from .spec import Assignment, Part, allclose


def _conv_input(rng, channels=None):
    """An (N, C, H, W) input (sometimes (N, C, L) or (N, C, D, H, W)) with per-channel spreads
    from 1e-3 to 10 and means up to 3 spreads away from 0."""
    ndim = int(rng.choice([3, 4, 4, 4, 5]))
    C = int(rng.integers(2, 5)) if channels is None else channels
    spatial = tuple(int(s) for s in rng.integers(2, 5, size=ndim - 2))
    return channel_input(rng, (int(rng.integers(2, 4)), C) + spatial, mean_spreads=3)


def _axes_cases(rng):
    return [{"ndims": rng.permutation(np.arange(2, 7))}]


def _axes_reference(case):
    return {f"axes{nd}": f64(ref.channel_axes(int(nd))) for nd in case["ndims"]}


AXES_PROBE = """
for nd in case["ndims"]:
    record(**{f"axes{int(nd)}": np.array(channel_axes(int(nd)), dtype=float)})
"""

VALUES = allclose(rtol=1e-6, atol=1e-9)

ASSIGNMENT = Assignment(
    name="conv-batchnorm", chapter="ch-conv-bn",
    summary=("The same for $(N, C, H, W)$ feature maps, with statistics per channel over $N "
             "\\cdot H \\cdot W$ values."),
    parts=(
    Part(id="channel-axes", points=1, title="The axes a channel's statistics are taken over",
         make_cases=_axes_cases, reference=_axes_reference, probe=AXES_PROBE,
         compare=allclose(rtol=0, atol=0), describe=lambda case: "inputs of rank 2 to 6",
         label=lambda name: f"channel_axes({name.removeprefix('axes')})"),
    Part(id="forward", points=2, title="Per-channel forward pass, (N, C, H, W)",
         make_cases=fc.forward_cases(_conv_input), reference=fc.forward_reference,
         probe=fc.FORWARD_PROBE, compare=VALUES, checks=fc.FORWARD_CHECKS,
         describe=fc.describe_forward, label=fc.forward_label),
    Part(id="running-stats", points=2, title="Per-channel running statistics",
         make_cases=fc.running_cases(_conv_input), reference=fc.running_reference,
         probe=fc.RUNNING_PROBE, compare=VALUES, checks=fc.RUNNING_CHECKS,
         describe=fc.describe_running, label=fc.RUNNING_LABELS),
    Part(id="eval-mode", points=1, title="Evaluation mode, (N, C, H, W)",
         make_cases=fc.eval_cases(_conv_input), reference=fc.eval_reference,
         probe=fc.EVAL_PROBE, compare=VALUES, describe=fc.describe_eval, label=fc.EVAL_LABELS),
    Part(id="backward", points=2, title="Per-channel closed-form backward pass",
         make_cases=fc.backward_cases(_conv_input), reference=fc.backward_reference(False),
         probe=fc.backward_probe("batch_norm_backward"), compare=VALUES,
         checks=fc.BACKWARD_CHECKS, describe=fc.describe_backward),
))
