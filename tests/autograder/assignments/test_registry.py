"""The registry is the one list of assignments: exercise folders, specs, chapters and the
README's table agree with it, so an assignment cannot be added in one place and forgotten in
another."""

from __future__ import annotations

import re
from pathlib import Path

from autograder.assignments import ASSIGNMENTS, REGISTRY, load_registry
from autograder.text import is_safe_name

ROOT = Path(__file__).resolve().parents[3]


def test_every_exercise_folder_has_a_spec_and_every_spec_a_folder():
    """exercises/<name>/ (folders not starting with '_') and the registry name the same
    assignments, and each has its exercise notebook exercises/<name>/<name>.md."""
    folders = {p.name for p in (ROOT / "exercises").iterdir()
               if p.is_dir() and not p.name.startswith(("_", "."))}
    assert folders == set(ASSIGNMENTS), (
        f"exercise folders without a spec: {sorted(folders - set(ASSIGNMENTS))}; specs "
        f"without an exercise folder: {sorted(set(ASSIGNMENTS) - folders)}")
    for name in ASSIGNMENTS:
        assert (ROOT / "exercises" / name / f"{name}.md").is_file(), name


def test_names_are_unique_valid_ids():
    """One entry per name, and every name can serve as a folder and file name."""
    assert len(REGISTRY) == len(ASSIGNMENTS)
    assert all(is_safe_name(a.name) for a in REGISTRY)


def test_each_assignment_names_a_chapter_of_the_book_and_a_summary():
    """``chapter`` is a label defined in book/ (``(label)=``), ``summary`` is prose."""
    labels = set()
    for page in (ROOT / "book").glob("*.md"):
        labels |= set(re.findall(r"^\(([\w-]+)\)=\s*$", page.read_text(), re.M))
    for a in REGISTRY:
        assert a.chapter in labels, f"{a.name}: no label ({a.chapter})= in book/"
        assert len(a.summary.split()) >= 8, a.name


def test_the_default_registry_is_the_course():
    assert load_registry() is ASSIGNMENTS
    assert load_registry("autograder.assignments:ASSIGNMENTS") is ASSIGNMENTS


def test_readme_table_lists_every_assignment_in_course_order():
    """The README's assignment table has one row per registry entry, in order, with its
    points."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \|.*\| (\d+(?:\.\d+)?) \|$", readme, re.M)
    assert [(n, float(p)) for n, p in rows] == [(a.name, a.max_score) for a in REGISTRY]
