"""Tests of autograder.assignments.conv_batchnorm: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its checks;
each part fails a check for mutants of the reference that break it; checks cover every output
and weigh a third of their part at least; cases are drawn afresh for every grading run."""

from __future__ import annotations

from tests.support.assignment_suite import suite

NAME = "conv-batchnorm"

# mutant id -> ((function, old text, new text), ...), the parts whose hidden tests it breaks,
# and optionally the same edits for another version of the reference (tried when the first
# edits do not apply)
MUTANTS = {
    "axes-batch-only": ((("channel_axes", "return (0,) + tuple(range(2, ndim))",
                          "return (0,)"),), {"channel-axes"}),
    "backward-sums-over-batch-only": ((("batch_norm_backward",
                                        "dbias = dyw.sum(axis=cache.axes",
                                        "dbias = dyw.sum(axis=0"),), {"backward"},
                                      (("batch_norm_backward", "dbias = dy3.sum(axis=(0, 2)",
                                        "dbias = dy3.sum(axis=0"),)),
    "eval-not-broadcast-per-channel": ((("batch_norm", "scale.reshape(bshape) + "
                                         "shift.reshape(bshape)", "scale + shift"),),
                                       {"eval-mode"}),
}
(assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
 test_checks_cover_every_output_and_weigh_a_third_of_their_part,
 test_cases_are_drawn_afresh) = suite(NAME, MUTANTS)
