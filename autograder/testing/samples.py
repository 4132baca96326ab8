"""Sample submissions for the grader's tests and benchmark.

:func:`write_samples` writes ``dest/<student>/<assignment>/<assignment>.ipynb`` (a notebook as
a student hands it in, nothing beside it) for

* ``perfect``: the solution notebook of every assignment (full marks);
* ``empty``: the untouched release notebook of every assignment (0 points);
* one student per common mistake (:data:`MISTAKES`), for each assignment the mistake applies
  to: the solution notebook with the mistake made in its solution cells, by editing the text of
  the filled functions (:class:`Mutation`). Each loses exactly the points of the checks the
  mistake breaks (:attr:`Mistake.breaks`: whole parts, or single checks of a part), which the
  tests verify by grading the mutated notebooks. Since each part is graded on its own, a
  mistake breaks the part it is made in, never a later part that calls the wrong function.

The course folder must have been built (``python -m autograder release --out COURSE``).
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..assignments import ASSIGNMENTS
from ..build import cells


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` by ``new`` inside the definition of ``function`` (a top-level def, or
    ``Class.method``) in a solution cell; ``old`` must occur there exactly once."""

    function: str
    old: str
    new: str


@dataclass(frozen=True)
class Mistake:
    """A common mistake: how to make it in each assignment it applies to, and what it breaks
    there: ``"<part>"`` for every check of a part, ``"<part>/<check>"`` for one check of it.
    ``alternatives`` makes the same mistake in another version of a reference whose text
    differs (tried when ``mutations`` does not apply)."""

    student: str
    description: str
    mutations: dict[str, tuple[Mutation, ...]]
    breaks: dict[str, frozenset[str]]
    alternatives: dict[str, tuple[Mutation, ...]] = field(default_factory=dict)

    def variants(self, assignment: str) -> tuple[tuple[Mutation, ...], ...]:
        """The ways to make this mistake in ``assignment``, in order of preference."""
        alt = self.alternatives.get(assignment)
        return (self.mutations[assignment],) + ((alt,) if alt else ())


def _m(function: str, *pairs: tuple[str, str]) -> tuple[Mutation, ...]:
    return tuple(Mutation(function, old, new) for old, new in pairs)


# Mistakes are edits of the reference text as the assembler pastes it (inputs viewed as
# (N, C, L), sums with np.vecdot): a test fails when a reference changes under them.
_NP_VAR = "    var = np.vecdot(x_hat, x_hat).sum(axis=0, dtype=np.float64) / m"
_NP_EPS_TRAIN = ("std = np.sqrt(var + eps)", "std = np.sqrt(var)")
_NP_EPS_EVAL = ("np.sqrt(running_var.astype(np.float64) + eps)",
                "np.sqrt(running_var.astype(np.float64))")
_NP_MOMENTUM = (("running_mean *= 1.0 - momentum", "running_mean *= momentum"),
                ("(momentum * cache.mean)", "((1.0 - momentum) * cache.mean)"),
                ("running_var *= 1.0 - momentum", "running_var *= momentum"),
                ("(momentum * unbiased)", "((1.0 - momentum) * unbiased)"))
_NP_BACKWARD = ("    dx = np.multiply(x_hat, _per_channel(dweight / cache.m, cdt))\n"
                "    dx += _per_channel(dbias / cache.m, cdt)\n"
                "    np.subtract(dy3, dx, out=dx)\n", "    dx = dy3.copy()\n")
_NP_AXES = ("x3 = x.reshape(N, C, -1)", "x3 = x.reshape(-1, C, 1)")

_T_VAR = ("(x - _per_channel(mean, x.dim())).square().mean(dim=dims)",
          "(x - _per_channel(mean, x.dim())).square().sum(dim=dims) / (m - 1)")
_T_EPS_TRAIN = ("invstd = torch.rsqrt(var + eps)", "invstd = torch.rsqrt(var)")
_T_EPS_EVAL = ("torch.rsqrt(running_var.to(x.dtype) + eps)", "torch.rsqrt(running_var.to(x.dtype))")
_T_AXES = (("mean = x.mean(dim=dims)", "mean = x.reshape(-1, x.shape[1]).mean(dim=0)"),
           ("(x - _per_channel(mean, x.dim())).square().mean(dim=dims)",
            "(x - _per_channel(mean, x.dim())).square().reshape(-1, x.shape[1]).mean(dim=0)"))
_T_MOMENTUM = (
    ("running_mean.mul_(1 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)",
     "running_mean.mul_(momentum).add_(mean.to(running_mean.dtype), alpha=1 - momentum)"),
    ("running_var.mul_(1 - momentum).add_(unbiased.to(running_var.dtype), alpha=momentum)",
     "running_var.mul_(momentum).add_(unbiased.to(running_var.dtype), alpha=1 - momentum)"))
_T_BACKWARD = ("m * dy - _per_channel(sum_dy, x.dim()) - x_hat * _per_channel(sum_dy_xhat, "
               "x.dim()))", "m * dy)")

MISTAKES: tuple[Mistake, ...] = (
    Mistake(
        student="unbiased-variance",
        description="normalizes with the unbiased variance (divides by m - 1, or n - 1)",
        mutations={
            "per-layer-normalization": _m(
                "layer_statistics", ("S = np.sqrt(((z - C) ** 2).mean(axis=0))",
                                     "S = np.sqrt(((z - C) ** 2).sum(axis=0) / (len(z) - 1))")),
            "batchnorm": _m("batch_norm_forward", (_NP_VAR, _NP_VAR + " * m / (m - 1)")),
            "conv-batchnorm": _m("batch_norm_forward", (_NP_VAR, _NP_VAR + " * m / (m - 1)")),
            "torch-batchnorm": _m("BatchNormFunction.forward", _T_VAR),
        },
        breaks={
            "per-layer-normalization": frozenset({"layer-statistics/C and S"}),
            "batchnorm": frozenset({"forward"}),
            "conv-batchnorm": frozenset({"forward"}),
            "torch-batchnorm": frozenset({"function-forward"}),
        }),
    Mistake(
        student="eps-forgotten",
        description="leaves eps out of sqrt(var + eps), in training and in evaluation",
        mutations={
            "batchnorm": _m("batch_norm_forward", _NP_EPS_TRAIN) + _m("batch_norm", _NP_EPS_EVAL),
            "conv-batchnorm": _m("batch_norm_forward", _NP_EPS_TRAIN)
            + _m("batch_norm", _NP_EPS_EVAL),
            "torch-batchnorm": _m("BatchNormFunction.forward", _T_EPS_TRAIN)
            + _m("batch_norm", _T_EPS_EVAL),
        },
        breaks={
            "batchnorm": frozenset({"forward", "eval-mode"}),
            "conv-batchnorm": frozenset({"forward", "eval-mode"}),
            "torch-batchnorm": frozenset({"function-forward", "eval-mode"}),
        }),
    Mistake(
        student="wrong-axes",
        description="takes conv statistics over x.reshape(-1, C) rows instead of per channel "
                    "over (N, H, W): right for (N, C), wrong for (N, C, H, W)",
        mutations={
            "conv-batchnorm": _m("batch_norm_forward", _NP_AXES),
            "torch-batchnorm": _m("BatchNormFunction.forward", *_T_AXES),
        },
        breaks={
            "conv-batchnorm": frozenset({"forward"}),
            "torch-batchnorm": frozenset({"function-forward"}),
        }),
    Mistake(
        student="no-rescale",
        description="inverted dropout without the 1/(1 - p) scaling of kept units",
        mutations={"dropout": _m("dropout_forward", ("scale = 1.0 / (1.0 - p)", "scale = 1.0"))},
        breaks={"dropout": frozenset({"inverted-dropout/training mode",
                                      "inverted-dropout/backward"})}),
    Mistake(
        student="keep-drop-swapped",
        description="treats p as the KEEP probability everywhere",
        mutations={"dropout": (
            _m("dropout_forward", ("random(x.shape) >= p", "random(x.shape) < p"),
               ("scale = 1.0 / (1.0 - p)", "scale = 1.0 / p"))
            + _m("lecture_dropout_train", ("random(x.shape) >= p", "random(x.shape) < p"))
            + _m("lecture_dropout_inference", ("* (1.0 - p)", "* p"))
            + _m("sample_connected_masks", ("rng.random(n) >= p", "rng.random(n) < p"))
            + _m("drop_input_features", ("random(X.shape[1]) >= p", "random(X.shape[1]) < p")))},
        breaks={"dropout": frozenset({"inverted-dropout/training mode",
                                      "inverted-dropout/backward", "lecture-dropout",
                                      "connected-masks/masks",
                                      "input-dropout/dropped features"})}),
    Mistake(
        student="momentum-swapped",
        description="running = momentum * running + (1 - momentum) * batch",
        mutations={
            "batchnorm": _m("batch_norm", *_NP_MOMENTUM),
            "conv-batchnorm": _m("batch_norm", *_NP_MOMENTUM),
            "torch-batchnorm": _m("BatchNormFunction.forward", *_T_MOMENTUM),
        },
        breaks={
            "batchnorm": frozenset({"running-stats"}),
            "conv-batchnorm": frozenset({"running-stats"}),
            "torch-batchnorm": frozenset({"running-stats"}),
        }),
    Mistake(
        student="biased-running-variance",
        description="feeds running_var the biased batch variance instead of m / (m - 1) times "
                    "it",
        mutations={"torch-batchnorm": _m("BatchNormFunction.forward",
                                         ("unbiased = var * (m / (m - 1))", "unbiased = var"))},
        breaks={"torch-batchnorm": frozenset({"running-stats/running variance"})}),
    Mistake(
        student="backward-ignores-statistics",
        description="closed-form backward dx = gamma * invstd * dy, as if mean and variance "
                    "did not depend on x",
        mutations={
            "batchnorm": _m("batch_norm_backward", _NP_BACKWARD),
            "conv-batchnorm": _m("batch_norm_backward", _NP_BACKWARD),
            "torch-batchnorm": _m("BatchNormFunction.backward", _T_BACKWARD),
        },
        breaks={
            "batchnorm": frozenset({"backward-closed/dx"}),
            "conv-batchnorm": frozenset({"backward/dx"}),
            "torch-batchnorm": frozenset({"function-backward/dx"}),
        }),
)


class MutationError(ValueError):
    """A mutation does not apply: its function or its text is not where it should be."""


def _solution_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"
            and cells.is_solution(c)]


def _find_def(source: str, function: str):
    """(first line, last line) of ``function`` (``name`` or ``Class.method``), 1-based."""
    path = function.split(".")
    nodes = ast.parse(source).body
    node = None
    for name in path:
        node = next((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.ClassDef))
                     and n.name == name), None)
        if node is None:
            return None
        nodes = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return start, node.end_lineno


def mutate(nb: nbformat.NotebookNode, mutations: tuple[Mutation, ...]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with ``mutations`` applied to its solution cells."""
    nb = nbformat.from_dict(nb)
    for mut in mutations:
        hits = 0
        for cell in _solution_cells(nb):
            span = _find_def(cell.source, mut.function)
            if span is None:
                continue
            lines = cell.source.split("\n")
            text = "\n".join(lines[span[0] - 1:span[1]])
            count = text.count(mut.old)
            if count != 1:
                raise MutationError(f"{mut.function}: expected the text {mut.old!r} once, "
                                    f"found it {count} times")
            lines[span[0] - 1:span[1]] = text.replace(mut.old, mut.new).split("\n")
            cell.source = "\n".join(lines)
            hits += 1
        if hits != 1:
            raise MutationError(f"{mut.function} is defined in {hits} solution cells, not 1")
    return nb


def mutate_first(nb: nbformat.NotebookNode, variants) -> nbformat.NotebookNode:
    """``nb`` mutated by the first of ``variants`` (tuples of mutations) that applies."""
    errors = []
    for mutations in variants:
        try:
            return mutate(nb, tuple(mutations))
        except MutationError as exc:
            errors.append(str(exc))
    raise MutationError("no variant of the mutation applies: " + "; ".join(errors))


def broken_checks(assignment: str, broken: frozenset[str]) -> set[tuple[str, str]]:
    """(part id, check name) of every check ``broken`` names (``"<part>"`` for all the checks
    of a part, ``"<part>/<check>"`` for one); ``ValueError`` for a part or check the
    assignment does not have."""
    spec = ASSIGNMENTS[assignment]
    out = set()
    for entry in broken:
        part_id, _, check = entry.partition("/")
        try:
            part = spec.part(part_id)
            names = [part.check(check).name] if check else [c.name for c in part.scoring]
        except KeyError as exc:
            raise ValueError(f"{assignment}: {exc.args[0]}") from None
        out |= {(part_id, name) for name in names}
    return out


def lost_points(assignment: str, broken: frozenset[str]) -> dict[str, float]:
    """Per part, the points the checks ``broken`` names are worth."""
    spec = ASSIGNMENTS[assignment]
    lost: dict[str, float] = {}
    for part_id, name in broken_checks(assignment, broken):
        lost[part_id] = lost.get(part_id, 0.0) + spec.part(part_id).check(name).points
    return lost


def expected_score(assignment: str, broken: frozenset[str]) -> float:
    """Max score of ``assignment`` minus the points of the checks ``broken`` names."""
    return ASSIGNMENTS[assignment].max_score - sum(lost_points(assignment, broken).values())


def sample_notebooks(course_dir: Path):
    """Yield ``(student, assignment, notebook, expected_score)`` for every sample."""
    course_dir = Path(course_dir)
    for name, spec in ASSIGNMENTS.items():
        solution = course_dir / "solution" / name / f"{name}.ipynb"
        release = course_dir / "release" / name / f"{name}.ipynb"
        for path in (solution, release):
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: run `python -m autograder release "
                                        f"--out {course_dir}` first")
        sol = nbformat.read(solution, as_version=4)
        yield "perfect", name, sol, spec.max_score
        yield "empty", name, nbformat.read(release, as_version=4), 0.0
        for mistake in MISTAKES:
            if name in mistake.mutations:
                yield (mistake.student, name, mutate_first(sol, mistake.variants(name)),
                       expected_score(name, mistake.breaks[name]))


def write_samples(course_dir, dest) -> dict[tuple[str, str], float]:
    """Write every sample under ``dest/<student>/<assignment>/<assignment>.ipynb`` and return
    ``{(student, assignment): expected score}``. ``dest`` is emptied of earlier samples' student
    folders first."""
    dest = Path(dest)
    expected: dict[tuple[str, str], float] = {}
    students = {"perfect", "empty"} | {m.student for m in MISTAKES}
    for student in students:
        shutil.rmtree(dest / student, ignore_errors=True)
    for student, name, nb, score in sample_notebooks(course_dir):
        folder = dest / student / name
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
        expected[(student, name)] = float(score)
    return expected
