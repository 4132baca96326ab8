"""book/_ext/assignment_list.py: the book's assignment page, made from the registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from autograder.assignments import REGISTRY

ROOT = Path(__file__).resolve().parents[2]

_spec = importlib.util.spec_from_file_location(
    "assignment_list", ROOT / "book" / "_ext" / "assignment_list.py")
assignment_list = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(assignment_list)


def test_each_assignment_has_its_download_and_says_how_to_run_its_self_check():
    """Every registered assignment gets a section with its zip and the self-check command."""
    text = "\n".join(assignment_list.assignment_markdown(REGISTRY))
    for a in REGISTRY:
        section = text.split(f"(assignment-{a.name})=", 1)[1].split("(assignment-", 1)[0]
        assert f"{a.name}.zip" in section
        assert f"`python check.py {a.name}.ipynb`" in section
