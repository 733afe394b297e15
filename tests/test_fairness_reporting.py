"""helpers.fairness.reporting: which sentences are claims (checked) and which are findings (generated), on hand-made
numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.claims import Claim
from helpers.fairness import reporting as rep


@pytest.fixture(autouse=True)
def _build(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_BUILD_DIR", str(tmp_path))
    rep._MADE.clear()
    rep._FOUND.clear()


def _history(gaps, lams):
    return pd.DataFrame({"step": range(len(gaps)), "lam": lams, "gap_estimate": gaps, "surrogate": 0.0})


def test_multiplier_settled_vs_still_climbing():
    rng = np.random.default_rng(0)
    settled = 0.02 + rng.normal(0, 0.01, 400)  # hovers around delta
    lam = np.clip(np.cumsum(1.0 * (settled - 0.02)) + 3, 0, None)
    assert rep.multiplier("t", _history(settled, lam), delta=0.02).held
    climbing = 0.06 + rng.normal(0, 0.005, 400)  # 0.04 above delta, spread 0.005: lambda still rising
    lam = np.cumsum(0.2 * (climbing - 0.02))
    made = rep.multiplier("t", _history(climbing, lam), delta=0.02)
    assert isinstance(made, Claim) and not made.held
    assert made.evidence["late_gap_estimate"] == pytest.approx(0.06, abs=0.003)


def test_tolerance_below_the_noise_is_a_finding_not_a_claim():
    kw = dict(before={"dp": 0.22}, rates={"A": 0.2, "B": 0.25})
    out = rep.constrained_head("t", after={"dp": 0.05}, delta=0.02, noise=0.03, **kw)
    assert [type(o) for o in out] == [Claim, Claim, rep.Finding]
    assert "cannot check" in out[2] and "about 2.2× as many" in out[2]  # (0.03 / 0.02)^2 = 2.25 times the rows
    met, missed = (rep.constrained_head("t", after={"dp": g}, delta=0.05, noise=0.03, **kw)[2] for g in (0.07, 0.09))
    assert met.held and not missed.held  # 0.07 <= 0.05 + 0.03 < 0.09
    assert [type(o) for o in rep.constrained_head("t", after={"dp": 0.0}, delta=0.02, noise=0.01, claims=False,
                                                  rates={"A": 0.0, "B": 0.0}, before={"dp": 0.2})] == [rep.Finding] * 3


def test_frontier_claims_only_the_tolerances_the_test_set_can_check():
    rows = [dict(target="ap", method="lagrangian", param=d, ap_mean=g)
            for d, g in ((0.15, 0.14), (0.1, 0.12), (0.05, 0.08), (0.02, 0.06), (0.0, 0.05))]
    out = rep.frontier("t", pd.DataFrame(rows), {"ap": 0.033})
    claim, finding = out
    assert claim.held and claim.evidence["noise"] == 0.033  # 0.14, 0.12, 0.08 within delta + 0.033
    assert "δ = 0.02: 0.060" in finding and "δ = 0.15" not in finding
    rows[2]["ap_mean"] = 0.084  # 0.05 + 0.033 = 0.083: missed by 0.001
    assert not rep.frontier("t", pd.DataFrame(rows), {"ap": 0.033})[0].held


def test_levelled_down_groups_are_reported_with_their_rates():
    y = np.array([0, 1] * 50)
    groups = np.array(["a"] * 40 + ["b"] * 40 + ["c"] * 20)
    preds = {"unconstrained": np.r_[np.ones(40), np.zeros(60)].astype(int), "flat": np.zeros(100, int)}
    finding, _ = rep.multi_group("t", preds, y, groups, before="unconstrained", narrowing=["flat"])
    assert "flat gives the positive decision to 0.0% of people (a 0.000, b 0.000, c 0.000)" in finding
    assert "unconstrained gives" in finding  # 40 % share, but group b and c at 0 and a at 1: one decision per group


def test_monotone_leaves_delta_zero_to_a_finding():
    rows = [dict(target="dp", method="lagrangian", param=d, dp_mean=g)
            for d, g in ((0.1, 0.09), (0.05, 0.04), (0.02, 0.01), (0.0, 0.05))]
    claim, finding = rep.monotone("t", pd.DataFrame(rows), {"dp": 0.03})
    assert claim.held and claim.evidence["max_increase"]["lagrangian"] == 0.0
    assert "0.050 is larger than that of δ = 0.02 (0.010)" in finding
    rows[1]["dp_mean"] = 0.0  # tightening 0.05 -> 0.02 raises the gap by 0.01 only: still within 0.03
    assert rep.monotone("t", pd.DataFrame(rows), {"dp": 0.03})[0].held
    rows[2]["dp_mean"] = 0.04  # now by 0.04 > 0.03
    assert not rep.monotone("t", pd.DataFrame(rows), {"dp": 0.03})[0].held


def test_one_near_constant_rule_a_group_under_five_percent_or_over_ninety_five():
    assert rep.one_class_groups({"Female": 0.031, "Male": 0.030}) == {"Female": 0.031, "Male": 0.030}
    assert rep.one_class_groups({"a": 0.06, "b": 0.94, "c": 0.96}) == {"c": 0.96}


def test_no_better_than_majority_uses_the_accuracy_half_width():
    y = np.r_[np.zeros(70), np.ones(30)].astype(int)
    flag, acc, majority, half = rep.no_better_than_majority(y, np.zeros(100, int))
    assert flag and (acc, majority) == (0.7, 0.7) and half == pytest.approx(1.96 * (0.21 / 100) ** 0.5)
    better = np.r_[np.zeros(70), np.ones(10), np.zeros(20)].astype(int)  # 0.80 > 0.70 + 1.96 * sqrt(0.16 / 100)
    assert not rep.no_better_than_majority(y, better)[0]
    near = np.r_[np.zeros(70), np.ones(7), np.zeros(23)].astype(int)  # 0.77 <= 0.70 + 0.082
    assert rep.no_better_than_majority(y, near)[0]


def test_halving_claim_leaves_out_near_constant_methods_and_names_them():
    y = np.array([0, 1] * 100)
    groups = np.array(["a", "a", "b", "b"] * 50)
    unc = np.r_[np.tile([1, 1, 0, 0], 50)]  # a selected 1.0, b 0.0: spread 1
    fair = y.copy()  # both groups 0.5, accuracy 1
    flat = np.zeros(200, int)
    _, claim = rep.multi_group("t", {"unconstrained": unc, "fair": fair, "flat": flat}, y, groups,
                               before="unconstrained", narrowing=["fair", "flat"])
    assert claim.held and claim.evidence["excluded"] == ["flat"] and "1 of 2" in claim.says
    _, only = rep.multi_group("t", {"unconstrained": unc, "flat": flat}, y, groups, before="unconstrained",
                              narrowing=["flat"])
    assert isinstance(only, rep.Finding) and "flat" in only


def test_a_tolerance_counts_only_if_it_binds():
    rows = [dict(target="eo", method="lagrangian", param=d, eo_mean=g) for d, g in ((0.15, 0.21), (0.05, 0.05))]
    rows.append(dict(target="eo", method="unconstrained", param=None, eo_mean=0.214))
    out = rep.frontier("t", pd.DataFrame(rows), {"eo": 0.115})  # 0.15 + 0.115 >= 0.214: inactive; 0.05 < noise
    assert [type(o) for o in out] == [rep.Finding] * 3 and "do not bind" in out[0]
    rows[-1]["eo_mean"] = 0.30  # now 0.15 + 0.115 < 0.30: binds, and 0.21 <= 0.265 is met
    claim = rep.frontier("t", pd.DataFrame(rows), {"eo": 0.115})[0]
    assert isinstance(claim, Claim) and claim.held and "δ = 0.15: 0.210" in claim.says


def test_accuracy_parity_says_entirely_when_the_worse_served_group_did_not_gain():
    before, counts = {"Female": 0.905, "Male": 0.800}, {"Female": 653, "Male": 1347}
    down = rep._ap_lowers_the_better_served("t", before, {"Female": 0.801, "Male": 0.794}, counts)
    assert down.held and "0.105 → 0.007) entirely" in down.says and "levelling down" in down.says
    assert down.evidence["worst_noise"] == pytest.approx(1.96 * (0.8 * 0.2 / 1347) ** 0.5, abs=1e-4)
    up = rep._ap_lowers_the_better_served("t", before, {"Female": 0.86, "Male": 0.85}, counts)  # 0.85 > 0.800 + 0.021
    assert up.held and ") partly by" in up.says and "levelling down" not in up.says


def test_methods_meet_judges_the_difference_with_a_paired_bootstrap():
    rng = np.random.default_rng(0)
    y, groups = rng.integers(0, 2, 400), np.repeat(["F", "M"], 200)
    a = np.where(rng.random(400) < 0.9, y, 1 - y)
    near = a.copy()
    flip = np.r_[np.flatnonzero(a == y)[:3], np.flatnonzero(a != y)[:3]]  # 3 right -> wrong, 3 wrong -> right
    near[flip] = 1 - near[flip]
    cols = pd.MultiIndex.from_product([["accuracy", "dp"], ["mean", "std"]])
    table = pd.DataFrame([[0.9, 0, 0.05, 0], [0.9, 0, 0.05, 0], [0.5, 0, 0.0, 0]], index=["a", "b", "c"], columns=cols)
    same = rep.methods_meet("t", table, ("a", "b"), gap="dp", y_true=y, predictions={"a": a, "b": near}, groups=groups)
    assert "cannot tell the two apart" in same
    apart = rep.methods_meet("t", table, ("a", "c"), gap="dp", y_true=y, predictions={"a": a, "c": np.zeros(400, int)},
                             groups=groups)
    assert "tells the two apart in accuracy" in apart  # 0.9 vs about 0.5 on the same rows
    assert "c's accuracy" in apart and "no better than predicting the majority class" in apart
    assert apart.endswith("a comparison with it says nothing about the price of fairness.")
    assert "majority" not in same  # both at 0.9, far above the majority rate


@pytest.mark.parametrize("rates, delta, verdict", [
    ((0.50, 0.50), 0.2, "met: the whole interval lies at or below"),     # DP gap 0, interval [0, ~0.05]
    ((0.20, 0.60), 0.1, "missed: the whole interval lies above"),        # DP gap 0.4
    ((0.45, 0.55), 0.1, "cannot tell: the interval contains"),           # DP gap 0.1 = delta
])
def test_interval_compares_the_test_gap_with_the_tolerance(rates, delta, verdict):
    n = 1000  # per group: exact selection rates, so the DP gap is rates[1] - rates[0]
    groups = np.repeat(["F", "M"], n)
    y_pred = np.r_[np.arange(n) < rates[0] * n, np.arange(n) < rates[1] * n].astype(int)
    y = np.random.default_rng(0).integers(0, 2, 2 * n)
    found = rep.interval("t", "gap", y, y_pred, groups, metric="dp", what="the gap", delta=delta)
    assert verdict in found
    assert f"The gap is {abs(rates[1] - rates[0]):.3f}" in found


def test_delta_zero_finding_names_the_cap_and_its_article():
    """δ = 0 gap 0.10 vs δ = 0.02 gap 0.05 plus noise 0.03: larger; the text says λ grows to its cap, 'an EO gap'."""
    s = pd.DataFrame({"target": ["eo", "dp"] * 2, "method": ["lagrangian"] * 4, "param": [0.0, 0.0, 0.02, 0.02],
                      "eo_mean": [0.10, np.nan, 0.05, np.nan], "dp_mean": [np.nan, 0.01, np.nan, 0.02]})
    texts = [str(o) for o in rep.monotone("t", s, {"eo": 0.03, "dp": 0.03})]
    eo = next(t for t in texts if t.startswith("δ = 0 asks for an EO gap"))
    assert "until it reaches its cap λ_max" in eo and "0.100 is larger than that of δ = 0.02 (0.050)" in eo
    assert any(t.startswith("δ = 0 asks for a DP gap") and "is no larger than" in t for t in texts)
