"""Results and their parts: kept JSON form, and keeping earlier verdicts for grade --part."""

from autograder.grading.jobs import PartResult, Result


def parts(scale, col_sum, message):
    return [PartResult("toy-scale", "Scaling", 2.0, scale, message, usage={"seconds": 1.5}),
            PartResult("toy-sum", "Column sums", 3.0, col_sum, message)]


def test_only_the_regraded_part_takes_the_new_verdict():
    """With --part toy-sum, toy-sum's new verdict counts and toy-scale keeps its earlier one
    (even though the new run failed it); the score is their sum and the reason says so."""
    new = Result("alice", "toy", "k", None, 5.0, 3.0, "", parts(0.0, 3.0, "new"))
    new.keep_parts(tuple(parts(2.0, 0.0, "earlier")), ("toy-sum",))
    assert [(p.id, p.score, p.message) for p in new.parts] == [
        ("toy-scale", 2.0, "earlier"), ("toy-sum", 3.0, "new")]
    assert new.score == 5.0 and "only toy-sum graded again" in new.reason


def test_usage_figures_survive_the_state_file():
    """A part's usage goes into the kept JSON and comes back; an older file without it reads."""
    r = Result("alice", "toy", "k", None, 5.0, 2.0, "", parts(2.0, 0.0, "m"))
    back = Result.from_json(r.to_json())
    assert back == r and back.parts[0].usage == {"seconds": 1.5}
    data = r.to_dict()
    del data["parts"][0]["usage"]
    assert Result.from_dict(data).parts[0].usage == {}
