"""helpers.fairness.metrics against fairlearn 0.15 (to 1e-12) and hand-computed toys."""

from __future__ import annotations

import fairlearn.metrics as fl
import numpy as np
import pandas as pd
import pytest

from helpers.fairness import metrics as M

DISPARITIES = ["demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
               "equal_opportunity_difference", "equalized_odds_ratio", "equal_opportunity_ratio"]


def _random(seed: int, n: int, k: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < 0.3 + 0.4 * y).astype(int)
    g = rng.choice([f"g{i}" for i in range(k)], n, p=rng.dirichlet(np.ones(k) * 3))
    w = rng.random(n) * 3
    return y, p, g, w


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", DISPARITIES)
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_fairlearn(k, seed, name, method, weighted):
    y, p, g, w = _random(seed, 600, k)
    sw = w if weighted else None
    ours = getattr(M, name)(y, p, sensitive_features=g, method=method, sample_weight=sw)
    ref = getattr(fl, name)(y, p, sensitive_features=g, method=method, sample_weight=sw)
    assert ours == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("agg", ["worst_case", "mean"])
def test_equalized_odds_agg(agg):
    y, p, g, _ = _random(3, 400, 4)
    for name in ("equalized_odds_difference", "equalized_odds_ratio"):
        ours = getattr(M, name)(y, p, sensitive_features=g, agg=agg)
        assert ours == pytest.approx(getattr(fl, name)(y, p, sensitive_features=g, agg=agg), abs=1e-12)


def test_intersectional_groups_match_fairlearn():
    y, p, g, _ = _random(4, 800, 2)
    rng = np.random.default_rng(5)
    sf = pd.DataFrame({"sex": g, "race": rng.choice(["a", "b", "c"], len(g))})
    for name in DISPARITIES:
        assert getattr(M, name)(y, p, sensitive_features=sf) == pytest.approx(
            getattr(fl, name)(y, p, sensitive_features=sf), abs=1e-12)


def test_group_metrics_match_metricframe():
    y, p, g, w = _random(6, 700, 3)
    prob = np.clip(p * 0.6 + np.random.default_rng(0).random(len(p)) * 0.4, 0, 1)
    ours = M.group_metrics(y, p, g, y_prob=prob, sample_weight=w)
    mf = fl.MetricFrame(metrics={"selection_rate": fl.selection_rate, "tpr": fl.true_positive_rate,
                                 "fpr": fl.false_positive_rate, "count": fl.count},
                        y_true=y, y_pred=p, sensitive_features=g,
                        sample_params={"selection_rate": {"sample_weight": w}, "tpr": {"sample_weight": w},
                                       "fpr": {"sample_weight": w}})
    for col in ("selection_rate", "tpr", "fpr"):
        np.testing.assert_allclose(ours[col].to_numpy(), mf.by_group[col].to_numpy(dtype=float), atol=1e-12)
    np.testing.assert_array_equal(ours["count"].to_numpy(), mf.by_group["count"].to_numpy(dtype=int))
    for grp in ours.index:
        m = g == grp
        assert ours.loc[grp, "accuracy"] == pytest.approx(np.average(y[m] == p[m], weights=w[m]), abs=1e-12)
        assert ours.loc[grp, "mean_prob"] == pytest.approx(np.average(prob[m], weights=w[m]), abs=1e-12)
        assert ours.loc[grp, "calibration_gap"] == pytest.approx(
            np.average(prob[m], weights=w[m]) - np.average(y[m], weights=w[m]), abs=1e-12)


def test_hand_computed_toy():
    # group a: 4 people, 2 positives; b: 4 people, 2 positives
    y = [1, 1, 0, 0, 1, 1, 0, 0]
    p = [1, 1, 1, 0, 1, 0, 0, 0]
    g = ["a"] * 4 + ["b"] * 4
    assert M.demographic_parity_difference(y, p, sensitive_features=g) == pytest.approx(0.75 - 0.25)
    assert M.demographic_parity_ratio(y, p, sensitive_features=g) == pytest.approx(1 / 3)
    assert M.equal_opportunity_difference(y, p, sensitive_features=g) == pytest.approx(1.0 - 0.5)
    assert M.equalized_odds_difference(y, p, sensitive_features=g) == pytest.approx(0.5)  # TPR 1 vs .5, FPR .5 vs 0
    table = M.group_metrics(y, p, g, overall=True)
    assert table.loc["a", "accuracy"] == pytest.approx(0.75)
    assert table.loc["overall", "selection_rate"] == pytest.approx(0.5)


def test_label_disparities_and_representation():
    df = pd.DataFrame({"sex": ["F"] * 4 + ["M"] * 6, "label": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0]})
    rates = M.base_rates(df.label, df.sex)
    assert rates["F"] == pytest.approx(0.25) and rates["M"] == pytest.approx(0.5)
    assert M.disparate_impact_ratio(df.label, df.sex, privileged="M", unprivileged="F") == pytest.approx(0.5)
    assert M.statistical_parity_difference(df.label, df.sex, privileged="M", unprivileged="F") == pytest.approx(-0.25)
    assert M.statistical_parity_difference(df.label, df.sex) == pytest.approx(-0.25)
    rep = M.representation(df, "sex", label="label")
    assert rep.loc["M", "share"] == pytest.approx(0.6) and rep.loc["F", "base_rate"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="Unknown group"):
        M.disparate_impact_ratio(df.label, df.sex, privileged="X", unprivileged="F")


def test_ece_hand_computed():
    y = [0, 1, 1, 0]
    p = [0.05, 0.95, 0.65, 0.65]  # bins 0, 9, 6, 6 -> |0-.05| + |0-(-.05)| + |1-1.3| = .05 + .05 + .3
    assert M.expected_calibration_error(y, p) == pytest.approx((0.05 + 0.05 + 0.3) / 4)


@pytest.mark.parametrize("bad, match", [
    (dict(y_true=[0, 1, 1], y_pred=[0, 1], sensitive_features=["a", "b"]), "lengths must match"),
    (dict(y_true=[0, 1], y_pred=[0, 1], sensitive_features=["a", "b", "a"]), "lengths must match"),
    (dict(y_true=[0, np.nan], y_pred=[0, 1], sensitive_features=["a", "b"]), "NaN"),
    (dict(y_true=[0, 1], y_pred=[0, 1], sensitive_features=["a", None]), "missing"),
    (dict(y_true=[0, 1, 1], y_pred=[0, 1, 0], sensitive_features=["a", "a", "a"]), "single group"),
    (dict(y_true=[0, 2], y_pred=[0, 1], sensitive_features=["a", "b"]), "binary"),
    (dict(y_true=[0, 1], y_pred=[0.2, 0.7], sensitive_features=["a", "b"]), "binary"),
])
def test_bad_input_raises(bad, match):
    for name in DISPARITIES:
        with pytest.raises(ValueError, match=match):
            getattr(M, name)(**bad)


def test_group_without_positives():
    y, p, g = [0, 0, 1, 0], [0, 1, 1, 0], ["a", "a", "b", "b"]
    with pytest.raises(ValueError, match="no positive"):
        M.equal_opportunity_difference(y, p, sensitive_features=g)
    with pytest.raises(ValueError, match="no positive"):
        M.equalized_odds_difference(y, p, sensitive_features=g)
    # demographic parity needs no positives; group_metrics shows the undefined TPR as NaN
    assert M.demographic_parity_difference(y, p, sensitive_features=g) == pytest.approx(0.0)
    assert np.isnan(M.group_metrics(y, p, g).loc["a", "tpr"])


def test_nobody_selected_ratio_is_nan():
    assert np.isnan(M.demographic_parity_ratio([0, 1, 0, 1], [0, 0, 0, 0], sensitive_features=list("aabb")))


def test_bad_method_and_agg():
    y, p, g, _ = _random(0, 50, 2)
    with pytest.raises(ValueError, match="method"):
        M.demographic_parity_difference(y, p, sensitive_features=g, method="nope")
    with pytest.raises(ValueError, match="agg"):
        M.equalized_odds_difference(y, p, sensitive_features=g, agg="nope")


def accuracy_parity_difference(y, p, *, sensitive_features):  # fairlearn's accuracy gap, under our function's name
    from sklearn.metrics import accuracy_score

    return fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=sensitive_features).difference()


_GAP_FN = {"dp": fl.demographic_parity_difference, "eop": fl.equal_opportunity_difference,
           "eo": fl.equalized_odds_difference, "ap": accuracy_parity_difference}


@pytest.mark.parametrize("metric", ["dp", "eop", "eo", "ap"])
@pytest.mark.parametrize("k", [2, 3])
def test_gap_interval_matches_resampling_rows(metric, k):
    """The binomial shortcut gives the same quantiles as resampling row indices within each cell."""
    y, p, g, _ = _random(7 + k, 600, k)
    ours = M.gap_interval(y, p, sensitive_features=g, metric=metric, n_boot=4000, seed=1)
    assert ours.estimate == pytest.approx(_GAP_FN[metric](y, p, sensitive_features=g), abs=1e-12)  # fairlearn
    cells = pd.Series(g).astype(str) + ("|" + pd.Series(y).astype(str) if metric != "dp" else "")
    members = [np.flatnonzero(cells.to_numpy() == c) for c in np.unique(cells)]
    rng = np.random.default_rng(0)
    gap = getattr(M, _GAP_FN[metric].__name__)  # ours: equal to fairlearn to 1e-12 (tests above), and faster
    boot = []
    for _ in range(2000):
        idx = np.concatenate([rng.choice(ix, len(ix)) for ix in members])
        boot.append(gap(y[idx], p[idx], sensitive_features=g[idx]))
    ref = np.quantile(boot, [0.025, 0.975])
    tol = 0.1 * (ref[1] - ref[0])  # Monte Carlo error of a 2.5 % quantile from 2000 resamples: a few % of the width
    assert ours.low == pytest.approx(ref[0], abs=tol) and ours.high == pytest.approx(ref[1], abs=tol)
    assert ours.low <= ours.estimate <= ours.high and ours.level == 0.95


def test_gap_interval_narrows_with_data_and_is_seeded():
    rng = np.random.default_rng(3)

    def data(n):
        g = rng.integers(0, 2, n)
        y = (rng.random(n) < np.where(g == 0, 0.2, 0.4)).astype(int)
        return y, (rng.random(n) < np.where(y == 1, 0.6 + 0.1 * g, 0.1)).astype(int), g

    small, large = (M.gap_interval(y, p, sensitive_features=g, metric="dp") for y, p, g in (data(1000), data(16000)))
    widths = [small.high - small.low, large.high - large.low]
    assert widths[0] / widths[1] == pytest.approx(4.0, rel=0.25)  # 16x the rows: a quarter of the width
    y, p, g = data(500)
    assert M.gap_interval(y, p, sensitive_features=g, seed=5) == M.gap_interval(y, p, sensitive_features=g, seed=5)
    assert M.gap_interval(y, p, sensitive_features=g, seed=5) != M.gap_interval(y, p, sensitive_features=g, seed=6)


@pytest.mark.parametrize("kw, match", [(dict(metric="accuracy"), "metric"), (dict(level=95), "level"),
                                       (dict(n_boot=10), "n_boot"), (dict(n_boot=500.5), "n_boot")])
def test_gap_interval_bad_input(kw, match):
    y, p, g, _ = _random(0, 100, 2)
    with pytest.raises(ValueError, match=match):
        M.gap_interval(y, p, sensitive_features=g, **kw)
    with pytest.raises(ValueError, match="no positive"):  # a group without positives has no TPR to resample
        M.gap_interval([0, 0, 1, 0], [0, 1, 1, 0], sensitive_features=list("aabb"), metric="eo")
    with pytest.raises(ValueError, match="lengths"):
        M.gap_interval(y, p[:-1], sensitive_features=g)


def test_one_seed_has_no_spread_to_show():
    y, g = np.array([1, 0, 1, 0, 1, 0]), np.array(["a", "a", "a", "b", "b", "b"])
    p1, p2 = np.array([0.9, 0.2, 0.4, 0.1, 0.8, 0.3]), np.array([0.9, 0.7, 0.6, 0.6, 0.8, 0.3])
    one = M.summarize_runs({"m": [p1]}, y, g)
    assert one.loc["m", "accuracy"] == pytest.approx(5 / 6) and np.isnan(one.loc["m", "accuracy_sd"])
    assert M.mean_sd_table(one, ["accuracy"]).loc["m", "accuracy"] == 0.833  # one run: its number, no "± n/a"
    two = M.summarize_runs({"m": [p1, p2]}, y, g)
    assert two.loc["m", "accuracy_sd"] == pytest.approx(np.std([5 / 6, 4 / 6], ddof=1))
    assert M.mean_sd_table(two, ["accuracy"]).loc["m", "accuracy"] == "0.750 ± 0.118"


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
@pytest.mark.parametrize("weighted", [False, True])
def test_accuracy_parity_equals_metricframe(k, seed, method, weighted):
    from sklearn.metrics import accuracy_score

    y, p, g, w = _random(seed, 600, k)
    sw = w if weighted else None
    ours = M.accuracy_parity_difference(y, p, sensitive_features=g, method=method, sample_weight=sw)
    frame = fl.MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=g,
                           sample_params=None if sw is None else {"sample_weight": sw})
    assert ours == pytest.approx(frame.difference(method=method), abs=1e-9)
    assert ours > 0.0  # random groups of a few hundred rows never have exactly equal accuracy


@pytest.mark.parametrize("k", [2, 4])
def test_accuracy_parity_equals_error_rate_parity(k):
    """fairlearn's ErrorRateParity moment: gamma('+', group) = err_group - err_overall, so max - min is the gap."""
    from fairlearn.reductions import ErrorRateParity

    y, p, g, _ = _random(7 + k, 800, k)
    moment = ErrorRateParity()
    X = pd.DataFrame({"x": np.zeros(len(y))})
    moment.load_data(X, pd.Series(y), sensitive_features=pd.Series(g))
    gamma = moment.gamma(lambda _X: p)
    upper = gamma.xs("+", level="sign")
    ours = M.accuracy_parity_difference(y, p, sensitive_features=g)
    assert ours == pytest.approx(float(upper.max() - upper.min()), abs=1e-9)


def test_accuracy_parity_hand_example_and_errors():
    # group a: 3 of 4 right (0.75); group b: 1 of 2 right (0.5)
    y = [1, 0, 1, 0, 1, 0]
    p = [1, 0, 0, 0, 1, 1]
    g = ["a", "a", "a", "a", "b", "b"]
    assert M.accuracy_parity_difference(y, p, sensitive_features=g) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="single group"):
        M.accuracy_parity_difference(y, p, sensitive_features=["a"] * 6)
    with pytest.raises(ValueError, match="lengths must match"):
        M.accuracy_parity_difference(y, p[:-1], sensitive_features=g)
    with pytest.raises(ValueError, match="accuracy is undefined"):
        M.accuracy_parity_difference(y, p, sensitive_features=g, sample_weight=[1, 1, 1, 1, 0, 0])
