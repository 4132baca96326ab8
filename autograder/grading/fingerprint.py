"""Fingerprints of the code a grade depends on, so that a kept result is reused only while that
code is unchanged (and a grading machine can prove it runs the same code as the coordinator).

* :func:`grader_fingerprint`: the grader's own code that decides a grade: running the notebook
  (``sandbox/``), rebuilding, judging and recording it (``grading/``), the cell markers and
  the cell matching (``selfcheck.py``), the spec contract, and the file and text helpers.
  Reports and the command line are not part of it: a new column in grades.csv regrades nobody.
* :func:`assignment_fingerprint`: the module that declares an assignment (its parts' cases,
  references, checks and points) and every module of the project it imports, followed
  through imports (``solutions/`` code the references call, shared helpers), read from the
  source files. A fixed hidden test therefore changes the fingerprint of its assignment and of
  no other one.

Both are SHA-256 hex digests of the files' paths (relative to the project) and bytes.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import site
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]      # autograder/
PROJECT = PACKAGE.parent
GRADER_PARTS = ("sandbox", "grading", "build/cells.py", "assignments/spec.py", "files.py",
                "text.py", "selfcheck.py")


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(set(paths)):
        try:
            rel = path.relative_to(PROJECT).as_posix()
        except ValueError:
            rel = path.as_posix()
        h.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


@functools.cache
def grader_fingerprint() -> str:
    """A digest of the grader code listed in :data:`GRADER_PARTS`."""
    paths = []
    for part in GRADER_PARTS:
        p = PACKAGE / part
        paths += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return _digest(paths)


@functools.cache
def _installed() -> tuple[Path, ...]:
    """Folders of the Python installation and its packages (not the course's code)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             *site.getsitepackages(), site.getusersitepackages()}
    return tuple(Path(r).resolve() for r in roots if r)


def _course_roots() -> list[Path]:
    """The entries of ``sys.path`` that hold course code (not the Python installation), then
    this project's folder, where ``autograder`` and ``solutions`` are whatever the path (an
    editable install puts no folder on it: a Dask worker started outside the project must
    find the same files as the coordinator)."""
    roots = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if path.is_dir() and not any(path.is_relative_to(r) for r in _installed()):
            roots.append(path)
    if PROJECT not in roots:
        roots.append(PROJECT)
    return roots


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` when it is course code (this project, or a
    registry of the instructor's elsewhere on the path), None for the standard library,
    installed packages and names that are not modules. Nothing is imported to find it."""
    parts = name.split(".")
    for root in _course_roots():
        base = root.joinpath(*parts)
        for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
        if (root / parts[0]).exists():
            return None                   # the package is here, the name is not a module
    return None


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of the modules ``path`` (module ``module``) imports. ``from package
    import name`` counts as importing the submodule ``package.name`` where there is one (the
    package's ``__init__`` then is not a dependency: the assignments' registry imports every
    assignment, yet no assignment depends on the others), else the package."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                names.add(sub if _module_file(sub) is not None else target)
    return {n for n in names if n}


@functools.cache
def module_closure(module: str) -> tuple[Path, ...]:
    """The source files of ``module`` and of every project module it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo += sorted(_imports(path, name) - set(seen))
    return tuple(sorted(set(seen.values())))


@functools.cache
def assignment_fingerprint(module: str) -> str:
    """A digest of the module that declares an assignment and all project code it imports."""
    return _digest(module_closure(module))
