"""Self-checks for notebook 03 (fine-tuning and fairness metrics): the gaps by hand, calibration, thresholds."""

from __future__ import annotations

import numpy as np

from . import call, exercise, expect


def _data(seed: int, n: int = 600, k: int = 3):
    rng = np.random.default_rng(seed)
    groups = np.array([f"g{i}" for i in range(k)])[rng.integers(0, k, n)]
    shift = np.array([0.1 * int(g[1:]) for g in groups])
    y = (rng.random(n) < 0.2 + shift).astype(int)
    prob = np.clip(0.15 + 0.5 * y + shift + rng.normal(0, 0.15, n), 0.001, 0.999)
    return y, (prob >= 0.5).astype(int), prob, groups


@exercise("03.1", title="Demographic-parity difference by hand",
          hint="Selection rate of a group = mean of y_pred inside it; return the largest minus the smallest.")
def _check_03_1(answer) -> None:
    from fairlearn.metrics import demographic_parity_difference

    for seed, k in ((0, 2), (1, 3), (2, 5)):
        y, pred, _, g = _data(seed, k=k)
        got = float(call(answer, pred, g))
        ref = demographic_parity_difference(y, pred, sensitive_features=g)
        expect(abs(got - ref) < 1e-9, f"with {k} groups you returned {got:.4f}; fairlearn says {ref:.4f}.")


@exercise("03.2", title="Equalized-odds difference by hand",
          hint="Per group: TPR = mean of y_pred where y_true == 1, FPR = mean of y_pred where y_true == 0. "
               "Return max(TPR gap, FPR gap), each gap = largest minus smallest over groups.")
def _check_03_2(answer) -> None:
    from fairlearn.metrics import equalized_odds_difference

    for seed, k in ((0, 2), (3, 4)):
        y, pred, _, g = _data(seed, k=k)
        got = float(call(answer, y, pred, g))
        ref = equalized_odds_difference(y, pred, sensitive_features=g)
        expect(abs(got - ref) < 1e-9, f"with {k} groups you returned {got:.4f}; fairlearn says {ref:.4f}.")


@exercise("03.3", title="Calibration in the large, per group",
          hint="For each group: mean predicted probability minus the observed fraction of positives. "
               "Return a dict {group: gap} (or a pandas Series indexed by group).")
def _check_03_3(answer) -> None:
    from ..fairness.metrics import group_metrics

    y, pred, prob, g = _data(4)
    got = call(answer, y, prob, g)
    got = dict(got.items()) if hasattr(got, "items") else None
    expect(got is not None, "return a dict or a pandas Series mapping each group to its gap.")
    ref = group_metrics(y, pred, g, y_prob=prob)["calibration_gap"]
    expect(set(map(str, got)) == set(map(str, ref.index)), f"expected the groups {list(ref.index)}, got {list(got)}.")
    for grp, v in ref.items():
        expect(abs(float(got[grp]) - v) < 1e-9, f"group {grp}: you returned {float(got[grp]):.4f}, expected {v:.4f}.")


@exercise("03.4", title="One threshold per group for equal selection rates",
          hint="Within each group, the threshold that selects a fraction r of it is the (1 - r) quantile of its "
               "scores: np.quantile(p_group, 1 - r). Return {group: threshold}; select with p >= threshold.")
def _check_03_4(answer) -> None:
    y, _, prob, g = _data(5, n=2000)
    for rate in (0.2, 0.4):
        got = call(answer, prob, g, rate)
        got = dict(got.items()) if hasattr(got, "items") else None
        expect(got is not None, "return a dict {group: threshold}.")
        for grp in np.unique(g):
            expect(grp in got, f"no threshold for group {grp}.")
            m = g == grp
            sel = (prob[m] >= float(got[grp])).mean()
            expect(abs(sel - rate) <= 0.02, f"group {grp} is selected at rate {sel:.3f}, not {rate}.")
