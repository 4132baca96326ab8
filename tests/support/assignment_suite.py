"""The tests every assignment spec gets (used by tests/test_assignments_<name>.py).

Each part's probe, run against the reference in this process (a stand-in for the grader),
passes its checks; each part fails a check for mutants of the reference that break it (the
module's own mutants plus the common mistakes of :mod:`autograder.samples`); every check covers
some output on some case and weighs at least a third of its part, so no one-line slip keeps
nearly all of a part's points; cases are drawn afresh for every grading run.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.build.assemble import assemble
from autograder.testing.inprocess import run_assembled
from autograder.testing.samples import MISTAKES, Mutation, broken_checks

MIN_CHECK_SHARE = 1 / 3


def with_common_mistakes(name: str, mutants: dict) -> dict:
    """``mutants`` (id -> (edits, broken parts, *alternative edits)) plus the common mistakes
    that apply to assignment ``name`` (their broken parts: those with a broken check)."""
    merged = dict(mutants)
    for mistake in MISTAKES:
        if name in mistake.mutations:
            variants = [tuple((m.function, m.old, m.new) for m in v)
                        for v in mistake.variants(name)]
            parts = {p for p, _ in broken_checks(name, mistake.breaks[name])}
            merged[mistake.student] = (variants[0], parts, *variants[1:])
    return merged


def suite(name: str, mutants: dict):
    """The fixture and the tests for assignment ``name``; a test module binds them to
    module-level names so that pytest collects them."""
    spec = ASSIGNMENTS[name]
    all_mutants = with_common_mistakes(name, mutants)

    @pytest.fixture(scope="module")
    def assembled():
        return assemble(spec)

    def test_reference_passes_every_part(assembled, tmp_path):
        """The filled source notebook runs without errors and earns every check's points."""
        run = run_assembled(assembled, tmp_path)
        assert run.cell_errors == {}
        assert {pid: r.message for pid, r in run.parts.items() if not r.passed} == {}
        assert run.score(spec) == spec.max_score

    @pytest.mark.parametrize("mutant", sorted(all_mutants))
    def test_mutant_fails_the_parts_it_breaks(assembled, tmp_path, mutant):
        """The hidden tests of the parts a mutant breaks fail on it: each loses a check."""
        edits, broken, *alternatives = all_mutants[mutant]
        variants = [tuple(Mutation(*e) for e in v) for v in (edits, *alternatives)]
        run = run_assembled(assembled, tmp_path, variants)
        assert broken <= run.failed(), {p: r.message for p, r in run.parts.items()}

    def test_checks_cover_every_output_and_weigh_a_third_of_their_part():
        """Every recorded output is scored by some check, every check covers some output on
        some case (none passes for want of anything to compare), and no check is worth less
        than a third of its part."""
        for part in spec.parts:
            cases = part.make_cases(np.random.default_rng(3))
            expected = [part.reference(c) for c in cases]
            for check in part.scoring:
                assert check.points >= MIN_CHECK_SHARE * part.points - 1e-9, (part.id,
                                                                               check.name)
                assert any(check.covers_case(c) and any(map(check.covers_output, e))
                           for c, e in zip(cases, expected, strict=True)), (part.id, check.name)
            for e in expected:
                for output in e:
                    assert any(c.covers_output(output) for c in part.scoring), (part.id, output)

    def test_cases_are_drawn_afresh():
        """Different generators give different inputs for every part, and references are
        deterministic functions of a case."""
        for part in spec.parts:
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

    return (assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
            test_checks_cover_every_output_and_weigh_a_third_of_their_part,
            test_cases_are_drawn_afresh)
