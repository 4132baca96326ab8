"""Unusually similar answer cells: copies with renamed variables are flagged, answers the task
forces on everyone and the starting stub are not."""

import nbformat

from autograder.results import similarity
from tests.support import toy
from tests.support.answers import COPY, ORIGINAL, OTHERS, STUB


def test_renaming_variables_and_adding_comments_changes_nothing():
    """Normalised tokens ignore names, comments and blank lines."""
    assert similarity.tokens(ORIGINAL) == similarity.tokens(COPY)
    assert similarity.tokens("np.sum(a)") == ["v0", ".", "sum", "(", "v1", ")", ";"]


def test_a_copied_answer_is_flagged_with_its_score():
    """Of a class of six, the renamed copy pair is flagged (score 1.0, far above the usual);
    no independent answer is."""
    answers = {"sum-impl": {"ann": ORIGINAL, "ben": COPY,
                            **{f"s{i}": src for i, src in enumerate(OTHERS)}}}
    pairs = similarity.similar_pairs("toy", answers, {"sum-impl": STUB})
    assert [(p.first, p.second, p.score) for p in pairs] == [("ann", "ben", 1.0)]
    assert pairs[0].baseline < 0.5


def test_the_stub_and_a_forced_answer_flag_nobody():
    """Answers that are the stub, or the one line the task allows, are too short once the stub
    is removed, and a class where everyone's answer is alike flags no pair."""
    one_liner = "def col_sum(x):\n    return x.sum(axis=0)\n"
    answers = {"sum-impl": {"a": STUB, "b": STUB, "c": one_liner, "d": one_liner}}
    assert similarity.similar_pairs("toy", answers, {"sum-impl": STUB}) == []
    same = {"sum-impl": {f"s{i}": ORIGINAL for i in range(5)}}
    assert similarity.similar_pairs("toy", same, {"sum-impl": STUB}) == []


def test_code_that_does_not_tokenize_is_still_compared():
    """An answer with a syntax error (unclosed bracket) falls back to a plain tokenizer."""
    broken = ORIGINAL.replace("return np.array(totals)", "return np.array((totals)")
    assert len(similarity.fingerprint(broken, STUB)) >= similarity.MIN_GRAMS


def test_answers_and_stubs_come_from_the_notebooks(tmp_path):
    """Answer cells are the source notebook's solution cells; the stubs are the release
    notebook's (else the source's solution regions replaced)."""
    source = toy.source_notebook()
    stubs = similarity.stubs_of(source, None)
    assert set(stubs) == {"scale-impl", "sum-impl"}
    assert "raise NotImplementedError()" in stubs["sum-impl"]
    path = tmp_path / "ann.ipynb"
    nbformat.write(toy.with_answers(toy.solution_notebook(), sum_impl=ORIGINAL), path)
    (tmp_path / "bad.ipynb").write_text("{not json")
    answers = similarity.load_answers({"ann": str(path), "bad": str(tmp_path / "bad.ipynb")},
                                      set(stubs))
    assert answers["sum-impl"] == {"ann": ORIGINAL}
