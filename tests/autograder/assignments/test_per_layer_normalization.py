"""Tests of autograder.assignments.per_layer_normalization: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its checks;
each part fails a check for mutants of the reference that break it; checks cover every output
and weigh a third of their part at least; cases are drawn afresh for every grading run."""

from __future__ import annotations

from tests.support.assignment_suite import suite

NAME = "per-layer-normalization"

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "C-median": ((("layer_statistics", "C = z.mean(axis=0)", "C = np.median(z, axis=0)"),),
                 {"layer-statistics"}),
    "normalize-not-centred": ((("normalize", "(np.asarray(z, dtype=np.float64) - C) / S",
                                "np.asarray(z, dtype=np.float64) / S"),),
                              {"layer-statistics"}),
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
(assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
 test_checks_cover_every_output_and_weigh_a_third_of_their_part,
 test_cases_are_drawn_afresh) = suite(NAME, MUTANTS)
