"""Undersampling, oversampling and SMOTE towards independence, and the leakage trap (helpers.fairness.resampling)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from helpers.fairness import resampling as R
from helpers.fairness.metrics import base_rates

# Group A: 40 positives, 60 negatives; group B: 10 positives, 90 negatives. n = 200, P(A) = 1/2, P(y=1) = 1/4,
# so the cells expected under independence are 25 (positives) and 75 (negatives) in each group. Count/expected:
# A+ 1.6, A- 0.8, B+ 0.4, B- 1.2. Oversampling targets 1.6 x expected, undersampling 0.4 x expected.
HAND_OVER = {("A", 0): 120, ("A", 1): 40, ("B", 0): 120, ("B", 1): 40}
HAND_UNDER = {("A", 0): 30, ("A", 1): 10, ("B", 0): 30, ("B", 1): 10}


def _hand(seed=0):
    rng = np.random.default_rng(seed)
    groups = np.array(["A"] * 100 + ["B"] * 100)
    labels = np.array([1] * 40 + [0] * 60 + [1] * 10 + [0] * 90)
    X = rng.normal(size=(200, 2)) + labels[:, None]
    return X, groups, labels


def _cell_counts(groups, labels) -> dict:
    return pd.Series(list(zip(groups.tolist(), labels.tolist()))).value_counts().to_dict()


def test_targets_match_the_hand_count():
    _, g, y = _hand()
    assert R.independence_targets(g, y, direction="over") == HAND_OVER
    assert R.independence_targets(g, y, direction="under") == HAND_UNDER


@pytest.mark.parametrize("method,hand", [("smote", HAND_OVER), ("oversample", HAND_OVER), ("undersample", HAND_UNDER)])
def test_resampled_cell_counts_and_equal_base_rates(method, hand):
    X, g, y = _hand()
    r = R.resample_cells(X, g, y, method=method, seed=0)
    assert _cell_counts(r.groups, r.labels) == hand
    rates = base_rates(r.labels, r.groups)
    assert rates["A"] == pytest.approx(0.25) and rates["B"] == pytest.approx(0.25)  # = P(y = 1) before
    if method == "smote":
        assert (r.source[:200] == np.arange(200)).all() and (r.source[200:] == -1).all()
        assert len(r.labels) == 320  # 120 synthetic rows: A- +60, B+ +30, B- +30
    else:
        assert (r.X == X[r.source]).all()  # every row is a copy of its source row


def test_smote_rows_lie_between_two_rows_of_their_own_cell():
    """Chawla et al. (2002): a synthetic row is x_i + u (x_nn - x_i), u in [0, 1), x_nn a neighbour in the cell."""
    X, g, y = _hand(1)
    r = R.resample_cells(X, g, y, method="smote", seed=3, k_neighbors=5)
    for s, gs, ys in zip(r.X[200:], r.groups[200:], r.labels[200:]):
        cell = X[(g == gs) & (y == ys)]
        d = cell[None, :, :] - cell[:, None, :]  # d[i, j] = x_j - x_i
        v = s - cell  # s - x_i, shape (m, 2)
        cross = d[..., 0] * v[:, None, 1] - d[..., 1] * v[:, None, 0]  # zero when s is on the line x_i -> x_j
        u = (v[:, None, :] * d).sum(-1) / np.maximum((d**2).sum(-1), 1e-300)
        ok = (np.abs(cross) < 1e-9) & (u >= -1e-12) & (u <= 1 + 1e-12) & ((d**2).sum(-1) > 0)
        assert ok.any()


def test_smote_counts_agree_with_imblearn_on_the_same_strategy():
    from imblearn.over_sampling import SMOTE

    X, g, y = _hand(2)
    cell = (g == "B") * 2 + y
    strategy = {0: 120, 1: 40, 2: 120, 3: 40}
    _, ref = SMOTE(sampling_strategy=strategy, random_state=0).fit_resample(X, cell)
    r = R.resample_cells(X, g, y, method="smote", seed=0)
    ours = (r.groups == "B") * 2 + r.labels
    assert np.bincount(ours).tolist() == np.bincount(ref).tolist() == [120, 40, 120, 40]


def test_resampled_ess_counts_copies_and_ignores_synthetic_rows():
    assert R.resampled_ess(np.array([0, 0, 1, 2]), 3) == pytest.approx(16 / 6)  # copies 2, 1, 1: 4^2 / 6
    assert R.resampled_ess(np.array([0, 1, 2, -1, -1]), 3) == pytest.approx(3.0)


def test_leakage_gap_on_random_labels_with_one_nearest_neighbour():
    """Labels are coin flips: nothing is learnable, fresh accuracy ~ 0.5. Oversampling before the split puts
    copies of training rows in the test split; 1-NN gets every copy right, so reported ~ shared + (1 - shared)/2."""
    rng = np.random.default_rng(0)
    n = 600
    X, Xf = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    g, gf = rng.choice(["A", "B"], n, p=[0.3, 0.7]), rng.choice(["A", "B"], n, p=[0.3, 0.7])
    y = (rng.random(n) < np.where(g == "A", 0.2, 0.5)).astype(int)
    yf = (rng.random(n) < np.where(gf == "A", 0.2, 0.5)).astype(int)
    model = KNeighborsClassifier(1)
    leak = R.leakage_gap(X, y, g, Xf, yf, gf, method="oversample", model=model, seed=0)
    assert leak["shared"] > 0.2
    assert leak["reported"] >= leak["shared"] + (1 - leak["shared"]) * 0.5 - 0.08
    assert abs(leak["fresh"] - 0.5) < 0.08
    assert leak["gap"] > 0.1
    control = R.leakage_gap(X, y, g, Xf, yf, gf, method="undersample", model=model, seed=0)
    assert control["shared"] == 0 and abs(control["gap"]) < 0.1


def test_readable_errors():
    X, g, y = _hand()
    with pytest.raises(ValueError, match="method"):
        R.resample_cells(X, g, y, method="smoteish")
    with pytest.raises(ValueError, match="two groups"):
        R.independence_targets(np.array(["A"] * 4), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="2-D"):
        R.resample_cells(X[:, 0], g, y)
