"""Tests for solutions.torch_bn.modules: drop-in BatchNorm1d/2d on the dispatching functional,
and convert_batchnorm for whole models."""

import pytest
import torch

from solutions.torch_bn import BatchNorm1d, BatchNorm2d, convert_batchnorm

F64 = dict(rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("ours_cls,theirs_cls,shape", [
    (BatchNorm1d, torch.nn.BatchNorm1d, (6, 4)),
    (BatchNorm1d, torch.nn.BatchNorm1d, (6, 4, 3)),
    (BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 2, 5)),
])
def test_training_then_eval_matches_torch_nn(ours_cls, theirs_cls, shape):
    """Two training steps then eval match torch.nn in float64 (outputs, grads, buffers)."""
    gen = torch.Generator().manual_seed(0)
    ours, theirs = ours_cls(4).double(), theirs_cls(4).double()
    with torch.no_grad():
        theirs.weight.normal_(generator=gen)
    ours.load_state_dict(theirs.state_dict())
    for step in range(3):
        if step == 2:
            ours.eval()
            theirs.eval()
        x = torch.randn(shape, generator=gen, dtype=torch.float64) + 2
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(xa), theirs(xb)
        ya.sum().backward()
        (yb.sum()).backward()
        torch.testing.assert_close(ya, yb, **F64)
        torch.testing.assert_close(xa.grad, xb.grad, **F64)
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, **F64)
    for name, buf in theirs.named_buffers():
        torch.testing.assert_close(getattr(ours, name), buf, **F64)
    theirs.load_state_dict(ours.state_dict(), strict=True)


def test_backend_option():
    """backend is validated, stored, shown in repr when not "auto", and used by forward."""
    with pytest.raises(ValueError, match="backend must be one of"):
        BatchNorm2d(3, backend="cudnn")
    bn = BatchNorm2d(3, backend="torch")
    assert "backend='torch'" in repr(bn) and "backend" not in repr(BatchNorm2d(3))
    y = bn(torch.randn(2, 3, 2, 2, requires_grad=True))
    assert type(y.grad_fn).__name__ == "BatchNormFunctionBackward"


def _model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4, momentum=None)),
        torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 6), torch.nn.BatchNorm1d(6),
    ).double()


def test_convert_batchnorm_keeps_the_model_function():
    """A converted model (nested BN layers too) shares parameters and buffers with the
    original and computes the same outputs and gradients, in train and eval mode."""
    torch.manual_seed(0)
    original = _model()
    converted = convert_batchnorm(_model(), backend="torch")
    converted.load_state_dict(original.state_dict())
    kinds = [type(m) for m in converted.modules()]
    assert kinds.count(BatchNorm2d) == 2 and kinds.count(BatchNorm1d) == 1
    assert torch.nn.BatchNorm2d not in kinds and torch.nn.BatchNorm1d not in kinds
    assert converted[3][1].momentum is None
    for training in (True, True, False):
        original.train(training)
        converted.train(training)
        x = torch.randn(8, 2, 5, 5, dtype=torch.float64)
        ya, yb = original(x), converted(x)
        torch.testing.assert_close(ya, yb, **F64)
        ya.square().sum().backward()
        yb.square().sum().backward()
    for (name, pa), (_, pb) in zip(original.named_parameters(), converted.named_parameters(),
                                   strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, **F64, msg=name)
    for (name, ba), (_, bb) in zip(original.named_buffers(), converted.named_buffers(),
                                   strict=True):
        torch.testing.assert_close(ba, bb, **F64, msg=name)


def test_convert_batchnorm_shares_tensors():
    """convert_batchnorm reuses the original parameter and buffer tensors (no copies)."""
    bn = torch.nn.BatchNorm1d(3)
    model = torch.nn.Sequential(bn)
    convert_batchnorm(model)
    assert model[0].weight is bn.weight and model[0].running_var is bn.running_var


@pytest.mark.parametrize("ours_cls,theirs_cls", [(BatchNorm1d, torch.nn.BatchNorm1d),
                                                 (BatchNorm2d, torch.nn.BatchNorm2d)])
def test_modules_are_torch_batch_norm_modules(ours_cls, theirs_cls):
    """Our modules are instances of torch.nn's class and of _BatchNorm, and SyncBatchNorm's
    converter turns them into SyncBatchNorm with the same parameter tensors."""
    bn = ours_cls(3, backend="torch")
    assert isinstance(bn, theirs_cls) and isinstance(bn, torch.nn.modules.batchnorm._BatchNorm)
    synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(torch.nn.Sequential(bn))[0]
    assert type(synced) is torch.nn.SyncBatchNorm and synced.weight is bn.weight


def test_old_state_dict_without_num_batches_tracked_loads():
    """A version-1 state_dict (before num_batches_tracked existed) loads strictly, as into
    torch.nn, and leaves num_batches_tracked as torch.nn does (0 on a fresh module)."""
    old = torch.nn.BatchNorm2d(3).state_dict()
    del old["num_batches_tracked"]
    old._metadata[""]["version"] = 1
    ours, theirs = BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    ours.load_state_dict(old, strict=True)
    theirs.load_state_dict(old, strict=True)
    assert "num_batches_tracked" not in old
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 0


@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_state_dict_loads_both_ways_with_torch_nn(affine, track):
    """state_dicts move strictly between our modules and torch.nn's, values unchanged."""
    gen = torch.Generator().manual_seed(5)
    theirs = torch.nn.BatchNorm1d(4, affine=affine, track_running_stats=track)
    theirs.train()
    theirs(torch.randn(8, 4, generator=gen))
    ours = BatchNorm1d(4, affine=affine, track_running_stats=track)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    back = torch.nn.BatchNorm1d(4, affine=affine, track_running_stats=track)
    back.load_state_dict(ours.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[key], value), key
