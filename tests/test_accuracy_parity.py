"""Accuracy parity as a training constraint: the surrogate against fairlearn and finite differences, the running
estimate, the multiplier, and the baselines that support it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

from helpers.fairness import (
    FairData,
    FairnessPenalty,
    LagrangianConstraint,
    RunningRates,
    accuracy_parity_difference,
    ap_gap,
    best_response_heads,
    evaluate,
    fit_predict,
    gap,
    sweep,
    train_fair_head,
)


def fairlearn_accuracy_gap(y, p, groups) -> float:
    return float(MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=groups).difference())


def random_batch(seed: int, n: int = 300, k: int = 3):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, k, n)
    y = (rng.random(n) < 0.2 + 0.2 * g / max(k - 1, 1)).astype(int)
    return torch.as_tensor(g), torch.as_tensor(y), rng


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [2, 4])
def test_ap_gap_on_hard_probabilities_is_the_accuracy_gap(seed, k):
    g, y, rng = random_batch(seed, k=k)
    decisions = (rng.random(len(y)) < 0.3 + 0.4 * y.numpy()).astype(int)
    p = torch.as_tensor(decisions, dtype=torch.float64)
    ours = ap_gap(p, y, g).item()
    assert ours == pytest.approx(fairlearn_accuracy_gap(y.numpy(), decisions, g.numpy()), abs=1e-12)
    assert ours == pytest.approx(accuracy_parity_difference(y.numpy(), decisions, sensitive_features=g.numpy()), abs=1e-12)
    assert gap("ap", p, y, g).item() == ours


def test_ap_gap_hand_example():
    # group 0: labels 1, 0 with p 0.8, 0.4 -> soft accuracy (0.8 + 0.6) / 2 = 0.7
    # group 1: labels 1, 1 with p 0.5, 0.3 -> (0.5 + 0.3) / 2 = 0.4
    p = torch.tensor([0.8, 0.4, 0.5, 0.3], dtype=torch.float64)
    assert ap_gap(p, torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1])).item() == pytest.approx(0.3)


def test_ap_gap_gradient_matches_finite_differences():
    g, y, _ = random_batch(5, n=12, k=3)
    logits = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: ap_gap(torch.sigmoid(z), y, g), (logits,))
    penalty = FairnessPenalty(2.0, "ap", n_groups=3)
    assert torch.autograd.gradcheck(lambda z: penalty(z, y, g), (logits,))
    hook = LagrangianConstraint(delta=0.0, constraint="ap", n_groups=3, temperature=0.5)

    def term(z):
        hook.lam = 1.5  # each call also takes a dual step: every evaluation must see the same lambda
        return hook(z, y, g, 0)

    assert torch.autograd.gradcheck(term, (logits,))


def test_sharpened_surrogate_tends_to_the_hard_gap():
    g, y, rng = random_batch(7, n=400, k=2)
    z = torch.as_tensor(rng.normal(0, 2, len(y)))
    z = torch.where(z.abs() < 0.2, torch.sign(z) * 0.2 + (z == 0) * 0.2, z)  # no margin at the boundary itself
    hard = fairlearn_accuracy_gap(y.numpy(), (z > 0).int().numpy(), g.numpy())
    errors = [abs(ap_gap(torch.sigmoid(z / tau), y, g).item() - hard) for tau in (1.0, 0.1, 0.01, 0.001)]
    assert errors[-1] < 1e-6 and errors == sorted(errors, reverse=True), errors


def test_single_group_or_empty_group_gives_zero_not_nan():
    p = torch.tensor([0.2, 0.9], dtype=torch.float64, requires_grad=True)
    out = ap_gap(p, torch.tensor([0, 1]), torch.tensor([1, 1]), n_groups=3)
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(p.grad).all()


def test_running_estimate_of_the_accuracy_gap():
    rr = RunningRates(2, beta=0.5)
    y = np.array([1, 0, 1, 0, 1, 1])
    d = np.array([1, 0, 1, 0, 1, 0])  # group 0: 3 of 3 right; group 1: 2 of 3
    g = np.array([0, 0, 0, 1, 1, 1])
    rr.update(d.astype(float), y, g)
    assert rr.gap("ap") == pytest.approx(fairlearn_accuracy_gap(y, d, g)) == pytest.approx(1 / 3)  # first batch
    rr.update(np.ones(6), y, g)  # everyone predicted 1: 2 of 3 right in each group
    # EMA (beta 0.5) of correct counts: group 0 0.5 * 3 + 0.5 * 2 = 2.5, group 1 2; sizes stay 3
    assert rr.gap("ap") == pytest.approx(2.5 / 3 - 2 / 3)


def unequal_accuracy(n: int = 2000, seed: int = 0):
    """Group 1's label is noisier than group 0's, so one linear head is less accurate for it."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4))
    x[:, 3] = a
    logit = np.where(a == 0, 3.0, 0.8) * x[:, 0] - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x.astype(np.float32), y, a


def test_the_constraint_narrows_the_accuracy_gap_by_lowering_the_better_served_group():
    """Group 1's noise caps its accuracy, so parity can only come from making the model worse for group 0 (with the
    sharpened surrogate: at temperature 1 the head shrinks the soft gap by moving confident scores instead)."""
    X, y, a = unequal_accuracy()
    kw = dict(epochs=25, batch_size=256, seed=1)
    base = train_fair_head(X, y, a, method="unconstrained", **kw)
    fair = train_fair_head(X, y, a, method="lagrangian", constraint="ap", delta=0.02, temperature=0.25, **kw)
    before, after = base.predict(X), fair.predict(X)
    gap0 = accuracy_parity_difference(y, before, sensitive_features=a)
    gap1 = accuracy_parity_difference(y, after, sensitive_features=a)
    assert gap0 > 0.1, gap0
    assert gap1 <= 0.5 * gap0, (gap0, gap1)
    assert (after[a == 0] == y[a == 0]).mean() < (before[a == 0] == y[a == 0]).mean() - 0.05
    assert fair.multiplier_history["lam"].max() > 0


def test_evaluate_and_baselines_support_accuracy_parity():
    X, y, a = unequal_accuracy(900, seed=2)
    data = FairData(X[:600], y[:600], a[:600], X[600:], y[600:], a[600:], ["a0", "a1"])
    pred, _ = fit_predict(data, "expgrad", constraint="ap", expgrad_iter=10)
    ours = evaluate(data.y_test, pred, data.g_test)
    assert ours["ap"] == pytest.approx(fairlearn_accuracy_gap(data.y_test, pred, data.g_test), abs=1e-12)
    with pytest.raises(ValueError, match="ThresholdOptimizer has no accuracy-parity"):
        fit_predict(data, "threshold", constraint="ap")
    df = sweep(data, constraint="ap", deltas=(0.05,), seeds=(0,), epochs=3, batch_size=128, expgrad_iter=5,
               progress=False)
    assert set(df["method"]) == {"unconstrained", "reweighing", "expgrad", "lagrangian"}
    assert {"accuracy", "dp", "eo", "ap"} <= set(df.columns)
    assert isinstance(df, pd.DataFrame)
    with pytest.raises(ValueError, match="support 'dp' and 'eo'"):
        best_response_heads(X, y, a, constraint="ap", n_candidates=3)
