"""The course's graded assignments and their registry, the one list every other place derives
from: the release, the grader, the book's assignment page, the tests and the README's table.

Each module here defines ``ASSIGNMENT``, an :class:`~autograder.assignments.spec.Assignment`
whose parts draw inputs at grading time, probe the student's functions in the kernel and
compare with ``solutions/`` in the grader process. Adding an assignment is its exercise
(``exercises/<name>/<name>.md``), its spec module here, and one line in :data:`REGISTRY`.

Importing this package does not import torch (the torch assignment imports it lazily).
"""

from __future__ import annotations

import importlib

from . import batchnorm, conv_batchnorm, dropout, per_layer_normalization, torch_batchnorm
from .spec import Assignment

REGISTRY: tuple[Assignment, ...] = (  # in course order
    dropout.ASSIGNMENT,
    per_layer_normalization.ASSIGNMENT,
    batchnorm.ASSIGNMENT,
    conv_batchnorm.ASSIGNMENT,
    torch_batchnorm.ASSIGNMENT,
)

ASSIGNMENTS: dict[str, Assignment] = {a.name: a for a in REGISTRY}
DEFAULT_REGISTRY = "autograder.assignments:ASSIGNMENTS"


def load_registry(spec: str = "") -> dict[str, Assignment]:
    """``module:attribute`` (default :data:`DEFAULT_REGISTRY`) -> {name: Assignment}. Other
    registries serve the tests (toy assignments)."""
    module, _, attr = (spec or DEFAULT_REGISTRY).partition(":")
    return getattr(importlib.import_module(module), attr or "ASSIGNMENTS")


__all__ = ["ASSIGNMENTS", "DEFAULT_REGISTRY", "REGISTRY", "Assignment", "load_registry"]
