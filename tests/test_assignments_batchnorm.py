"""Tests of autograder.assignments.batchnorm: each part's probe,
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

NAME = "batchnorm"
SPEC = ASSIGNMENTS[NAME]

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "forward-no-gamma": ((("batch_norm_forward", "y = y * weight.astype(cdt).reshape(bshape)",
                           "y = y"),), {"forward"},
                         (("batch_norm_forward",
                           "y = np.multiply(x_hat, _per_channel(weight, cdt))",
                           "y = x_hat.copy()"),)),
    "running-not-in-place": ((("batch_norm", "running_mean *= 1.0 - momentum",
                               "running_mean = running_mean * (1.0 - momentum)"),),
                             {"running-stats"}),
    "running-var-biased": ((("batch_norm", "unbiased = cache.var * cache.m / (cache.m - 1)",
                             "unbiased = cache.var"),), {"running-stats"}),
    "eval-uses-batch-statistics": ((("batch_norm", "    if training:", "    if True:"),),
                                   {"eval-mode"}),
    "numgrad-forward-difference": ((("numerical_gradient_array", "x[i] = old - h",
                                     "x[i] = old"),
                                    ("numerical_gradient_array", "/ (2 * h)", "/ h")),
                                   {"numerical-gradient"}),
    "numgrad-no-restore": ((("numerical_gradient_array", "x[i] = old\n", "\n"),),
                           {"numerical-gradient"}),
    "staged-missing-variance-branch": ((("batch_norm_backward_staged",
                                         "dxc = dxc + 2.0 * xc * dvar / m", "dxc = dxc"),),
                                       {"backward-staged"}),
    "staged-missing-mean-branch": ((("batch_norm_backward_staged", "dx = dx + dmean / m",
                                     "dx = dx"),), {"backward-staged"}),
    "closed-dweight-without-xhat": ((("batch_norm_backward",
                                      "dweight = (dyw * cache.x_hat).sum(",
                                      "dweight = dyw.sum("),), {"backward-closed"},
                                    (("batch_norm_backward", "np.vecdot(dy3, x_hat).sum(axis=0,",
                                      "dy3.sum(axis=(0, 2),"),)),
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
