"""The course's graded assignments: one module per assignment, each defining ``ASSIGNMENT``
(an :class:`autograder.spec.Assignment` whose parts draw inputs at grading time, probe the
student's functions in the kernel and compare with ``solutions/`` in the grader process).

``ASSIGNMENTS`` maps the assignment (folder and notebook) name to its spec, in course order.
Importing it does not import torch (the torch assignment imports it lazily).
"""

from __future__ import annotations

from ..spec import Assignment
from . import batchnorm, conv_batchnorm, dropout, per_layer_normalization, torch_batchnorm

ASSIGNMENTS: dict[str, Assignment] = {
    module.ASSIGNMENT.name: module.ASSIGNMENT
    for module in (dropout, per_layer_normalization, batchnorm, conv_batchnorm, torch_batchnorm)
}

__all__ = ["ASSIGNMENTS"]
