"""Tests for helpers.fairness.constrained: surrogate values, gradients, the multiplier, and the lesson on toy data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference

from helpers.fairness.constrained import (
    FairData,
    FairnessPenalty,
    LagrangianConstraint,
    dp_gap,
    encode_groups,
    eo_gap,
    evaluate,
    fit_predict,
    penalty_loss,
    per_group_table,
    run_method,
    summarize,
    sweep,
    train_fair_head,
)


def t(x, dtype=torch.float64):
    return torch.tensor(x, dtype=dtype)


# ---------------------------------------------------------------- surrogate values by hand
def test_dp_gap_hand_example():
    p = t([0.9, 0.7, 0.2, 0.4, 0.6])
    g = torch.tensor([0, 0, 1, 1, 1])
    # group 0 mean 0.8, group 1 mean 0.4 -> 0.4
    assert dp_gap(p, g).item() == pytest.approx(0.4)


def test_dp_gap_three_groups_is_max_minus_min():
    p = t([0.1, 0.3, 0.5, 0.9])
    g = torch.tensor([0, 0, 1, 2])
    assert dp_gap(p, g).item() == pytest.approx(0.9 - 0.2)


def test_eo_gap_hand_example():
    p = t([0.9, 0.5, 0.3, 0.1, 0.6, 0.2])
    y = torch.tensor([1, 1, 0, 1, 0, 0])
    g = torch.tensor([0, 0, 0, 1, 1, 1])
    # y=1: group0 mean 0.7, group1 0.1 -> 0.6 ; y=0: group0 0.3, group1 0.4 -> 0.1
    assert eo_gap(p, y, g).item() == pytest.approx(0.6)


def test_penalty_loss_is_ce_plus_lambda_gap():
    logits = t([2.0, -1.0, 0.5, 0.0])
    y = torch.tensor([1, 0, 1, 0])
    g = torch.tensor([0, 0, 1, 1])
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y.double())
    p = torch.sigmoid(logits)
    gap = abs((p[0] + p[1]) / 2 - (p[2] + p[3]) / 2)
    assert penalty_loss(logits, y, g, 3.0).item() == pytest.approx((ce + 3.0 * gap).item())
    # two-logit (fine-tuning) head gives the same numbers
    two = torch.stack([torch.zeros_like(logits), logits], 1)
    assert penalty_loss(two, y, g, 3.0).item() == pytest.approx((ce + 3.0 * gap).item())


def test_penalty_zero_for_identical_groups():
    p = t([0.2, 0.7, 0.9, 0.2, 0.7, 0.9])
    y = torch.tensor([0, 1, 1, 0, 1, 1])
    g = torch.tensor([0, 0, 0, 1, 1, 1])
    assert dp_gap(p, g).item() == 0.0
    assert eo_gap(p, y, g).item() == 0.0
    assert FairnessPenalty(5.0)(torch.logit(p), y, g).item() == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- gradients vs finite differences
def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    g = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    y = torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])
    logits = torch.randn(8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z: dp_gap(torch.sigmoid(z), g), (logits,))
    assert torch.autograd.gradcheck(lambda z: eo_gap(torch.sigmoid(z), y, g), (logits,))
    assert torch.autograd.gradcheck(lambda z: penalty_loss(z, y, g, 2.0, constraint="eo"), (logits,))
    # the Lagrangian term with a sharpened surrogate, lambda held fixed (n_groups=3)
    for tau in (1.0, 0.3):
        hook = LagrangianConstraint(delta=0.0, temperature=tau, n_groups=3)

        def term(z, hook=hook):
            hook.lam = 1.5  # each call also takes a dual step: reset so every evaluation sees the same lambda
            return hook(z, y, g, 0)

        assert torch.autograd.gradcheck(term, (logits,))


# ---------------------------------------------------------------- robustness
def test_group_without_positives_gives_no_nan():
    logits = torch.randn(6, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1, 1, 0, 0, 0, 0])
    g = torch.tensor([0, 0, 0, 1, 1, 1])  # group 1 has no positives in this batch
    for value in (eo_gap(torch.sigmoid(logits), y, g), penalty_loss(logits, y, g, 1.0, constraint="eo")):
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
        logits.grad = None
    # a batch with one group only: gap 0, finite gradient
    single = dp_gap(torch.sigmoid(logits), torch.zeros(6, dtype=torch.long))
    single.backward()
    assert single.item() == 0.0 and torch.isfinite(logits.grad).all()
    hook = LagrangianConstraint(0.0, constraint="eo")
    assert torch.isfinite(hook(logits.detach(), y, g, 0))


def test_bad_inputs_raise_valueerror():
    with pytest.raises(ValueError):
        dp_gap(t([0.1, 0.2]), torch.tensor([0]))
    with pytest.raises(ValueError):
        dp_gap(t([float("nan"), 0.2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError):
        LagrangianConstraint(0.02, constraint="accuracy")
    with pytest.raises(ValueError):
        train_fair_head(np.zeros((4, 2)), [0, 1, 0], [0, 1, 1])
    with pytest.raises(ValueError):
        train_fair_head(np.zeros((4, 2)), [1, 1, 1, 1], [0, 1, 0, 1])


# ---------------------------------------------------------------- the multiplier
def test_multiplier_rises_while_violated_and_falls_when_satisfied():
    hook = LagrangianConstraint(delta=0.1, dual_lr=0.5, beta=0.0)
    y = torch.zeros(4, dtype=torch.long)
    g = torch.tensor([0, 0, 1, 1])
    unfair = torch.tensor([5.0, 5.0, -5.0, -5.0])  # hard gap 1 > delta
    fair = torch.tensor([5.0, 5.0, 5.0, 5.0])  # hard gap 0 < delta
    for s in range(5):
        hook(unfair, y, g, s)
    lams = hook.history_frame()["lam"].tolist() + [hook.lam]
    assert all(b > a for a, b in zip(lams, lams[1:]))
    peak = hook.lam
    assert peak == pytest.approx(5 * 0.5 * (1 - 0.1))
    for s in range(5, 60):  # falls by eta * delta = 0.05 per step
        hook(fair, y, g, s)
    assert hook.lam < peak and hook.lam == 0.0  # projected onto lambda >= 0
    assert hook.dual_step(0.3) == pytest.approx(0.5 * 0.2)


def test_temperature_sharpens_the_surrogate_towards_the_real_rates():
    # one positive decision in each group; group 0's negatives sit near the boundary, group 1's far below it
    z = torch.tensor([2.0, -0.8, -0.8, 2.0, -3.0, -3.0], dtype=torch.float64)  # logit margins
    g = torch.tensor([0, 0, 0, 1, 1, 1])
    y = torch.zeros(6, dtype=torch.long)
    hard = 0.0  # the real DP gap of the decisions z > 0
    for tau in (1.0, 0.25):
        hook = LagrangianConstraint(delta=0.0, temperature=tau, lam_init=2.0)
        term = hook(z, y, g, 0)
        s = torch.sigmoid(z / tau)
        expected = abs(float(s[:3].mean() - s[3:].mean()))  # by hand: |mean sigma(z/tau) per group|
        assert hook.history[0]["surrogate"] == pytest.approx(expected, abs=1e-12)
        assert float(term) == pytest.approx(2.0 * expected, abs=1e-12)
        assert hook.history[0]["gap_estimate"] == pytest.approx(hard)  # decisions z > 0 do not depend on tau
    # the soft gap at tau = 1 (0.175) is far from the real gap 0; at tau = 0.25 it is close (0.026)
    soft = [abs(float(torch.sigmoid(z / t)[:3].mean() - torch.sigmoid(z / t)[3:].mean())) for t in (1.0, 0.25)]
    assert soft[0] > 0.15 and soft[1] < 0.03
    with pytest.raises(ValueError, match="temperature"):
        LagrangianConstraint(temperature=0.0)


# ---------------------------------------------------------------- the lesson on planted-bias data
def planted_bias(n: int = 1500, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 5))
    x[:, 0] += 1.5 * a  # a proxy of the group
    logit = 1.2 * x[:, 1] - 0.8 * x[:, 2] + 1.5 * a - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return x.astype(np.float32), y, a


def test_constrained_training_cuts_dp_gap_by_half():
    X, y, a = planted_bias()
    kw = dict(epochs=20, batch_size=256, seed=3)
    base = train_fair_head(X, y, a, method="unconstrained", **kw)
    fair = train_fair_head(X, y, a, method="lagrangian", delta=0.02, **kw)
    dp0 = demographic_parity_difference(y, base.predict(X), sensitive_features=a)
    dp1 = demographic_parity_difference(y, fair.predict(X), sensitive_features=a)
    assert dp0 > 0.1, dp0
    assert dp1 <= 0.5 * dp0, (dp0, dp1)
    assert (fair.predict(X) == y).mean() > 0.6
    hist = fair.multiplier_history
    assert len(hist) == len(fair.history) and hist["lam"].max() > 0


def test_deterministic_under_seed():
    X, y, a = planted_bias(400)
    p1 = train_fair_head(X, y, a, method="lagrangian", epochs=5, seed=1).predict_proba(X)
    p2 = train_fair_head(X, y, a, method="lagrangian", epochs=5, seed=1).predict_proba(X)
    np.testing.assert_array_equal(p1, p2)


def test_sweep_baselines_and_evaluate():
    X, y, a = planted_bias(800)
    data = FairData(X[:500], y[:500], a[:500], X[500:], y[500:], a[500:], ["a0", "a1"])
    df = sweep(data, constraint="dp", lambdas=[1.0], deltas=[0.05], seeds=[0, 1], epochs=5, progress=False,
               baselines=("unconstrained", "reweighing", "threshold", "expgrad"))
    assert set(df.columns) >= {"method", "param", "seed", "accuracy", "dp", "eo"}
    assert len(df) == 2 * 6
    assert df[["accuracy", "dp", "eo"]].notna().all().all()
    s = summarize(df)
    assert len(s) == 6 and (s["seeds"] == 2).all()
    # ThresholdOptimizer(DP) equalises selection rates on the data it was fit on: the test gap stays small
    assert df.query("method == 'threshold'")["dp"].max() < df.query("method == 'unconstrained'")["dp"].min()
    row = run_method(data, "unconstrained", epochs=5)
    unc, _ = fit_predict(data, "unconstrained", epochs=5)
    assert row["dp"] == pytest.approx(demographic_parity_difference(data.y_test, unc, sensitive_features=data.g_test))
    pred, extra = fit_predict(data, "lagrangian", param=0.05, epochs=5)  # run_method scores exactly these decisions
    assert pred.shape == (300,) and set(np.unique(pred)) <= {0, 1}
    lagr = run_method(data, "lagrangian", param=0.05, epochs=5, keep_predictions=True)
    assert {k: lagr[k] for k in ("accuracy", "dp", "eo", "ap")} == evaluate(data.y_test, pred, data.g_test)
    assert np.array_equal(lagr["y_pred"], pred) and "y_pred" not in row  # kept only when asked
    assert lagr["final_lam"] == extra["final_lam"] >= 0.0
    with pytest.raises(ValueError, match="Unknown method"):
        fit_predict(data, "adversarial")
    ev = evaluate([1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1])
    assert ev == {"accuracy": 0.5, "dp": 1.0, "eo": 1.0, "ap": 0.0}  # each group: one of two right
    table = per_group_table([1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], names=["F", "M"])
    assert table.loc["F", "selection_rate"] == 1.0 and table.loc["M", "tpr"] == 0.0


def test_encode_groups():
    codes, names = encode_groups(["Male", "Female", "Male"])
    assert names == ["Female", "Male"] and codes.tolist() == [1, 0, 1]


def test_describe_rate_change_names_levelling_down():
    from helpers.fairness.constrained import describe_rate_change

    # male 0.30 -> 0.12, female 0.10 -> 0.11: 0.18 of 0.19 movement lowered the male rate (95 %)
    text = describe_rate_change({"Male": 0.30, "Female": 0.10}, {"Male": 0.12, "Female": 0.11})
    assert "0.20 to 0.01" in text and "95% of the movement lowered the Male rate" in text and "levelling down" in text
    # both fell: nobody gained
    text = describe_rate_change({"Male": 0.30, "Female": 0.10}, {"Male": 0.05, "Female": 0.04})
    assert "Female rate fell too" in text
    # levelling up: female 0.10 -> 0.25, male 0.30 -> 0.28
    text = describe_rate_change({"Male": 0.30, "Female": 0.10}, {"Male": 0.28, "Female": 0.25})
    assert "88% raised the Female rate" in text and "levelling down" not in text
    assert "did not close" in describe_rate_change({"a": 0.3, "b": 0.1}, {"a": 0.31, "b": 0.1})
    with pytest.raises(ValueError, match="same group names"):
        describe_rate_change({"a": 0.3, "b": 0.1}, {"a": 0.3})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        describe_rate_change({"a": 30, "b": 0.1}, {"a": 0.3, "b": 0.1})


def test_constrain_last_layer_text_classifier_and_gap():
    """Last-layer retraining on an encoder's embeddings: the composed text classifier gives the head's own
    probabilities, and the constraint at least halves the DP gap of an unconstrained head with the same seed."""
    from types import SimpleNamespace

    from helpers import models, training
    from helpers.data import load_adult, serialize_frame
    from helpers.fairness.constrained import constrain_last_layer

    df = load_adult().sample(n=600, random_state=0)  # rows with missing values already dropped
    texts, y = serialize_frame(df), df["label"].to_numpy()
    g, _ = encode_groups(df["sex"])
    enc, tok = models.load_encoder(device="cpu"), models.load_tokenizer()
    result = SimpleNamespace(model=SimpleNamespace(encoder=enc), tokenizer=tok)  # stands in for a FineTuneResult
    E = models.encode(texts, enc, tok, progress=False)
    kw = dict(epochs=40, batch_size=128, seed=0, device="cpu")
    base = train_fair_head(E, y, g, method="unconstrained", **kw)
    clf, head = constrain_last_layer(result, E, y, g, constraint="dp", delta=0.02, dual_lr=0.5, **kw)
    dp0 = demographic_parity_difference(y, base.predict(E), sensitive_features=g)
    dp1 = demographic_parity_difference(y, head.predict(E), sensitive_features=g)
    assert dp0 > 0.1 and dp1 <= 0.5 * dp0, (dp0, dp1)
    assert head.hook.temperature == 0.25  # the default for DP; EO keeps the plain probabilities
    assert constrain_last_layer(result, E, y, g, constraint="eo", epochs=1)[1].hook.temperature == 1.0
    probs = training.predict_proba(clf, tok, texts[:16])[:, 1]
    np.testing.assert_allclose(probs, head.predict_proba(E[:16]), atol=1e-5)
    clf_mix, mixed = constrain_last_layer(result, E, y, g, constraint="eo", delta=0.03, randomized=True,
                                          mixture_delta=0.02, **kw)
    assert mixed.slack == 0.0 and mixed.fit_gap <= 0.02 + 1e-6
    q_text = training.predict_proba(clf_mix, tok, texts[:16])[:, 1]  # the chance that the mixture says 1
    np.testing.assert_allclose(q_text, mixed.decision_probability(E[:16]), atol=1e-5)
    with pytest.raises(ValueError, match="columns"):
        constrain_last_layer(result, E[:, :10], y, g)
    with pytest.raises(ValueError, match="encoder"):
        constrain_last_layer(SimpleNamespace(model=None), E, y, g)
    with pytest.raises(ValueError, match="randomized=True"):  # not silently ignored
        constrain_last_layer(result, E, y, g, constraint="eo", best_responses=9)
    # stage 2 alone, on saved embeddings: the same head and the same sampled decisions, no encoder needed
    from helpers.fairness.constrained import train_last_layer

    alone = train_last_layer(E, y, g, constraint="eo", delta=0.03, randomized=True, mixture_delta=0.02, **kw)
    np.testing.assert_array_equal(alone.predict(E, random_state=3), mixed.predict(E, random_state=3))
    np.testing.assert_allclose(train_last_layer(E, y, g, constraint="dp", delta=0.02, dual_lr=0.5, **kw)
                               .predict_proba(E), head.predict_proba(E), atol=1e-6)
    with pytest.raises(ValueError, match="randomized=True"):
        train_last_layer(E, y, g, mixture_delta=0.01)


def test_decision_report_matches_fairlearn():
    from fairlearn.metrics import MetricFrame, selection_rate

    from helpers.fairness.constrained import decision_report

    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    sex = np.where(rng.random(200) < 0.4, "Female", "Male")
    rep = decision_report(y, pred, sex)
    by_group = MetricFrame(metrics=selection_rate, y_true=y, y_pred=pred, sensitive_features=sex).by_group
    assert rep["selection_Female"] == pytest.approx(by_group["Female"])
    assert rep["selection_Male"] == pytest.approx(by_group["Male"])
    assert rep["share_predicted_positive"] == pytest.approx(pred.mean())
    assert rep["dp"] == pytest.approx(demographic_parity_difference(y, pred, sensitive_features=sex))
    with pytest.raises(ValueError, match="lengths must match"):
        decision_report(y, pred[:-1], sex)


# ---------------------------------------------------------------- the randomised classifier over iterates
def test_best_mixture_two_candidates_by_hand():
    """A (error 0.1, gap +0.2) and B (error 0.3, gap -0.1), delta 0.05: p_A 0.2 - 0.1 (1 - p_A) <= 0.05 gives
    p_A = 0.5 at the optimum, error 0.2; with delta 0.3 A alone is feasible."""
    from helpers.fairness.constrained import best_mixture

    p, slack = best_mixture(np.array([0.1, 0.3]), np.array([[0.2, -0.1]]), 0.05)
    np.testing.assert_allclose(p, [0.5, 0.5], atol=1e-9)
    assert slack == 0.0
    p, _ = best_mixture(np.array([0.1, 0.3]), np.array([[0.2, -0.1]]), 0.3)
    np.testing.assert_allclose(p, [1.0, 0.0], atol=1e-9)
    # no mixture reaches |gap| <= 0.01 when every gap is >= 0.1: the least violation, then the least error
    p, slack = best_mixture(np.array([0.1, 0.3, 0.2]), np.array([[0.3, 0.1, 0.1]]), 0.01)
    assert slack == pytest.approx(0.09) and p == pytest.approx([0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="columns"):
        best_mixture(np.array([0.1, 0.3]), np.array([[0.2, -0.1, 0.0]]), 0.05)
    with pytest.raises(ValueError, match="delta"):
        best_mixture(np.array([0.1, 0.3]), np.array([[0.2, -0.1]]), -1)


def test_best_mixture_matches_grid_search_over_the_simplex():
    """Independent reference: every point of a 1/200 grid on the 3-simplex that meets both constraints has expected
    error >= the LP's (up to the grid's resolution), and the LP's mixture meets them."""
    from helpers.fairness.constrained import best_mixture

    err = np.array([0.05, 0.2, 0.25])
    gaps = np.array([[0.15, -0.1, 0.0],  # the most accurate candidate violates both rows, the least accurate none
                     [-0.12, 0.05, 0.0]])
    p, slack = best_mixture(err, gaps, 0.03)
    assert slack == 0.0 and np.all(np.abs(gaps @ p) <= 0.03 + 1e-7) and np.count_nonzero(p) <= len(gaps) + 1
    i, j = np.meshgrid(np.arange(201), np.arange(201))
    keep = i + j <= 200
    grid = np.stack([i[keep], j[keep], 200 - i[keep] - j[keep]], 1) / 200.0
    ok = np.all(np.abs(grid @ gaps.T) <= 0.03, axis=1)
    assert ok.any() and (grid[ok] @ err).min() >= err @ p - 1e-9
    assert (grid[ok] @ err).min() <= err @ p + 0.005


def test_mix_iterates_meets_equalized_odds_on_the_fitting_data():
    """On planted-bias data the mixture's expected EO gap on the data it was fitted on is <= delta (the LP's promise),
    recomputed here with fairlearn from the mixture's own decision probabilities; sampling is seeded."""
    from fairlearn.metrics import equalized_odds_difference

    from helpers.fairness.constrained import mix_iterates

    X, y, a = planted_bias(3000, seed=1)
    run = train_fair_head(X, y, a, method="lagrangian", constraint="eo", delta=0.02, epochs=30, batch_size=256,
                          seed=0, keep_iterates=True)
    assert len(run.iterates) == 30
    mixed = mix_iterates(run, X, y, a, constraint="eo", delta=0.02)
    assert mixed.slack == 0.0 and len(mixed.support) <= 3 and mixed.weights.sum() == pytest.approx(1.0)
    q = mixed.decision_probability(X)
    tpr = [q[(a == g) & (y == 1)].mean() for g in (0, 1)]
    fpr = [q[(a == g) & (y == 0)].mean() for g in (0, 1)]
    assert max(abs(tpr[0] - tpr[1]), abs(fpr[0] - fpr[1])) <= 0.02 + 1e-4
    # independent reference: fairlearn on the randomised classifier written out as weighted hard decisions
    # (every row twice: yhat = 1 with weight q, yhat = 0 with weight 1 - q)
    fl_eo = equalized_odds_difference(np.r_[y, y], np.r_[np.ones_like(y), np.zeros_like(y)],
                                      sensitive_features=np.r_[a, a], sample_weight=np.r_[q, 1 - q])
    assert fl_eo == pytest.approx(max(abs(tpr[0] - tpr[1]), abs(fpr[0] - fpr[1])), abs=1e-6)
    assert mixed.fit_gap <= 0.02 + 1e-6
    # an expected error that the LP computed from the candidates' table
    expected_err = float(mixed.candidates.error @ mixed.candidates.weight)
    assert float(np.mean(np.where(y == 1, 1 - q, q))) == pytest.approx(expected_err, abs=1e-5)
    base_eo = equalized_odds_difference(y, train_fair_head(X, y, a, method="unconstrained", epochs=30, batch_size=256,
                                                           seed=0).predict(X), sensitive_features=a)
    assert base_eo > 2 * 0.02, base_eo  # the mixture at least halves the unconstrained head's EO gap
    draws = np.stack([mixed.predict(X, random_state=s) for s in range(200)])
    np.testing.assert_array_equal(draws[0], mixed.predict(X, random_state=0))
    assert np.abs(draws.mean(0) - q).max() < 0.15  # 200 Bernoulli draws per row
    with pytest.raises(ValueError, match="keep_iterates"):
        mix_iterates(train_fair_head(X, y, a, epochs=1), X, y, a)


# ---------------------------------------------------------------- best responses to the Lagrangian's multipliers
def test_lagrangian_costs_add_up_to_error_plus_multiplier_times_gaps():
    """For any decisions h: sum_i h_i c_i(1) + (1 - h_i) c_i(0) = error + mu . (rate differences), the rates taken
    from fairlearn's MetricFrame (independent of the cost formula); for DP and for EO with three groups."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, selection_rate, true_positive_rate

    from helpers.fairness.constrained import lagrangian_costs

    rng = np.random.default_rng(0)
    y, g, h = rng.integers(0, 2, 300), rng.integers(0, 3, 300), rng.integers(0, 2, 300)
    for constraint, metrics in (("dp", [selection_rate]), ("eo", [false_positive_rate, true_positive_rate])):
        diffs = []
        for metric in metrics:
            rate = MetricFrame(metrics=metric, y_true=y, y_pred=h, sensitive_features=g).by_group
            diffs += [rate[a] - rate[b] for a, b in ((0, 1), (0, 2), (1, 2))]
        mu = rng.normal(size=len(diffs))
        c1, c0 = lagrangian_costs(y, g, mu, constraint=constraint)
        assert float(h @ c1 + (1 - h) @ c0) == pytest.approx(float((h != y).mean() + mu @ np.array(diffs)), abs=1e-12)
        with pytest.raises(ValueError, match="rates"):
            lagrangian_costs(y, g, mu[:-1], constraint=constraint)


def test_weighted_logistic_regression_matches_scikit_learn():
    """The best-response fit (full-batch L-BFGS, L2 = 1 / (2 C n) on the weight-normalised loss) against
    scikit-learn's LogisticRegression(C) with the same sample weights rescaled to sum to n."""
    from sklearn.linear_model import LogisticRegression

    from helpers.fairness.mixture import _weighted_logreg

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    z = (X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=500) > 0).astype(float)
    w = rng.uniform(0.0, 2.0, 500)
    ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, z, sample_weight=w * 500 / w.sum())
    beta = _weighted_logreg(torch.tensor(X, dtype=torch.float32), torch.tensor(z, dtype=torch.float32),
                            torch.tensor(w, dtype=torch.float32), 1.0 / (2 * 0.5 * 500)).double().numpy()
    np.testing.assert_allclose(beta[:-1], ref.coef_[0], atol=2e-4)
    assert beta[-1] == pytest.approx(ref.intercept_[0], abs=2e-4)


def test_best_responses_grid_and_the_mixture_they_improve():
    """nu = 0 is plain logistic regression; the grid covers [-1, 1]^R (random points once it would be too large);
    adding best responses as candidates can only lower the mixture's error on its fitting data, and it still meets
    delta there."""
    from sklearn.linear_model import LogisticRegression

    from helpers.fairness.constrained import best_response_heads, mix_iterates

    X, y, a = planted_bias(3000, seed=1)
    states, nu = best_response_heads(X, y, a, constraint="eo", n_candidates=9)
    assert nu.shape == (9, 2) and sorted(set(nu.ravel())) == [-1.0, 0.0, 1.0]
    centre = int(np.flatnonzero((nu == 0).all(1))[0])
    Z = (X - states[centre]["mean"].numpy()) / states[centre]["std"].numpy()
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(Z, y)
    np.testing.assert_allclose(states[centre]["linear.weight"].numpy()[0], ref.coef_[0], atol=2e-3)
    _, nu6 = best_response_heads(X, y, np.arange(3000) % 3, constraint="eo", n_candidates=5, seed=4)
    _, again = best_response_heads(X, y, np.arange(3000) % 3, constraint="eo", n_candidates=5, seed=4)
    assert nu6.shape == (5, 6) and np.abs(nu6).max() <= 1 and np.array_equal(nu6, again)

    run = train_fair_head(X, y, a, method="lagrangian", constraint="eo", delta=0.02, epochs=30, batch_size=256,
                          seed=0, keep_iterates=True)
    plain = mix_iterates(run, X, y, a, constraint="eo", delta=0.02)
    richer = mix_iterates(run, X, y, a, constraint="eo", delta=0.02, best_responses=25)
    assert len(richer.candidates) == len(plain.candidates) + 25 and richer.slack == 0.0
    err = lambda m: float(m.candidates.error @ m.candidates.weight)  # noqa: E731
    assert err(richer) <= err(plain) + 1e-12 and richer.fit_gap <= 0.02 + 1e-6
    assert richer.candidates.candidate.iloc[-1].startswith("best response nu=(")


def test_weight_decay_spares_the_bias():
    """With features that carry no signal, the head's best prediction is the base rate, ``sigmoid(b) = mean(y)``.
    Strong AdamW decay on ``b`` would drag it towards 1/2; the bias is not decayed, so the base rate is reached."""
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.8).astype(int)
    p = train_fair_head(np.zeros((400, 3)), y, method="unconstrained", weight_decay=5.0, lr=0.05, epochs=40,
                        batch_size=100).predict_proba(np.zeros((1, 3)))
    assert p[0] == pytest.approx(y.mean(), abs=0.02)
