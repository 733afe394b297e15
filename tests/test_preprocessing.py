"""Reweighing, resampling, effective sample size and proxy measures (helpers.fairness.preprocessing / proxies)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.fairness import preprocessing as P
from helpers.fairness import proxies as X
from helpers.fairness.metrics import base_rates


def _biased(seed=0, n=2000, k=3):
    rng = np.random.default_rng(seed)
    g = rng.choice([f"g{i}" for i in range(k)], n, p=np.linspace(1, 2, k) / np.linspace(1, 2, k).sum())
    rate = {f"g{i}": 0.1 + 0.2 * i for i in range(k)}
    y = (rng.random(n) < np.vectorize(rate.get)(g)).astype(int)
    return pd.DataFrame({"g": g, "y": y})


@pytest.mark.parametrize("k", [2, 3, 4])
def test_reweighing_makes_label_independent_of_group(k):
    df = _biased(k, k=k)
    w = P.reweighing(df.g, df.y)
    rates = base_rates(df.y, df.g, sample_weight=w)
    assert np.allclose(rates, df.y.mean(), atol=1e-12)  # every weighted base rate = overall base rate
    assert w.sum() == pytest.approx(len(df))
    sizes = pd.Series(w).groupby(df.g.to_numpy()).sum()
    assert np.allclose(sizes.to_numpy(), df.g.value_counts().sort_index().to_numpy())  # group sizes kept


def test_reweighing_formula_by_hand():
    g = ["a", "a", "a", "b"]
    y = [1, 0, 0, 1]
    # P(a)=3/4, P(y=1)=1/2, P(a, 1)=1/4 -> w=1.5 ; P(a,0)=1/2 -> w=.75 ; P(b,1)=1/4, P(b)=1/4 -> w=.5
    np.testing.assert_allclose(P.reweighing(g, y), [1.5, 0.75, 0.75, 0.5])
    table = P.reweighing_table(g, y)
    assert table.loc[("b", 0), "count"] == 0 and np.isnan(table.loc[("b", 0), "weight"])


def test_reweighing_bad_input():
    with pytest.raises(ValueError, match="lengths"):
        P.reweighing(["a", "b"], [0, 1, 1])
    with pytest.raises(ValueError, match="two groups"):
        P.reweighing(["a", "a"], [0, 1])
    with pytest.raises(ValueError, match="missing"):
        P.reweighing(["a", None], [0, 1])


@pytest.mark.parametrize("strategy", ["oversample", "uniform"])
def test_resample_equalises_base_rates(strategy):
    df = _biased(1)
    out = P.resample(df, "g", "y", strategy=strategy, seed=0)
    rates = base_rates(out.y, out.g)
    assert rates.max() - rates.min() < 0.01  # up to rounding of cell sizes
    if strategy == "oversample":
        assert set(range(len(df))) <= set(out.source_row)  # nothing dropped
        assert len(out) >= len(df)
    else:
        assert abs(len(out) - len(df)) <= 6
    again = P.resample(df, "g", "y", strategy=strategy, seed=0)
    pd.testing.assert_frame_equal(out, again)  # deterministic


def test_effective_sample_size():
    assert P.effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert P.effective_sample_size([1, 1, 0, 0]) == pytest.approx(2)
    assert P.effective_sample_size([2.0, 1.0]) == pytest.approx(9 / 5)
    df = _biased(2)
    w = P.reweighing(df.g, df.y)
    assert P.effective_sample_size(w) < len(df)  # unequal weights cost effective sample size
    out = P.resample(df, "g", "y")
    assert P.effective_sample_size(P.copy_counts(out, len(df))) < len(out)
    by_group = P.effective_sample_size_by_group(w, df.g)
    assert (by_group <= df.g.value_counts().sort_index()).all()
    with pytest.raises(ValueError):
        P.effective_sample_size([0, 0])


def test_proxies_find_a_planted_proxy():
    rng = np.random.default_rng(0)
    n = 600
    sex = rng.choice(["F", "M"], n)
    df = pd.DataFrame({
        "sex": sex,
        "role": np.where(sex == "M", "husband", "wife"),  # a perfect proxy
        "noise": rng.choice(list("xyz"), n),
        "hours": rng.normal(40, 5, n) + (sex == "M") * 3,  # a weak proxy
    })  # fmt: skip
    assert X.proxy_auc(df, "sex", ["role"]) == pytest.approx(1.0)
    assert 0.35 < X.proxy_auc(df, "sex", ["noise"]) < 0.65
    table = X.proxy_table(df, "sex")
    assert table.index[0] == "role" and table.loc["role", "mi_share"] == pytest.approx(1.0, abs=0.02)
    assert table.loc["hours", "auc"] > 0.6
    mi = X.mutual_information(df, "sex", ["role"])
    assert mi["role"] == pytest.approx(X.entropy_bits(sex), abs=1e-9)  # I(A; A) = H(A), exact plug-in
    texts = [f"a {r} who works" for r in df.role]
    auc, words = X.text_proxy(texts, sex)
    assert auc == pytest.approx(1.0) and {"husband", "wife"} <= set(words.iloc[0, [0, 3]])
    counts = dict(zip(words["word -> M"], words["texts_1"])) | dict(zip(words["word -> F"], words["texts_0"]))
    assert counts["husband"] == (sex == "M").sum() and counts["wife"] == (sex == "F").sum()
    assert counts["works"] == n  # in every text


def test_mutual_information_of_a_code_equals_the_plug_in_estimate_of_its_category():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(1)
    n = 2000
    sex = rng.choice(["F", "M"], n)
    level = np.where(sex == "M", rng.integers(0, 12, n), rng.integers(4, 16, n))  # 16 levels, shifted by sex
    names = np.array([f"level-{k}" for k in range(16)])
    df = pd.DataFrame({"sex": sex, "education": names[level], "education_num": level + 1,
                       "hours": rng.normal(40, 5, n) + (sex == "M") * 3})  # continuous: k-NN estimate
    mi = X.mutual_information(df, "sex", ["education", "education_num", "hours"])
    reference = mutual_info_score(sex, level) / np.log(2)  # plug-in, nats -> bits
    assert mi["education"] == pytest.approx(reference, rel=1e-9)
    assert mi["education_num"] == pytest.approx(reference, rel=1e-9)  # a one-to-one recoding: same information
    assert 0 < mi["hours"] < X.entropy_bits(sex)


def test_mutual_information_of_a_mostly_zero_column_is_a_plug_in_estimate_not_knn():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(2)
    n = 40_000
    sex = rng.choice(["F", "M"], n)
    nonzero = rng.random(n) < np.where(sex == "M", 0.06, 0.03)  # only *whether* it is non-zero depends on sex
    loss = np.where(nonzero, rng.integers(1000, 4000, n), 0)  # about 95 % zeros, hundreds of tied values
    mi = X.mutual_information(pd.DataFrame({"sex": sex, "capital_loss": loss}), "sex", ["capital_loss"])
    indicator = mutual_info_score(sex, nonzero) / np.log(2)  # what the column carries, nats -> bits
    # the bins refine the zero/non-zero split (never below it); Miller's bias bound for 20 levels and 2 groups
    assert indicator - 1e-12 <= mi["capital_loss"] <= indicator + 19 / (2 * n * np.log(2)) + 1e-4


def test_mutual_information_of_an_integer_column_is_binned_counts_close_to_the_true_value():
    from sklearn.metrics import mutual_info_score

    ages = np.arange(17, 91)  # 74 integer levels, as `age` in Adult
    p_male, p_female = np.ones(len(ages)), np.linspace(2, 0.2, len(ages))  # women younger on average
    p_male, p_female = p_male / p_male.sum(), p_female / p_female.sum()
    truth = mutual_info_score(None, None, contingency=np.vstack([p_female, p_male]) * 1e9) / np.log(2)
    rng = np.random.default_rng(0)
    n = 3000
    sex = rng.choice(["F", "M"], n)
    age = np.where(sex == "M", rng.choice(ages, n, p=p_male), rng.choice(ages, n, p=p_female))
    df = pd.DataFrame({"sex": sex, "age": age, "height": rng.normal(170, 8, n) + (sex == "M") * 10})
    assert X.mi_estimators(df, ["age", "height"]).to_dict() == {"age": "binned counts", "height": "k-NN"}
    mi = X.mutual_information(df, "sex", ["age"], seed=0)["age"]
    # no dependence on scikit-learn's tie-breaking noise (the k-NN estimate on these ties moves with the seed)
    assert X.mutual_information(df, "sex", ["age"], seed=1)["age"] == mi
    # reference: plug-in estimate (scikit-learn) on 20 quantile bins of the values built here with numpy
    edges = np.unique(np.quantile(age, np.linspace(0, 1, 21)))
    bins = np.searchsorted(edges[1:-1], age, side="left")  # right-closed bins, as pandas.qcut
    assert mi == pytest.approx(mutual_info_score(sex, bins) / np.log(2), rel=1e-9)
    raw = mutual_info_score(sex, age) / np.log(2)  # counts of the 74 raw values: Miller's bias about 0.018 bits
    assert mi < raw and abs(mi - truth) < 0.008 < raw - truth
