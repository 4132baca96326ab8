"""Tests of autograder.assignments.torch_batchnorm: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its checks;
each part fails a check for mutants of the reference that break it; checks cover every output
and weigh a third of their part at least; cases are drawn afresh for every grading run."""

from __future__ import annotations

from tests.support.assignment_suite import suite

NAME = "torch-batchnorm"

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "no-dweight": ((("BatchNormFunction.backward",
                     "sum_dy_xhat.to(weight.dtype) if ctx.needs_input_grad[1] else None",
                     "None"),), {"function-backward"}),
    "running-var-biased": ((("BatchNormFunction.forward", "unbiased = var * (m / (m - 1))",
                             "unbiased = var"),), {"running-stats"}),
    "eval-uses-batch-statistics": ((("batch_norm", "    if training:", "    if True:"),),
                                   {"eval-mode"}),
    "batches-not-counted": ((("_BatchNorm.forward", "self.num_batches_tracked.add_(1)",
                              "pass"),), {"module"}),
    "momentum-none-ignored": ((("_BatchNorm.forward",
                                "factor = 1.0 / float(self.num_batches_tracked)",
                                "factor = 0.1"),), {"module"}),
}
(assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
 test_checks_cover_every_output_and_weigh_a_third_of_their_part,
 test_cases_are_drawn_afresh) = suite(NAME, MUTANTS)
