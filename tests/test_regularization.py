"""helpers.regularization: L2 / weight decay, dropout, MC dropout, calibration, early stopping - and the lesson."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from helpers import regularization as reg
from helpers.config import single_thread_on_cpu


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread for these tiny models (bit-identical runs), restored afterwards."""
    with single_thread_on_cpu(torch.device("cpu")):
        yield


def _toy_model(seed: int = 0, dtype=torch.float64) -> reg.MLPHead:
    torch.manual_seed(seed)
    return reg.MLPHead(6, 8, p=0.0).to(dtype)


def _toy_batches(n_steps: int = 6, dtype=torch.float64):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 6, generator=g, dtype=dtype), (torch.rand(16, generator=g) > 0.5).to(dtype))
            for _ in range(n_steps)]


def _run(model, opt, batches, l2: float = 0.0):
    decay = reg.split_decay_parameters(model)[0]
    for x, y in batches:
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        if l2:
            loss = loss + reg.l2_penalty(decay, l2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def _synthetic(n_train=80, n_val=2000, d=40, seed=0):
    """A noisy linear rule in d dimensions: few examples, many features -> an MLP overfits."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    X = rng.normal(size=(n_train + n_val, d)).astype(np.float32)
    y = ((X @ w) / np.sqrt(d) + rng.normal(scale=0.7, size=len(X)) > 0).astype(int)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


# ------------------------------------------------------------------------------------------ L2


def test_l2_penalty_value_and_gradient():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[3.0]], dtype=torch.float64, requires_grad=True)
    value = reg.l2_penalty([a, b], 0.5)
    assert float(value.detach()) == pytest.approx(0.25 * (1 + 4 + 9), abs=1e-12)  # (lam/2)*||theta||^2 by hand
    ga, gb = torch.autograd.grad(value, [a, b])
    assert torch.allclose(ga, 0.5 * a) and torch.allclose(gb, 0.5 * b)  # gradient = lam * theta
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, v: reg.l2_penalty([u, v], 0.7), (x, z))  # finite differences


def test_l2_penalty_rejects_bad_input():
    with pytest.raises(ValueError):
        reg.l2_penalty([torch.ones(2)], -1.0)
    with pytest.raises(ValueError):
        reg.l2_penalty([], 0.1)


def test_biases_and_layernorm_are_not_decayed():
    model = reg.MLPHead(6, 8)
    decay, no_decay = reg.split_decay_parameters(model)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay) == ids([model.fc1.weight, model.fc2.weight])
    assert ids(no_decay) == ids([model.fc1.bias, model.fc2.bias, model.norm.weight, model.norm.bias])


def test_sgd_l2_equals_sgd_weight_decay():
    """For plain SGD an explicit (lam/2)||theta||^2 penalty and weight_decay=lam are the same update."""
    batches, lam, lr = _toy_batches(8), 0.05, 0.1
    m1, m2 = _toy_model(), _toy_model()
    p1 = _run(m1, reg.make_optimizer(m1, "sgd", lr, 0.0), batches, l2=lam)
    p2 = _run(m2, reg.make_optimizer(m2, "sgd", lr, lam), batches)
    assert max(float((a - b).abs().max()) for a, b in zip(p1, p2)) < 1e-7
    # and it is not trivially equal: without any decay the weights end elsewhere
    m3 = _toy_model()
    p3 = _run(m3, reg.make_optimizer(m3, "sgd", lr, 0.0), batches)
    assert max(float((a - b).abs().max()) for a, b in zip(p1, p3)) > 1e-3


def test_adamw_differs_from_adam_plus_l2():
    batches, lam, lr = _toy_batches(8), 0.1, 0.01
    m1, m2, m3 = _toy_model(), _toy_model(), _toy_model()
    adam_l2 = _run(m1, reg.make_optimizer(m1, "adam", lr, 0.0), batches, l2=lam)
    adam_wd = _run(m2, reg.make_optimizer(m2, "adam", lr, lam), batches)  # torch's Adam weight_decay = coupled L2
    adamw = _run(m3, reg.make_optimizer(m3, "adamw", lr, lam), batches)
    assert max(float((a - b).abs().max()) for a, b in zip(adam_l2, adam_wd)) < 1e-7
    assert max(float((a - b).abs().max()) for a, b in zip(adam_l2, adamw)) > 1e-3


def test_one_adamw_step_matches_loshchilov_hutter():
    """First step by hand: Adam's update is lr*g/(|g|+eps); AdamW also multiplies theta by (1 - lr*lam)."""
    model = _toy_model()
    (x, y), lam, lr, eps = _toy_batches(1)[0], 0.3, 0.01, 1e-8
    theta0 = model.fc1.weight.detach().clone()
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    g = torch.autograd.grad(loss, model.fc1.weight)[0]
    opt = reg.make_optimizer(model, "adamw", lr, lam)
    loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    want = theta0 * (1 - lr * lam) - lr * g / (g.abs() + eps)
    assert torch.allclose(model.fc1.weight.detach(), want, atol=1e-10)


def test_train_mlp_sgd_l2_matches_weight_decay():
    X, y, Xv, yv = _synthetic(n_train=64, n_val=32)
    kw = dict(hidden=16, optimizer="sgd", lr=0.05, epochs=3, batch_size=16)
    a = reg.train_mlp(X, y, Xv, yv, l2=0.1, **kw).model
    b = reg.train_mlp(X, y, Xv, yv, weight_decay=0.1, **kw).model
    assert max(float((p - q).abs().max()) for p, q in zip(a.state_dict().values(), b.state_dict().values())) < 1e-5


# ------------------------------------------------------------------------------------------ dropout


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_inverted_dropout_keeps_the_expectation(p):
    x = torch.linspace(-2, 3, 50).repeat(4000, 1)  # 4000 Monte-Carlo draws of a 50-vector
    out = reg.inverted_dropout(x, p, generator=torch.Generator().manual_seed(0))
    se = x.abs().max() * np.sqrt(p / (1 - p) / 4000)  # sd of the MC mean per coordinate
    assert float((out.mean(0) - x[0]).abs().max()) < 5 * se
    assert float((out == 0).float().mean()) == pytest.approx(p, abs=0.01)
    torch.manual_seed(0)
    ref = nn.Dropout(p).train()(x)  # torch's dropout does the same thing
    assert float((ref.mean(0) - x[0]).abs().max()) < 5 * se
    nz = ref[ref != 0] / x[ref != 0]
    assert torch.allclose(nz, torch.full_like(nz, 1 / (1 - p)))


def test_dropout_is_identity_in_eval_mode():
    x = torch.randn(7, 5)
    assert torch.equal(reg.inverted_dropout(x, 0.5, training=False), x)
    torch.manual_seed(0)
    m = reg.MLPHead(5, 16, p=0.5, input_p=0.3).eval()
    torch.manual_seed(0)
    m0 = reg.MLPHead(5, 16, p=0.0).eval()
    m0.load_state_dict(m.state_dict())
    assert torch.equal(m(x), m(x)) and torch.equal(m(x), m0(x))
    with pytest.raises(ValueError):
        reg.inverted_dropout(x, 1.0)


def test_mc_dropout_varies_and_restores_eval_mode():
    X, y, Xv, yv = _synthetic(n_train=64, n_val=32)
    res = reg.train_mlp(X, y, Xv, yv, hidden=32, p=0.5, epochs=5)
    mean, std = reg.mc_dropout_predict(res.model, Xv, T=30, seed=0)
    mean2, _ = reg.mc_dropout_predict(res.model, Xv, T=30, seed=0)
    assert mean.shape == std.shape == (32,) and (std > 0).all()
    assert np.array_equal(mean, mean2)  # seeded
    assert not res.model.training and not res.model.dropout.training
    single = reg.predict_proba(res.model, Xv)
    assert np.abs(mean - single).mean() < 0.1  # the MC average stays near the deterministic pass
    no_dropout = reg.train_mlp(X, y, hidden=8, epochs=1).model
    with pytest.raises(ValueError):
        reg.mc_dropout_predict(no_dropout, Xv)


def test_set_dropout_on_every_layer():
    m = reg.MLPHead(5, 8, p=0.1, input_p=0.1)
    assert reg.set_dropout(m, 0.4) == 2 and m.dropout.p == 0.4 and m.input_dropout.p == 0.4


# ------------------------------------------------------------------------------------------ calibration


def test_ece_hand_toy_and_sklearn_reference():
    from sklearn.calibration import calibration_curve

    assert reg.expected_calibration_error([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.3], 2) == pytest.approx(0.175)
    rng = np.random.default_rng(0)
    p = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < p**2).astype(int)
    table = reg.reliability_table(y, p, 10)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    assert np.allclose(table["accuracy"], prob_true) and np.allclose(table["confidence"], prob_pred)
    assert table["count"].sum() == 1000
    assert reg.expected_calibration_error(y, np.clip(p, 0, 1), 10) > 0.05  # p^2 truth: miscalibrated
    assert reg.expected_calibration_error(y, p**2, 10) < 0.05
    with pytest.raises(ValueError):
        reg.expected_calibration_error([0, 1], [0.5, 1.5])


def test_top_label_ece_hand_examples():
    # y = [1, 1], P(y=1) = [0.8, 0.2]: both predictions have confidence 0.8, one right, one wrong -> one bin,
    # |1/2 - 0.8| = 0.3. On P(y=1) the two errors sit in different bins: (|1 - 0.8| + |1 - 0.2|) / 2 = 0.5.
    assert reg.top_label_calibration_error([1, 1], [0.8, 0.2], 10) == pytest.approx(0.3)
    assert reg.expected_calibration_error([1, 1], [0.8, 0.2], 10) == pytest.approx(0.5)
    # y = [1, 0, 0], P(y=1) = [0.9, 0.4, 0.5]: predictions 1, 0, 0 (a tie predicts 0), all correct;
    # confidences 0.9, 0.6, 0.5 in bins (0.8, 0.9], (0.5, 0.6], (0.4, 0.5]: (0.1 + 0.4 + 0.5) / 3.
    assert reg.top_label_calibration_error([1, 0, 0], [0.9, 0.4, 0.5], 10) == pytest.approx(1.0 / 3)
    # swapping the class names leaves the top-label ECE unchanged (bins away from edges)
    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.uniform(size=500) < p).astype(int)
    assert reg.top_label_calibration_error(1 - y, 1 - p, 10) == pytest.approx(reg.top_label_calibration_error(y, p, 10))
    with pytest.raises(ValueError):
        reg.top_label_calibration_error([0, 1, 1], [0.5, 0.2])


# ------------------------------------------------------------------------------------------ early stopping


def test_early_stopping_restores_exactly_the_best_weights(tmp_path):
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.8, 0.85, 0.6]
    model = reg.MLPHead(4, 3)
    es = reg.EarlyStopping(patience=3, path=tmp_path / "best.safetensors")
    snapshots, stopped = {}, None
    for epoch, loss in enumerate(losses, start=1):
        with torch.no_grad():
            for p in model.parameters():
                p.normal_()
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}
        if es.step(loss, model, epoch):
            stopped = epoch
            break
    assert stopped == 7 and es.stopped_epoch == 7 and es.best_epoch == 4 and es.bad_epochs == 3
    es.restore(model)
    assert all(torch.equal(model.state_dict()[k], snapshots[4][k]) for k in snapshots[4])
    assert [f.name for f in tmp_path.iterdir()] == ["best.safetensors"]  # atomic: no temp file left behind


def test_early_stopping_in_training_loop(tmp_path):
    X, y, Xv, yv = _synthetic()
    es = reg.EarlyStopping(patience=4, path=tmp_path / "ckpt.safetensors")
    res = reg.train_mlp(X, y, Xv, yv, hidden=64, lr=3e-3, epochs=200, batch_size=16, early_stopping=es)
    h = res.history
    assert res.stopped_epoch is not None and len(h) == res.best_epoch + 4
    assert h["val_loss"].iloc[res.best_epoch - 1] == h["val_loss"].min()
    from sklearn.metrics import log_loss

    loss = log_loss(yv, reg.predict_proba(res.model, Xv), labels=[0, 1])
    assert loss == pytest.approx(h["val_loss"].min(), abs=1e-5)  # the returned model is the best epoch's
    with pytest.raises(ValueError):
        reg.EarlyStopping(patience=0)


def test_atomic_save_round_trip(tmp_path):
    m = reg.MLPHead(4, 3)
    path = reg.save_state_atomic(m, tmp_path / "sub" / "m.safetensors")
    m2 = reg.MLPHead(4, 3)
    reg.load_state(m2, path)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    with pytest.raises(ValueError):
        reg.load_state(m2, tmp_path / "missing.safetensors")


# ------------------------------------------------------------------------------------------ the lesson


def test_same_seed_same_history():
    X, y, Xv, yv = _synthetic(n_train=40, n_val=40)
    a = reg.train_mlp(X, y, Xv, yv, hidden=16, p=0.3, epochs=4, seed=3).history
    b = reg.train_mlp(X, y, Xv, yv, hidden=16, p=0.3, epochs=4, seed=3).history
    assert a.equals(b)


def test_l2_and_dropout_narrow_the_train_val_gap():
    """The lesson in miniature: 200 noisy examples in 20-D; the MLP memorises them (train acc 1) and
    L2 or dropout (hidden + input) narrow the train-val gap and lower the validation loss."""
    X, y, Xv, yv = _synthetic(n_train=200, d=20)
    kw = dict(hidden=128, lr=3e-3, epochs=100, batch_size=16, seed=0)
    none = reg.train_mlp(X, y, Xv, yv, **kw).final()
    l2 = reg.train_mlp(X, y, Xv, yv, l2=0.1, **kw).final()
    drop = reg.train_mlp(X, y, Xv, yv, p=0.8, input_p=0.5, **kw).final()
    assert none["train_acc"] == 1.0 and none["gap"] > 0.25  # it overfits
    for cured in (l2, drop):
        assert cured["gap"] < none["gap"] - 0.1
        assert cured["val_loss"] < none["val_loss"] - 0.5 and cured["val_acc"] > none["val_acc"]


def test_broken_regularizer_prevents_learning():
    X, y, Xv, yv = _synthetic(n_train=200, n_val=400)
    m = reg.MLPHead(40, 64)
    reg.reinit_and_clamp_(m, generator=torch.Generator().manual_seed(0))
    flat = torch.cat([p.detach().flatten() for p in m.parameters()])
    assert float(flat.abs().max()) <= 0.1 and float(m.fc1.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
    res = reg.train_mlp(X, y, Xv, yv, hidden=64, epochs=10, lr=1e-2, after_step=reg.reinit_and_clamp_)
    clean = reg.train_mlp(X, y, Xv, yv, hidden=64, epochs=10, lr=1e-2)
    assert clean.final()["val_acc"] > 0.7
    assert res.final()["val_acc"] < 0.6 and res.history["train_loss"].min() > 0.68  # ~ln 2: nothing learned


def test_group_gaps_against_numpy():
    X, y, Xv, yv = _synthetic(n_train=60, n_val=90)
    g, gv = np.array(["a", "b", "b"] * 20), np.array(["a", "b", "b"] * 30)
    res = reg.train_mlp(X, y, hidden=16, epochs=20)
    table = reg.group_gaps(res.model, X, y, g, Xv, yv, gv).set_index("group")
    pred, predv = reg.predict_proba(res.model, X) > 0.5, reg.predict_proba(res.model, Xv) > 0.5
    for grp in ("a", "b"):
        tr, va = (pred == y)[g == grp].mean(), (predv == yv)[gv == grp].mean()
        assert table.loc[grp, "gap"] == pytest.approx(tr - va)
        assert table.loc[grp, "n_train"] == (g == grp).sum()
    with pytest.raises(ValueError):
        reg.group_gaps(res.model, X, y, g, Xv, yv, np.array(["a"] * 90))


def test_bad_inputs_raise_readable_errors():
    X, y, Xv, yv = _synthetic(n_train=20, n_val=20)
    with pytest.raises(ValueError, match="y_train has 19 entries"):
        reg.train_mlp(X, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        reg.train_mlp(np.full_like(X, np.nan), y)
    with pytest.raises(ValueError, match="optimizer"):
        reg.train_mlp(X, y, optimizer="rmsprop")
    with pytest.raises(ValueError, match="dropout"):
        reg.train_mlp(X, y, p=1.2)
    with pytest.raises(ValueError, match="validation"):
        reg.train_mlp(X, y, early_stopping=reg.EarlyStopping(3))


def test_grid_and_good_region():
    X, y, Xv, yv = _synthetic(n_train=60, n_val=200)
    grid = reg.decay_grid(X, y, Xv, yv, lrs=[1e-3, 1e-2], decays=[1e-2, 1.0], step_decays=[1e-4, 1e-2], hidden=16,
                          epochs=3, progress=False)
    assert len(grid) == 8 and set(grid["method"]) == {"Adam+L2", "AdamW"}
    assert sorted(set(grid.loc[grid.method == "AdamW", "decay"])) == [1e-4, 1e-2]
    gr = reg.good_region(grid, tol=0.01).set_index("method")
    assert gr["best_val_acc"].max() == grid["val_acc"].max()
    # n_good by hand: the cells of each method within tol of the best accuracy of either method
    top = max(grid["val_acc"])
    for method in ("Adam+L2", "AdamW"):
        accs = [a for m, a in zip(grid["method"], grid["val_acc"]) if m == method]
        assert gr.loc[method, "n_good"] == sum(a >= top - 0.01 for a in accs)
        assert gr.loc[method, "fraction_good"] == pytest.approx(gr.loc[method, "n_good"] / len(accs))
    assert gr["n_good"].max() >= 1  # the best cell is always good


def test_decay_grid_gives_adamw_the_papers_per_step_decay(monkeypatch):
    """Loshchilov & Hutter's Algorithm 2 shrinks by lambda per step (eta_t = 1) whatever the learning rate: one
    AdamW step on a zero gradient must multiply the weights by 1 - lambda at every learning rate of the grid."""
    from helpers import regularization_studies as studies

    seen = []

    def spy(X, y, X_val, y_val, **kw):
        if kw["optimizer"] == "adamw":
            w = nn.Parameter(torch.ones(3))
            step = torch.optim.AdamW([w], lr=kw["lr"], weight_decay=kw["weight_decay"])
            w.grad = torch.zeros(3)
            step.step()
            seen.append((kw["lr"], float(w[0])))
        return reg.train_mlp(X, y, X_val, y_val, **{**kw, "epochs": 1})

    monkeypatch.setattr(studies, "train_mlp", spy)
    X, y, Xv, yv = _synthetic(n_train=20, n_val=20)
    studies.decay_grid(X, y, Xv, yv, lrs=[1e-3, 3e-2], decays=[0.1], step_decays=[0.01], hidden=4, progress=False)
    assert [lr for lr, _ in seen] == [1e-3, 3e-2]
    assert all(w == pytest.approx(0.99, abs=1e-7) for _, w in seen)
    with pytest.raises(ValueError, match="per step"):
        reg.decay_grid(X, y, Xv, yv, lrs=[1e-3], decays=[1.0], hidden=4, progress=False)


def test_ece_difference_against_hand_loop():
    """The estimate is the difference of the two ECEs; the interval is the percentile interval of the same
    difference recomputed on resampled rows (a plain loop over resamples with the library's ECE)."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    a = np.clip(y * 0.6 + rng.uniform(0, 0.4, 300), 0, 1)
    b = rng.uniform(0, 1, 300)
    iv = reg.ece_difference(y, a, b, n_boot=200, seed=3)
    assert iv.estimate == pytest.approx(reg.expected_calibration_error(y, a) - reg.expected_calibration_error(y, b))
    rows = np.random.default_rng(3).integers(0, 300, size=(200, 300))
    loop = [reg.expected_calibration_error(y[r], a[r]) - reg.expected_calibration_error(y[r], b[r]) for r in rows]
    assert (iv.low, iv.high) == pytest.approx(tuple(np.quantile(loop, [0.025, 0.975])), abs=1e-12)
    same = reg.ece_difference(y, a, a, n_boot=100)
    assert same.low == same.high == same.estimate == 0.0
    with pytest.raises(ValueError, match="n_boot"):
        reg.ece_difference(y, a, b, n_boot=10)


def test_describe_one_class_names_the_class_its_share_and_whether_it_is_the_majority():
    y = np.r_[np.zeros(75), np.ones(25)]  # class 0 is the majority (75 %)
    minority = reg.describe_one_class(np.full(100, 0.6), y)  # everyone gets class 1
    assert "class 1 for 100.0% of the rows: one class for (nearly) everyone" in minority
    assert "the minority class here (25.0% of the labels). Accuracy 0.250, about" in minority
    majority = reg.describe_one_class(np.r_[np.full(97, 0.4), np.full(3, 0.6)], y)  # 97 % get class 0
    assert "class 0 for 97.0% of the rows: one class" in majority and "the majority class here (75.0%" in majority
    mixed = reg.describe_one_class(np.r_[np.full(60, 0.4), np.full(40, 0.6)], y)
    assert "class 0 for 60.0% of the rows, not one class for everyone" in mixed and mixed.endswith("Accuracy 0.850.")
    with pytest.raises(ValueError, match="one shape"):
        reg.describe_one_class([0.6], [1, 0])
