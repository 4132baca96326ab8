"""Assemble nbgrader source notebooks from ``exercises/`` (what students read) and ``solutions/``
(the reference code, the single source of truth).

An exercise is a MyST text notebook ``exercises/<name>/<name>.md``. Its code cells carry
metadata that says what they stand for:

``solution: <dotted name>`` (or a list of them)
    A stub cell: one ``def`` or ``class`` per named reference object, each with the reference's
    signature, a docstring for the student and a body that only raises ``NotImplementedError``.
    The assembler keeps each stub's header and docstring and fills its body, between
    ``### BEGIN SOLUTION`` and ``### END SOLUTION``, with the reference's body taken with
    :func:`inspect.getsource`. A class stub lists the methods the student writes; the
    assembled cell is the reference class with those methods replaced by filled stubs, so the
    other methods are given code.
``given: [<dotted names>]``
    A read-only cell whose text becomes the source of the named objects (helpers the
    reference functions call, dataclasses, constants), given to students as is. An entry
    ``<module>.*`` adds every object of that module that the notebook's code uses without
    defining it, and what those use in turn (:func:`needed_helpers`).
``part: <part id>``
    The visible tests of a graded part (:class:`autograder.spec.Part`): a locked nbgrader test
    cell with ``grade_id`` = the part id and its points; the hidden block
    (:func:`autograder.spec.hidden_block`) is appended between ``### BEGIN HIDDEN TESTS`` and
    ``### END HIDDEN TESTS``.

Every notebook also gets a first cell that checks that its helper files are beside it, and last
cells on the self-check, with ``check.py`` among its files (:mod:`autograder.build.checkfile`).

The notebook's front matter may hold ``course: {helpers: {FILE.py: [dotted names]}, files:
[FILE.py]}``: ``helpers`` are modules generated from ``solutions/`` objects (a dotted module
name copies the whole module) and ``files`` are hand-written files (paths relative to the
exercise folder, e.g. ``../_shared/bn_oracle.py``) copied under their base name. Both ship
beside the notebook, so the release never imports ``solutions/``.

A stub whose signature differs from its reference's, a stub with code in its body, a part
without a test cell or a test cell without a part are errors (:class:`AssemblyError`).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from ..assignments.spec import Assignment, hidden_block
from . import cells as markers
from . import checkfile

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"



class AssemblyError(ValueError):
    """An exercise and its references do not fit together; the message says where."""


# -- resolving reference objects ------------------------------------------------------------

def resolve(dotted: str) -> Any:
    """The object a dotted name such as ``solutions.batchnorm.batch_norm`` or
    ``solutions.torch_bn.reference.BatchNormFunction.backward`` stands for."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise  # the module exists but one of its own imports is missing
            continue
        for attr in parts[i:]:
            try:
                obj = inspect.getattr_static(obj, attr)
            except AttributeError:
                raise AssemblyError(f"{dotted!r}: {'.'.join(parts[:i])} has no attribute "
                                    f"{attr!r}") from None
        return obj
    raise AssemblyError(f"{dotted!r}: no importable module in this name")


def _unwrap(obj):
    """The function under staticmethod/classmethod wrappers and decorators like
    ``once_differentiable`` (those keep ``__wrapped__``)."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return inspect.unwrap(obj)


def _module_constant_source(dotted: str) -> str:
    """Source of the module-level assignment that defines a constant (e.g. an array)."""
    module_name, _, name = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    src = inspect.getsource(module)
    for node in ast.parse(src).body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return ast.get_source_segment(src, node)
    raise AssemblyError(f"{dotted!r} is neither a function, a class nor a module-level "
                        "assignment")


def object_source(dotted: str) -> str:
    """Dedented source text of a reference object (function, class or module constant)."""
    obj = resolve(dotted)
    if inspect.ismodule(obj):
        return inspect.getsource(obj)
    target = _unwrap(obj)
    if inspect.isfunction(target) or inspect.isclass(target):
        return textwrap.dedent(inspect.getsource(target))
    return _module_constant_source(dotted)


# -- parsing stubs and references -----------------------------------------------------------

def _docstring_end(node: ast.FunctionDef | ast.ClassDef) -> int | None:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        return first.end_lineno
    return None


def _start_line(node) -> int:
    return min([node.lineno] + [d.lineno for d in node.decorator_list])


def signature_of(node: ast.FunctionDef) -> tuple:
    """A comparable description of a def: parameter names, kinds and default expressions
    (as source text), and its decorators. Annotations are ignored."""
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [("posonly" if i < len(a.posonlyargs) else "pos", arg.arg,
               None if d is None else ast.unparse(d))
              for i, (arg, d) in enumerate(zip(positional, defaults, strict=True))]
    if a.vararg:
        params.append(("*", a.vararg.arg, None))
    params += [("kwonly", arg.arg, None if d is None else ast.unparse(d))
               for arg, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        params.append(("**", a.kwarg.arg, None))
    return tuple(params), tuple(ast.unparse(d) for d in node.decorator_list)


def _describe(sig: tuple) -> str:
    params, decorators = sig
    text = []
    for kind, name, default in params:
        prefix = {"*": "*", "**": "**"}.get(kind, "")
        text.append(prefix + name + ("" if default is None else f"={default}"))
    deco = "".join(f"@{d} " for d in decorators)
    return f"{deco}({', '.join(text)})"


def _reference_node(dotted: str) -> tuple[ast.AST, list[str]]:
    """The parsed reference def/class and its dedented source lines."""
    src = object_source(dotted)
    tree = ast.parse(src)
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.ClassDef)):
        raise AssemblyError(f"{dotted!r} is not a function or class; a stub can only stand for "
                            "one of those (use a 'given' cell for constants)")
    return tree.body[0], src.splitlines()


def _methods(cls: ast.ClassDef) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def _check_stub_body(node: ast.FunctionDef, where: str) -> None:
    body = node.body[1:] if _docstring_end(node) else node.body
    ok = len(body) == 1 and isinstance(body[0], ast.Raise) and body[0].exc is not None and \
        "NotImplementedError" in ast.unparse(body[0].exc)
    if not ok:
        raise AssemblyError(f"{where}: a stub's body must be a docstring and "
                            "'raise NotImplementedError(...)' only")


def _names(meta_value) -> list[str]:
    if isinstance(meta_value, str):
        return [n for n in re.split(r"[,\s]+", meta_value) if n]
    return [str(n) for n in meta_value]


@dataclass
class StubReport:
    """A filled stub cell and the solution regions it contains."""

    filled: str = ""                                    # the cell with stubs filled
    regions: list[str] = field(default_factory=list)   # the filled solution texts


def _stub_defs(source: str, names: list[str], where: str):
    tree = ast.parse(source)
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    by_name = {n.name: n for n in defs}
    wanted = {d.rsplit(".", 1)[-1]: d for d in names}
    if set(by_name) != set(wanted):
        raise AssemblyError(f"{where}: the cell defines {sorted(by_name)} but its 'solution' "
                            f"metadata names {sorted(wanted)}")
    return tree, [(n, wanted[n.name]) for n in defs]


def compare_stub(source: str, names: list[str], where: str = "stub") -> list[str]:
    """Differences between the stubs in ``source`` and the reference objects ``names``:
    signatures (parameters, defaults, decorators), and for classes the method set (every stub
    method must exist in the reference). Empty when they agree."""
    problems = []
    _, pairs = _stub_defs(source, names, where)
    for stub, dotted in pairs:
        ref, _ = _reference_node(dotted)
        if type(stub) is not type(ref):
            problems.append(f"{dotted}: the stub is a {type(stub).__name__}, the reference a "
                            f"{type(ref).__name__}")
            continue
        if isinstance(stub, ast.FunctionDef):
            pairs_ = [(dotted, stub, ref)]
        else:
            ref_methods = _methods(ref)
            pairs_ = []
            for name, m in _methods(stub).items():
                if name not in ref_methods:
                    problems.append(f"{dotted}: the stub has a method {name!r} the reference "
                                    "lacks")
                else:
                    pairs_.append((f"{dotted}.{name}", m, ref_methods[name]))
        for label, s, r in pairs_:
            if signature_of(s) != signature_of(r):
                problems.append(f"{label}: stub signature {_describe(signature_of(s))} differs "
                                f"from the reference's {_describe(signature_of(r))}")
    return problems


def _indent(lines: list[str], prefix: str) -> list[str]:
    return [prefix + ln if ln.strip() else "" for ln in lines]


def _function_body(ref: ast.FunctionDef, ref_lines: list[str]) -> list[str]:
    """The reference function's body after its docstring, dedented, comments kept."""
    doc_end = _docstring_end(ref)
    start = doc_end + 1 if doc_end else ref.body[0].lineno
    if start <= ref.lineno and not doc_end:
        raise AssemblyError(f"{ref.name}: one-line definitions cannot be filled")
    body = ref_lines[start - 1:ref.end_lineno]
    while body and not body[0].strip():
        body.pop(0)
    return textwrap.dedent("\n".join(body)).splitlines()


def _filled_function(stub: ast.FunctionDef, stub_lines: list[str], ref: ast.FunctionDef,
                     ref_lines: list[str], where: str) -> tuple[list[str], str]:
    _check_stub_body(stub, where)
    doc_end = _docstring_end(stub)
    header_end = doc_end if doc_end else stub.body[0].lineno - 1
    header = stub_lines[_start_line(stub) - 1:header_end]
    prefix = " " * stub.body[0].col_offset
    body = _function_body(ref, ref_lines)
    region = "\n".join(body)
    return header + _indent([markers.BEGIN_SOLUTION] + body + [markers.END_SOLUTION],
                            prefix), region


def fill_stub_cell(source: str, names: list[str], where: str = "stub") -> StubReport:
    """Fill the stubs of one cell; returns the filled text and the solution regions.

    Raises :class:`AssemblyError` when a stub's signature disagrees with its reference.
    """
    problems = compare_stub(source, names, where)
    if problems:
        raise AssemblyError(f"{where}: " + "; ".join(problems))
    tree, pairs = _stub_defs(source, names, where)
    lines = source.splitlines()
    report = StubReport()
    replacements = []  # (first line, last line, new lines), 1-based inclusive
    for stub, dotted in pairs:
        ref, ref_lines = _reference_node(dotted)
        if isinstance(stub, ast.FunctionDef):
            new, region = _filled_function(stub, lines, ref, ref_lines, f"{where}: {dotted}")
            report.regions.append(region)
        else:
            new = _filled_class(stub, lines, ref, ref_lines, f"{where}: {dotted}", report)
        replacements.append((_start_line(stub), stub.end_lineno, new))
    for first, last, new in sorted(replacements, reverse=True):
        lines[first - 1:last] = new
    report.filled = "\n".join(lines).rstrip() + "\n"
    return report


def _filled_class(stub: ast.ClassDef, stub_lines, ref: ast.ClassDef, ref_lines, where,
                  report: StubReport) -> list[str]:
    """The reference class with the stub's methods filled (other methods given as is)."""
    ref_methods = _methods(ref)
    out = list(ref_lines[_start_line(ref) - 1:ref.end_lineno])
    offset = _start_line(ref) - 1
    replacements = []
    for name, m in _methods(stub).items():
        r = ref_methods[name]
        new, region = _filled_function(m, stub_lines, r, ref_lines, f"{where}.{name}")
        # re-indent the stub's method to the reference class's indentation
        stub_indent = m.col_offset
        ref_indent = r.col_offset
        new = [(" " * ref_indent + ln[stub_indent:]) if ln.strip() else "" for ln in new]
        report.regions.append(region)
        replacements.append((_start_line(r) - offset, r.end_lineno - offset, new))
    for first, last, new in sorted(replacements, reverse=True):
        out[first - 1:last] = new
    return out


# -- helpers the notebook needs ----------------------------------------------------------------

def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and
            isinstance(n.ctx, ast.Load)}


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds at top level (defs, classes, assignments, imports)."""
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                bound |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return bound


def _module_definitions(module_name: str) -> list[str]:
    """Names the module itself defines at top level (not imports), in source order."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [t.id for t in targets if isinstance(t, ast.Name)]
    return [n for n in names if n != "__all__"]


def needed_helpers(sources: list[str], modules: list[str]) -> list[str]:
    """Dotted names of the objects of ``modules`` that code in ``sources`` uses without
    defining them, with the objects those use in turn, in module source order. This is what a
    ``given: [module.*]`` cell receives, so a reference that starts using a new helper keeps
    working without editing the exercise."""
    trees = [ast.parse(src) for src in sources]
    bound = set().union(*(_bound_names(t) for t in trees))
    wanted = set().union(*(_loaded_names(t) for t in trees)) - bound
    defined = {m: _module_definitions(m) for m in modules}
    chosen: dict[str, str] = {}
    while True:
        new = {name: m for m, names in defined.items() for name in names
               if name in wanted and name not in chosen}
        if not new:
            break
        chosen.update(new)
        for name, m in new.items():
            wanted |= _loaded_names(ast.parse(object_source(f"{m}.{name}"))) - bound
    return [f"{m}.{name}" for m in modules for name in defined[m] if name in chosen]


# -- helper modules ---------------------------------------------------------------------------

def helper_module_source(filename: str, names: list[str]) -> str:
    """A module for the release folder made of reference objects: a dotted module name copies
    that whole module; otherwise the objects' sources follow the absolute imports of their
    modules. Relative imports (which would need ``solutions/``) are an error."""
    chunks, imports = [], []
    for dotted in names:
        obj = resolve(dotted)
        if inspect.ismodule(obj):
            chunks.append(inspect.getsource(obj))
            continue
        module = importlib.import_module(dotted.rsplit(".", 1)[0]) if not inspect.isclass(
            obj) else inspect.getmodule(obj)
        module = inspect.getmodule(_unwrap(obj)) or module
        for node in ast.parse(inspect.getsource(module)).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.ImportFrom) and node.level:
                    continue
                line = ast.unparse(node)
                if line not in imports:
                    imports.append(line)
        chunks.append(object_source(dotted))
    text = "\n\n\n".join([c.strip("\n") for c in chunks])
    if imports:
        imports.sort(key=lambda s: (not s.startswith("from __future__"), s))
        text = "\n".join(imports) + "\n\n\n" + text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "solutions")):
            raise AssemblyError(f"{filename}: generated from {names}, it would import "
                                f"{'.' * node.level}{node.module}, which students do not have")
    origin = ", ".join(n.removeprefix("solutions.") for n in names)
    header = (f'"""Helper code for this assignment ({filename}), generated from the course\'s '
              f'reference library\n({origin}). Do not edit."""\n\n')
    if text.startswith('"""') or text.startswith("'''"):
        header = f"# {filename}: generated from the course's reference library ({origin}).\n"
    return header + text.rstrip() + "\n"


# -- notebooks --------------------------------------------------------------------------------

def exercise_path(name: str) -> Path:
    return EXERCISES / name / f"{name}.md"


def read_exercise(name: str) -> nbformat.NotebookNode:
    path = exercise_path(name)
    if not path.is_file():
        raise AssemblyError(f"no exercise notebook {path}")
    return jupytext.read(path, fmt="md:myst")


@dataclass
class Assembled:
    """An assembled source notebook, the files that ship beside it, and its solution regions
    (the texts that must never appear in a release)."""

    name: str
    notebook: nbformat.NotebookNode
    files: dict[str, str]
    regions: list[str]


def assemble(assignment: Assignment) -> Assembled:
    """The nbgrader source notebook for ``assignment`` (see the module docstring)."""
    name = assignment.name
    ex = read_exercise(name)
    course = ex.metadata.get("course", {}) or {}
    cells, regions, seen_parts = [], [], []
    pending_given = []  # (cell index, modules, where) of ``module.*`` entries to resolve
    counters: dict[str, int] = {}

    def new_id(kind: str) -> str:
        """A cell id unique across assignments (``dropout-solution-2``), so that a notebook of
        one assignment handed in as another matches none of its answer cells."""
        counters[kind] = counters.get(kind, 0) + 1
        return f"{name}-{kind}-{counters[kind]}"

    for i, cell in enumerate(ex.cells):
        where = f"{exercise_path(name).relative_to(ROOT)} cell {i + 1}"
        meta = dict(cell.metadata)
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source, id=new_id("md")))
            continue
        if cell.cell_type != "code":
            continue
        keys = {"solution", "given", "part"} & set(meta)
        if len(keys) > 1:
            raise AssemblyError(f"{where}: a cell is one of solution/given/part, got {keys}")
        if "solution" in meta:
            report = fill_stub_cell(cell.source, _names(meta["solution"]), where)
            regions += report.regions
            grade_id = new_id("solution")
            nb_meta = markers.new_meta(solution=True, grade_id=grade_id)
            out = nbformat.v4.new_code_cell(report.filled.rstrip("\n"), id=grade_id)
        elif "given" in meta:
            names = _names(meta["given"])
            wildcard = [n for n in names if n.endswith(".*")]
            text = "\n\n\n".join(object_source(n).strip("\n") for n in names
                                  if not n.endswith(".*"))
            grade_id = new_id("given")
            if wildcard:
                pending_given.append((len(cells), [n[:-2] for n in wildcard], where))
            nb_meta = markers.new_meta(locked=True, grade_id=grade_id)
            out = nbformat.v4.new_code_cell(text, id=grade_id)
        elif "part" in meta:
            part = assignment.part(str(meta["part"]))
            if not markers.GRADE_ID_RE.match(part.id):
                raise AssemblyError(f"{where}: part id {part.id!r} is not a valid grade_id")
            if part.id in seen_parts:
                raise AssemblyError(f"{where}: part {part.id!r} has two test cells")
            seen_parts.append(part.id)
            text = markers.with_hidden_tests(cell.source, hidden_block(part))
            nb_meta = markers.new_meta(grade=True, locked=True, grade_id=part.id,
                                     points=part.points)
            out = nbformat.v4.new_code_cell(text, id=part.id)
        else:
            out = nbformat.v4.new_code_cell(cell.source, id=new_id("code"))
            nb_meta = None
        if nb_meta is not None:
            out.metadata["nbgrader"] = nb_meta
        for key in ("tags",):
            if key in meta:
                out.metadata[key] = meta[key]
        cells.append(out)
    expected = [p.id for p in assignment.parts]
    if seen_parts != expected:
        raise AssemblyError(f"{name}: test cells for parts {seen_parts}, but the assignment "
                            f"spec lists {expected} (same ids, same order)")
    for index, modules, where in pending_given:
        needed = needed_helpers([c.source for c in cells if c.cell_type == "code"], modules)
        if not needed and not cells[index].source.strip():
            raise AssemblyError(f"{where}: the notebook needs nothing from {modules}")
        extra = "\n\n\n".join(object_source(n).strip("\n") for n in needed)
        cells[index].source = "\n\n\n".join(t for t in (cells[index].source, extra) if t)
    files = {}
    for filename, names in (course.get("helpers") or {}).items():
        files[filename] = helper_module_source(filename, _names(names))
    for rel in course.get("files") or []:
        path = (EXERCISES / name / rel).resolve()
        if not path.is_relative_to(EXERCISES.resolve()) or not path.is_file():
            raise AssemblyError(f"{name}: file {rel!r} is not a file under exercises/")
        files[path.name] = path.read_text()
    shipped = [*files, checkfile.CHECK_FILE]
    text, code = checkfile.selfcheck_cells(name)
    cells = [_locked_code(checkfile.setup_cell(name, shipped), f"{name}-files"), *cells,
             nbformat.v4.new_markdown_cell(text, id=f"{name}-md-selfcheck"),
             _locked_code(code, f"{name}-selfcheck")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                       "language": "python"},
        "language_info": {"name": "python"},
    }
    nbformat.validate(nb)
    files[checkfile.CHECK_FILE] = checkfile.check_file(checkfile.describe(assignment, nb,
                                                                          shipped))
    return Assembled(name=name, notebook=nb, files=files, regions=regions)


def _locked_code(source: str, grade_id: str) -> nbformat.NotebookNode:
    """A read-only code cell of the assembler's own (the setup and self-check cells)."""
    cell = nbformat.v4.new_code_cell(source, id=grade_id)
    cell.metadata["nbgrader"] = markers.new_meta(locked=True, grade_id=grade_id)
    return cell


def solution_notebook(assembled: Assembled) -> nbformat.NotebookNode:
    """The notebook a perfect student hands in: solutions filled, markers and hidden tests
    removed, nbgrader metadata kept. It runs standalone (no grading harness needed)."""
    nb = nbformat.from_dict(nbformat.v4.new_notebook())
    nb.metadata = dict(assembled.notebook.metadata)
    for cell in assembled.notebook.cells:
        new = nbformat.from_dict(dict(cell))
        if cell.cell_type == "code":
            new.source = markers.strip_solution_markers(markers.strip_hidden_tests(cell.source))
            new.outputs, new.execution_count = [], None
        nb.cells.append(new)
    return nb


def write_source(assembled: Assembled, course_dir: Path) -> Path:
    """Write ``course_dir/source/<name>/<name>.ipynb`` and its helper files."""
    folder = Path(course_dir) / "source" / assembled.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assembled.name}.ipynb"
    nbformat.write(assembled.notebook, path)
    for filename, text in assembled.files.items():
        (folder / filename).write_text(text)
    return path
