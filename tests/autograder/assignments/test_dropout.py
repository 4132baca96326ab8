"""Tests of autograder.assignments.dropout: each part's probe,
run against the reference in this process (a stand-in for the grader), passes its checks;
each part fails a check for mutants of the reference that break it; checks cover every output
and weigh a third of their part at least; cases are drawn afresh for every grading run."""

from __future__ import annotations

from tests.support.assignment_suite import suite

NAME = "dropout"

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
(assembled, test_reference_passes_every_part, test_mutant_fails_the_parts_it_breaks,
 test_checks_cover_every_output_and_weigh_a_third_of_their_part,
 test_cases_are_drawn_afresh) = suite(NAME, MUTANTS)
