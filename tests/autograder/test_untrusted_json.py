"""Tests for autograder.untrusted_json: JSON parsed within a bound on what parsing builds."""

import json
import random
import time

import pytest

from autograder.untrusted_json import TooManyValues, count_values, loads


def _values(doc) -> int:
    if isinstance(doc, dict):
        return 1 + sum(1 + _values(v) for v in doc.values())
    if isinstance(doc, list):
        return 1 + sum(_values(v) for v in doc)
    return 1


def _random_doc(rng: random.Random, depth: int = 0):
    kind = rng.randrange(6 if depth < 4 else 3)
    if kind == 0:
        return rng.choice([0, -1.5, True, None, 10**30])
    if kind in (1, 2):  # strings full of what the count must not mistake for structure
        return "".join(rng.choice(['"', "\\", ",", ":", "[", "{", "}", "]", "x", "\n", "é"])
                       for _ in range(rng.randrange(8)))
    if kind in (3, 4):
        return [_random_doc(rng, depth + 1) for _ in range(rng.randrange(5))]
    return {f"k{i},:[{{": _random_doc(rng, depth + 1) for i in range(rng.randrange(5))}


def test_the_count_bounds_the_values_and_ignores_strings():
    """For random documents whose strings are full of quotes, backslashes and brackets, the
    count is at least the number of values (keys included) and at most one more per value
    (an empty list or object counts one more than it holds)."""
    rng = random.Random(5)
    for _ in range(500):
        doc = _random_doc(rng)
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode()
        assert _values(doc) <= count_values(text) <= 2 * _values(doc) + 1, text
        assert count_values(text, chunk=7) == count_values(text)  # pieces cut strings


def test_a_text_of_millions_of_empty_objects_is_refused_unparsed():
    """Thirty megabytes of empty lists are refused in well under the time parsing takes."""
    text = b"[" + b"[], " * 7_500_000 + b"[]]"
    start = time.process_time()
    with pytest.raises(TooManyValues, match="more than 1,000"):
        loads(text, 1000)
    assert time.process_time() - start < 5


def test_loads_reads_what_it_accepts_and_refuses_bad_utf8():
    """Accepted text is parsed as json.loads parses it; bytes that are not UTF-8 raise
    UnicodeDecodeError."""
    assert loads(b'{"a": [1, "x,y"]}', 10) == {"a": [1, "x,y"]}
    with pytest.raises(UnicodeDecodeError):
        loads(b'"\xff"', 10)
