"""Tests for solutions.torch_bn.triton_kernels: the fused Triton batch-norm kernels.

On the CPU the kernels run under Triton's interpreter (TRITON_INTERPRET=1) on tiny shapes. The
variable is read when the kernels are decorated, so the interpreted cases run in ONE child
process per test run (``python tests/solutions/torch_bn/test_triton_kernels.py --interpret``)
that prints a JSON report; the pytest processes never set the variable, so their other tests
(and the compile tests here, which build sm_90 cubins from the uninterpreted kernels without a
GPU) see an untouched environment. Each case is compared with float64
torch.nn.functional.batch_norm on the same (rounded) input; tolerances are stated per case.
CUDA tests run on the real kernels and skip, with the reason shown, where no GPU is present.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]

# id -> (shape, dtype, layout, config, affine, running); config: a tuple of LaunchConfig args
# (block_a, block_b, block_c, split_a[, split_b]), a dict of launch_config keyword arguments
# (the heuristic with a tiny tile and program target), or None for the default heuristic.
# layouts: "nchw" contiguous, "cl" channels_last, "t" a transposed (non-contiguous) view.
# Cases named "...both-axes" must cut every channel's values along A and B.
CASES = {
    "f64-nchw-split": ((4, 3, 5, 6), "float64", "nchw", (2, 4, 1, 3), True, True),
    "f64-nchw-fused": ((4, 3, 5, 6), "float64", "nchw", (2, 8, 1, 1), True, True),
    "f64-nchw-heuristic": ((4, 3, 5, 6), "float64", "nchw", None, True, True),
    "f64-nchw-split-both-axes": ((4, 3, 5, 6), "float64", "nchw", (2, 4, 1, 2, 3), True, True),
    "f64-nchw-split-b-only": ((1, 2, 8, 8), "float64", "nchw", (1, 4, 1, 1, 4), True, True),
    "f64-nchw-ragged-tiles": ((7, 2, 5, 5), "float64", "nchw", (2, 8, 1, 1), True, True),
    "f32-nchw-ragged-both-axes": ((7, 2, 5, 5), "float32", "nchw", (2, 8, 1, 2, 2), True, True),
    "f64-cl-ragged-tiles": ((5, 3, 3, 3), "float64", "cl", (4, 1, 2, 1), True, True),
    "f32-heuristic-split-both-axes": ((4, 2, 6, 6), "float32", "nchw",
                                      {"tile": 8, "target_programs": 16}, True, True),
    "f64-cl-split-masked-channels": ((4, 3, 5, 6), "float64", "cl", (4, 1, 2, 2), True, True),
    "f64-cl-fused": ((4, 3, 2, 3), "float64", "cl", (8, 1, 4, 1), True, True),
    "f64-2d-split": ((7, 5), "float64", "nchw", (2, 1, 2, 2), True, True),
    "f64-3d-no-affine-no-running": ((7, 5, 3), "float64", "nchw", (2, 2, 1, 1), False, False),
    "f64-transposed-copy": ((3, 2, 4, 5), "float64", "t", (2, 4, 1, 2), True, True),
    "f32-large-mean": ((8, 2, 4, 4), "float32", "nchw", (2, 8, 1, 3), True, True),
    "f16-cl": ((4, 3, 4, 4), "float16", "cl", (8, 1, 4, 2), True, True),
    "bf16-nchw": ((4, 3, 4, 4), "bfloat16", "nchw", (2, 8, 1, 2), True, True),
}
# Tolerances. The output is rounded once to the dtype: ULPS units of its machine epsilon times
# the largest reference value. Centering x - mean in the accumulation type (eps_acc) adds, to
# first order, an error of c = 4 * eps_acc * max|x| * max(invstd) to every x_hat; y, dx and
# dgamma get the bounds that follow from it (large for the large-mean float32 case, negligible
# otherwise). dgamma, dbeta and the running statistics: REL_PARAMS relative (plus their share
# of c); the batch variance itself: VAR_REL relative.
ULPS = {"float64": 64, "float32": 8, "float16": 2, "bfloat16": 2}
REL_PARAMS = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-5, "bfloat16": 1e-5}
VAR_REL = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-5, "bfloat16": 1e-5}


# ----------------------------------------------------------------------------- child process

def _make_input(shape, dtype, layout, gen):
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 3
    if dtype == "float32":   # the large-mean case: mean 1e4, spread 1
        x = x - 3 + 1e4
    x = x.to(getattr(torch, dtype))
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "t":
        x = x.transpose(2, 3).contiguous().transpose(2, 3)
    return x


def _run_case(name):
    from solutions.torch_bn import triton_kernels as K

    shape, dtype, layout, cfg, affine, running = CASES[name]
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    x = _make_input(shape, dtype, layout, gen)
    dy = torch.randn(shape, generator=gen).to(x.dtype)
    C = shape[1]
    pdtype = torch.float64 if dtype == "float64" else torch.float32
    w = torch.randn(C, generator=gen, dtype=pdtype) if affine else None
    b = torch.randn(C, generator=gen, dtype=pdtype) if affine else None
    rm = torch.randn(C, generator=gen, dtype=pdtype) if running else None
    rv = torch.rand(C, generator=gen, dtype=pdtype) + 0.5 if running else None
    rm0, rv0 = (rm.clone(), rv.clone()) if running else (None, None)
    if isinstance(cfg, dict):
        config = K.launch_config(K.layout_of(x), x.device, **cfg)
    else:
        config = K.LaunchConfig(*cfg) if cfg else None
    y, x_used, mean, invstd = K.forward(x, w, b, rm, rv, 0.1, 1e-5, config)
    grid = K._grid(K.layout_of(x_used), config or K.launch_config(K.layout_of(x_used), x.device))
    dx, dw, db = K.backward(dy, x_used, w, affine, mean, invstd, config)

    x64 = x.double().requires_grad_()
    w64 = w.double().requires_grad_() if affine else None
    b64 = b.double().requires_grad_() if affine else None
    rm64, rv64 = (rm0.double(), rv0.double()) if running else (None, None)
    y64 = torch.nn.functional.batch_norm(x64, rm64, rv64, w64, b64, True, 0.1, 1e-5)
    y64.backward(dy.double())
    eps = torch.finfo(x.dtype).eps
    eps_acc = torch.finfo(mean.dtype).eps
    report = {"layout_kept": bool(
        y.is_contiguous(memory_format=torch.channels_last) == (layout == "cl")
        and dx.stride() == y.stride() and y.dtype == x.dtype and dx.dtype == x.dtype),
        "splits": [grid.split_a, grid.split_b]}
    dims = [0] + list(range(2, x.dim()))
    x64d = x64.detach()
    var64 = x64d.var(dim=dims, unbiased=False)
    invstd64 = (var64 + 1e-5).rsqrt()
    gamma = w64.detach().abs().max().item() if affine else 1.0
    m = x.numel() // C
    c = 4 * eps_acc * x64d.abs().max().item() * invstd64.max().item()
    sum_abs_dy = dy.double().abs().sum(dim=dims).max().item()
    xhat_max = ((x64d - x64d.mean(dim=dims, keepdim=True)).abs().amax(dim=dims)
                * invstd64).max().item()
    bound = {
        "y": ULPS[dtype] * eps * y64.abs().max().item() + c * gamma,
        "dx": ULPS[dtype] * eps * x64.grad.abs().max().item()
        + c * gamma * invstd64.max().item() * 2 * sum_abs_dy * max(1.0, xhat_max) / m,
    }
    pairs = [("y", y, y64), ("dx", dx, x64.grad)]
    if affine:
        pairs += [("dweight", dw, w64.grad), ("dbias", db, b64.grad)]
        bound["dweight"] = REL_PARAMS[dtype] * max(1.0, w64.grad.abs().max().item()) \
            + c * sum_abs_dy
        bound["dbias"] = REL_PARAMS[dtype] * max(1.0, b64.grad.abs().max().item())
    if running:
        pairs += [("running_mean", rm, rm64), ("running_var", rv, rv64)]
        bound["running_mean"] = REL_PARAMS[dtype] * max(1.0, rm64.abs().max().item())
        bound["running_var"] = REL_PARAMS[dtype] * max(1.0, rv64.abs().max().item())
    for key, got, want in pairs:
        report[key] = [(got.double() - want).abs().max().item(), bound[key]]
    var = invstd.double() ** -2 - 1e-5
    report["batch_var"] = [((var - var64).abs() / var64).max().item(), VAR_REL[dtype]]
    return report


def _run_module_training():
    """BatchNorm2d(backend="triton") against torch.nn.BatchNorm2d in float64: two training
    steps, then eval; also checks that no aten batch-norm op runs."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from solutions.torch_bn import BatchNorm2d

    class Record(TorchDispatchMode):
        names: list = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    gen = torch.Generator().manual_seed(11)
    ours, theirs = BatchNorm2d(3, backend="triton").double(), torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        theirs.weight.normal_(generator=gen)
        theirs.bias.normal_(generator=gen)
    ours.load_state_dict(theirs.state_dict())
    errs, grad_fns = {}, set()
    for step in range(3):
        if step == 2:
            ours.eval()
            theirs.eval()
        x = torch.randn(4, 3, 3, 5, generator=gen, dtype=torch.float64) * 2 + 1
        dy = torch.randn(4, 3, 3, 5, generator=gen, dtype=torch.float64)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        with Record():
            ya = ours(xa)
            ya.backward(dy)
        grad_fns.add(type(ya.grad_fn).__name__)
        yb = theirs(xb)
        yb.backward(dy)
        for key, a, b in [("y", ya, yb), ("dx", xa.grad, xb.grad),
                          ("dweight", ours.weight.grad, theirs.weight.grad),
                          ("dbias", ours.bias.grad, theirs.bias.grad),
                          ("running_mean", ours.running_mean, theirs.running_mean),
                          ("running_var", ours.running_var, theirs.running_var),
                          ("num_batches_tracked", ours.num_batches_tracked.double(),
                           theirs.num_batches_tracked.double())]:
            errs[key] = max(errs.get(key, 0.0), (a - b).abs().max().item())
    return {"errors": errs, "grad_fns": sorted(grad_fns),
            "batch_norm_ops": sorted({n for n in Record.names if "batch_norm" in n})}


def _run_gradcheck():
    from solutions.torch_bn import functional

    gen = torch.Generator().manual_seed(12)
    x = torch.randn(3, 2, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    return bool(torch.autograd.gradcheck(
        lambda x, w, b: functional.batch_norm(x, None, None, w, b, True, backend="triton"),
        (x, w, b)))


def _run_strided_per_channel():
    """weight, bias and the running buffers as strided views (every other entry of a bigger
    tensor) through backend="triton", against torch.nn.functional on the same views (float64):
    the largest differences, and whether the entries in between were left alone."""
    from solutions.torch_bn import functional

    gen = torch.Generator().manual_seed(13)
    f64 = dict(generator=gen, dtype=torch.float64)
    x = torch.randn(4, 3, 5, 6, **f64) * 2 + 1
    dy = torch.randn(4, 3, 5, 6, **f64)
    big = [torch.randn(6, **f64) for _ in range(3)] + [torch.rand(6, **f64) + 0.5]
    got, want = [], []
    for side in (got, want):
        w_big, b_big = big[0].clone().requires_grad_(), big[1].clone().requires_grad_()
        rm_big, rv_big = big[2].clone(), big[3].clone()
        xs = x.clone().requires_grad_()
        args = (xs, rm_big[::2], rv_big[::2], w_big[::2], b_big[::2], True, 0.1, 1e-5)
        y = (functional.batch_norm(*args, backend="triton") if side is got
             else torch.nn.functional.batch_norm(*args))
        y.backward(dy)
        side += [y, xs.grad, w_big.grad, b_big.grad, rm_big, rv_big]
    names = ["y", "dx", "dweight", "dbias", "running_mean", "running_var"]
    errors = {n: (a - b).abs().max().item() for n, a, b in zip(names, got, want, strict=True)}
    untouched = all(torch.equal(t[1::2], b[1::2]) for t, b in zip(got[4:], big[2:], strict=True))
    return {"errors": errors, "untouched": untouched}


def _child_main():
    assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"
    report = {"cases": {name: _run_case(name) for name in CASES},
              "module": _run_module_training(), "gradcheck": _run_gradcheck(),
              "strided": _run_strided_per_channel()}
    print("JSON:" + json.dumps(report))


# ----------------------------------------------------------------------------- tests

def _interpret_in_child():
    env = dict(os.environ, TRITON_INTERPRET="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(Path(__file__)), "--interpret"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON:")]
    assert proc.returncode == 0 and lines, f"interpreter run failed:\n{proc.stderr[-4000:]}"
    return json.loads(lines[-1][len("JSON:"):])


@pytest.fixture(scope="session")
def interpreted(tmp_path_factory):
    """The child process's report, computed once per test run: under pytest-xdist the workers
    share it through a file in the run's common temporary directory, guarded by a lock (the
    tests of this module may be spread over several workers)."""
    pytest.importorskip("triton", reason="triton is not installed")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _interpret_in_child()
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "torch_bn_triton_interpret.json"
    with FileLock(str(shared) + ".lock"):
        if not shared.exists():
            shared.write_text(json.dumps(_interpret_in_child()))
        return json.loads(shared.read_text())




@pytest.mark.parametrize("name", list(CASES))
def test_interpreted_kernels_match_float64_torch(interpreted, name):
    """Under TRITON_INTERPRET=1, forward (y, running stats) and backward (dx, dgamma, dbeta)
    match float64 torch within the stated tolerances, keeping dtype and memory format."""
    report = dict(interpreted["cases"][name])
    assert report.pop("layout_kept"), name
    split_a, split_b = report.pop("splits")
    if name.endswith("both-axes"):
        assert split_a > 1 and split_b > 1, (split_a, split_b)
    bad = {k: v for k, v in report.items() if not v[0] <= v[1]}
    assert not bad, f"{name}: error above tolerance: {bad}"
    expected = {"y", "dx", "batch_var"} | ({"dweight", "dbias"} if CASES[name][4] else set()) | (
        {"running_mean", "running_var"} if CASES[name][5] else set())
    assert set(report) == expected


def test_interpreted_module_trains_like_torch_nn(interpreted):
    """BatchNorm2d(backend="triton") matches torch.nn.BatchNorm2d over two training steps and
    eval (float64, 1e-10), its gradient node is the Triton Function and no aten batch-norm op
    runs."""
    module = interpreted["module"]
    assert all(v <= 1e-10 for v in module["errors"].values()), module["errors"]
    assert "TritonBatchNormFunctionBackward" in module["grad_fns"]
    assert module["batch_norm_ops"] == []


def test_interpreted_gradcheck(interpreted):
    """torch.autograd.gradcheck passes through the Triton Function (float64, interpreter)."""
    assert interpreted["gradcheck"] is True


def test_interpreted_strided_per_channel_tensors(interpreted):
    """Strided views as weight, bias and running buffers (bn.weight = big[::2]) are addressed
    correctly, their running statistics are updated in the caller's tensors, the entries in
    between stay untouched, and the gradients reach the big tensors (float64, 1e-12)."""
    strided = interpreted["strided"]
    assert all(v <= 1e-12 for v in strided["errors"].values()), strided["errors"]
    assert strided["untouched"]


def test_launch_config_rejects_bad_tiles():
    """LaunchConfig refuses tile sizes that are not powers of two and a split below one."""
    pytest.importorskip("triton", reason="triton is not installed")
    from solutions.torch_bn.triton_kernels import LaunchConfig

    with pytest.raises(ValueError, match="block_a must be a power of two"):
        LaunchConfig(3, 1, 1, 1)
    with pytest.raises(ValueError, match="split_a must be >= 1"):
        LaunchConfig(1, 1, 1, 0)
    with pytest.raises(ValueError, match="split_b must be >= 1"):
        LaunchConfig(1, 1, 1, 1, 0)


@pytest.mark.parametrize("shape,channels_last,cut_b", [
    ((1, 64, 112, 112), False, True),    # A = N = 1: only B can be cut
    ((4, 64, 56, 56), False, True),
    ((2, 128, 56, 56), False, True),
    ((8, 256, 28, 28), False, False),    # 784 values per image: one tile of 1024, no cut
    ((256, 64, 112, 112), False, False),  # A alone gives enough slices
    ((1, 64, 112, 112), True, False),    # channels-last: B = 1, A = N * H * W
    ((32, 256), False, False),
])
def test_launch_config_fills_the_gpu(shape, channels_last, cut_b):
    """With 528 programs wanted (an H100: 132 SMs x 4), the heuristic cuts each channel's values
    along A and, when A alone gives too few slices (a small batch of large images in NCHW),
    along B too, so that at least half of the target is launched; configurations that need
    no cut along B get none."""
    pytest.importorskip("triton", reason="triton is not installed")
    from solutions.torch_bn import triton_kernels as K

    x = torch.empty(shape, device="meta")
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    lay = K.layout_of(x)
    cfg = K.launch_config(lay, x.device, target_programs=528)
    grid = K._grid(lay, cfg)
    tiles = grid.shape[0] * -(-lay.A // cfg.block_a) * -(-lay.B // cfg.block_b)
    assert (grid.split_b > 1) == cut_b, grid
    assert grid.shape[0] * grid.slices >= min(264, tiles), (grid, tiles)


def test_launch_config_keeps_many_channels_fused():
    """2048 NCHW channels fill the GPU alone: one slice per channel, the fused path."""
    pytest.importorskip("triton", reason="triton is not installed")
    from solutions.torch_bn import triton_kernels as K

    lay = K.layout_of(torch.empty(256, 2048, 7, 7, device="meta"))
    assert K._grid(lay, K.launch_config(lay, torch.device("meta"), target_programs=528)).slices \
        == 1



# ----------------------------------------------------------------------------- compile for sm_90

def _barriers_in_loops(ptx):
    """How many bar.sync instructions of the PTX lie inside a loop (between a label and a
    later branch back to it): a block-wide reduction or layout change in a tile loop."""
    import re

    lines = ptx.splitlines()
    labels = {m.group(1): i for i, ln in enumerate(lines)
              if (m := re.match(r"^(\$L__BB\d+_\d+):", ln))}
    loops = [(labels[m.group(1)], i) for i, ln in enumerate(lines)
             if (m := re.search(r"bra(?:\.uni)?\s+(\$L__BB\d+_\d+);", ln))
             and labels.get(m.group(1), len(lines)) < i]
    return sum(1 for i, ln in enumerate(lines) if "bar.sync" in ln
               and any(start <= i <= end for start, end in loops))


def _compile_for_h100(fn, pointer_types, constexprs, divisible_by_16):
    """Compile a kernel to an sm_90 cubin without a GPU, specialized as a launch would be:
    pointers 16-byte aligned, the named integers divisible by 16, strides of 1 as constants."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = fn.arg_names
    signature, attrs = {}, {}
    for i, name in enumerate(names):
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = pointer_types.get(name, "*fp32")
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif name in FLOAT_SCALARS:
            signature[name] = "fp64"
        else:
            signature[name] = "i32"
            if name in divisible_by_16:
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(fn=fn, signature=signature, attrs=attrs,
                    constexprs={(names.index(k),): v for k, v in constexprs.items()})
    return triton.compile(src, target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": 8, "enable_fp_fusion": True})


FLOAT_SCALARS = ("momentum", "eps", "m")
KERNELS = ("_forward_reduce_kernel", "_forward_finalize_kernel", "_forward_apply_kernel",
           "_backward_reduce_kernel", "_backward_finalize_kernel", "_backward_dx_kernel")


def test_float_scalars_are_declared_float64():
    """momentum, eps and m are declared tl.float64 in every kernel that takes them, so that a
    compiled kernel receives them in float64 as the interpreter does (an undeclared Python
    float becomes a float32 argument on the GPU, but stays float64 under TRITON_INTERPRET=1)."""
    pytest.importorskip("triton", reason="triton is not installed")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("TRITON_INTERPRET=1 in this process: kernels are interpreted, not compiled")
    from solutions.torch_bn import triton_kernels as K

    declared = {}
    for kernel in KERNELS:
        for param in getattr(K, kernel).params:
            if param.name in FLOAT_SCALARS:
                declared[(kernel, param.name)] = param.annotation_type
    assert len(declared) == 6 and set(declared.values()) == {"fp64"}, declared


# (kernel, element type, layout, extra constexprs); NCHW tiles 4x1024x1, channels-last 64x1x64
COMPILE_CASES = [
    ("_forward_reduce_kernel", "fp32", "nchw", {"FUSED": True}),
    ("_forward_reduce_kernel", "fp32", "nchw", {"FUSED": False, "SPLIT_B": True}),
    ("_forward_reduce_kernel", "bf16", "nchw", {"FUSED": False}),
    ("_forward_reduce_kernel", "fp16", "cl", {"FUSED": True}),
    ("_forward_reduce_kernel", "fp64", "cl", {"FUSED": False}),
    ("_forward_apply_kernel", "bf16", "cl", {}),
    ("_backward_reduce_kernel", "fp32", "nchw", {"FUSED": True}),
    ("_backward_reduce_kernel", "bf16", "cl", {"FUSED": False}),
    ("_backward_dx_kernel", "fp32", "nchw", {}),
    ("_backward_dx_kernel", "bf16", "nchw", {"SPLIT_B": True}),
    ("_forward_finalize_kernel", "fp32", "vector", {"BLOCK": 256}),
    ("_forward_finalize_kernel", "fp64", "vector", {"BLOCK": 256}),
    ("_backward_finalize_kernel", "fp32", "vector", {"BLOCK": 256}),
    ("_backward_finalize_kernel", "fp64", "vector", {"BLOCK": 256}),
]


@pytest.mark.parametrize("kernel,elem,layout,extra", COMPILE_CASES,
                         ids=[f"{k}-{e}-{lay}-{x}" for k, e, lay, x in COMPILE_CASES])
def test_kernels_compile_for_h100_with_vector_loads(kernel, elem, layout, extra, tmp_path):
    """Each kernel compiles (no GPU needed) to an sm_90 cubin without register spills (checked
    with Triton's bundled cuobjdump), and the tile kernels load the contiguous axis of either
    layout with 128-bit vector loads and have no barrier (block-wide reduction, layout change
    through shared memory) inside their tile loops."""
    pytest.importorskip("triton", reason="triton is not installed")
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("TRITON_INTERPRET=1 in this process: kernels are interpreted, not compiled")
    import triton.language as tl

    from solutions.torch_bn import triton_kernels as K

    fn = getattr(K, kernel)
    acc = tl.float64 if elem == "fp64" else tl.float32
    params = set(fn.arg_names)
    flags = {k: True for k in ("HAS_WEIGHT", "HAS_BIAS", "HAS_RMEAN", "HAS_RVAR")
             if k in params}
    if layout == "vector":   # the per-channel finalize kernels
        constexprs, div16 = {}, ("C",)
    elif layout == "nchw":
        constexprs = dict(sB=1, BLOCK_A=4, BLOCK_B=1024, BLOCK_C=1)
        div16 = ("B", "sA", "sC", "a_per_split", "b_per_split")
    else:   # B = 1, hence one column per slice: Triton specializes arguments equal to 1
        constexprs = dict(B=1, sB=1, sC=1, b_per_split=1, BLOCK_A=64, BLOCK_B=1, BLOCK_C=64)
        div16 = ("C", "sA", "a_per_split")
    if "SPLIT_B" in params:
        constexprs["SPLIT_B"] = False
    constexprs.update(flags, ACC=acc, **extra)
    pointers = {p: f"*{elem}" for p in ("x_ptr", "y_ptr", "dy_ptr", "dx_ptr") if p in params}
    compiled = _compile_for_h100(fn, pointers, constexprs, div16)
    assert compiled.asm["cubin"]
    if layout != "vector":
        assert "ld.global.v" in compiled.asm["ptx"]
        assert _barriers_in_loops(compiled.asm["ptx"]) == 0
    cuobjdump = Path(K.triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    if cuobjdump.exists():
        cubin = tmp_path / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage = subprocess.run([str(cuobjdump), "--dump-resource-usage", str(cubin)],
                               capture_output=True, text=True, check=True).stdout
        assert " LOCAL:0 " in usage, usage


# ----------------------------------------------------------------------------- CUDA

cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


@cuda
@pytest.mark.cuda
def test_cuda_selects_triton():
    """On CUDA, batch_norm in training picks the Triton kernels automatically."""
    from solutions.torch_bn import functional

    x = torch.randn(4, 3, 5, 5, device="cuda", requires_grad=True)
    assert functional.select_backend(x) == "triton"
    y = functional.batch_norm(x, None, None, training=True)
    assert type(y.grad_fn).__name__ == "TritonBatchNormFunctionBackward"


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("shape", [(32, 64, 28, 28), (8, 256, 14, 14), (32, 2048, 7, 7),
                                   (1, 64, 112, 112), (2, 128, 56, 56), (256, 7), (3, 5, 1, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_cuda_kernels_match_torch_nn(shape, dtype, channels_last):
    """On CUDA, the Triton module matches float64 torch.nn within 8 ulps (y, dx) of the dtype
    and 1e-4 relative (dgamma, dbeta, running statistics)."""
    from solutions.torch_bn import BatchNorm1d, BatchNorm2d

    if channels_last and len(shape) != 4:
        pytest.skip("channels_last needs 4-D input")
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.randn(shape, generator=gen, device="cuda") * 3 + 2).to(dtype)
    dy = torch.randn(shape, generator=gen, device="cuda").to(dtype)
    if channels_last:
        x, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, dy))
    cls, ref_cls = ((BatchNorm2d, torch.nn.BatchNorm2d) if len(shape) == 4
                    else (BatchNorm1d, torch.nn.BatchNorm1d))
    ours = cls(shape[1]).cuda()
    ref = ref_cls(shape[1]).cuda().double()
    xa, xb = x.clone().requires_grad_(), x.double().requires_grad_()
    ya, yb = ours(xa), ref(xb)
    ya.backward(dy)
    yb.backward(dy.double())
    eps = torch.finfo(dtype).eps
    for got, want in [(ya, yb), (xa.grad, xb.grad)]:
        assert (got.double() - want).abs().max().item() <= 8 * eps * want.abs().max().item()
    for got, want in [(ours.weight.grad, ref.weight.grad), (ours.bias.grad, ref.bias.grad),
                      (ours.running_mean, ref.running_mean), (ours.running_var, ref.running_var)]:
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * want.abs().max())
    assert ya.is_contiguous(memory_format=torch.channels_last) == channels_last or len(shape) != 4


@cuda
@pytest.mark.cuda
def test_cuda_large_mean_float32():
    """On CUDA, float32 input with mean 1e4 keeps the variance to 1e-4 relative."""
    from solutions.torch_bn import functional

    x = (1e4 + torch.randn(256, 8, 16, 16, device="cuda", dtype=torch.float64)).float()
    rm, rv = torch.zeros(8, device="cuda"), torch.ones(8, device="cuda")
    functional.batch_norm(x, rm, rv, training=True, momentum=1.0)
    torch.testing.assert_close(rv.double(), x.double().var(dim=(0, 2, 3)), rtol=1e-4, atol=0)


@cuda
@pytest.mark.cuda
def test_cuda_float64_is_exact_with_explicit_triton():
    """On CUDA, "auto" sends float64 to the torch ops, and backend="triton" in float64 matches
    float64 torch to 1e-12 relative (y, running statistics, dx): momentum, eps and m reach the
    compiled kernels in float64, not float32."""
    from solutions.torch_bn import functional

    gen = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(16, 5, 9, 9, generator=gen, device="cuda", dtype=torch.float64) * 1e-3 + 1
    assert functional.select_backend(x) == "torch"
    rm, rv = torch.zeros(5, device="cuda", dtype=torch.float64), torch.ones_like(x[0, :, 0, 0])
    rm_e, rv_e = rm.clone(), rv.clone()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = functional.batch_norm(xa, rm, rv, training=True, momentum=0.1, eps=1e-5,
                               backend="triton")
    yb = torch.nn.functional.batch_norm(xb, rm_e, rv_e, training=True, momentum=0.1, eps=1e-5)
    dy = torch.randn(x.shape, generator=gen, device="cuda", dtype=torch.float64)
    ya.backward(dy)
    yb.backward(dy)
    for got, want in [(ya, yb), (rm, rm_e), (rv, rv_e), (xa.grad, xb.grad)]:
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12 * want.abs().max().item())


if __name__ == "__main__" and "--interpret" in sys.argv:
    _child_main()
