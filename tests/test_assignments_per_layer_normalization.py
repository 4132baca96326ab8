"""Tests of autograder.assignments.per_layer_normalization: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its check;
each part's check fails for mutants of the reference that break it; cases are drawn afresh
for every grading run."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.assemble import assemble
from autograder.assignments import ASSIGNMENTS
from autograder.assignments.inprocess import hidden_failures, run_assembled
from autograder.samples import MISTAKES, Mutation

NAME = "per-layer-normalization"
SPEC = ASSIGNMENTS[NAME]

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "C-median": ((("layer_statistics", "C = z.mean(axis=0)", "C = np.median(z, axis=0)"),),
                 {"layer-statistics", "fnnn"}),
    "normalize-not-centred": ((("normalize", "(np.asarray(z, dtype=np.float64) - C) / S",
                                "np.asarray(z, dtype=np.float64) / S"),),
                              {"layer-statistics", "fnnn"}),
    "two-point-signed": ((("two_point_statistics",
                           "float(np.sqrt(((A - C) ** 2 + (B - C) ** 2) / 2.0))",
                           "float((B - A) / 2.0)"),), {"two-point"}),
    "run-ignores-affine": ((("NormalizedMLP._run", "if a[i] is not None:", "if False:"),),
                           {"fnnn"}),
    "run-stats-from-inputs": ((("NormalizedMLP._run",
                                "layer_statistics(z_train) if stats is None",
                                "layer_statistics(z) if stats is None"),), {"fnnn"}),
    "output-activation-everywhere": ((("NormalizedMLP._run",
                                       "f = self.activation if i < last else "
                                       "self.output_activation", "f = self.activation"),),
                                     {"fnnn"}),
    "gradient-always-frozen": ((("NormalizedMLP.gradient", "if through_statistics:",
                                 "if False:"),), {"gradient"}),
    "gradient-always-through": ((("NormalizedMLP.gradient", "if through_statistics:",
                                  "if True:"),), {"gradient"}),
}
for _mistake in MISTAKES:
    if NAME in _mistake.mutations:
        _variants = [tuple((m.function, m.old, m.new) for m in v)
                     for v in _mistake.variants(NAME)]
        MUTANTS[_mistake.student] = (_variants[0], set(_mistake.breaks[NAME]), *_variants[1:])


@pytest.fixture(scope="module")
def assembled():
    return assemble(SPEC)


def test_reference_passes_every_part(assembled, tmp_path):
    """The filled source notebook runs without errors and earns every part's points."""
    run = run_assembled(assembled, tmp_path)
    assert run.cell_errors == {}
    assert {pid: r.message for pid, r in run.parts.items() if not r.passed} == {}
    assert run.score(SPEC) == SPEC.max_score


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_fails_the_parts_it_breaks(assembled, tmp_path, mutant):
    """The hidden tests of the parts a mutant breaks fail on it."""
    edits, broken, *alternatives = MUTANTS[mutant]
    variants = [tuple(Mutation(*e) for e in v) for v in (edits, *alternatives)]
    assert broken <= hidden_failures(assembled, tmp_path, variants)


def test_cases_are_drawn_afresh(assembled):
    """Different generators give different inputs for every part, and references are
    deterministic functions of a case."""
    for part in SPEC.parts:
        a = part.make_cases(np.random.default_rng(1))
        b = part.make_cases(np.random.default_rng(2))
        assert a, part.id
        flat = [np.asarray(v, dtype=float).ravel() for case in a for v in case.values()
                if np.asarray(v).dtype.kind in "fciub"]
        flat_b = [np.asarray(v, dtype=float).ravel() for case in b for v in case.values()
                  if np.asarray(v).dtype.kind in "fciub"]
        if flat:
            assert any(x.shape != y.shape or not np.array_equal(x, y)
                       for x, y in zip(flat, flat_b, strict=False)), part.id
        r1, r2 = part.reference(a[0]), part.reference(a[0])
        assert r1.keys() == r2.keys()
        for key in r1:
            np.testing.assert_array_equal(r1[key], r2[key])
