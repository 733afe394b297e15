"""Tests for helpers.privacy (k-anonymity against hand counts; membership inference against toys)."""

import numpy as np
import pandas as pd
import pytest

from helpers import privacy


def _toy():
    return pd.DataFrame({
        "age": [30, 30, 30, 40, 40, 50],
        "sex": ["F", "F", "M", "M", "M", "F"],
        "job": ["a", "b", "c", "d", None, None],
    }, index=[10, 11, 12, 13, 14, 15])


def test_k_anonymity_hand_counts():
    k = privacy.k_anonymity(_toy(), ["age", "sex"])
    assert list(k.index) == [10, 11, 12, 13, 14, 15]
    assert k.tolist() == [2, 2, 1, 2, 2, 1]
    assert privacy.k_anonymity(_toy(), ["age"]).tolist() == [3, 3, 3, 2, 2, 1]


def test_k_anonymity_nan_is_a_value_and_matches_brute_force():
    df = _toy()
    k = privacy.k_anonymity(df, ["job"])
    assert k.tolist() == [1, 1, 1, 1, 2, 2]
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"a": rng.integers(0, 4, 200), "b": rng.integers(0, 3, 200)})
    brute = [int(((big.a == r.a) & (big.b == r.b)).sum()) for r in big.itertuples()]
    assert privacy.k_anonymity(big, ["a", "b"]).tolist() == brute


def test_uniqueness():
    assert privacy.quasi_identifier_uniqueness(_toy(), ["age", "sex"]) == pytest.approx(2 / 6)
    assert privacy.quasi_identifier_uniqueness(_toy(), ["age", "sex", "job"]) == 1.0
    assert privacy.quasi_identifier_uniqueness(_toy(), "sex") == 0.0


def test_population_class_sizes_hand_example():
    df = _toy().assign(w=[100, 300, 50, 10, 20, 7])
    # classes on (age, sex): (30,F) rows 10,11 -> 400; (30,M) -> 50; (40,M) rows 13,14 -> 30; (50,F) -> 7
    n = privacy.population_class_sizes(df, ["age", "sex"], weight="w", scale=0.5)
    assert list(n.index) == [10, 11, 12, 13, 14, 15]
    assert n.tolist() == [200.0, 200.0, 25.0, 15.0, 15.0, 3.5]
    assert privacy.population_class_sizes(df, ["job"], weight="w").tolist() == [100, 300, 50, 10, 27, 27]  # NaN = NaN
    # with every weight 1 the estimate is the sample class size k_i
    rng = np.random.default_rng(1)
    big = pd.DataFrame({"a": rng.integers(0, 4, 300), "b": rng.choice(list("xyz"), 300), "w": 1.0})
    big["b"] = big["b"].astype("category")
    np.testing.assert_array_equal(privacy.population_class_sizes(big, ["a", "b"], weight="w"),
                                  privacy.k_anonymity(big, ["a", "b"]))
    for kw, match in ((dict(weight="nope"), "weight column"), (dict(scale=0), "scale")):
        with pytest.raises(ValueError, match=match):
            privacy.population_class_sizes(df, ["age"], **{"weight": "w", **kw})
    with pytest.raises(ValueError, match="non-negative"):
        privacy.population_class_sizes(df.assign(w=[1, -1, 1, 1, 1, 1]), ["age"], weight="w")


@pytest.mark.parametrize("cols", [[], ["nope"]])
def test_k_anonymity_bad_input(cols):
    with pytest.raises(ValueError):
        privacy.k_anonymity(_toy(), cols)
    with pytest.raises(ValueError):
        privacy.k_anonymity(_toy().iloc[:0], ["age"])


def _mann_whitney_auc(pos, neg):
    """Independent AUC: P(score_member > score_nonmember) + 0.5 P(tie), by brute force."""
    pos, neg = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return float(np.mean(pos > neg) + 0.5 * np.mean(pos == neg))


def test_losses_and_auc_against_hand_computation():
    p = np.array([0.9, 0.2, 0.6])
    y = np.array([1, 0, 0])
    assert privacy.example_losses(p, y) == pytest.approx(-np.log([0.9, 0.8, 0.4]))
    assert privacy.example_losses(np.c_[1 - p, p], y) == pytest.approx(-np.log([0.9, 0.8, 0.4]))
    rng = np.random.default_rng(1)
    pm, ym = rng.uniform(size=50), rng.integers(0, 2, 50)
    pn, yn = rng.uniform(size=40), rng.integers(0, 2, 40)
    out = privacy.loss_threshold_attack(pm, ym, pn, yn)
    lm, ln = privacy.example_losses(pm, ym), privacy.example_losses(pn, yn)
    assert out["auc"] == pytest.approx(_mann_whitney_auc(-lm, -ln))
    tau = lm.mean()
    assert out["advantage"] == pytest.approx(np.mean(lm <= tau) - np.mean(ln <= tau))
    assert 0.0 <= out["best_advantage"] <= 1.0
    assert out["loss_gap"] == pytest.approx(ln.mean() - lm.mean())


def _blobs(n, seed):
    from sklearn.datasets import make_classification

    return make_classification(n_samples=n, n_features=10, n_informative=4, flip_y=0.2, random_state=seed)


def test_mia_is_chance_on_a_model_that_saw_neither_set():
    from sklearn.linear_model import LogisticRegression

    X, y = _blobs(6000, 0)
    model = LogisticRegression(max_iter=1000).fit(X[:2000], y[:2000])  # sees only the first third
    a, b = slice(2000, 4000), slice(4000, 6000)
    auc = privacy.membership_inference_auc(model.predict_proba(X[a]), y[a], model.predict_proba(X[b]), y[b])
    assert abs(auc - 0.5) < 0.05


def test_mia_is_high_on_a_memorising_model():
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 10))
    y = rng.integers(0, 2, 600)  # random labels: the only way to fit them is to memorise
    model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X[:300], y[:300])
    out = privacy.loss_threshold_attack(model.predict_proba(X[:300]), y[:300], model.predict_proba(X[300:]), y[300:])
    assert out["auc"] > 0.9
    assert out["accuracy_gap"] > 0.4 and out["loss_gap"] > 0


def test_mia_bad_input():
    with pytest.raises(ValueError):
        privacy.membership_inference_auc([0.5, 0.5], [1], [0.5], [0])
    with pytest.raises(ValueError):
        privacy.membership_inference_auc([1.5], [1], [0.5], [0])
    with pytest.raises(ValueError):
        privacy.membership_inference_auc([0.5], [2], [0.5], [0])
    with pytest.raises(ValueError):
        privacy.membership_inference_auc([], [], [0.5], [0])


def test_k_anonymity_on_category_columns_groups_only_observed_combinations():
    # 8 columns of 40 categories each: 40**8 (6.6e12) possible combinations, 300 observed. pandas < 3 without
    # observed=True would try to build every combination and run out of memory.
    rng = np.random.default_rng(1)
    cats = [f"c{i}" for i in range(40)]
    raw = pd.DataFrame({f"q{j}": rng.choice(cats[:3], 300) for j in range(8)})
    cat = raw.astype(pd.CategoricalDtype(cats))
    cat.loc[5, "q0"] = np.nan
    raw.loc[5, "q0"] = np.nan
    cols = list(raw.columns)
    brute = [int((raw[cols].fillna("<na>") == raw[cols].fillna("<na>").iloc[i]).all(axis=1).sum())
             for i in range(len(raw))]
    assert privacy.k_anonymity(cat, cols).tolist() == brute


def _max_advantage_lp(eps, delta):
    """Independent reference: maximise TPR - FPR over the (eps, delta)-DP hypothesis-testing region by LP."""
    from scipy.optimize import linprog

    e = np.exp(eps)
    # variables x = (FPR, TPR); constraints A x <= b (both directions of the DP inequality, both tests)
    A = [[-e, 1], [1, -e], [-1, e], [e, -1]]
    b = [delta, delta, e - 1 + delta, e - 1 + delta]
    res = linprog(c=[1, -1], A_ub=A, b_ub=b, bounds=[(0, 1), (0, 1)])
    assert res.success
    return -res.fun


@pytest.mark.parametrize("eps,delta", [(0.0, 0.0), (0.1, 0.0), (1.0, 0.0), (1.0, 1e-5), (2.0, 0.05), (8.0, 1e-5),
                                       (0.5, 0.3), (3.0, 1.0)])
def test_dp_advantage_bound_matches_the_hypothesis_testing_region(eps, delta):
    assert privacy.dp_advantage_bound(eps, delta) == pytest.approx(_max_advantage_lp(eps, delta), abs=1e-9)


def test_dp_advantage_bound_is_attained_by_randomised_response():
    # eps-DP randomised response reports a person's membership bit truthfully with prob e^eps / (1 + e^eps);
    # the attack "guess what was reported" has TPR = that, FPR = 1 / (1 + e^eps): advantage tanh(eps / 2).
    for eps in (0.2, 1.0, 3.0):
        tpr, fpr = np.exp(eps) / (1 + np.exp(eps)), 1 / (1 + np.exp(eps))
        assert privacy.dp_advantage_bound(eps) == pytest.approx(tpr - fpr)
        assert privacy.dp_advantage_bound(eps) == pytest.approx(np.tanh(eps / 2))
    assert privacy.dp_advantage_bound(8.0, 1e-5) > 0.999  # vacuous
    assert np.allclose(privacy.dp_advantage_bound([0.0, 1.0], 0.0), [0.0, np.tanh(0.5)])
    for bad in ((-1.0, 0.0), (1.0, -0.1), (1.0, 1.5), (float("nan"), 0.0)):
        with pytest.raises(ValueError):
            privacy.dp_advantage_bound(*bad)


def test_auc_null_se_matches_mann_whitney_and_simulation():
    """scipy's asymptotic Mann-Whitney test (no continuity correction) standardises U with the same variance;
    and on exchangeable scores the AUC's spread over draws is this standard error."""
    from scipy.stats import mannwhitneyu, norm
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    a, b = rng.normal(0.1, 1, 400), rng.normal(0, 1, 300)
    auc = roc_auc_score(np.r_[np.ones(400), np.zeros(300)], np.r_[a, b])
    p_ref = mannwhitneyu(a, b, alternative="two-sided", method="asymptotic", use_continuity=False).pvalue
    z = (auc - 0.5) / privacy.auc_null_se(400, 300)
    assert 2 * norm.sf(abs(z)) == pytest.approx(p_ref, rel=1e-9)
    draws = [roc_auc_score(np.r_[np.ones(50), np.zeros(80)], rng.normal(size=130)) for _ in range(4000)]
    assert np.std(draws) == pytest.approx(privacy.auc_null_se(50, 80), rel=0.05)
    with pytest.raises(ValueError, match="n_members"):
        privacy.auc_null_se(0, 10)


def test_auc_ranking_names_the_pairs_the_noise_separates():
    """On 400 + 400 records two AUCs differ by noise alone up to 2 sqrt(2) SE = 0.0578 (SE = sqrt(801 / 1920000))."""
    members = {"a": 400, "b": 400, "c": 400}
    noise = 2 * np.sqrt(2 * 801 / (12 * 400 * 400))
    assert noise == pytest.approx(0.0578, abs=1e-4)
    one_apart = privacy.auc_ranking({"a": 0.606, "b": 0.539, "c": 0.579}, members, "a")  # 0.067 > noise > 0.027
    assert "measurably more than b 0.539 (difference +0.067" in one_apart
    assert "not measurably more than c 0.579 (difference +0.027" in one_apart
    none_apart = privacy.auc_ranking({"a": 0.60, "b": 0.59, "c": 0.58}, members, "a")
    assert "cannot tell" in none_apart and "b 0.590" in none_apart and "c 0.580" in none_apart
    all_apart = privacy.auc_ranking({"a": 0.70, "b": 0.55, "c": 0.60}, members, "a")
    assert all_apart.startswith("It also leaks more than every other model") and "not measurably" not in all_apart
    with pytest.raises(ValueError, match="not one of the models"):
        privacy.auc_ranking({"a": 0.6}, {"a": 400}, "z")


def test_best_advantage_no_leak_matches_a_simulation_without_leak():
    """Members' and non-members' probabilities from the same distribution: the hindsight-best TPR - FPR averages
    sqrt(pi/8) sqrt(2/n) (0.0443 for n = 400) and its 95th percentile is sqrt(ln(20)/2) sqrt(2/n) (0.0865)."""
    rng = np.random.default_rng(0)
    n, y = 400, np.ones(400, int)
    sims = [privacy.loss_threshold_attack(rng.random(n), y, rng.random(n), y)["best_advantage"] for _ in range(300)]
    assert privacy.best_advantage_no_leak(n, n) == pytest.approx(0.0443, abs=1e-4)
    assert np.mean(sims) == pytest.approx(privacy.best_advantage_no_leak(n, n), rel=0.08)
    assert np.quantile(sims, 0.95) == pytest.approx(privacy.best_advantage_no_leak(n, n, quantile=0.95), rel=0.1)
    with pytest.raises(ValueError, match="quantile"):
        privacy.best_advantage_no_leak(n, n, quantile=1.0)


def test_describe_best_advantage_compares_with_the_no_leak_level():
    """400 + 400 records: no-leak mean 0.044, 95th percentile 0.087."""
    leak = privacy.describe_best_advantage(0.105, 0.080, 400, 400)
    assert "average about 0.044 (95th percentile 0.087)" in leak and "is above that 95th percentile" in leak
    assert "gives 0.080" in leak
    no_leak = privacy.describe_best_advantage(0.05, 0.01, 400, 400)
    assert "is not above that 95th percentile" in no_leak
