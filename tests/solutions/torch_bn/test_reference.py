"""Tests for solutions.torch_bn.reference: the readable PyTorch batch norm with its closed-form
backward, checked against torch.nn in float64 (tolerance 1e-10 relative, 1e-12 absolute)."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from solutions.torch_bn import reference as R

F64 = dict(rtol=1e-10, atol=1e-12)

SHAPES_1D = [(8, 5), (6, 5, 7)]
SHAPES_2D = [(4, 5, 3, 6)]


def _pair(kind, **kwargs):
    """A torch.nn module and the reference module with identical random parameters."""
    ours_cls, theirs_cls = {1: (R.BatchNorm1d, torch.nn.BatchNorm1d),
                            2: (R.BatchNorm2d, torch.nn.BatchNorm2d)}[kind]
    theirs = theirs_cls(5, **kwargs).double()
    ours = ours_cls(5, **kwargs).double()
    if theirs.affine:
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def _step(ours, theirs, x, dy):
    """One forward/backward through both modules; returns the pairs to compare."""
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(xa), theirs(xb)
    ya.backward(dy)
    yb.backward(dy)
    pairs = [(ya, yb), (xa.grad, xb.grad)]
    if theirs.affine:
        pairs += [(ours.weight.grad, theirs.weight.grad), (ours.bias.grad, theirs.bias.grad)]
    return pairs


def _buffers_match(ours, theirs):
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None), name
        if a is not None:
            torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
@pytest.mark.parametrize("kind,shape", [(1, s) for s in SHAPES_1D] + [(2, s) for s in SHAPES_2D])
def test_training_steps_then_eval_match_torch(kind, shape, momentum):
    """Three training steps then eval give torch.nn's outputs, dx, dgamma, dbeta and buffers."""
    gen = torch.Generator().manual_seed(0)
    ours, theirs = _pair(kind, momentum=momentum)
    for _ in range(3):
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 2
        dy = torch.randn(shape, generator=gen, dtype=torch.float64)
        for a, b in _step(ours, theirs, x, dy):
            torch.testing.assert_close(a, b, **F64)
        _buffers_match(ours, theirs)
    assert int(ours.num_batches_tracked) == 3
    ours.eval()
    theirs.eval()
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)
    for a, b in _step(ours, theirs, x, dy):
        torch.testing.assert_close(a, b, **F64)
    _buffers_match(ours, theirs)
    assert int(ours.num_batches_tracked) == 3


@pytest.mark.parametrize("affine,track", [(False, True), (True, False), (False, False)])
def test_flags_match_torch(affine, track):
    """affine=False and track_running_stats=False behave as torch.nn's, in train and eval."""
    gen = torch.Generator().manual_seed(1)
    ours, theirs = _pair(2, affine=affine, track_running_stats=track)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        x = torch.randn(4, 5, 3, 3, generator=gen, dtype=torch.float64) + 1
        dy = torch.randn(4, 5, 3, 3, generator=gen, dtype=torch.float64)
        for a, b in _step(ours, theirs, x, dy):
            torch.testing.assert_close(a, b, **F64)
        _buffers_match(ours, theirs)


def test_state_dict_loads_both_ways():
    """A trained reference module's state_dict loads into torch.nn's, and back, strictly."""
    gen = torch.Generator().manual_seed(2)
    ours, theirs = _pair(2)
    ours(torch.randn(4, 5, 2, 2, generator=gen, dtype=torch.float64))
    fresh_theirs = torch.nn.BatchNorm2d(5).double()
    fresh_theirs.load_state_dict(ours.state_dict(), strict=True)
    _buffers_match(ours, fresh_theirs)
    theirs(torch.randn(4, 5, 2, 2, generator=gen, dtype=torch.float64))
    fresh_ours = R.BatchNorm2d(5).double()
    fresh_ours.load_state_dict(theirs.state_dict(), strict=True)
    _buffers_match(fresh_ours, theirs)
    torch.testing.assert_close(fresh_ours.weight, theirs.weight, **F64)


def test_module_surface_matches_torch():
    """Parameter/buffer names, dtypes, repr and reset methods are those of torch.nn."""
    ours, theirs = R.BatchNorm1d(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    assert {k: (v.dtype, tuple(v.shape)) for k, v in ours.state_dict().items()} == \
        {k: (v.dtype, tuple(v.shape)) for k, v in theirs.state_dict().items()}
    assert repr(ours).startswith("BatchNorm1d(3, eps=1e-05, momentum=None, affine=True")
    ours(torch.randn(4, 3))
    with torch.no_grad():
        ours.weight.fill_(3)
    ours.reset_parameters()
    assert int(ours.num_batches_tracked) == 0
    assert torch.equal(ours.running_var, torch.ones(3)) and torch.equal(ours.weight, torch.ones(3))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 3, 2)])
def test_gradcheck(shape):
    """torch.autograd.gradcheck passes for input, weight and bias in float64."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(shape[1], generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(shape[1], generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x, w, b: R.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    assert torch.autograd.gradcheck(lambda x: R.batch_norm(x, None, None, training=True), (x,))


def test_functional_matches_torch_functional_on_5d_input():
    """batch_norm on (N, C, D, H, W) input matches torch.nn.functional.batch_norm."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 2, 3, 2, generator=gen, dtype=torch.float64)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    rm2, rv2 = rm.clone(), rv.clone()
    w = torch.randn(3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(R.batch_norm(x, rm, rv, w, None, True, 0.2, 1e-3),
                               torch.nn.functional.batch_norm(x, rm2, rv2, w, None, True, 0.2,
                                                              1e-3), **F64)
    torch.testing.assert_close((rm, rv), (rm2, rv2), **F64)


class _RecordOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_backward_is_not_autograd_through_torch_batch_norm(monkeypatch):
    """No aten batch-norm op runs in forward or backward, and the gradient node is ours."""
    def refuse(*args, **kwargs):
        raise AssertionError("torch's own batch norm was called")

    for name in ("batch_norm", "native_batch_norm", "_native_batch_norm_legit"):
        if hasattr(torch, name):
            monkeypatch.setattr(torch, name, refuse)
    monkeypatch.setattr(torch.nn.functional, "batch_norm", refuse)
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    bn = R.BatchNorm2d(3).double()
    with _RecordOps() as rec:
        y = bn(x)
        y.backward(torch.ones_like(y))
    assert type(y.grad_fn).__name__ == "BatchNormFunctionBackward"
    assert rec.names, "the dispatch mode recorded nothing"
    assert not [n for n in rec.names if "batch_norm" in n], rec.names


@pytest.mark.parametrize("dtype,ulps", [(torch.float32, 8), (torch.float16, 2),
                                        (torch.bfloat16, 2)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_mixed_precision_within_stated_tolerance(dtype, ulps, channels_last):
    """Low-precision input (float32 parameters) is within `ulps` units in the last place of the
    dtype (at the magnitude of the largest value) of float64 batch norm on the same rounded
    input and gradient; dgamma/dbeta (float32) within 1e-4 relative; output keeps dtype."""
    gen = torch.Generator().manual_seed(5)
    shape = (8, 4, 6, 6)
    x = (torch.randn(shape, generator=gen) * 4 + 3).to(dtype)
    dy = torch.randn(shape, generator=gen).to(dtype)
    if channels_last:
        x, dy = (t.contiguous(memory_format=torch.channels_last) for t in (x, dy))
    w = torch.randn(4, generator=gen, requires_grad=True)
    b = torch.randn(4, generator=gen, requires_grad=True)
    rm, rv = torch.zeros(4), torch.ones(4)
    xa = x.clone().requires_grad_()
    y = R.batch_norm(xa, rm, rv, w, b, training=True)
    y.backward(dy)
    assert y.dtype == dtype and xa.grad.dtype == dtype and w.grad.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last

    x64 = x.double().requires_grad_()
    w64, b64 = w.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    rm64, rv64 = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    y64 = torch.nn.functional.batch_norm(x64, rm64, rv64, w64, b64, training=True)
    y64.backward(dy.double())
    eps = torch.finfo(dtype).eps
    for got, want in [(y, y64), (xa.grad, x64.grad)]:
        err = (got.double() - want).abs().max().item()
        assert err <= ulps * eps * want.abs().max().item(), (err, dtype)
    for got, want in [(w.grad, w64.grad), (b.grad, b64.grad), (rm, rm64), (rv, rv64)]:
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * want.abs().max())


def test_large_mean_float32_is_stable():
    """float32 input with mean 1e4 and spread 1 keeps variance to 1e-4 relative (two-pass);
    the one-pass E[x^2] - E[x]^2 on the same data is off by more than 10%."""
    gen = torch.Generator().manual_seed(6)
    x = (1e4 + torch.randn(64, 3, 8, 8, generator=gen, dtype=torch.float64)).float()
    rm, rv = torch.zeros(3), torch.ones(3)
    y = R.batch_norm(x, rm, rv, training=True, momentum=1.0)
    x64 = x.double()
    var64 = x64.var(dim=(0, 2, 3), unbiased=True)
    torch.testing.assert_close(rv.double(), var64, rtol=1e-4, atol=0)
    y64 = torch.nn.functional.batch_norm(x64, None, None, training=True)
    assert (y.double() - y64).abs().max().item() < 2e-3
    naive = (x * x).mean(dim=(0, 2, 3)) - x.mean(dim=(0, 2, 3)) ** 2
    biased64 = x64.var(dim=(0, 2, 3), unbiased=False)
    assert ((naive.double() - biased64).abs() / biased64).max().item() > 0.1


@pytest.mark.parametrize("make", [
    lambda x: x.contiguous(memory_format=torch.channels_last),
    lambda x: x.transpose(2, 3).contiguous().transpose(2, 3),
    lambda x: torch.stack([x, -x], dim=-1)[..., 0],
], ids=["channels_last", "transposed", "strided"])
def test_memory_layouts_give_the_same_answer(make):
    """Channels-last, transposed and strided inputs give the contiguous input's results, and the
    output is channels_last exactly when torch's is."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64)
    dy = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64)
    results = []
    for inp in (x, make(x)):
        assert torch.equal(inp, x)
        inp = inp.detach().requires_grad_()
        bn = R.BatchNorm2d(4).double()
        y = bn(inp)
        y.backward(dy)
        results.append((y, inp.grad, bn.weight.grad, bn.bias.grad, bn.running_mean,
                        bn.running_var))
        ref = torch.nn.BatchNorm2d(4).double()(inp.detach())
        cl = torch.channels_last
        assert y.is_contiguous(memory_format=cl) == ref.is_contiguous(memory_format=cl)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **F64)


def test_one_value_per_channel_in_training_is_a_value_error():
    """Training with one value per channel raises ValueError as torch does; eval accepts it."""
    bn = R.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(torch.randn(1, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        R.batch_norm(torch.randn(1, 3, 1, 1), None, None, training=True)
    bn.eval()
    assert bn(torch.randn(1, 3)).shape == (1, 3)


@pytest.mark.parametrize("module,shape,expected", [
    (R.BatchNorm1d, (2, 3, 4, 5), r"2D or 3D input of shape \(N, C\) or \(N, C, L\)"),
    (R.BatchNorm1d, (3,), r"2D or 3D input"),
    (R.BatchNorm2d, (2, 3, 4), r"4D input of shape \(N, C, H, W\)"),
])
def test_wrong_rank_is_a_value_error_naming_shapes(module, shape, expected):
    """A module given input of the wrong rank raises ValueError naming the expected shapes."""
    with pytest.raises(ValueError, match=expected):
        module(3)(torch.randn(shape))


def test_functional_argument_errors():
    """The functional rejects 1-D input (ValueError naming shapes), mis-sized per-channel
    tensors and missing running statistics in eval mode (RuntimeError, as torch)."""
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, \*\)"):
        R.batch_norm(torch.randn(5), None, None, training=True)
    with pytest.raises(RuntimeError, match="running_mean should contain 3 elements not 4"):
        R.batch_norm(torch.randn(2, 3), torch.zeros(4), torch.ones(3), training=True)
    with pytest.raises(RuntimeError, match="weight should contain 3 elements not 2"):
        R.batch_norm(torch.randn(2, 3), None, None, torch.ones(2), training=True)
    with pytest.raises(RuntimeError, match="must be defined in evaluation mode"):
        R.batch_norm(torch.randn(2, 3), None, None, training=False)


def test_empty_batch_leaves_running_statistics_alone():
    """An empty batch in training leaves the running buffers as torch does."""
    ours, theirs = R.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    assert ours(torch.randn(0, 3)).shape == (0, 3)
    theirs(torch.randn(0, 3))
    _buffers_match(ours, theirs)


def test_double_backward_is_refused():
    """Differentiating the hand-written backward raises instead of returning a wrong answer."""
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    y = R.batch_norm(x, None, None, training=True)
    (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
