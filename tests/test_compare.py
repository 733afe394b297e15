"""helpers.fairness.compare.paired_difference against an exact hand enumeration and brute-force row resampling."""

from __future__ import annotations

import fairlearn.metrics as fl
import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from helpers.fairness import metrics as M
from helpers.fairness.compare import paired_difference

# Hand example. Group F: two positives where a = b = (1, 0), one negative predicted 0 by both.
# Group M: two positives where a = (0, 0) and b = (1, 0), one negative predicted 0 by both.
Y = np.array([1, 1, 0, 1, 1, 0])
A = np.array([1, 0, 0, 0, 0, 0])
B = np.array([1, 0, 0, 1, 0, 0])
G = np.array(list("FFFMMM"))


def test_hand_example_exact_bootstrap_distribution():
    # In a resample, K ~ Bin(2, 1/2) of F's positives are the (1, 1) row and L ~ Bin(2, 1/2) of M's are the (0, 1)
    # row; negatives (one per group) are always predicted 0. TPR gaps: a = K/2, b = |K - L|/2, so the difference is
    # (K - |K - L|)/2 with P = (K, L): 1/16 (0,2) -> -1, 2/16 (0,1) -> -1/2, 6/16 -> 0, 6/16 -> 1/2, 1/16 (2,2) -> 1.
    # DP uses the three rows of a group: the same difference divided by 3/2.
    for metric, scale in (("eop", 1.0), ("eo", 1.0), ("dp", 2 / 3)):
        res = paired_difference(Y, A, B, sensitive_features=G, metric=metric, n_boot=40_000, seed=0)
        assert res.estimate == pytest.approx(0.5 * scale, abs=1e-12)  # K = L = 1 on the test set itself
        assert res.share_not_positive == pytest.approx(9 / 16, abs=0.01)  # P(diff <= 0) = (1 + 2 + 6)/16
        assert (res.low, res.high) == pytest.approx((-scale, scale), abs=1e-12)  # 2.5 % in the 1/16 atom at each end
    # accuracy: a and b agree except on M's first positive, which only b gets right: difference -L/6
    res = paired_difference(Y, A, B, sensitive_features=G, metric="accuracy", n_boot=40_000, seed=0)
    assert res.estimate == pytest.approx(-1 / 6, abs=1e-12)
    assert (res.low, res.high, res.share_not_positive) == pytest.approx((-1 / 3, 0.0, 1.0), abs=1e-12)


def _data(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    g = rng.choice([f"g{i}" for i in range(k)], n, p=rng.dirichlet(np.ones(k) * 3))
    y = (rng.random(n) < 0.25 + 0.1 * (g == "g0")).astype(int)
    score = y + rng.normal(0, 0.8, n)
    a = (score + 0.3 * (g == "g0") > 0.6).astype(int)
    b = (score + rng.normal(0, 0.4, n) > 0.5).astype(int)  # correlated with a, as two models on one test set are
    return y, a, b, g


_FAIRLEARN = {"accuracy": lambda y, p, g: accuracy_score(y, p),
              "dp": lambda y, p, g: fl.demographic_parity_difference(y, p, sensitive_features=g),
              "eop": lambda y, p, g: fl.equal_opportunity_difference(y, p, sensitive_features=g),
              "eo": lambda y, p, g: fl.equalized_odds_difference(y, p, sensitive_features=g)}
# for the resampling loop: equal to fairlearn to 1e-12 (tests/test_fairness_metrics.py), and far faster
_FAST = {"accuracy": lambda y, p, g: float(np.mean(y == p)),
         "dp": lambda y, p, g: M.demographic_parity_difference(y, p, sensitive_features=g),
         "eop": lambda y, p, g: M.equal_opportunity_difference(y, p, sensitive_features=g),
         "eo": lambda y, p, g: M.equalized_odds_difference(y, p, sensitive_features=g)}


@pytest.mark.parametrize("metric", ["accuracy", "dp", "eop", "eo"])
def test_matches_resampling_rows(metric):
    """Same quantiles as resampling row indices within each group x label cell and scoring both models on them."""
    y, a, b, g = _data(4, 500, 3)
    ours = paired_difference(y, a, b, sensitive_features=g, metric=metric, n_boot=4000, seed=1)
    fair = _FAIRLEARN[metric]
    assert ours.estimate == pytest.approx(fair(y, a, g) - fair(y, b, g), abs=1e-12)
    ref_metric = _FAST[metric]
    cells = np.char.add(g.astype(str), y.astype(str))
    members = [np.flatnonzero(cells == c) for c in np.unique(cells)]
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(2000):
        idx = np.concatenate([rng.choice(ix, len(ix)) for ix in members])
        boot.append(ref_metric(y[idx], a[idx], g[idx]) - ref_metric(y[idx], b[idx], g[idx]))
    ref = np.quantile(boot, [0.025, 0.975])
    tol = 0.1 * (ref[1] - ref[0])  # Monte Carlo error of a 2.5 % quantile from 2000 resamples: a few % of the width
    assert ours.low == pytest.approx(ref[0], abs=tol) and ours.high == pytest.approx(ref[1], abs=tol)
    assert ours.share_not_positive == pytest.approx(np.mean(np.array(boot) <= 1e-12), abs=0.03)


def test_paired_interval_is_narrower_than_the_separate_ones():
    """Two models that agree on most rows: the difference is known far better than either gap."""
    from helpers.fairness.metrics import gap_interval

    y, a, b, g = _data(5, 2000, 2)
    b = a.copy()
    flip = np.random.default_rng(0).choice(len(b), 40, replace=False)
    b[flip] = 1 - b[flip]
    pair = paired_difference(y, a, b, sensitive_features=g, metric="dp")
    single = gap_interval(y, a, sensitive_features=g, metric="dp")
    assert pair.high - pair.low < 0.5 * (single.high - single.low)


def test_identical_models_seeded_and_bad_input():
    y, a, b, g = _data(6, 300, 2)
    same = paired_difference(y, a, a, sensitive_features=g)
    assert same == (0.0, 0.0, 0.0, 0.95, 1.0)
    assert paired_difference(y, a, b, sensitive_features=g, seed=3) == paired_difference(y, a, b, sensitive_features=g,
                                                                                         seed=3)
    assert paired_difference(y, a, b, sensitive_features=g, seed=3) != paired_difference(y, a, b, sensitive_features=g,
                                                                                         seed=4)
    for kw, match in ((dict(metric="auc"), "metric"), (dict(level=95), "level"), (dict(n_boot=10), "n_boot")):
        with pytest.raises(ValueError, match=match):
            paired_difference(y, a, b, sensitive_features=g, **kw)
    with pytest.raises(ValueError, match="lengths"):
        paired_difference(y, a, b[:-1], sensitive_features=g)
    with pytest.raises(ValueError, match="both labels"):
        paired_difference([1, 1, 0, 1], [1, 0, 0, 1], [0, 0, 0, 1], sensitive_features=list("aabb"))


def test_describe_paired_names_the_differences_whose_interval_excludes_0():
    from helpers.fairness.compare import PairedDifference, describe_paired

    pairs = {("frozen - lr", "accuracy"): PairedDifference(-0.024, -0.043, -0.006, 0.95, 0.996),
             ("frozen - lr", "eo"): PairedDifference(-0.110, -0.208, 0.044, 0.95, 0.877)._asdict(),
             ("finetuned - frozen", "eo"): PairedDifference(0.174, 0.031, 0.288, 0.95, 0.008),
             ("finetuned - lr", "dp"): PairedDifference(0.05, 0.0, 0.1, 0.95, 0.03)}  # touches 0: not resolved
    text = describe_paired(pairs)
    told, not_told = text.split("It cannot tell apart")
    assert "frozen - lr in accuracy (-0.024, 95% interval -0.043 to -0.006)" in told
    assert "finetuned - frozen in equalized-odds gap (+0.174, 95% interval +0.031 to +0.288)" in told
    assert "frozen - lr in equalized-odds gap" in not_told and "finetuned - lr in demographic-parity gap" in not_told
    assert describe_paired({("a - b", "eo"): PairedDifference(0.0, -0.1, 0.1, 0.95, 0.5)}).startswith(
        "This test set cannot tell apart")
