"""Tests of autograder.assignments.batchnorm: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its checks;
each part fails a check for mutants of the reference that break it; checks cover every output
and weigh a third of their part at least; cases are drawn afresh for every grading run."""

from __future__ import annotations

from tests.support.assignment_suite import suite

NAME = "batchnorm"

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
(assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
 test_checks_cover_every_output_and_weigh_a_third_of_their_part,
 test_cases_are_drawn_afresh) = suite(NAME, MUTANTS)
