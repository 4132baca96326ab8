"""The course's graded assignments: one module per assignment, each defining ``ASSIGNMENT``
(an :class:`autograder.spec.Assignment` whose parts draw inputs at grading time, probe the
student's functions in the kernel and compare with ``solutions/`` in the grader process).

``ASSIGNMENTS`` maps the assignment (folder and notebook) name to its spec, in course order.
"""

from __future__ import annotations

import importlib

from ..spec import Assignment

MODULES = ("dropout", "per_layer_normalization", "batchnorm", "conv_batchnorm",
           "torch_batchnorm")

ASSIGNMENTS: dict[str, Assignment] = {}
for _module in MODULES:
    try:
        _spec = importlib.import_module(f"{__name__}.{_module}").ASSIGNMENT
    except ModuleNotFoundError as _err:  # an assignment not written yet
        if _err.name != f"{__name__}.{_module}":
            raise
        continue
    ASSIGNMENTS[_spec.name] = _spec

__all__ = ["ASSIGNMENTS", "MODULES"]
