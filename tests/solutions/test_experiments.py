"""Tests for solutions/experiments.py: models, the seeded training loop, probes, experiments."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from solutions import experiments as ex
from solutions.digits import Digits, load_sklearn_digits
from solutions.experiments import RunConfig


@pytest.fixture(scope="module")
def data():
    return load_sklearn_digits()


@pytest.fixture(scope="module")
def tiny():
    """A 120/60 slice of the digits, enough for a few steps."""
    d = load_sklearn_digits()
    return Digits(d.x_train[:120], d.y_train[:120], d.x_test[:60], d.y_test[:60], (8, 8),
                  "tiny digits")


def test_mlp_layer_order_with_bn_and_dropout():
    """Each hidden layer is Linear (no bias) -> BatchNorm1d -> activation -> Dropout(p)."""
    torch.manual_seed(0)
    model = ex.make_mlp(64, 10, (100, 50), "sigmoid", batchnorm=True, dropout=0.3)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.Sigmoid, nn.Dropout] * 2 + [nn.Linear]
    assert model[0].bias is None and model[-1].bias is not None
    assert model[3].p == 0.3
    bn = model[1]
    assert bn.eps == 1e-5 and bn.momentum == 0.1
    assert model(torch.zeros(7, 64)).shape == (7, 10)


def test_mlp_without_bn_has_biases_and_no_bn():
    """Without BN the hidden Linear layers keep their bias and no BN layer appears."""
    model = ex.make_mlp(8, 3, (5,), "relu")
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]
    assert model[0].bias is not None


def test_small_variance_init():
    """init_std draws weights from N(0, init_std^2) and zeroes the biases."""
    torch.manual_seed(0)
    model = ex.make_mlp(200, 10, (200,), init_std=0.05)
    w = model[0].weight.detach()
    assert abs(w.std().item() - 0.05) < 0.002 and abs(w.mean().item()) < 0.002
    assert torch.count_nonzero(model[0].bias) == 0


def test_default_init_kept_when_init_std_none():
    """init_std=None keeps PyTorch's default uniform initialization."""
    torch.manual_seed(0)
    model = ex.make_mlp(100, 10, (100,), init_std=None)
    bound = 1 / math.sqrt(100)
    assert model[0].weight.abs().max().item() <= bound


def test_unknown_activation_refused():
    """An activation other than relu/sigmoid is refused by name."""
    with pytest.raises(ValueError, match="tanh"):
        ex.make_mlp(4, 2, (3,), "tanh")
    with pytest.raises(ValueError, match="tanh"):
        RunConfig(activation="tanh")


@pytest.mark.parametrize("kwargs, match", [
    ({"dropout": 1.0}, "probability of dropping"),
    ({"batchnorm": True, "batch_size": 1}, "at least 2"),
    ({"lr": 0.0}, "lr > 0"),
    ({"hidden": ()}, "at least one"),
    ({"init_std": -1.0}, "init_std"),
    ({"probe_layer": 3}, "does not exist"),
])
def test_run_config_validation(kwargs, match):
    """Impossible settings are refused with a message naming the problem."""
    with pytest.raises(ValueError, match=match):
        RunConfig(**kwargs)


def test_run_config_label():
    """The label names activation, BN/dropout and learning rate."""
    assert RunConfig(batchnorm=True, dropout=0.5, lr=0.05).label() == "relu BN+dropout0.5 lr0.05"
    assert RunConfig().label() == "relu plain lr0.01"


def test_train_run_is_deterministic(tiny):
    """The same seed gives identical curves and weights; another seed gives different ones."""
    cfg = RunConfig(batchnorm=True, dropout=0.2, batch_size=20, steps=12, eval_every=4)
    a = ex.train_run(tiny, cfg, seed=3, return_model=True)
    b = ex.train_run(tiny, cfg, seed=3, return_model=True)
    c = ex.train_run(tiny, cfg, seed=4, return_model=True)
    np.testing.assert_array_equal(a["test_acc"], b["test_acc"])
    for pa, pb in zip(a["model"].parameters(), b["model"].parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a["model"][0].weight, c["model"][0].weight)


def test_train_run_shapes_and_schedule(tiny):
    """Evaluations happen at 0, every eval_every steps, and at the last step."""
    cfg = RunConfig(steps=10, eval_every=4, batch_size=30, probe_layer=1)
    r = ex.train_run(tiny, cfg, seed=0)
    np.testing.assert_array_equal(r["steps"], [0, 4, 8, 10])
    assert r["test_acc"].shape == (4,) and np.isnan(r["train_loss"][0])
    assert np.isfinite(r["train_loss"][1:]).all()
    assert r["probe"].shape == (4, 3)
    assert (np.diff(r["probe"], axis=1) >= 0).all()  # 15th <= 50th <= 85th
    assert r["test_acc_final"] == r["test_acc"][-1]


def test_batch_larger_than_training_set_refused(tiny):
    """A batch larger than the training set is refused."""
    with pytest.raises(ValueError, match="exceeds"):
        ex.train_run(tiny, RunConfig(batch_size=500, steps=1), seed=0)


def test_bn_network_learns_digits(data):
    """The BN ReLU network passes 85 % test accuracy within 150 steps of batch 60, lr 0.05."""
    r = ex.train_run(data, RunConfig(batchnorm=True, lr=0.05, steps=150, eval_every=150), 0)
    assert r["test_acc_final"] > 0.85


def test_eval_mode_uses_running_statistics(tiny):
    """In evaluation mode BN applies its running mean/variance: outputs match a manual pass."""
    r = ex.train_run(tiny, RunConfig(batchnorm=True, batch_size=20, steps=8, eval_every=8), 0,
                     return_model=True)
    model = r["model"].eval()
    bn = model[1]
    assert not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    x = torch.from_numpy(tiny.x_test[:5])
    with torch.no_grad():
        z = model[0](x)
        manual = (z - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        manual = manual * bn.weight + bn.bias
        torch.testing.assert_close(model[1](z), manual)
        # each example's output is independent of its batch mates
        torch.testing.assert_close(model(x)[:1], model(x[:1]))


def test_batch_statistics_mode_leaves_running_stats_and_modes(tiny):
    """batch_statistics_mode normalizes by the batch, keeps running stats and restores modes."""
    torch.manual_seed(0)
    model = ex.make_mlp(64, 10, (16,), batchnorm=True, dropout=0.5)
    model.train()
    before = model[1].running_mean.clone()
    x = torch.from_numpy(tiny.x_train[:10])
    with ex.batch_statistics_mode(model), torch.no_grad():
        assert model[1].training and not model[3].training
        z = model[1](model[0](x))
        torch.testing.assert_close(z.mean(0), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(model[1].running_mean, before)
    assert model.training and model[3].training and model[1].momentum == 0.1


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_statistics_mode_leaves_no_trace_on_bn_buffers(momentum):
    """Running mean/var and num_batches_tracked are as before the block, for any momentum.

    With momentum=None BN keeps a cumulative average whose factor is 1/num_batches_tracked, so
    a probe that advanced the counter would change every later update.
    """
    torch.manual_seed(0)
    model = ex.make_mlp(6, 3, (5, 4), batchnorm=True)
    for bn in ex._bn_modules(model):
        bn.momentum = momentum
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 6))  # some history: counter 1, stats moved
    probed = copy.deepcopy(model)
    before = {k: v.clone() for k, v in probed.state_dict().items()}
    with torch.no_grad():
        for _ in range(3):
            with ex.batch_statistics_mode(probed):
                probed(torch.randn(8, 6) * 5 + 3)
            ex.normalized_batch_values(probed, torch.randn(4, 6))
    after = probed.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k
    assert all(bn.num_batches_tracked.item() == 1 and bn.momentum == momentum
               for bn in ex._bn_modules(probed))
    # the next training step updates the running statistics exactly as without the probes
    x = torch.randn(8, 6)
    with torch.no_grad():
        model(x)
        probed(x)
    for a, b in zip(model.state_dict().values(), probed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_batch_statistics_mode_restores_each_module_mode():
    """Modules keep their own modes: a model in training mode with one BN layer in eval stays so."""
    model = ex.make_mlp(6, 3, (5, 4), batchnorm=True, dropout=0.5).train()
    model[1].eval()
    with ex.batch_statistics_mode(model), torch.no_grad():
        model(torch.randn(4, 6))
    assert model.training and not model[1].training and model[3].training and model[5].training


def test_probed_training_counts_only_training_batches(tiny):
    """After training with a probe at every evaluation, num_batches_tracked equals the steps."""
    cfg = RunConfig(batchnorm=True, activation="sigmoid", batch_size=20, steps=9, eval_every=3,
                    probe_layer=1, hidden=(8, 8))
    ex.clear_cache()
    stacked = ex.train_runs(tiny, cfg, (0, 1))
    single = ex.train_run(tiny, cfg, 0, return_model=True)
    for model in (*stacked["models"], single["model"]):
        assert [bn.num_batches_tracked.item() for bn in ex._bn_modules(model)] == [9, 9]


def test_batch_of_two_normalizes_to_plus_minus_one():
    """With two examples x_hat = +-d / sqrt(d^2 + 4 eps), d the difference: +-1 unless d ~ 0."""
    torch.manual_seed(0)
    model = ex.make_mlp(10, 3, (20, 20), batchnorm=True, init_std=None)
    x = torch.randn(2, 10) * 3
    xhat = ex.normalized_batch_values(model, x)
    assert len(xhat) == 2
    with torch.no_grad():
        d = model[0](x)[0] - model[0](x)[1]
    torch.testing.assert_close(xhat[0][0], d / torch.sqrt(d**2 + 4e-5))
    for v in xhat:
        torch.testing.assert_close(v[0], -v[1])
        assert (v.abs() > 0.9).float().mean() > 0.9


@pytest.mark.parametrize("m", [3, 5, 9])
def test_normalized_values_bounded_by_sqrt_m_minus_one(m):
    """In a batch of m, |x_hat| <= sqrt(m - 1), reached when one example stands apart."""
    torch.manual_seed(m)
    model = ex.make_mlp(6, 2, (8,), batchnorm=True, init_std=None)
    for v in ex.normalized_batch_values(model, torch.randn(m, 6) * 3):
        assert v.abs().max().item() <= math.sqrt(m - 1) + 1e-5
    x = torch.zeros(m, 6)
    x[0] = 100.0
    (v,) = ex.normalized_batch_values(model, x)
    torch.testing.assert_close(v[0].abs(), torch.full_like(v[0], math.sqrt(m - 1)),
                               atol=1e-3, rtol=0)


def test_batch_mode_accuracy_matches_full_batch_pass(tiny):
    """With one batch holding every example, batch-mode accuracy is the training-mode accuracy."""
    torch.manual_seed(0)
    model = ex.make_mlp(64, 10, (32,), batchnorm=True)
    x, y = torch.from_numpy(tiny.x_test), torch.from_numpy(tiny.y_test)
    with torch.no_grad():
        expected = (model.train()(x).argmax(1) == y).float().mean().item()
    model.eval()
    assert ex.batch_mode_accuracy(model, x, y, len(x)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="exceeds"):
        ex.batch_mode_accuracy(model, x, y, len(x) + 1)


def test_steps_to_reach():
    """steps_to_reach gives the first step at or above the threshold, NaN when never."""
    steps = np.array([0, 10, 20, 30])
    acc = np.array([[0.1, 0.5, 0.9, 0.95], [0.1, 0.2, 0.3, 0.4]])
    out = ex.steps_to_reach(steps, acc, 0.9)
    assert out[0] == 20 and np.isnan(out[1])
    assert ex.steps_to_reach(steps, acc[0], 0.5) == 10


def test_spread():
    """spread gives mean, min and max over axis 0."""
    s = ex.spread([[1.0, 4.0], [3.0, 2.0]])
    np.testing.assert_array_equal(s["mean"], [2.0, 3.0])
    np.testing.assert_array_equal(s["min"], [1.0, 2.0])
    np.testing.assert_array_equal(s["max"], [3.0, 4.0])


def test_train_runs_stacks_and_memoizes(tiny):
    """train_runs stacks per-seed curves to (S, E) and returns the cached result on repeat."""
    ex.clear_cache()
    cfg = RunConfig(steps=6, eval_every=3, batch_size=30)
    a = ex.train_runs(tiny, cfg, (0, 1))
    assert a["test_acc"].shape == (2, 3) and a["test_acc_final"].shape == (2,)
    assert len(a["models"]) == 2 and a["probe"] is None
    assert ex.train_runs(tiny, cfg, [0, 1]) is a
    single = ex.train_run(tiny, cfg, 1)
    np.testing.assert_allclose(a["test_acc"][1], single["test_acc"])
    with pytest.raises(ValueError, match="at least one seed"):
        ex.train_runs(tiny, cfg, ())


@pytest.mark.parametrize("config", [
    RunConfig(batchnorm=True, activation="sigmoid", batch_size=20, steps=15, eval_every=5,
              probe_layer=1, hidden=(16, 16)),
    RunConfig(batchnorm=False, batch_size=7, lr=0.3, steps=15, eval_every=5, hidden=(16, 16)),
])
def test_stacked_training_matches_single_runs(tiny, config):
    """Side-by-side training gives each seed the curves and weights train_run gives it."""
    ex.clear_cache()
    stacked = ex.train_runs(tiny, config, (0, 5))
    for i, seed in enumerate((0, 5)):
        single = ex.train_run(tiny, config, seed, return_model=True)
        np.testing.assert_allclose(stacked["test_acc"][i], single["test_acc"])
        np.testing.assert_allclose(stacked["train_loss"][i], single["train_loss"], rtol=1e-5)
        if config.probe_layer is not None:
            np.testing.assert_allclose(stacked["probe"][i], single["probe"], atol=1e-5)
        for a, b in zip(stacked["models"][i].state_dict().values(),
                        single["model"].state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_stacked_training_with_dropout_is_deterministic(tiny):
    """Side-by-side training with dropout gives the same curves when repeated."""
    cfg = RunConfig(dropout=0.5, batch_size=20, steps=10, eval_every=5, hidden=(16,))
    ex.clear_cache()
    a = ex.train_runs(tiny, cfg, (1, 2))
    ex.clear_cache()
    b = ex.train_runs(tiny, cfg, (1, 2))
    assert a is not b
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])
    for ma, mb in zip(a["models"], b["models"], strict=True):
        assert torch.equal(ma[0].weight, mb[0].weight)


def test_stack_models_computes_each_member(tiny):
    """A stacked network's member s computes what model s computes, in both BN modes."""
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(ex.make_mlp(64, 10, (12, 12), batchnorm=True, dropout=0.3))
    stacked = ex.stack_models(models)
    x = torch.from_numpy(tiny.x_train[:3 * 9]).view(3, 9, 64)
    with torch.no_grad():
        out = stacked.eval()(x)  # evaluation mode: running statistics, dropout off
        for s, m in enumerate(models):
            torch.testing.assert_close(out[s], m.eval()(x[s]))
        with ex.batch_statistics_mode(stacked):
            out = stacked(x)
        for s, m in enumerate(models):
            with ex.batch_statistics_mode(m):
                torch.testing.assert_close(out[s], m(x[s]))


def test_unstack_into_copies_parameters_and_running_stats():
    """unstack_into writes each member's weights and BN statistics back into its model."""
    models = []
    for seed in range(2):
        torch.manual_seed(seed)
        models.append(ex.make_mlp(5, 3, (4,), batchnorm=True))
    stacked = ex.stack_models(models)
    with torch.no_grad():
        for p in stacked.parameters():
            p.add_(1.0)
        stacked[1].bn.running_mean.fill_(2.0)
    ex.unstack_into(stacked, models)
    torch.testing.assert_close(models[1][0].weight, stacked[0].weight[1].t())
    torch.testing.assert_close(models[0][1].running_mean, torch.full((4,), 2.0))
    torch.testing.assert_close(models[1][1].weight, stacked[1].bn.weight[4:])


def test_train_runs_restores_thread_count(tiny):
    """train_runs trains with THREADS threads and restores the previous setting."""
    previous = torch.get_num_threads()
    ex.train_runs(tiny, RunConfig(steps=2, eval_every=2, batch_size=30), (7,))
    assert torch.get_num_threads() == previous


def test_experiment_structures(tiny):
    """Each experiment returns the documented plain-data structure (tiny runs)."""
    seeds = (0, 1)
    kw = {"steps": 4, "eval_every": 2}
    e1 = ex.experiment_bn_vs_plain(tiny, seeds, **kw)
    assert set(e1) == {"relu", "sigmoid"} and set(e1["relu"]) == {"plain", "bn"}
    assert set(e1["sigmoid"]) == {"plain", "bn", "plain_scaled"}
    assert e1["sigmoid"]["plain_scaled"]["config"]["init_std"] == ex.INIT_SCALED
    assert e1["sigmoid"]["bn"]["probe"].shape == (2, 3, 3)
    e2 = ex.experiment_sigmoid_input(tiny, seeds, **kw)
    assert e2["bn"].shape == (2, 3, 3) and e2["drift"]["plain"].shape == (2,)
    np.testing.assert_allclose(e2["drift"]["bn"], e2["median_range"]["bn"] / e2["width"]["bn"])
    e3 = ex.experiment_deep(tiny, seeds, depth=3, width=8, **kw)
    assert e3["bn"]["config"]["hidden"] == (8, 8, 8) and e3["bn"]["config"]["init_std"] is None
    e4 = ex.experiment_learning_rates(tiny, seeds, factors=(1, 5), **kw)
    assert e4[5]["bn"]["config"]["lr"] == pytest.approx(0.05)
    e5 = ex.experiment_regularizers(tiny, seeds, p=0.5, **kw)
    assert set(e5) == {"neither", "dropout", "bn", "both"}
    assert e5["both"]["config"]["dropout"] == 0.5 and e5["both"]["config"]["batchnorm"]


def test_experiment_batch_size_degeneracy(tiny):
    """With batches of two most normalized values are +-1; |x_hat| <= sqrt(m - 1)."""
    out = ex.experiment_batch_size(tiny, (0,), sizes=(2, 8), steps=4, eval_every=2,
                                   probe_batches=3)
    assert out[2]["frac_unit"] > 0.7 and out[8]["frac_unit"] < 0.2
    for m in (2, 8):
        assert out[m]["abs_xhat_max"] <= math.sqrt(m - 1) + 1e-4
        assert out[m]["batch_mode_test_acc"].shape == (1,)


def test_experiment_cost_reports_rates_and_machine():
    """experiment_cost returns positive batch rates, their ratio and a machine description."""
    out = ex.experiment_cost(input_sizes=(16,), repeats=1, n_batches=5)
    assert out[16]["plain"] > 0 and out[16]["bn"] > 0
    assert out[16]["ratio"] == pytest.approx(out[16]["plain"] / out[16]["bn"])
    assert "torch" in out["machine"] and "thread" in out["machine"]


def test_mnist_shaped_data_runs():
    """The training code runs unchanged on 28x28 inputs (the MNIST layout), in chunks."""
    rng = np.random.default_rng(0)
    d = Digits(rng.random((90, 784), dtype=np.float32), rng.integers(0, 10, 90),
               rng.random((30, 784), dtype=np.float32), rng.integers(0, 10, 30), (28, 28),
               "random 28x28")
    r = ex.train_runs(d, RunConfig(batchnorm=True, batch_size=30, steps=3, eval_every=3), (0, 1))
    assert r["test_acc"].shape == (2, 2) and r["models"][0][0].weight.shape == (100, 784)
    stacked = ex.stack_models(r["models"])
    np.testing.assert_allclose(ex._stacked_accuracy(stacked, torch.from_numpy(d.x_test),
                                                    torch.from_numpy(d.y_test), chunk=7),
                               r["test_acc_final"])


def test_steps_trained_counts_each_model_and_batch_once(tiny):
    """Side-by-side seeds count one step each; a memoized run counts nothing; so do timings."""
    ex.clear_cache()
    cfg = RunConfig(steps=6, eval_every=3, batch_size=30)
    start = ex.steps_trained()
    ex.train_runs(tiny, cfg, (0, 1, 2))
    assert ex.steps_trained() - start == 18
    ex.train_runs(tiny, cfg, (0, 1, 2))  # from the cache
    ex.train_run(tiny, cfg, 0)
    assert ex.steps_trained() - start == 24
    ex.experiment_cost(input_sizes=(8,), repeats=2, n_batches=3)
    assert ex.steps_trained() - start == 24 + ex.cost_steps((8,), 2, 3) == 24 + 2 * 2 * 13


def test_chapter_plan_fits_the_step_budget():
    """The chapter's settings take no more training steps than STEP_BUDGET allows.

    The chapter itself asserts that the steps it actually takes equal this plan, so a heavier
    chapter fails here, without anything being trained or timed.
    """
    plan = ex.CHAPTER
    configs = ex.chapter_configs(plan)
    assert len(configs) == len(set(configs)) == 19
    by_hand = (len(plan.seeds) * (5 * 1000 + 4 * 200 + 4 * 1000 + 2 * 1000 + 4 * 300)
               + 2 * 2 * 2 * (ex.COST_WARMUP + 100))
    assert ex.planned_training_steps(plan) == by_hand == 39_880
    assert ex.planned_training_steps(plan) <= ex.STEP_BUDGET


def test_planned_steps_equal_the_steps_the_chapters_calls_take(tiny):
    """Running the chapter's sequence of experiments on a small plan takes exactly the plan."""
    plan = ex.ChapterPlan(seeds=(0, 1), steps=4, eval_every=2, deep_steps=2, lr_factors=(1, 5),
                          cost_input_sizes=(8,), cost_repeats=1, cost_batches=2,
                          batch_sizes=(2, 4), bs_steps=3)
    ex.clear_cache()
    start = ex.steps_trained()
    ex.experiment_bn_vs_plain(tiny, plan.seeds, steps=plan.steps, eval_every=plan.eval_every)
    ex.experiment_sigmoid_input(tiny, plan.seeds, steps=plan.steps, eval_every=plan.eval_every)
    for act in plan.deep_activations:
        ex.experiment_deep(tiny, plan.seeds, activation=act, steps=plan.deep_steps,
                           eval_every=plan.eval_every)
    ex.experiment_learning_rates(tiny, plan.seeds, plan.lr_factors, steps=plan.steps,
                                 eval_every=plan.eval_every)
    ex.experiment_regularizers(tiny, plan.seeds, p=plan.p_drop, lr_factor=plan.reg_lr_factor,
                               steps=plan.steps, eval_every=plan.eval_every)
    ex.experiment_cost(plan.cost_input_sizes, plan.cost_repeats, plan.cost_batches)
    ex.experiment_batch_size(tiny, plan.seeds, plan.batch_sizes, steps=plan.bs_steps,
                             eval_every=plan.eval_every, lr_factor=plan.bs_lr_factor,
                             probe_batches=2)
    assert ex.steps_trained() - start == ex.planned_training_steps(plan)


def test_chapter_code_is_lint_clean(tmp_path):
    """The chapter's code, every branch included, passes ruff (undefined names and the rest).

    Several of its sentences are chosen by the data: the branches the default digits do not
    take never run in the book build, so a typo there would surface only with MNIST.
    """
    import jupytext

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "experiments_chapter.py"
    nb = jupytext.read(root / "book" / "experiments.md")
    nb.cells = [c for c in nb.cells if c.cell_type == "code"]
    for cell in nb.cells:  # IPython magics are not Python; figure metadata is not code
        cell.source = "\n".join(line for line in cell.source.splitlines()
                                if not line.startswith("%"))
        cell.metadata = {}
    script.write_text(jupytext.writes(nb, fmt="py:percent"))
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                             str(root / "pyproject.toml"), str(script)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_module_exports_exist():
    """Every name in __all__ is defined."""
    for name in ex.__all__:
        assert hasattr(ex, name)


# --- the page's helpers and the findings (no training: synthetic runs) --------------------


def _runs(test_acc, final=None, train=None, steps=None):
    """A stand-in for train_runs' result: (S, E) test accuracy curves over steps 0, 25, ..."""
    test_acc = np.asarray(test_acc, dtype=float)
    steps = np.arange(test_acc.shape[1]) * 25 if steps is None else np.asarray(steps)
    final = test_acc[:, -1] if final is None else np.asarray(final, dtype=float)
    train = final if train is None else np.asarray(train, dtype=float)
    return {"steps": steps, "test_acc": test_acc, "test_acc_final": final, "train_acc": train}


def test_scaled_init_uses_he_for_relu_and_four_glorot_for_sigmoid():
    """INIT_SCALED draws hidden weights with He's std for ReLU, 4 x Glorot's for sigmoid, and
    Glorot's for the output layer; biases are zero."""
    assert ex.scaled_init_std(100, 100, "relu") == pytest.approx(math.sqrt(0.02))
    assert ex.scaled_init_std(100, 100, "sigmoid") == pytest.approx(0.4)
    assert ex.scaled_init_std(100, 10, None) == pytest.approx(math.sqrt(2 / 110))
    torch.manual_seed(0)
    model = ex.make_mlp(64, 10, (400, 400), "sigmoid", init_std=ex.INIT_SCALED)
    assert model[2].weight.std().item() == pytest.approx(4 * math.sqrt(2 / 800), rel=0.02)
    assert model[-1].weight.std().item() == pytest.approx(math.sqrt(2 / 410), rel=0.05)
    assert model[2].bias.abs().max().item() == 0


def test_run_config_accepts_only_the_scaled_init_name():
    """init_std may be a positive number, None or INIT_SCALED; another string is an error."""
    assert RunConfig(init_std=ex.INIT_SCALED).init_std == "scaled"
    with pytest.raises(ValueError, match="init_std"):
        RunConfig(init_std="he")


def test_hidden_spread_measures_each_hidden_layer():
    """One value per activation: the std over examples of each unit's output, averaged."""
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.Sigmoid(),
                          nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3, 2))
        model[0].bias.zero_()
        model[2].weight.zero_()
        model[2].bias.zero_()
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])
    spread = ex.hidden_spread(model, x)
    assert spread.shape == (2,)
    assert spread[0] == pytest.approx((math.sqrt(2) + math.sqrt(2) + 0) / 3)
    assert spread[1] == 0  # constant 0.5 for every example


def test_signal_dies_out_in_ten_default_layers_but_not_with_bn(tiny):
    """At initialization the spread of layer 10 is a tiny fraction of layer 1's with PyTorch's
    default init, and of the same order with BN or with the scaled init (ReLU)."""
    cfg = ex.deep_configs(activation="relu")
    assert ex.spread_ratio_at_init(tiny, cfg["plain"], 0) < 1e-2
    assert ex.spread_ratio_at_init(tiny, cfg["bn"], 0) > 0.5
    scaled = RunConfig(hidden=(100,) * 10, init_std=ex.INIT_SCALED)
    assert ex.spread_ratio_at_init(tiny, scaled, 0) > 0.1


def test_rounding_for_at_least_and_at_most():
    """floor_to and ceil_to round towards the safe side, exact values unchanged."""
    assert ex.floor_to(97.79, 1) == 97.7 and ex.ceil_to(97.71, 1) == 97.8
    assert ex.floor_to(0.5, 2) == 0.5 == ex.ceil_to(0.5, 2)


def test_paired_difference_interval_and_direction():
    """Mean of the per-seed differences with a Student-t interval (t = 4.303 for 3 seeds);
    the direction is resolved only when the interval excludes zero."""
    d = ex.paired_difference([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
    assert d.mean == pytest.approx(3.0)
    assert d.half_width == pytest.approx(4.3027 * 1.0 / math.sqrt(3), rel=1e-4)
    assert d.direction == ex.Direction.HIGHER
    assert ex.paired_difference([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]).direction == \
        ex.Direction.UNRESOLVED
    assert ex.paired_difference([0.0, 0.1, 0.0], [1.0, 1.0, 1.1]).direction == ex.Direction.LOWER
    one = ex.paired_difference([1.0], [0.0])
    assert one.low == -math.inf and one.direction == ex.Direction.UNRESOLVED


def test_learning_classifies_chance_slow_and_caught_up():
    """At chance: every evaluation below CHANCE; caught up: every seed ends at the target."""
    assert ex.learning(_runs([[0.1, 0.15], [0.1, 0.19]])) == ex.Learning.AT_CHANCE
    assert ex.learning(_runs([[0.1, 0.5], [0.1, 0.95]])) == ex.Learning.SLOW
    assert ex.learning(_runs([[0.1, 0.91], [0.1, 0.95]])) == ex.Learning.CATCHES_UP


def test_steps_to_plateau_is_where_the_run_stays_near_its_best():
    """The first evaluation after which every later one is within tol of the run's best."""
    steps = np.array([0, 25, 50, 75, 100])
    acc = np.array([[0.1, 0.95, 0.90, 0.97, 0.975], [0.1, 0.97, 0.97, 0.97, 0.97]])
    np.testing.assert_array_equal(ex.steps_to_plateau(steps, acc, tol=0.01), [75, 25])


def test_plateau_check_in_steps_and_in_passes():
    """A plateau after 300 steps is far sooner than 10,000 iterations, but 300 batches of 60
    are 13.4 passes over 1,347 images, about the note's 10 passes over MNIST."""
    curve = np.minimum(np.linspace(0, 1, 41) * 4, 0.98)       # flat from step 250 on
    check = ex.plateau_check(_runs([curve, curve], steps=np.arange(41) * 25), n_train=1347)
    assert check.steps_max == 250 and check.claimed_epochs == 10
    assert check.in_steps == ex.NoteClaim.SOONER and check.in_epochs == ex.NoteClaim.HOLDS


def test_plateau_check_refuses_a_run_still_rising_at_the_end():
    """A best accuracy reached only in the last quarter of the run cannot check the claim."""
    curve = np.linspace(0.1, 0.9, 41)
    check = ex.plateau_check(_runs([curve], steps=np.arange(41) * 25), n_train=1347)
    assert check.in_steps == check.in_epochs == ex.NoteClaim.NOT_REACHED


def _exp1(plain_sig, scaled_sig):
    relu_bn = _runs([[0.1, 0.95, 0.98, 0.98], [0.1, 0.92, 0.97, 0.98]])
    relu_plain = _runs([[0.1, 0.3, 0.4, 0.5], [0.1, 0.35, 0.45, 0.55]])
    sig_bn = _runs([[0.1, 0.6, 0.95, 0.96], [0.1, 0.5, 0.9, 0.97]])
    return {"relu": {"plain": relu_plain, "bn": relu_bn},
            "sigmoid": {"plain": _runs(plain_sig), "bn": sig_bn,
                        "plain_scaled": _runs(scaled_sig)}}


def test_bn_vs_plain_finding_states_cases_and_safe_bounds():
    """BN first and higher in every seed; the plain sigmoid at chance; the scaled one slow;
    minima rounded down and maxima up."""
    f = ex.bn_vs_plain_finding(_exp1([[0.1, 0.11, 0.1, 0.1]] * 2,
                                     [[0.1, 0.3, 0.6, 0.7], [0.1, 0.3, 0.5, 0.6]]))
    assert f.bn_sooner and f.bn_higher and f.sigmoid_bn_higher and f.relu_plain_rising
    assert f.relu_bn_to90_max == 25 and f.relu_bn_final_min == 98.0
    assert f.relu_plain_final_max == 55.0 and f.sig_plain_best == 11.0
    assert (f.relu_plain, f.sig_plain, f.sig_scaled) == (
        ex.Learning.SLOW, ex.Learning.AT_CHANCE, ex.Learning.SLOW)
    assert f.init_alone_stops_plain


def test_bn_vs_plain_finding_does_not_blame_the_init_when_the_fair_init_fails_too():
    """If the scaled initialization leaves the plain sigmoid network at chance as well, the
    finding does not say that the initialization alone stopped it."""
    f = ex.bn_vs_plain_finding(_exp1([[0.1, 0.11, 0.1, 0.1]] * 2, [[0.1, 0.12, 0.1, 0.1]] * 2))
    assert not f.init_alone_stops_plain


def _exp2(width_plain, drift_plain):
    three = np.ones(3)
    return {"width": {"bn": 2.4 * three, "plain": width_plain * three},
            "drift": {"bn": 0.02 * three, "plain": drift_plain * three},
            "median_range": {"bn": 0.05 * three, "plain": 0.003 * three},
            "median_final": {"bn": np.array([0.1, -0.1, 0.0]), "plain": 0.1 * three}}


@pytest.mark.parametrize("width, drift, case", [
    (0.003, 1.0, ex.PlainInput.COLLAPSED), (1.0, 0.5, ex.PlainInput.DRIFTS),
    (1.0, 0.01, ex.PlainInput.NO_MORE_DRIFT)])
def test_sigmoid_input_finding_cases(width, drift, case):
    """Collapsed (band < 1 % of BN's), drifting more than BN in every seed, or neither."""
    f = ex.sigmoid_input_finding(_exp2(width, drift))
    assert f.plain == case and f.bn_stable and f.median_bn_absmax == 0.1


def test_deep_finding_reports_chance_and_the_shrinking_signal():
    """BN ends above the plain networks' best; the plain ones at chance; ratios rounded up
    (plain, two significant digits) and down (BN)."""
    at_chance = _runs([[0.1, 0.1], [0.1, 0.12]])
    bn = _runs([[0.1, 0.96], [0.1, 0.97]])
    exp3 = {"relu": {"plain": at_chance, "bn": bn}, "sigmoid": {"plain": at_chance, "bn": bn}}
    shrink = {("relu", False): 1.41e-4, ("sigmoid", False): 2e-7, ("relu", True): 1.04,
              ("sigmoid", True): 0.996, ("relu", "scaled"): 0.7, ("sigmoid", "scaled"): 0.01}
    f = ex.deep_finding(exp3, shrink)
    assert f.bn_ahead and f.plain == ex.Learning.AT_CHANCE and f.plain_best == 12.0
    assert f.shrink_plain_max == pytest.approx(1.5e-4) and f.shrink_bn_min == 0.99
    assert f.scaled_better and f.shrink_scaled_min == pytest.approx(0.01)


def _exp4(x30_curves, x5_first=0.96):
    slow = _runs([[0.1, 0.3, 0.5, 0.6]] * 3)
    x1 = _runs([[0.1, 0.92, 0.97, 0.98]] * 3)
    x5 = _runs([[0.1, x5_first, 0.975, 0.98], [0.1, x5_first, 0.975, 0.99],
                [0.1, x5_first, 0.975, 0.985]])
    return {1: {"plain": slow, "bn": x1}, 5: {"plain": slow, "bn": x5},
            30: {"plain": _runs([[0.1, 0.5, 0.92, 0.95]] * 3), "bn": _runs(x30_curves)}}


def test_learning_rate_finding_compares_x30_with_x5_as_the_paper_does():
    """The target is BN x1's mean final accuracy less one point; x30 reaching it later in every
    seed but ending higher (interval above zero) is the paper's ordering."""
    f = ex.learning_rate_finding(_exp4([[0.1, 0.9, 0.975, 0.99], [0.1, 0.9, 0.975, 1.0],
                                        [0.1, 0.9, 0.975, 0.995]], x5_first=0.972), (1, 5, 30))
    assert f.target == pytest.approx(97.0)
    assert f.x30_vs_x5 == ex.Ordering.LATER and f.final_diff.direction == ex.Direction.HIGHER
    assert f.bn_sooner_everywhere and f.hi_stable and f.plain_hi == ex.Learning.CATCHES_UP


def test_learning_rate_finding_sooner_and_unresolved():
    """x30 there first in some seed and never later: sooner; a final difference whose interval
    straddles zero is unresolved."""
    f = ex.learning_rate_finding(_exp4([[0.1, 0.975, 0.98, 0.97], [0.1, 0.9, 0.975, 0.99],
                                        [0.1, 0.9, 0.975, 0.985]]), (1, 5, 30))
    assert f.x30_vs_x5 == ex.Ordering.SOONER
    assert f.final_diff.direction == ex.Direction.UNRESOLVED
    assert f.hi_to_target == "25, 50, 50"


def test_regularizer_finding_gives_differences_with_intervals():
    """Errors in percent; dropout's effect on the BN network is a paired difference whose
    interval decides the direction; one test image is 100 / n_test percent."""
    def five(acc, train=1.0):
        return _runs(np.column_stack([np.full(3, 0.1), acc]), train=np.full(3, train))
    exp5 = {"neither": five([0.97, 0.975, 0.98]), "dropout": five([0.96, 0.965, 0.97], 0.99),
            "bn": five([0.98, 0.985, 0.99]), "both": five([0.980, 0.984, 0.990])}
    f = ex.regularizer_finding(exp5, n_test=450)
    assert f.err_bn == pytest.approx(1.5) and f.lowest == "bn"
    assert f.dropout_on_bn.direction == ex.Direction.UNRESOLVED
    assert f.dropout_on_plain.direction == ex.Direction.HIGHER
    assert f.plain_fits and f.dropout_slows and f.one_image == pytest.approx(100 / 450)


def test_cost_finding_when_the_plain_network_never_gets_there():
    """With the plain network below 90 % at the end of the budget, BN's seconds to 90 % are set
    against the whole budget's seconds."""
    exp1 = _exp1([[0.1] * 4] * 2, [[0.1] * 4] * 2)
    exp6 = {"machine": "m", 64: {"plain": 2000.0, "bn": 1000.0, "ratio": 2.0},
            784: {"plain": 1000.0, "bn": 800.0, "ratio": 1.25}}
    f = ex.cost_finding(exp6, exp1, n_features=64, steps=1000)
    assert f.slower and f.verdict == ex.CostVerdict.PLAIN_NEVER
    assert f.bn_seconds == pytest.approx(25 / 1000) and f.plain_seconds == pytest.approx(0.5)
    assert (f.ratio_small, f.ratio_large) == (2.0, 1.25)


def test_batch_size_finding():
    """The degenerate pair, the worst network, and the four yes/no cases of experiment 7."""
    def size(acc, batch_acc, frac, xhat, train=1.0):
        runs = _runs(np.column_stack([np.full(2, 0.1), acc]), train=np.full(2, train))
        return {"runs": runs, "batch_mode_test_acc": np.asarray(batch_acc), "frac_unit": frac,
                "abs_xhat_max": xhat}
    exp7 = {2: size([0.4, 0.45], [0.2, 0.25], 0.99, 1.0, train=0.5),
            4: size([0.9, 0.92], [0.7, 0.72], 0.01, 1.7),
            64: size([0.98, 0.99], [0.975, 0.985], 0.01, 5.0)}
    f = ex.batch_size_finding(exp7)
    assert f.degenerate and f.two_worst and f.batch_mode_no_better and not f.two_fits
    assert f.gap_shrinks and f.four_recovers and f.frac2 == 99.0
    assert f.gaps[4] == pytest.approx(20.0)
