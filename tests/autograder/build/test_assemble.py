"""Tests of autograder.assemble: stubs against references, filling, nbgrader metadata."""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from autograder.assignments import ASSIGNMENTS
from autograder.assignments.spec import Assignment, Part, hidden_block
from autograder.build.assemble import (
    AssemblyError,
    _names,
    assemble,
    compare_stub,
    fill_stub_cell,
    helper_module_source,
    object_source,
    read_exercise,
    solution_notebook,
)
from autograder.build.cells import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    strip_hidden_tests,
)

STUB = '''
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Student docstring."""
    raise NotImplementedError("batch_norm")
'''
REF = "solutions.batchnorm.batch_norm"


@pytest.fixture(scope="module")
def assembled():
    return {name: assemble(spec) for name, spec in ASSIGNMENTS.items()}


def test_every_registered_assignment_has_graded_parts():
    """Each assignment of the registry has a handful of parts and points to earn."""
    for spec in ASSIGNMENTS.values():
        assert 3 <= len(spec.parts) <= 6 and spec.max_score > 0


def test_registry_does_not_import_torch():
    """Loading the assignment specs leaves torch unimported (the grader loads them often)."""
    import subprocess
    import sys
    code = "import sys, autograder.assignments; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_matching_stub_has_no_problems():
    """A stub with the reference's parameters and defaults agrees with it."""
    assert compare_stub(STUB, [REF]) == []


@pytest.mark.parametrize("old,new", [
    ("momentum=0.1", "momentum=0.2"),            # a different default
    ("eps=1e-5", "eps=1e-5, extra=None"),        # an extra parameter
    ("running_var, ", ""),                       # a missing parameter
    ("weight=None, bias=None", "bias=None, weight=None"),  # reordered
    ("training=False", "train=False"),           # renamed
])
def test_stub_signature_differing_from_reference_fails(old, new):
    """A stub whose signature differs from its reference is reported and refused."""
    stub = STUB.replace(old, new, 1)
    assert compare_stub(stub, [REF]), f"{old!r} -> {new!r} went unnoticed"
    with pytest.raises(AssemblyError, match="signature"):
        fill_stub_cell(stub, [REF])


def test_stub_with_code_in_its_body_is_refused():
    """A stub must not carry code: its body is a docstring and a raise only."""
    stub = STUB.replace('    raise NotImplementedError("batch_norm")', "    return x")
    with pytest.raises(AssemblyError, match="NotImplementedError"):
        fill_stub_cell(stub, [REF])


def test_stub_names_must_match_metadata():
    """A cell defining another function than its metadata names is refused."""
    with pytest.raises(AssemblyError, match="names"):
        fill_stub_cell(STUB, ["solutions.batchnorm.batch_norm_forward"])


def test_class_stub_method_missing_from_reference_is_reported():
    """A class stub's method that the reference class lacks is a problem."""
    stub = textwrap.dedent('''
    class NormalizedMLP:
        def not_in_reference(self):
            """x"""
            raise NotImplementedError
    ''')
    problems = compare_stub(stub, ["solutions.per_layer_normalization.NormalizedMLP"])
    assert any("not_in_reference" in p for p in problems)


def test_filled_function_is_the_reference_body_between_markers():
    """The solution region holds the reference's body verbatim, under the stub's header."""
    report = fill_stub_cell(STUB, [REF])
    from solutions import batchnorm
    ref_src = inspect.getsource(batchnorm.batch_norm)
    assert '"""Student docstring."""' in report.filled
    assert BEGIN_SOLUTION in report.filled and END_SOLUTION in report.filled
    (region,) = report.regions
    body = region.splitlines()
    assert body and all(line.strip() in ref_src for line in body)
    ast.parse(report.filled)
    # the filled function behaves like the reference
    ns = {}
    exec("import numpy as np\nfrom solutions.batchnorm import *\n"
         "from solutions.batchnorm import _check_input, _check_vector, _broadcast_shape, "
         "_compute_dtype\n" + report.filled, ns)
    import numpy as np
    x = np.random.default_rng(0).normal(size=(4, 3))
    rm, rv = np.zeros(3), np.ones(3)
    np.testing.assert_allclose(ns["batch_norm"](x, rm, rv, training=True),
                               batchnorm.batch_norm(x, np.zeros(3), np.ones(3), training=True))


def test_every_exercise_stub_matches_its_reference():
    """Every stub cell of every exercise has its references' signatures."""
    for name in ASSIGNMENTS:
        for i, cell in enumerate(read_exercise(name).cells):
            if "solution" in cell.metadata:
                assert compare_stub(cell.source, _names(cell.metadata["solution"])) == [], \
                    f"{name} cell {i}"


def test_helper_module_with_relative_import_is_refused():
    """A helper module that would import solutions/ (relative import) is an error."""
    with pytest.raises(AssemblyError, match="students do not have"):
        helper_module_source("plm.py", ["solutions.per_layer_normalization"])


def test_helper_module_from_objects_runs_standalone(tmp_path):
    """A helper generated from objects carries its modules' imports and works on its own."""
    text = helper_module_source("gradcheck.py", ["solutions.gradcheck.rel_error"])
    assert "solutions" not in text.split('"""', 2)[-1]
    ns = {}
    exec(text, ns)
    assert ns["rel_error"]([1.0], [1.0]) == 0.0


def test_object_source_of_a_constant():
    """A module-level constant's source is its assignment statement."""
    assert object_source("solutions.dropout.SUM_NET_X").startswith("SUM_NET_X = ")


def test_source_notebooks_carry_nbgrader_metadata(assembled):
    """Test cells are locked, graded, named by part and carry the part's hidden block."""
    for name, spec in ASSIGNMENTS.items():
        nb = assembled[name].notebook
        tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert [c.metadata.nbgrader.grade_id for c in tests] == [p.id for p in spec.parts]
        for cell, part in zip(tests, spec.parts, strict=True):
            meta = cell.metadata.nbgrader
            assert meta.locked and not meta.solution and meta.points == part.points
            hidden = cell.source.split(BEGIN_HIDDEN + "\n", 1)[1].split("\n" + END_HIDDEN)[0]
            assert hidden == hidden_block(part).rstrip("\n")
        solutions = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert solutions and all(BEGIN_SOLUTION in c.source for c in solutions)
        ids = [c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata]
        assert len(ids) == len(set(ids)), f"{name}: duplicate grade ids"
        assert nb.metadata.kernelspec.name == "python3"


def test_spec_part_without_test_cell_is_an_error():
    """An assignment spec listing a part the exercise has no test cell for is refused."""
    spec = ASSIGNMENTS["dropout"]
    extra = Part(id="extra", points=1, title="x", make_cases=lambda rng: [],
                 reference=lambda case: {}, probe="pass")
    with pytest.raises(AssemblyError, match="spec lists"):
        assemble(Assignment(name="dropout", parts=spec.parts + (extra,)))


def test_solution_notebook_has_no_hidden_tests_or_markers(assembled):
    """Solution notebooks keep the solutions and drop hidden tests and solution markers."""
    for a in assembled.values():
        text = "\n".join(c.source for c in solution_notebook(a).cells)
        for marker in ("HIDDEN TESTS", "_grading_harness", BEGIN_SOLUTION, END_SOLUTION):
            assert marker not in text
        for region in a.regions:
            assert all(line.strip() in text for line in region.splitlines())


def test_strip_hidden_tests_removes_every_block():
    """Every hidden block is removed, the visible tests stay."""
    src = f"a = 1\n{BEGIN_HIDDEN}\nsecret\n{END_HIDDEN}\nb = 2\n{BEGIN_HIDDEN}\ns2\n{END_HIDDEN}"
    out = strip_hidden_tests(src)
    assert "secret" not in out and "s2" not in out and "a = 1" in out and "b = 2" in out


def test_answer_cell_ids_are_unique_across_assignments():
    """No solution or given cell id of one assignment is also one of another's, so the grader
    can tell a notebook handed in under the wrong assignment."""
    seen = {}
    for name, spec in ASSIGNMENTS.items():
        for cell in assemble(spec).notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") or (meta.get("locked") and not meta.get("grade")):
                assert meta["grade_id"] not in seen, (name, seen.get(meta["grade_id"]))
                seen[meta["grade_id"]] = name
