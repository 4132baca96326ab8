"""Tests of autograder.samples: the sample submissions exist where the grader expects them and
each scores exactly what write_samples says, mistakes losing exactly the checks they break and
at least half of each part they touch."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.build.release import build_course
from autograder.testing.inprocess import run_inprocess, with_source_tests
from autograder.testing.samples import (
    MISTAKES,
    Mutation,
    MutationError,
    broken_checks,
    lost_points,
    mutate,
    write_samples,
)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return build_course(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def samples(course, tmp_path_factory):
    dest = tmp_path_factory.mktemp("submissions")
    return dest, write_samples(course, dest)


def test_every_sample_is_written_where_the_grader_looks(samples):
    """perfect and empty hand in every assignment, each mistake student the assignments the
    mistake applies to, as <student>/<assignment>/<assignment>.ipynb and nothing else."""
    dest, expected = samples
    wanted = {(s, a) for s in ("perfect", "empty") for a in ASSIGNMENTS}
    wanted |= {(m.student, a) for m in MISTAKES for a in m.mutations if a in ASSIGNMENTS}
    assert set(expected) == wanted
    for student, name in expected:
        folder = dest / student / name
        assert [p.name for p in folder.iterdir()] == [f"{name}.ipynb"]
        nbformat.validate(nbformat.read(folder / f"{name}.ipynb", as_version=4))


def test_perfect_scores_max_and_empty_scores_zero(samples):
    """The solution notebooks are expected at max_score, the release notebooks at 0."""
    _, expected = samples
    for name, spec in ASSIGNMENTS.items():
        assert expected[("perfect", name)] == spec.max_score
        assert expected[("empty", name)] == 0.0


def test_every_mistake_loses_some_but_not_all_points(samples):
    """Each mistake costs points, and no mistake costs a whole assignment."""
    _, expected = samples
    for (student, name), score in expected.items():
        if student not in ("perfect", "empty"):
            assert 0 < score < ASSIGNMENTS[name].max_score, (student, name)


def test_every_sample_mistake_loses_at_least_half_of_each_part_it_breaks():
    """No check is so light that a common mistake keeps more than half of a part it breaks."""
    for mistake in MISTAKES:
        for name, broken in mistake.breaks.items():
            for part_id, lost in lost_points(name, broken).items():
                part = ASSIGNMENTS[name].part(part_id)
                assert lost >= part.points / 2, (mistake.student, name, part_id, lost)


def test_breaks_naming_an_unknown_part_or_check_is_an_error():
    """A mistake that says it breaks a part or check the assignment lacks is refused."""
    with pytest.raises(ValueError, match="no part"):
        broken_checks("batchnorm", frozenset({"no-such-part"}))
    with pytest.raises(ValueError, match="no check"):
        broken_checks("batchnorm", frozenset({"forward/no such check"}))
    assert broken_checks("batchnorm", frozenset({"backward-closed/dx"})) == {
        ("backward-closed", "dx")}


@pytest.fixture(scope="module")
def graded(course, samples):
    """Every sample graded in-process, test cells restored from the source notebook."""
    dest, expected = samples
    runs = {}
    for student, name in sorted(expected):
        source = nbformat.read(course / "source" / name / f"{name}.ipynb", as_version=4)
        sub = nbformat.read(dest / student / name / f"{name}.ipynb", as_version=4)
        runs[(student, name)] = run_inprocess(with_source_tests(sub, source),
                                              course / "release" / name, ASSIGNMENTS[name])
    return runs


def test_samples_score_exactly_as_expected(samples, graded):
    """Every sample earns its expected score, and the checks a mistake breaks are exactly those
    that fail: one mistake costs the part it is made in, never a later part that calls the
    wrong function."""
    _, expected = samples
    breaks = {(m.student, a): broken_checks(a, parts) for m in MISTAKES
              for a, parts in m.breaks.items()}
    for (student, name), score in sorted(expected.items()):
        run = graded[(student, name)]
        assert run.score(ASSIGNMENTS[name]) == score, (student, name, {
            p: r.message for p, r in run.parts.items() if not r.passed})
        if (student, name) in breaks:
            assert run.failed_checks() == breaks[(student, name)], (student, name)
        elif student == "perfect":
            assert run.failed_checks() == set()


# what the visible tests say about each common mistake the notebooks warn about
HINTS = {
    ("unbiased-variance", "batchnorm", "forward"): "normalize with the unbiased variance",
    ("unbiased-variance", "conv-batchnorm", "forward"): "normalize with the unbiased variance",
    ("unbiased-variance", "torch-batchnorm", "function-forward"):
        "normalize with the unbiased variance",
    ("unbiased-variance", "per-layer-normalization", "layer-statistics"):
        "the lecture uses the population deviation",
    ("wrong-axes", "conv-batchnorm", "forward"): "did you reshape x to x.reshape(-1, C)?",
    ("eps-forgotten", "batchnorm", "eval-mode"): "did you forget eps",
    ("eps-forgotten", "torch-batchnorm", "function-forward"): "did you forget eps",
    ("no-rescale", "dropout", "inverted-dropout"): "scale the kept units by 1/(1 - p)",
    ("keep-drop-swapped", "dropout", "inverted-dropout"): "p is the probability of DROPPING",
    ("momentum-swapped", "batchnorm", "running-stats"):
        "running = (1 - momentum) * running + momentum * batch",
    ("biased-running-variance", "torch-batchnorm", "running-stats"):
        "fed with the unbiased variance",
    ("backward-ignores-statistics", "batchnorm", "backward-closed"):
        "the mean and the variance depend on x",
    ("backward-ignores-statistics", "torch-batchnorm", "function-backward"):
        "the mean and the variance depend on x",
}


def test_the_visible_tests_name_each_common_mistake(graded):
    """The visible test of the part a common mistake breaks fails with the hint for exactly
    that mistake (the conv notebook's warning about x.reshape(-1, C) among them), in plain
    numbers, never a NumPy repr."""
    for (student, name, part), hint in HINTS.items():
        error = graded[(student, name)].parts[part].visible_error
        assert hint in error, (student, name, part, error)
        assert "np.float64(" not in error and "np.True_" not in error


def test_mutation_of_missing_or_repeated_text_is_an_error(course):
    """A mutation whose text is absent, or present twice, or whose function is missing,
    raises MutationError instead of writing a wrong sample."""
    nb = nbformat.read(course / "solution" / "batchnorm" / "batchnorm.ipynb", as_version=4)
    with pytest.raises(MutationError, match="0 times"):
        mutate(nb, (Mutation("batch_norm", "no such text", "x"),))
    with pytest.raises(MutationError, match="2 times"):
        mutate(nb, (Mutation("batch_norm", "momentum", "x"),))
    with pytest.raises(MutationError, match="0 solution cells"):
        mutate(nb, (Mutation("no_such_function", "a", "b"),))


def test_write_samples_needs_a_built_course(tmp_path):
    """Without a released course, write_samples says which command to run."""
    with pytest.raises(FileNotFoundError, match="autograder release"):
        write_samples(tmp_path / "nothing", tmp_path / "out")


def test_write_samples_replaces_earlier_samples(course, tmp_path):
    """Writing samples twice into the same folder leaves one clean set."""
    first = write_samples(course, tmp_path)
    stray = tmp_path / "perfect" / "dropout" / "stray.ipynb"
    stray.write_text("{}")
    assert write_samples(course, tmp_path) == first
    assert not stray.exists()
    assert isinstance(next(iter(first)), tuple) and Path(tmp_path / "empty").is_dir()
