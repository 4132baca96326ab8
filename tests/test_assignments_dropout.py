"""Tests of autograder.assignments.dropout: each part's probe,
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

NAME = "dropout"
SPEC = ASSIGNMENTS[NAME]

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "backward-unscaled": ((("dropout_backward", "dy * cache.scale", "dy"),),
                          {"inverted-dropout"}),
    "binomial-mask": ((("dropout_forward", "mask = _rng(rng).random(x.shape) >= p",
                        "mask = _rng(rng).binomial(1, 1.0 - p, size=x.shape).astype(bool)"),),
                      {"inverted-dropout"}),
    "eval-drops": ((("dropout_forward", "if not training or p == 0.0:", "if p == 0.0:"),),
                   {"inverted-dropout"}),
    "inference-by-p": ((("lecture_dropout_inference", "* (1.0 - p)", "* p"),),
                       {"lecture-dropout"}),
    "lecture-train-rescales": ((("lecture_dropout_train", "np.where(mask, x, 0)",
                                 "np.where(mask, x / (1 - p), 0)"),), {"lecture-dropout"}),
    "has-path-any": ((("has_path", "return all(", "return any("),), {"connected-masks"}),
    "no-redraw": ((("sample_connected_masks", "if has_path(masks):", "if True:"),),
                  {"connected-masks"}),
    "input-never-dropped": ((("sample_connected_masks", "droppable = [drop_input] +",
                              "droppable = [False] +"),), {"connected-masks"}),
    "step-sign": ((("gradient_step", ") - h * np.asarray(grad", ") + h * np.asarray(grad"),),
                  {"two-steps"}),
    "gradient-ignores-keep": ((("sum_network_gradient",
                                "[k1 * np.sum(r * x), k1 * np.sum(r), k2 * np.sum(r * x), "
                                "k2 * np.sum(r)]",
                                "[np.sum(r * x), np.sum(r), np.sum(r * x), np.sum(r)]"),),
                              {"two-steps"}),
    "input-rescaled": ((("drop_input_features", "X * keep[None, :]",
                         "X * keep[None, :] / (1 - p)"),), {"input-dropout"}),
    "linear-gradient-ignores-keep": ((("linear_network_gradient", "(X.T @ r) * keep",
                                       "(X.T @ r)"),), {"input-dropout"}),
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
